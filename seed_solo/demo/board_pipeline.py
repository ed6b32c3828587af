"""The leaderboard's stages in order (data, layer, per seed and row: train, kNN, linear; the
teacher; the report), each skipped by a rerun once finished (:class:`Stages`)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from seed_solo import distill as distill_command
from seed_solo.demo import evaluation, training
from seed_solo.demo.board_plan import PLANS, QUEUE, Row
from seed_solo.demo.board_report import report
from seed_solo.demo.pipeline import data_and_layer
from seed_solo.demo.plan import DISTILL_CONFIGS, Plan
from seed_solo.demo.stages import Stages, show
from seed_solo.harness.config import compose_config
from seed_solo.runs.folders import checkpoint_epoch, find_checkpoint, run_dirs


def train_row(out: Path, paths: Dict[str, Path], plan: Plan, row: Row, seed: int,
              block: Optional[int], queue: int) -> Dict[str, Any]:
    """``seed_solo.distill`` of ``row`` for ``seed`` into ``runs/<row>/seed<seed>``."""
    ckpt_dir = out / "runs" / row.name / f"seed{seed}"
    found = [*training.overrides(paths, plan, seed, block, ckpt_dir, teacher=row.teacher),
             *row.overrides(queue), "knn_eval.enabled=False", "data.val_path=null"]
    show("seed_solo.distill", DISTILL_CONFIGS, row.config, found)
    distill_command.run(compose_config(DISTILL_CONFIGS, row.config, found))
    ckpt = max((find_checkpoint(d) for d in run_dirs(ckpt_dir / row.method)),
               key=checkpoint_epoch)
    return {"run_dir": str(ckpt.parent), "ckpt": str(ckpt), "overrides": found}


def evaluate_row(stages: Stages, out: Path, paths: Dict[str, Path], plan: Plan, row: Row,
                 seed: int, block: Optional[int], run: Dict[str, Any]) -> Dict[str, float]:
    tag = f"{row.name}-s{seed}"
    knn = stages.run(f"knn-{tag}", f"kNN: {tag}",
                     lambda: evaluation.knn_student(out, paths, run["run_dir"], tag))
    lin = stages.run(f"linear-{tag}", f"linear: {tag}",
                     lambda: evaluation.linear(out, paths, plan, row.method, run["ckpt"],
                                               block, seed, tag))
    return {"knn": knn["acc1"], "linear": lin["acc1"], "train_s": run["wall_s"],
            "eval_s": knn["wall_s"] + lin["wall_s"]}


def run_board(out: Path, mode: str, rows: Sequence[Row], seeds: Sequence[int]
              ) -> Dict[str, Any]:
    """Every stage into ``out``; writes the report and ``summary.json``."""
    plan, queue = PLANS[mode], QUEUE[mode]
    (out / "results").mkdir(parents=True, exist_ok=True)
    stages = Stages(out, total=2 + 3 * len(rows) * len(seeds) + 3)
    paths, layer = data_and_layer(stages, out, plan)
    block = layer["block"]
    results: Dict[str, Dict[str, List[float]]] = {r.name: {} for r in rows}
    for seed in seeds:
        for row in rows:
            tag = f"{row.name}-s{seed}"
            trained = stages.run(f"train-{tag}", f"train: {row.label}, seed {seed}",
                                 lambda row=row, seed=seed: train_row(out, paths, plan, row,
                                                                      seed, block, queue))
            scores = evaluate_row(stages, out, paths, plan, row, seed, block, trained)
            for key, value in scores.items():
                results[row.name].setdefault(key, []).append(value)
    teacher = {"knn": stages.run("knn-teacher", "kNN: teacher",
                                 lambda: evaluation.knn_teacher(out, paths, block))["acc1"]}
    ckpt = stages.run("teacher-ckpt", "teacher as a backbone checkpoint",
                      lambda: evaluation.teacher_checkpoint(out, block))["ckpt"]
    teacher["linear"] = stages.run("linear-teacher", "linear: teacher",
                                   lambda: evaluation.linear(out, paths, plan, "teacher", ckpt,
                                                             block, seeds[0]))["acc1"]
    meta = {"mode": mode, "plan": asdict(plan), "seeds": list(seeds), "block": block,
            "queue": queue, "rows": [r.name for r in rows],
            "train_images": plan.split.train * 10, "val_images": plan.split.val * 10,
            "epochs": plan.epochs, "linear_epochs": plan.linear_epochs,
            "batch_size": plan.batch_size, "total_s": sum(stages.walls.values()),
            "date": time.strftime("%Y-%m-%d %H:%M %Z")}
    table = report(out, results, teacher, meta)
    (out / "summary.json").write_text(json.dumps(
        {"results": results, "teacher": teacher, "meta": meta}, indent=2))
    print("\n" + table)
    print(f"Wrote {out / 'leaderboard.md'}, {out / 'leaderboard.csv'} and "
          f"{out / 'leaderboard.png'}")
    return {"results": results, "teacher": teacher, "meta": meta, "out": str(out)}
