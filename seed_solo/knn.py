"""Offline kNN evaluation on solo-learn's kNN options, on a CPU or a GPU.

    python -m seed_solo.knn --pretrained_checkpoint_dir trained_models/seed/RUN \
        --dataset custom --train_data_path data/train --val_data_path data/val \
        --k 20 --temperature 0.07 --feature_type backbone projector --distance_function cosine

A teacher is evaluated the same way with ``--teacher SOURCE`` (zoo name, path, URL,
``torchvision:NAME``, ``package:NAME``; ``--teacher_option key=value`` for its loader) instead of
``--pretrained_checkpoint_dir``: "backbone" features are its embedding before normalisation.

Differences from solo-learn's main_knn.py: no hard-coded ``.cuda()``; the folder's last checkpoint
is used (by epoch, :mod:`seed_solo.runs`); a SEED student is rebuilt without its teacher; keys
are checked; ``--output_json`` writes the results; custom data is evaluated at the training
crop size recorded in ``args.json`` (``--crop_size`` overrides).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from tqdm import tqdm

import seed_solo  # noqa: F401  (registers SEED and the students with solo-learn)
from seed_solo.atomic import write_json
from seed_solo.errors import exit_on_expected
from seed_solo.loaders import classification_loaders
from seed_solo.nets.normalize import IMAGENET_MEAN, IMAGENET_STD
from seed_solo.nets.projector import projection_head
from seed_solo.rebuild import build_solo_backbone
from seed_solo.runs import find_checkpoint, read_args
from seed_solo.state_dict import load_prefixed, read_checkpoint


class Student(nn.Module):
    """Backbone plus optional projector: returns ``feats`` and ``z`` like solo's methods."""

    def __init__(self, backbone: nn.Module, projector: nn.Module | None):
        super().__init__()
        self.backbone = backbone
        self.projector = projector

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        feats = self.backbone(x)
        z = F.normalize(self.projector(feats), dim=-1) if self.projector is not None else feats
        return {"feats": feats, "z": z}


def load_student(run_dir: Path) -> Tuple[nn.Module, DictConfig, Path]:
    """Rebuild the pre-trained model of ``run_dir`` (args.json + last .ckpt), no teacher.

    ``run_dir`` may also be a checkpoint file, with args.json beside it.
    """
    ckpt = find_checkpoint(run_dir)
    cfg = OmegaConf.create(read_args(ckpt))
    state = read_checkpoint(ckpt, allow_inert_objects=True, what="student checkpoint")["state_dict"]
    if cfg.method == "seed":
        backbone, features = build_solo_backbone(
            cfg.backbone.name, cfg.backbone.get("kwargs", {}), cfg.method, cfg.data.dataset
        )
        load_prefixed(backbone, state, "backbone.", "backbone")
        kw = cfg.method_kwargs
        projector = projection_head(features, kw.proj_hidden_dim, kw.proj_output_dim)
        load_prefixed(projector, state, "projector.", "projector")
        model: nn.Module = Student(backbone, projector)
    else:
        from solo.methods import METHODS

        model = METHODS[cfg.method](cfg)
        result = model.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise ValueError(
                f"{ckpt} does not fit a {cfg.method} model built from args.json: missing "
                f"{result.missing_keys}, unexpected {result.unexpected_keys}."
            )
    return model, cfg, ckpt


class TeacherFeatures(nn.Module):
    """A frozen teacher as a model to evaluate: ``feats`` its raw embedding, ``z`` normalised."""

    def __init__(self, teacher: nn.Module):
        super().__init__()
        self.teacher = teacher

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        feats = self.teacher.model(x)
        return {"feats": feats, "z": F.normalize(feats.float(), dim=-1)}


def load_teacher_model(source: str, fmt: str, options: Sequence[str]) -> nn.Module:
    import yaml

    from seed_solo.teachers import load_teacher

    kwargs = {}
    for item in options:
        if "=" not in item:
            raise ValueError(f"--teacher_option takes key=value, got {item!r}.")
        key, value = item.split("=", 1)
        kwargs[key] = yaml.safe_load(value)
    return TeacherFeatures(load_teacher(source, format=fmt, precision="32", **kwargs))


