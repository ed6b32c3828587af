"""``python -m seed_solo.knn``: offline kNN evaluation on solo-learn's kNN options, on a CPU or a
GPU.

    python -m seed_solo.knn --pretrained_checkpoint_dir trained_models/seed/RUN \
        --dataset custom --train_data_path data/train --val_data_path data/val \
        --k 20 --temperature 0.07 --feature_type backbone projector --distance_function cosine

A teacher is evaluated the same way with ``--teacher SOURCE`` (zoo name, path, URL,
``torchvision:NAME``, ``package:NAME``; ``--teacher_option key=value`` for its loader) instead of
``--pretrained_checkpoint_dir``: "backbone" features are its embedding before normalisation.

Differences from solo-learn's main_knn.py: no hard-coded ``.cuda()``; the folder's last checkpoint
is used (:func:`seed_solo.runs.folders.last_checkpoint`); a SEED student is rebuilt without its
teacher; keys are checked; ``--output_json`` writes the results; custom data is evaluated at the
training crop size recorded in ``args.json`` (``--crop_size`` overrides).
"""

from __future__ import annotations

# first: third-party import warnings off before solo-learn, timm and torchmetrics load
from seed_solo.harness import quiet_imports  # noqa: F401

# isort: split

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any, List, Sequence, Tuple

import torch
import yaml
from omegaconf import DictConfig, OmegaConf
from torch import nn

from seed_solo.core.errors import ConfigError, exit_on_expected
from seed_solo.data.image_folders import check_data_paths
from seed_solo.data.loaders import classification_loaders
from seed_solo.evaluation.features import TeacherFeatures, extract_features, trained_model
from seed_solo.evaluation.knn import knn_accuracy
from seed_solo.harness.backbones import register_students
from seed_solo.nets.normalize import IMAGENET_MEAN, IMAGENET_STD
from seed_solo.runs.atomic import write_json


def load_teacher_model(source: str, fmt: str, options: Sequence[str]) -> nn.Module:
    """The teacher ``source`` as a model to evaluate; ``options`` are ``key=value`` strings."""
    # imported here: evaluating a student never loads teacher code
    from seed_solo.teachers import load_teacher

    kwargs = {}
    for item in options:
        if "=" not in item:
            raise ConfigError(f"--teacher_option takes key=value, got {item!r}.")
        key, value = item.split("=", 1)
        kwargs[key] = yaml.safe_load(value)
    return TeacherFeatures(load_teacher(source, format=fmt, precision="32", **kwargs))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m seed_solo.knn",
        description="Offline weighted kNN evaluation of a student's run folder (or of a teacher) "
        "on a labelled train/val pair of image folders, as solo-learn's main_knn does, on a CPU "
        "or a GPU. Prints one line per setting; --output_json writes them all.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--pretrained_checkpoint_dir", type=Path, metavar="RUN_DIR",
                        help="the student's run folder (its last checkpoint is taken) or a .ckpt")
    source.add_argument("--teacher", help="evaluate a teacher instead: zoo name, path, url, "
                        "torchvision:NAME, timm:NAME or package:NAME")
    p.add_argument("--teacher_format", default="auto",
                   help="the teacher's checkpoint layout (default: auto, detected)")
    p.add_argument("--teacher_option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the teacher's loader, e.g. embedding=mean (repeatable)")
    p.add_argument("--batch_size", type=int, default=64, help="images per forward (default 64)")
    p.add_argument("--num_workers", type=int, default=4,
                   help="data loader processes (default 4; 0: in this process)")
    p.add_argument("--k", type=int, nargs="+", default=[20],
                   help="neighbours voting, one or more values (default 20)")
    p.add_argument("--temperature", type=float, nargs="+", default=[0.07],
                   help="temperature of the cosine vote weights exp(sim / T) (default 0.07)")
    p.add_argument("--distance_function", type=str, nargs="+", default=["cosine"],
                   choices=["cosine", "euclidean"], help="one or both (default cosine)")
    p.add_argument("--feature_type", type=str, nargs="+", default=["backbone"],
                   choices=["backbone", "projector"],
                   help="backbone: the pooled features; projector: SEED's head output z")
    p.add_argument("--dataset", required=True,
                   choices=["cifar10", "cifar100", "stl10", "imagenet", "imagenet100", "custom"],
                   help="solo-learn's data set name; custom: any train/val image folders")
    p.add_argument("--train_data_path", type=Path, required=True,
                   help="the labelled images of the kNN bank (class sub-folders)")
    p.add_argument("--val_data_path", type=Path, required=True,
                   help="the labelled images to classify (class sub-folders)")
    p.add_argument("--data_format", default="image_folder", choices=["image_folder", "h5"],
                   help="how the images are stored (default image_folder)")
    p.add_argument("--crop_size", type=int, default=None,
                   help="evaluation size for custom data (default: the run's training crop)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--output_json", type=Path, default=None,
                   help="write the results (and the checkpoint evaluated) to this file")
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def model_to_evaluate(args: argparse.Namespace) -> Tuple[nn.Module, DictConfig, str]:
    """(model, its config, where it came from): the teacher, or the run's student."""
    if args.teacher:
        model = load_teacher_model(args.teacher, args.teacher_format, args.teacher_option)
        return model, OmegaConf.create({"method": "teacher"}), args.teacher
    register_students()  # a run of another solo-learn method may have a seed-solo student
    model, cfg, ckpt = trained_model(args.pretrained_checkpoint_dir)
    return model, cfg, str(ckpt)


