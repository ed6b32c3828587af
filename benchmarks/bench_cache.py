"""Live vs. cached SEED, side by side: per-step and per-epoch img/s, the cache pass, total cost.

For each teacher -> student pair, in one process, with the real code path: the SEED method built by
solo-learn from ``configs/distill/imagenet/seed_{r18,mbv3}.yaml``, trained by a Lightning Trainer
(:func:`seed_solo.harness.trainer.build_trainer`), fed by the train loader ``seed_solo.distill``
builds. The teachers are real architectures with random weights, saved as checkpoints in their zoo
layouts (MoCo v2 ResNet-50 with its 128-d head; SwAV RN50w2 with its 8192-128 head) and loaded by
seed-solo's teacher loader:

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

CPU (default: 112 px, batch 16, 2 workers, one trainer thread, 64 generated 500 x 375 JPEGs,
V = 2; 164 CPU-seconds: 2.6 minutes on 2 idle cores, 11 at load 6-8 from other jobs)::

    python -m benchmarks.bench_cache --json benchmarks/results/cache_cpu.json
    python -m benchmarks.bench_cache --quick      # the pipeline on a few images, ~1 min
    python -m benchmarks.bench_cache --report benchmarks/results/cache_cpu.json  # reprint

112 px because a CPU step at 224 px takes 4x longer while the ratio of teacher to student work,
which sets the speedup, hardly depends on the crop size (both are convolution stacks whose cost
scales with the pixels); batch 16 keeps an R50w2 step near 2.5 s on one core while the
convolutions still run at full speed. One torch thread (as ``bench_seed.py --threads 1``): two
threads stall whenever another process takes a core, and with one the trainer's CPU time is the
time a core of its own would take, a clock that other jobs do not move. GPU (224 px,
16-mixed as the configs; ``benchmarks/device_check.sh`` runs it)::

    python -m benchmarks.bench_cache --device cuda --crop 224 --batch 128 --images 1536 \
        --workers 12 --steps 4

Each pair prints one line ``cached/live speedup PAIR: X.XX``: the ratio of the epoch rates.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import re
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from benchmarks.bench_loaders import make_jpegs
from benchmarks.bench_seed import machine

REPO = Path(__file__).resolve().parents[1]

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
            extra: List[str] = (), parse: bool = True):
    """The run's config, as ``seed_solo.distill`` parses it; ``parse=False``: as hydra
    composes it, what ``seed_solo.cache`` takes."""
    from seed_solo.harness.config import compose_config
    from seed_solo.harness.pretrain import parse_pretrain

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
    cfg = compose_config(CONFIGS, pair.config, overrides + list(extra))
    return parse_pretrain(cfg)[0] if parse else cfg


def build_method(cfg):
    """The SEED method as ``seed_solo.distill.run`` builds it."""
    from seed_solo.harness.pretrain import build_method as build

    return build(cfg)


def train_loader(cfg):
    """The train loader of ``seed_solo.distill.run`` for an image folder."""
    from seed_solo.harness.training_data import training_data

    return training_data(cfg).train_loader


class Clock(Callback):
    """Two clocks at the start of every batch and the end of the epoch (after a CUDA sync):
    wall time, and the CPU time of this process (all its threads)."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.wall: List[float] = []
        self.cpu: List[float] = []

    def _tick(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._tick()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._tick()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._tick()

    def steps(self, clock: str = "wall") -> List[float]:
        """Seconds from each batch's start to the next one's (the last: to the epoch's end)."""
        t = getattr(self, clock)[1:]
        return [b - a for a, b in zip(t, t[1:])]


def fit(model, cfg, loader, cuda: bool) -> Tuple[Clock, float]:
    """One epoch of ``loader`` under the Trainer seed-solo builds from ``cfg``: its Clock, and
    the CPU time of the loader's worker processes (reaped when the epoch ends)."""
    from seed_solo.harness.trainer import build_trainer

    clock = Clock(cuda)
    trainer = build_trainer(cfg, [clock], 1)
    before = children_cpu()
    trainer.fit(model, loader)
    return clock, children_cpu() - before


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Ready(torch.utils.data.Dataset):
    """The same ready batch ``steps`` times (batch_size=None: no collation, no workers)."""

    def __init__(self, batch: Any, steps: int) -> None:
        self.batch, self.steps = batch, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, i: int) -> Any:
        return self.batch


def loader_rate(loader, images: int) -> float:
    """Images per second out of ``loader`` alone, nothing trained, from its second batch on."""
    start, seen = None, 0
    for batch in loader:
        if start is None:
            start = time.perf_counter()
            continue
        seen += len(batch[0])
    return seen / (time.perf_counter() - start)


def quiet() -> None:
    logging.getLogger().setLevel(logging.ERROR)  # solo-learn's scheduler_interval warning
    for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero", "lightning.fabric",
                 "lightning.pytorch.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.ERROR)


