"""The demo's stages in order: data, teacher layer, the three students (live SEED, the cache
pass and SEED from the cache, MoCo v2+ alone), then kNN and linear evaluation of all four
models, fine-tuning with 1 % and 10 % of the labels and transfer to scikit-learn's digits
(teacher, SEED, MoCo v2+), the detection group (:mod:`seed_solo.demo.detection`), and the report.
Each finished stage is skipped by a rerun (:class:`Stages`)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Tuple

import torch

from seed_solo.demo import detection, evaluation, semisup, training
from seed_solo.demo import transfer as transfer_rows
from seed_solo.demo.data import prepare
from seed_solo.demo.layer import select_layer
from seed_solo.demo.plan import MODELS, STUDENTS, Plan
from seed_solo.demo.report import add_groups, report
from seed_solo.demo.stages import Stages

TOTAL_STAGES = 24  # 15, + 6 fine-tuning + 1 transfer + 2 detection


def data_and_layer(stages: Stages, out: Path, plan: Plan) -> Tuple[Dict[str, Path], Dict]:
    """The first two stages: the image folders ({name: path}) and the teacher's layer."""
    paths = {k: Path(v) for k, v in stages.run(
        "data", "Fashion-MNIST image folders",
        lambda: {k: str(v) for k, v in prepare(out / "data", plan.split).items()}).items()
        if k not in ("wall_s", "cpu_s")}
    layer = stages.run("layer", "teacher layer on held-out training images",
                       lambda: select_layer(paths, plan))
    return paths, layer


def train(stages: Stages, out: Path, plan: Plan, seed: int, views: int) -> Dict[str, Any]:
    """Data, layer, and the students' training stages: what the evaluation stages read."""
    paths, layer = data_and_layer(stages, out, plan)
    block = layer["block"]
    runs = {"seed": stages.run("seed", "SEED student from the teacher",
                               lambda: training.distill(out, paths, plan, "seed", seed, block))}
    cache = stages.run(f"cache-v{views}", f"cache pass: the teacher over {views} views per image",
                       lambda: training.cache_pass(out, paths, plan, seed, block, views))
    runs["seed-cache"] = stages.run(
        f"seed-cache-v{views}", "SEED student from the teacher cache",
        lambda: training.distill(out, paths, plan, "seed-cache", seed, block,
                                 Path(cache["path"]), views))
    runs["mocov2plus"] = stages.run(
        "mocov2plus", "the same student, MoCo v2+ alone",
        lambda: training.distill(out, paths, plan, "mocov2plus", seed, block))
    runs["teacher"] = stages.run("teacher-ckpt", "teacher as a backbone checkpoint",
                                 lambda: evaluation.teacher_checkpoint(out, block))
    return {"paths": paths, "layer": layer, "block": block, "runs": runs, "cache": cache}


def evaluate(stages: Stages, out: Path, plan: Plan, seed: int, views: int,
             trained: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """kNN and linear evaluation of every model: {"knn": {model: ...}, "linear": {...}}."""
    paths, block, runs = trained["paths"], trained["block"], trained["runs"]
    tag = {m: f"seed-cache-v{views}" if m == "seed-cache" else m for m in MODELS}
    knn = {"teacher": stages.run("knn-teacher", "kNN: teacher",
                                 lambda: evaluation.knn_teacher(out, paths, block))}
    for m in STUDENTS:
        knn[m] = stages.run(f"knn-{tag[m]}", f"kNN: {tag[m]} student",
                            lambda m=m: evaluation.knn_student(out, paths, runs[m]["run_dir"],
                                                               tag[m]))
    lin = {m: stages.run(f"linear-{tag[m]}", f"linear: {tag[m]}",
                         lambda m=m: evaluation.linear(out, paths, plan, m, runs[m]["ckpt"],
                                                       block, seed, tag[m]))
           for m in MODELS}
    return {"knn": knn, "linear": lin}


def results(out: Path, views: int, trained: Dict[str, Any],
            scores: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """One row per model: accuracies, parameters, wall times, the online kNN curve."""
    knn, lin, runs = scores["knn"], scores["linear"], trained["runs"]
    rows = {"teacher": {"knn": knn["teacher"]["acc1"], "knn_online": knn["teacher"]["acc1_online"],
                        "linear": lin["teacher"]["acc1"], "params": runs["teacher"]["params"],
                        "train_s": trained["layer"]["wall_s"],
                        "eval_s": knn["teacher"]["wall_s"] + lin["teacher"]["wall_s"]}}
    for m in STUDENTS:
        rows[m] = {"knn": knn[m]["acc1"], "linear": lin[m]["acc1"],
                   "params": runs[m]["params"], "train_s": runs[m]["wall_s"],
                   "train_cpu_s": runs[m].get("cpu_s"),
                   "eval_s": knn[m]["wall_s"] + lin[m]["wall_s"],
                   "online": training.online_knn(out, m, views)}
    cache = trained["cache"]
    rows["seed-cache"].update({"cache_s": cache["wall_s"], "cache_cpu_s": cache.get("cpu_s"),
                               "views": views})
    return rows


def run_demo(out: Path, mode: str, plan: Plan, seed: int, views: int) -> Dict[str, Any]:
    """Every stage into ``out``; writes the report and ``summary.json``."""
    (out / "results").mkdir(parents=True, exist_ok=True)
    start = time.time()
    stages = Stages(out, total=TOTAL_STAGES)
    trained = train(stages, out, plan, seed, views)
    rows = results(out, views, trained, evaluate(stages, out, plan, seed, views, trained))
    groups = {"semisup": semisup.run_stages(stages, out, plan, seed, trained),
              "transfer": transfer_rows.run_stage(stages, out, plan, seed, trained),
              "detection": detection.run_stages(stages, out, mode, seed, trained)}
    # the stages of this call: a folder that also holds another V's does not count those
    meta = {"mode": mode, "plan": asdict(plan), "seed": seed, "block": trained["block"],
            "train_images": plan.split.train * 10, "val_images": plan.split.val * 10,
            "epochs": plan.epochs, "linear_epochs": plan.linear_epochs, "cache_views": views,
            "total_s": sum(stages.walls.values()), "this_call_s": time.time() - start,
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    table = report(out, rows, meta)
    table += add_groups(out, [semisup.section(out, groups["semisup"], meta),
                              transfer_rows.section(groups["transfer"], meta),
                              detection.section(groups["detection"])])
    (out / "summary.json").write_text(json.dumps({"results": rows, "meta": meta,
                                                  "groups": groups}, indent=2))
    print("\n" + table)
    print(f"Wrote {out / 'results.md'}, {out / 'results.csv'} and {out / 'online_knn.png'}")
    return {"results": rows, "meta": meta, "out": str(out)}
