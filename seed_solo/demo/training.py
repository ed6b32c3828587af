"""The demo's training stages: each student through ``seed_solo.distill``, and the cache pass
through ``seed_solo.cache``, in this process, with the command line each stands for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from seed_solo import cache as cache_command
from seed_solo import distill as distill_command
from seed_solo.demo.plan import DISTILL_CONFIGS, Plan
from seed_solo.demo.stages import show
from seed_solo.harness.config import compose_config
from seed_solo.runs.folders import checkpoint_epoch, find_checkpoint, run_dirs
from seed_solo.students.registry import create_student


def overrides(paths: Dict[str, Path], plan: Plan, seed: int, block: Optional[int],
              ckpt_dir: Path, teacher: bool = True) -> List[str]:
    """The overrides of a student's distill config (``teacher``: and of the teacher's layer),
    shared by the live SEED run, the cache pass and the cached run."""
    found = [
        f"data.train_path={paths['train']}",
        f"data.val_path={paths['val_online']}",
        f"checkpoint.dir={ckpt_dir}",
        f"max_epochs={plan.epochs}",
        f"optimizer.batch_size={plan.batch_size}",
        f"scheduler.warmup_epochs={plan.warmup_epochs}",
        f"seed={seed}",
    ]
    if teacher:
        found.append(f"method_kwargs.teacher_options.block={'null' if block is None else block}")
    return found


def run_folder(out: Path, name: str, views: int = 0) -> Path:
    """Where a student's training runs go: ``runs/distill/<method>``; the cached SEED run from
    ``views`` views has its own ``runs/distill-cache-v<views>/seed``, so that no run resumes
    another made from a different cache."""
    if name == "seed-cache":
        return out / "runs" / f"distill-cache-v{views}" / "seed"
    return out / "runs" / "distill" / name


def student_params() -> int:
    return sum(p.numel() for p in create_student("tiny_resnet10").parameters())


def distill(out: Path, paths: Dict[str, Path], plan: Plan, name: str, seed: int,
            block: Optional[int], cache: Optional[Path] = None,
            views: int = 0) -> Dict[str, Any]:
    """One student through ``seed_solo.distill`` (``seed-cache``: SEED from the teacher cache
    ``cache`` of ``views`` views); returns its run folder and newest .ckpt."""
    config = "mocov2plus_tiny" if name == "mocov2plus" else "seed_tiny"
    runs = run_folder(out, name, views)
    found = overrides(paths, plan, seed, block, runs.parent, teacher=name != "mocov2plus")
    if cache is not None:
        found.append(f"+method_kwargs.teacher_cache={cache}")
    show("seed_solo.distill", DISTILL_CONFIGS, config, found)
    distill_command.run(compose_config(DISTILL_CONFIGS, config, found))
    ckpt = max((find_checkpoint(d) for d in run_dirs(runs)), key=checkpoint_epoch)
    return {"run_dir": str(ckpt.parent), "ckpt": str(ckpt), "config": config,
            "overrides": found, "params": student_params()}


def cache_pass(out: Path, paths: Dict[str, Path], plan: Plan, seed: int, block: Optional[int],
               views: int) -> Dict[str, Any]:
    """``seed_solo.cache`` for the cached SEED run: the teacher over ``views`` replayable views
    of every training image (an interrupted pass resumes where it stopped)."""
    path = out / "cache" / f"v{views}"
    found = overrides(paths, plan, seed, block, run_folder(out, "seed-cache", views).parent)
    found += [f"+cache.path={path}", f"+cache.views={views}"]
    show("seed_solo.cache", DISTILL_CONFIGS, "seed_tiny", found)
    cache_command.run(compose_config(DISTILL_CONFIGS, "seed_tiny", found))
    return {"path": str(path), "views": views, "overrides": found}


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