# ------------------------------------------------------------------------------ the cache side


def cache_pass(cfg, path: Path, views: int) -> Dict[str, float]:
    """``seed_solo.cache`` into ``path`` for the run ``cfg`` (hydra-composed, not yet parsed):
    wall time, and the rate of its own progress line (teacher loading and checks left out)."""
    from seed_solo.cache import run

    cfg.cache = {"path": str(path), "views": views}
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        run(cfg)
    wall = time.perf_counter() - start
    rates = re.findall(r"\(([0-9.]+) views/s\)", out.getvalue())
    if not rates:
        raise RuntimeError(f"the cache pass printed no rate:\n{out.getvalue()}")
    return {"wall_s": wall, "views": views, "views_per_s": float(rates[-1])}


def cached_loader(cfg):
    """The train loader of ``seed_solo.distill.run`` with ``method_kwargs.teacher_cache``."""
    from seed_solo.harness.training_data import training_data

    return training_data(cfg).train_loader


# ------------------------------------------------------------------------------ one pair


def run_pair(pair: Pair, teacher: Path, data: Path, work: Path, args) -> Dict[str, Any]:
    cuda = args.device == "cuda"
    images = args.images // args.batch * args.batch  # drop_last
    result: Dict[str, Any] = {"pair": pair.name, "images_per_epoch": images}
    cfgs = {"live": compose(pair, teacher, data, args)}
    modes = ["live"]
    if not args.live_only:
        cache = work / f"cache-{pair.name}"
        result["cache_pass"] = cache_pass(compose(pair, teacher, data, args, parse=False), cache,
                                          args.views)
        cfgs["cached"] = compose(pair, teacher, data, args,
                                 [f"+method_kwargs.teacher_cache={cache}"])
        modes.append("cached")
    models = {m: build_method(cfgs[m]) for m in modes}
    loaders = {"live": train_loader(cfgs["live"])}
    if "cached" in modes:
        loaders["cached"] = cached_loader(cfgs["cached"])
    batches = {m: next(iter(loaders[m])) for m in modes}

    steps = {m: {"wall": [], "cpu": []} for m in modes}
    epochs = {m: {"wall": [], "cpu": []} for m in modes}
    for rep in range(args.reps):
        order = modes if rep % 2 == 0 else modes[::-1]  # load from others hits both alike
        for m in order:
            ready = torch.utils.data.DataLoader(Ready(batches[m], args.steps + 1),
                                                batch_size=None)
            clock, _ = fit(models[m], cfgs[m], ready, cuda)
            for c in ("wall", "cpu"):
                steps[m][c] += clock.steps(c)[1:]  # the first step of a fit warms up
        for m in order:
            clock, workers = fit(models[m], cfgs[m], loaders[m], cuda)
            # the first batch waits for the workers to start: a fixed cost per epoch that a
            # real epoch amortises, left out here
            epochs[m]["wall"].append(sum(clock.steps("wall")[1:]))
            epochs[m]["cpu"].append(clock.cpu[-1] - clock.cpu[0] + workers)
    timed = images - args.batch  # images of an epoch after its first batch
    for m in modes:
        result[m] = {
            "step_img_per_s": args.batch / statistics.median(steps[m]["wall"]),
            "step_ms": [1e3 * t for t in steps[m]["wall"]],
            "step_cpu_ms": [1e3 * t for t in steps[m]["cpu"]],
            "epoch_img_per_s": timed / min(epochs[m]["wall"]),
            "epoch_s": epochs[m]["wall"],
            # main process + loader workers, the whole epoch: CPU work per image, whatever the
            # load from other processes
            "epoch_cpu_ms_per_img": 1e3 * min(epochs[m]["cpu"]) / images,
        }
    if "cached" in modes:
        result["cached_loader_img_per_s"] = loader_rate(loaders["cached"], images)
        result["speedup_epoch"] = (result["cached"]["epoch_img_per_s"]
                                   / result["live"]["epoch_img_per_s"])
        result["speedup_step"] = (result["cached"]["step_img_per_s"]
                                  / result["live"]["step_img_per_s"])
        result["speedup_epoch_cpu"] = (result["live"]["epoch_cpu_ms_per_img"]
                                       / result["cached"]["epoch_cpu_ms_per_img"])
        student = result["cached"]["step_img_per_s"]
        loading = result["cached_loader_img_per_s"]
        result["bottleneck"] = "data loading" if loading < student else "student"
    return result


# ------------------------------------------------------------------------------ report


def total_cost(r: Dict[str, Any], epochs: int, views: int) -> Dict[str, float]:
    """Seconds per image: the cache pass + E cached epochs, against E live epochs."""
    live = epochs / r["live"]["epoch_img_per_s"]
    passes = views / r["cache_pass"]["views_per_s"]
    cached = epochs / r["cached"]["epoch_img_per_s"]
    return {"live": live, "pass": passes, "cached_epochs": cached, "cached": passes + cached,
            "ratio": live / (passes + cached)}


