"""Live vs. cached SEED, side by side: per-step and per-epoch img/s, the cache pass, total cost.

For each teacher -> student pair, in one process, with the real code path: the SEED method built
by solo-learn from ``configs/distill/imagenet/seed_{r18,mbv3}.yaml``, trained by a Lightning
Trainer (:func:`seed_solo.trainer.build_trainer`), fed by the train loader ``seed_solo.distill``
builds. The teachers are real architectures with random weights, saved as checkpoints in their
zoo layouts (MoCo v2 ResNet-50 with its 128-d head; SwAV RN50w2 with its 8192-128 head) and
loaded by seed-solo's teacher loader:

- ``live``: SEED as usual, the frozen teacher's forward in every step;
- ``cached``: ``+method_kwargs.teacher_cache=PATH``, the cache written first by the cache pass
  (``seed_solo.cache``, the same config) for ``--views`` views of every image.

Figures, each as images per second of wall time:

- per step: the training step on a ready batch (live: teacher forward + student; cached: cache
  lookup + student), median over ``--steps`` steps of ``--reps`` fits, the first step of each
  fit left out;
- per epoch: whole epochs through the real data loader (JPEG decoding and augmentation in
  ``--workers`` worker processes; the cached epoch replays each image's view), the fastest of
  ``--reps`` epochs, workers started inside the epoch as in a real run;
- the cache pass: image-views per second of ``seed_solo.cache`` over the folder;
- the loader alone: images per second out of the cached run's train loader, nothing trained.

Then the total cost of distilling for E epochs from V views, per image:
``V / cache pass rate + E / cached epoch rate`` against ``E / live epoch rate``.

CPU (default: 128 px, batch 16, 2 workers, 128 generated 500 x 375 JPEGs; a few minutes on 2
cores)::

    python benchmarks/bench_cache.py
    python benchmarks/bench_cache.py --quick      # the pipeline on a few images, ~1 min

128 px because a CPU step at 224 px takes 3x longer and the ratio of teacher to student work,
which sets the speedup, hardly depends on the crop size (both are convolution stacks whose cost
scales with the pixels); batch 16 because it keeps an R50w2 step near 2 s on 2 cores while the
convolutions still run at full speed. GPU (224 px, batch 256, 16-mixed as the configs)::

    python benchmarks/bench_cache.py --device cuda --crop 224 --batch 256 --images 4096 --workers 12

Each pair prints one line ``cached/live speedup PAIR: X.XX``: the ratio of the epoch rates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_loaders import make_jpegs  # noqa: E402
from bench_seed import machine  # noqa: E402

CONFIGS = REPO / "configs/distill/imagenet"


@dataclass(frozen=True)
class Teacher:
    """A zoo architecture and layout, saved with random weights."""

    arch: str  # seed_solo.nets.resnet.ARCHS
    fmt: str  # seed_solo.teachers.formats.FORMATS
    head: tuple  # hidden and output widths of the head (F -> hidden -> d)
    bn: bool  # a BatchNorm1d after the hidden Linear (SwAV), else none (MoCo v2)


@dataclass(frozen=True)
class Pair:
    name: str
    teacher: str  # key of TEACHERS
    config: str  # configs/distill/imagenet/<config>.yaml: the student


TEACHERS = {
    # mocov2-r50-{200,800}ep: ResNet-50, fc.0 (2048 -> 2048) - ReLU - fc.2 (2048 -> 128)
    "r50": Teacher("resnet50", "moco", (2048, 128), False),
    # swav-r50w2-400ep: RN50w2 (4096 features), projection_head 4096 -> 8192 - BN - ReLU -> 128
    "r50w2": Teacher("resnet50w2", "swav", (8192, 128), True),
}
PAIRS = {
    p.name: p
    for p in (
        Pair("r50-r18", "r50", "seed_r18"),
        Pair("r50w2-r18", "r50w2", "seed_r18"),
        Pair("r50-mnv3l", "r50", "seed_mbv3"),
    )
}
MODES = ("live", "cached")


def save_teacher(spec: Teacher, path: Path) -> Path:
    """A random-weight checkpoint of ``spec`` in its zoo layout, as its authors publish it."""
    from seed_solo.nets.resnet import ARCHS, ResNet
    from seed_solo.teachers.formats import FORMATS
    from seed_solo.teachers.heads import Embedder

    torch.manual_seed(0)
    backbone = ResNet(ARCHS[spec.arch])
    hidden, dim = spec.head
    layers: List[nn.Module] = [nn.Linear(backbone.spec.num_features, hidden)]
    layers += [nn.BatchNorm1d(hidden)] if spec.bn else []
    layers += [nn.ReLU(inplace=True), nn.Linear(hidden, dim)]
    model = Embedder(backbone, nn.Sequential(*layers))
    layout = FORMATS[spec.fmt]
    state = {"module." + layout.source_key(k): v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state}, path)
    return path


def compose(pair: Pair, teacher: Path, data: Path, args: argparse.Namespace,
            extra: List[str] = ()):
    """The run's config, as ``seed_solo.distill`` would parse it (solo-learn's parse_cfg)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf
    from solo.args.pretrain import parse_cfg

    from seed_solo.trainer import devices_for_parse

    cuda = args.device == "cuda"
    overrides = [
        "data.dataset=custom", "data.format=image_folder", f"data.train_path={data}",
        "data.val_path=null", f"data.num_workers={args.workers}",
        f"optimizer.batch_size={args.batch}", f"augmentations.0.crop_size={args.crop}",
        f"method_kwargs.teacher={teacher}", f"method_kwargs.queue_size={args.queue_size}",
        f"accelerator={'gpu' if cuda else 'cpu'}", "devices=1", "strategy=auto",
        "sync_batchnorm=False", "knn_eval.enabled=False", "checkpoint.enabled=False",
        "auto_resume.enabled=False", "wandb.enabled=False", "max_epochs=1",
        "+enable_progress_bar=False", "+enable_model_summary=False",
        f"+performance.disable_channel_last={not args.channels_last}",
    ]
    if not cuda:
        overrides += ["precision=32", "method_kwargs.teacher_precision=32"]
    with initialize_config_dir(str(CONFIGS), version_base="1.2"):
        cfg = hydra_compose(pair.config, overrides=overrides + list(extra))
    OmegaConf.set_struct(cfg, False)
    devices_for_parse(cfg)
    return parse_cfg(cfg)