def loaders(args: argparse.Namespace, cfg: DictConfig) -> Tuple[Any, Any]:
    """Un-augmented train (the kNN bank) and val loaders, at the run's crop for custom data."""
    aug = cfg.augmentations[0] if "augmentations" in cfg else {}
    crop = args.crop_size or (aug.get("crop_size") if args.dataset == "custom" else None)
    check_data_paths(args.dataset, args.data_format, {"--train_data_path": args.train_data_path,
                                                      "--val_data_path": args.val_data_path})
    train_loader, val_loader = classification_loaders(
        args.dataset, args.train_data_path, args.val_data_path, data_format=args.data_format,
        batch_size=args.batch_size, num_workers=args.num_workers, crop_size=crop,
        mean=aug.get("mean", None) or IMAGENET_MEAN, std=aug.get("std", None) or IMAGENET_STD,
        shuffle_train=False,
    )
    train_loader.dataset.transform = val_loader.dataset.transform
    return train_loader, val_loader


def main(argv: Sequence[str] | None = None) -> List[dict]:
    args = parse_args(argv)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    model, cfg, source = model_to_evaluate(args)
    model.to(device)
    train_loader, val_loader = loaders(args, cfg)
    train_bb, train_proj, train_y = extract_features(train_loader, model, device)
    test_bb, test_proj, test_y = extract_features(val_loader, model, device)
    features = {"backbone": (train_bb, test_bb), "projector": (train_proj, test_proj)}
    results = []
    for feat_type, k, distance in itertools.product(args.feature_type, args.k,
                                                    args.distance_function):
        for T in (args.temperature if distance == "cosine" else [None]):
            train_x, test_x = features[feat_type]
            acc1, acc5 = knn_accuracy(train_x, train_y, test_x, test_y, k, T, distance)
            results.append({"feature_type": feat_type, "k": k, "distance": distance, "T": T,
                            "acc1": acc1, "acc5": acc5})
            print(f"{feat_type} k={k} {distance} T={T}: acc@1={acc1:.2f} acc@5={acc5:.2f}")
    write_json(args.output_json and str(args.output_json),
               {"checkpoint": source, "method": cfg.method, "results": results}, "--output_json")
    if args.output_json:
        print(f"seed-solo: kNN results written to {args.output_json}")
    return results


if __name__ == "__main__":
    exit_on_expected(main, sys.argv[1:])