@torch.no_grad()
def extract_features(loader, model: nn.Module, device: torch.device):
    """(backbone features, projected features, labels) of every image in ``loader``."""
    model.eval()
    feats, zs, labels = [], [], []
    for images, targets in tqdm(loader, desc="features", leave=False):
        out = model(images.to(device, non_blocking=True))
        feats.append(out["feats"].float().cpu())
        zs.append(out["z"].float().cpu())
        labels.append(targets)
    return torch.cat(feats), torch.cat(zs), torch.cat(labels)


def run_knn(train_x, train_y, test_x, test_y, k: int, T: float | None, distance_fx: str):
    from solo.utils.knn import WeightedKNNClassifier

    knn = WeightedKNNClassifier(k=k, T=T if T is not None else 0.07, distance_fx=distance_fx)
    knn(train_features=train_x, train_targets=train_y, test_features=test_x, test_targets=test_y)
    return knn.compute()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--pretrained_checkpoint_dir", type=Path)
    source.add_argument("--teacher", help="evaluate a teacher: zoo name, path, url, or NAME:...")
    p.add_argument("--teacher_format", default="auto")
    p.add_argument("--teacher_option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--num_workers", type=int, default=4)
    p.add_argument("--k", type=int, nargs="+", default=[20])
    p.add_argument("--temperature", type=float, nargs="+", default=[0.07])
    p.add_argument("--distance_function", type=str, nargs="+", default=["cosine"],
                   choices=["cosine", "euclidean"])
    p.add_argument("--feature_type", type=str, nargs="+", default=["backbone"],
                   choices=["backbone", "projector"])
    p.add_argument("--dataset", required=True,
                   choices=["cifar10", "cifar100", "stl10", "imagenet", "imagenet100", "custom"])
    p.add_argument("--train_data_path", type=Path, required=True)
    p.add_argument("--val_data_path", type=Path, required=True)
    p.add_argument("--data_format", default="image_folder", choices=["image_folder", "h5"])
    p.add_argument("--crop_size", type=int, default=None,
                   help="evaluation size for custom data (default: the run's training crop)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--output_json", type=Path, default=None)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> List[dict]:
    args = parse_args(argv)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    if args.teacher:
        model = load_teacher_model(args.teacher, args.teacher_format, args.teacher_option)
        cfg, ckpt = OmegaConf.create({"method": "teacher"}), args.teacher
    else:
        model, cfg, ckpt = load_student(args.pretrained_checkpoint_dir)
    model.to(device)

    aug = cfg.augmentations[0] if "augmentations" in cfg else {}
    crop = args.crop_size or (aug.get("crop_size") if args.dataset == "custom" else None)
    train_loader, val_loader = classification_loaders(
        args.dataset,
        args.train_data_path,
        args.val_data_path,
        data_format=args.data_format,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        crop_size=crop,
        mean=aug.get("mean", None) or IMAGENET_MEAN,
        std=aug.get("std", None) or IMAGENET_STD,
        shuffle_train=False,
    )
    # the kNN bank is built from un-augmented training images
    train_loader.dataset.transform = val_loader.dataset.transform

    train_bb, train_proj, train_y = extract_features(train_loader, model, device)
    test_bb, test_proj, test_y = extract_features(val_loader, model, device)
    features = {"backbone": (train_bb, test_bb), "projector": (train_proj, test_proj)}

    results = []
    for feat_type in args.feature_type:
        for k in args.k:
            for distance_fx in args.distance_function:
                temps = args.temperature if distance_fx == "cosine" else [None]
                for T in temps:
                    train_x, test_x = features[feat_type]
                    acc1, acc5 = run_knn(train_x, train_y, test_x, test_y, k, T, distance_fx)
                    row = {"feature_type": feat_type, "k": k, "distance": distance_fx, "T": T,
                           "acc1": float(acc1), "acc5": float(acc5)}
                    results.append(row)
                    print(f"{feat_type} k={k} {distance_fx} T={T}: "
                          f"acc@1={row['acc1']:.2f} acc@5={row['acc5']:.2f}")
    write_json(args.output_json and str(args.output_json),
               {"checkpoint": str(ckpt), "method": cfg.method, "results": results})
    return results


if __name__ == "__main__":
    exit_on_expected(main, sys.argv[1:])