def build_method(cfg):
    """The SEED method as ``seed_solo.distill.run`` builds it."""
    from solo.methods import METHODS
    from solo.utils.misc import make_contiguous

    import seed_solo  # noqa: F401  (registers SEED and the students)

    model = METHODS[cfg.method](cfg)
    make_contiguous(model)
    if not cfg.performance.disable_channel_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def train_loader(cfg):
    """The train loader of ``seed_solo.distill.run`` for an image folder."""
    from solo.data.pretrain_dataloader import prepare_dataloader, prepare_datasets

    from seed_solo.distill import _pretrain_transform
    from seed_solo.images import CheckedImages

    data = prepare_datasets(cfg.data.dataset, _pretrain_transform(cfg, False),
                            train_data_path=cfg.data.train_path, data_format=cfg.data.format,
                            no_labels=cfg.data.no_labels, data_fraction=cfg.data.fraction)
    data = CheckedImages(data, cfg.data.get("on_corrupt", "error"))
    return prepare_dataloader(data, batch_size=cfg.optimizer.batch_size,
                              num_workers=cfg.data.num_workers)


class Clock(Callback):
    """Wall time of the epoch and the start of every batch (after a CUDA sync)."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.starts: List[float] = []
        self.epoch = (0.0, 0.0)

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.epoch = (self._now(), 0.0)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.starts.append(self._now())

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epoch = (self.epoch[0], self._now())

    def steps(self) -> List[float]:
        """Seconds from each batch's start to the next one's (the last: to the epoch's end)."""
        ends = self.starts[1:] + [self.epoch[1]]
        return [b - a for a, b in zip(self.starts, ends)]

    def epoch_s(self) -> float:
        return self.epoch[1] - self.epoch[0]


def fit(model, cfg, loader, cuda: bool):
    """One epoch of ``loader`` under the Trainer seed-solo builds from ``cfg``; its Clock."""
    from seed_solo.trainer import build_trainer

    clock = Clock(cuda)
    trainer = build_trainer(cfg, [clock], 1)
    trainer.fit(model, loader)
    return clock


class Ready(torch.utils.data.Dataset):
    """The same ready batch ``steps`` times (batch_size=None: no collation, no workers)."""

    def __init__(self, batch: Any, steps: int) -> None:
        self.batch, self.steps = batch, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, i: int) -> Any:
        return self.batch


