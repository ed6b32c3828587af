"""The demo's evaluation stages: ``seed_solo.knn`` and ``seed_solo.linear`` on the teacher and
every student, in this process, with the command line each stands for."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from seed_solo import knn as knn_command
from seed_solo import linear as linear_command
from seed_solo.demo.plan import KNN, LINEAR_CONFIGS, TEACHER, Plan, model_overrides
from seed_solo.demo.stages import show
from seed_solo.harness.config import compose_config
from seed_solo.runs.atomic import atomic_path
from seed_solo.students.registry import create_student


def teacher_checkpoint(out: Path, block: Optional[int]) -> Dict[str, Any]:
    """The teacher's weights as a backbone-only checkpoint for ``seed_solo.linear``."""
    model = create_student("efficientnet_lite0", block=block)
    path = out / "teacher" / f"efficientnet-lite0-block{block}.ckpt"
    with atomic_path(path) as tmp:
        torch.save({"state_dict": {f"backbone.{k}": v for k, v in model.state_dict().items()}},
                   tmp)
    return {"ckpt": str(path), "params": sum(p.numel() for p in model.parameters()),
            "block": block}


def _knn_argv(source: List[str], paths: Dict[str, Path], val: str, result_json: Path):
    return [*source, "--dataset", "custom", "--train_data_path", str(paths["train"]),
            "--val_data_path", str(paths[val]), "--k", str(KNN["k"]),
            "--temperature", str(KNN["T"]), "--distance_function", KNN["distance"],
            "--feature_type", "backbone", "--batch_size", "256", "--num_workers", "2",
            "--output_json", str(result_json)]


def knn_student(out: Path, paths: Dict[str, Path], run_dir: str, name: str) -> Dict[str, Any]:
    """``seed_solo.knn`` on a student's run folder, on the test set."""
    result_json = out / "results" / f"knn-{name}.json"
    argv = _knn_argv(["--pretrained_checkpoint_dir", run_dir], paths, "val", result_json)
    print("  python -m seed_solo.knn " + " ".join(argv), flush=True)
    rows = knn_command.main(argv)
    return {"acc1": rows[0]["acc1"], "acc5": rows[0]["acc5"], "json": str(result_json)}


def knn_teacher(out: Path, paths: Dict[str, Path], block: Optional[int]) -> Dict[str, Any]:
    """The teacher through ``seed_solo.knn --teacher``, on the test set and the online subset."""
    result: Dict[str, Any] = {}
    for split in ("val", "val_online"):
        key = "" if split == "val" else "_online"
        source = ["--teacher", TEACHER, "--crop_size", "32"]
        if block is not None:
            source += ["--teacher_option", f"block={block}"]
        argv = _knn_argv(source, paths, split, out / "results" / f"knn-teacher{key}.json")
        print("  python -m seed_solo.knn " + " ".join(argv), flush=True)
        rows = knn_command.main(argv)
        result[f"acc1{key}"], result[f"acc5{key}"] = rows[0]["acc1"], rows[0]["acc5"]
    print(f"  teacher kNN top-1 {result['acc1']:.2f} (val), {result['acc1_online']:.2f} "
          "(online val subset)", flush=True)
    return result


def linear(out: Path, paths: Dict[str, Path], plan: Plan, name: str, ckpt: str,
           block: Optional[int], seed: int, tag: Optional[str] = None) -> Dict[str, Any]:
    """``seed_solo.linear`` on model ``name`` (its runs under ``runs/linear/<tag or name>``)."""
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
    overrides += model_overrides(name, block)
    show("seed_solo.linear", LINEAR_CONFIGS, config, overrides)
    metrics = linear_command.run(compose_config(LINEAR_CONFIGS, config, overrides))
    return {"acc1": metrics["val_acc1"], "acc5": metrics.get("val_acc5"), "overrides": overrides}