def _cells(r: Dict[str, Any], key: str, fmt: str, ratio: Callable[[float, float], float]):
    """live, cached and their ratio of ``r[mode][key]`` ("-" where a mode is missing)."""
    live, cached = r["live"][key], r.get("cached", {}).get(key)
    if cached is None:
        return [format(live, fmt), "-", "-"]
    return [format(live, fmt), format(cached, fmt), f"{ratio(live, cached):.2f}"]


def report(results: List[Dict[str, Any]], args) -> None:
    print(f"\n{args.device}, {args.crop} px, batch {args.batch}, {args.images} images "
          f"(500 x 375 JPEGs), {args.workers} workers, {args.threads or 'default'} torch "
          f"thread(s), K={args.queue_size}, V={args.views}, {args.reps} reps")
    for r in results:  # CPU-time rates of the one-thread trainer: a dedicated core's
        for m in MODES:
            if m in r:
                r[m]["step_img_per_cpu_s"] = 1e3 * args.batch / statistics.median(
                    r[m]["step_cpu_ms"])
    faster = lambda live, cached: cached / live  # noqa: E731
    cheaper = lambda live, cached: live / cached  # noqa: E731
    print("\nPer step, img/s: wall time, and CPU time of the trainer process (with one torch "
          "thread: the rate on a core of its own)")
    print("| pair | live | cached | x | live, CPU time | cached, CPU time | x |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        cells = _cells(r, "step_img_per_s", ".1f", faster)
        cells += _cells(r, "step_img_per_cpu_s", ".1f", faster)
        print("| " + " | ".join([r["pair"], *cells]) + " |")
    print("\nPer epoch through the real loader: img/s of wall time; CPU ms per image (trainer + "
          "loader workers); the cached run's loader alone (img/s); the cache pass (image-views/s)")
    print("| pair | live | cached | x | CPU ms/img live | CPU ms/img cached | x | loader alone "
          "| cache pass | bottleneck (cached) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        cells = _cells(r, "epoch_img_per_s", ".1f", faster)
        cells += _cells(r, "epoch_cpu_ms_per_img", ".0f", cheaper)
        if "cached" in r:
            cells += [f"{r['cached_loader_img_per_s']:.0f}",
                      f"{r['cache_pass']['views_per_s']:.1f}", r["bottleneck"]]
        else:
            cells += ["-"] * 3
        print("| " + " | ".join([r["pair"], *cells]) + " |")
    cached = [r for r in results if "cached" in r]
    if not cached:
        return
    print("\nTotal distillation cost, minutes of wall time per 1,000 images at the epoch rates "
          "above: cache pass (V views) + E cached epochs vs. E live epochs")
    print("| pair | E | V | live | cache pass | cached epochs | cached total | live / cached |")
    print("|---|---|---|---|---|---|---|---|")
    k = 1000 / 60
    for r in cached:
        r["total_cost"] = []
        for e, v in args.cost:
            c = total_cost(r, e, v)
            r["total_cost"].append({"epochs": e, "views": v, **c})
            print(f"| {r['pair']} | {e} | {v} | {c['live'] * k:.0f} | {c['pass'] * k:.1f} | "
                  f"{c['cached_epochs'] * k:.0f} | {c['cached'] * k:.0f} | {c['ratio']:.2f} |")
    print()
    for r in cached:
        print(f"cached/live speedup {r['pair']}: {r['speedup_epoch']:.2f}")


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    p.add_argument("--crop", type=int, default=112, help="crop size in px (GPU: 224)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--images", type=int, default=64, help="JPEGs in the generated folder")
    p.add_argument("--workers", type=int, default=2, help="data loader processes")
    p.add_argument("--views", type=int, default=2, help="V of the cache pass")
    p.add_argument("--reps", type=int, default=2, help="fits per mode (steps and epochs)")
    p.add_argument("--steps", type=int, default=2, help="timed steps per per-step fit")
    p.add_argument("--queue-size", type=int, default=65536)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of the trainer (default: 1 on the cpu, where two stall "
                   "whenever another process takes a core; torch's own on cuda)")
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
    p.add_argument("--report", type=Path, metavar="JSON",
                   help="print the tables of a results file written by --json, run nothing")
    args = p.parse_args(argv)
    if args.quick:
        args.crop, args.batch, args.images, args.reps, args.steps = 64, 8, 24, 1, 1
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda needs a CUDA GPU, and torch.cuda.is_available() is False.")
    if args.threads is None and args.device == "cpu":
        args.threads = 1
    if args.channels_last is None:
        args.channels_last = args.device == "cuda"
    if args.images < args.batch:
        p.error(f"--images {args.images} is less than one batch of {args.batch}.")
    return args


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        report(saved["results"], argparse.Namespace(**{**saved["config"], "cost": [
            tuple(c) for c in saved["config"]["cost"]]}))
        return saved
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