def loader_rate(loader, images: int) -> float:
    """Images per second out of ``loader`` over one pass, workers started inside it."""
    start = time.perf_counter()
    for _ in loader:
        pass
    return images / (time.perf_counter() - start)


def rate(images: int, seconds: List[float]) -> float:
    return images / statistics.median(seconds)


def quiet() -> None:
    for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero", "lightning.fabric",
                 "lightning.pytorch.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.ERROR)


# ------------------------------------------------------------------------------ the cache side


def cache_pass(cfg_overrides: Callable[[List[str]], Any], path: Path, views: int) -> float:
    """Run the cache pass into ``path``; return its wall time (s)."""
    raise NotImplementedError("the cache branch has not landed yet")


def cached_extra(path: Path) -> List[str]:
    return [f"+method_kwargs.teacher_cache={path}"]


def cached_loader(cfg):
    return train_loader(cfg)


# ------------------------------------------------------------------------------ one pair


def run_pair(pair: Pair, teacher: Path, data: Path, work: Path, args) -> Dict[str, Any]:
    cuda = args.device == "cuda"
    images = args.images // args.batch * args.batch  # drop_last
    result: Dict[str, Any] = {"pair": pair.name, "images_per_epoch": images}
    cfgs = {"live": compose(pair, teacher, data, args)}
    modes = ["live"]
    if not args.live_only:
        cache = work / f"cache-{pair.name}"
        start = time.perf_counter()
        cache_pass(lambda extra: compose(pair, teacher, data, args, extra), cache, args.views)
        wall = time.perf_counter() - start
        result["cache_pass"] = {"wall_s": wall, "views": args.views,
                                "img_views_per_s": args.images * args.views / wall}
        cfgs["cached"] = compose(pair, teacher, data, args, cached_extra(cache))
        modes.append("cached")
    models = {m: build_method(cfgs[m]) for m in modes}
    loaders = {"live": train_loader(cfgs["live"])}
    if "cached" in modes:
        loaders["cached"] = cached_loader(cfgs["cached"])
    batches = {m: next(iter(loaders[m])) for m in modes}

    steps: Dict[str, List[float]] = {m: [] for m in modes}
    epochs: Dict[str, List[float]] = {m: [] for m in modes}
    for rep in range(args.reps):
        order = modes if rep % 2 == 0 else modes[::-1]  # load from others hits both alike
        for m in order:
            ready = torch.utils.data.DataLoader(Ready(batches[m], args.steps + 1),
                                                batch_size=None)
            steps[m] += fit(models[m], cfgs[m], ready, cuda).steps()[1:]
        for m in order:
            epochs[m].append(fit(models[m], cfgs[m], loaders[m], cuda).epoch_s())
    for m in modes:
        result[m] = {
            "step_img_per_s": rate(args.batch, steps[m]),
            "step_ms": [1e3 * s for s in steps[m]],
            "epoch_img_per_s": images / min(epochs[m]),
            "epoch_s": epochs[m],
        }
    if "cached" in modes:
        result["cached_loader_img_per_s"] = loader_rate(loaders["cached"], images)
        result["speedup_epoch"] = (result["cached"]["epoch_img_per_s"]
                                   / result["live"]["epoch_img_per_s"])
        result["speedup_step"] = (result["cached"]["step_img_per_s"]
                                  / result["live"]["step_img_per_s"])
        student = result["cached"]["step_img_per_s"]
        loading = result["cached_loader_img_per_s"]
        result["bottleneck"] = "data loading" if loading < student else "student"
    return result


# ------------------------------------------------------------------------------ report


def total_cost(r: Dict[str, Any], epochs: int, views: int) -> Dict[str, float]:
    """Seconds per image: the cache pass + E cached epochs, against E live epochs."""
    live = epochs / r["live"]["epoch_img_per_s"]
    passes = views / r["cache_pass"]["img_views_per_s"]
    cached = epochs / r["cached"]["epoch_img_per_s"]
    return {"live": live, "pass": passes, "cached_epochs": cached, "cached": passes + cached,
            "ratio": live / (passes + cached)}


def report(results: List[Dict[str, Any]], args) -> None:
    print(f"\n{args.device}, {args.crop} px, batch {args.batch}, {args.images} images "
          f"(500 x 375 JPEGs), {args.workers} workers, K={args.queue_size}, V={args.views}, "
          f"{args.reps} reps; img/s of wall time")
    print("| pair | step live | step cached | step x | epoch live | epoch cached | epoch x "
          "| loader alone | cache pass (img-views/s) | bottleneck (cached) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "cached" not in r:
            print(f"| {r['pair']} | {r['live']['step_img_per_s']:.1f} | - | - | "
                  f"{r['live']['epoch_img_per_s']:.1f} | - | - | - | - | - |")
            continue
        print(f"| {r['pair']} | {r['live']['step_img_per_s']:.1f} | "
              f"{r['cached']['step_img_per_s']:.1f} | {r['speedup_step']:.2f} | "
              f"{r['live']['epoch_img_per_s']:.1f} | {r['cached']['epoch_img_per_s']:.1f} | "
              f"{r['speedup_epoch']:.2f} | {r['cached_loader_img_per_s']:.0f} | "
              f"{r['cache_pass']['img_views_per_s']:.1f} | {r['bottleneck']} |")
    cached = [r for r in results if "cached" in r]
    if not cached:
        return
    print("\nTotal distillation cost per 1,000 images (CPU-minutes of this machine's wall "
          "time): cache pass (V views) + E cached epochs vs. E live epochs")
    print("| pair | E | V | live | cache pass | cached epochs | cached total | live / cached |")
    print("|---|---|---|---|---|---|---|---|")
    for r in cached:
        r["total_cost"] = []
        for e, v in args.cost:
            c = total_cost(r, e, v)
            r["total_cost"].append({"epochs": e, "views": v, **c})
            k = 1000 / 60
            print(f"| {r['pair']} | {e} | {v} | {c['live'] * k:.0f} | {c['pass'] * k:.1f} | "
                  f"{c['cached_epochs'] * k:.0f} | {c['cached'] * k:.0f} | {c['ratio']:.2f} |")
    print()
    for r in cached:
        print(f"cached/live speedup {r['pair']}: {r['speedup_epoch']:.2f}")


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    p.add_argument("--crop", type=int, default=128, help="crop size in px (GPU: 224)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--images", type=int, default=128, help="JPEGs in the generated folder")
    p.add_argument("--workers", type=int, default=2, help="data loader processes")
    p.add_argument("--views", type=int, default=2, help="V of the cache pass")
    p.add_argument("--reps", type=int, default=2, help="fits per mode (steps and epochs)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per per-step fit")
    p.add_argument("--queue-size", type=int, default=65536)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default torch's)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="default: on for cuda, off on the cpu (slower there for these nets)")
    p.add_argument("--cost", type=lambda s: tuple(int(x) for x in s.split(",")), nargs="+",
                   default=[(200, 8), (800, 8), (200, 4)], metavar="E,V",
                   help="epochs,views for the total cost table")
    p.add_argument("--quick", action="store_true",
                   help="64 px, batch 8, 32 images, 1 rep of 2 steps: checks the pipeline")
    p.add_argument("--live-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help="an image folder (default: generated JPEGs)")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    if args.quick:
        args.crop, args.batch, args.images, args.reps, args.steps = 64, 8, 32, 1, 2
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda needs a CUDA GPU, and torch.cuda.is_available() is False.")
    if args.channels_last is None:
        args.channels_last = args.device == "cuda"
    if args.images < args.batch:
        p.error(f"--images {args.images} is less than one batch of {args.batch}.")
    return args


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet()
    info = machine()
    print(json.dumps(info), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_cache-") as tmp:
        work = Path(tmp)
        data = args.data or make_jpegs(work / "images", args.images)
        teachers = {}
        for name in dict.fromkeys(PAIRS[p].teacher for p in args.pairs):
            teachers[name] = save_teacher(TEACHERS[name], work / f"{name}.pth")
        for name in args.pairs:
            start = time.perf_counter()
            pair = PAIRS[name]
            results.append(run_pair(pair, teachers[pair.teacher], data, work, args))
            print(f"{name}: done in {time.perf_counter() - start:.0f} s", flush=True)
    report(results, args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        args.json.write_text(json.dumps({"machine": info, "config": cfg, "results": results},
                                        indent=1))
        print(f"wrote {args.json}")
    return {"machine": info, "results": results}


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        main()
