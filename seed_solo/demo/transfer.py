"""The demo's transfer rows: ``seed_solo.transfer`` of the teacher and of the SEED and MoCo v2+
students on scikit-learn's bundled handwritten digits (1,797 8x8 images of 10 digits, a real
data set no one here wrote), in this process, with the command line it stands for.

The digits are upscaled to the demo's 32 px (bicubic, grey replicated to RGB) and written once
as image folders: ``train/`` (two thirds of each class) and ``test/`` (the other third, held out
by a generator seeded per class). The transfer protocol then holds a validation split out of
``train/`` to choose the regularisation (:mod:`seed_solo.evaluation.logistic`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
from PIL import Image

from seed_solo import transfer as transfer_command
from seed_solo.demo.plan import Plan, label
from seed_solo.demo.stages import Stages
from seed_solo.evaluation.logistic import holdout
from seed_solo.nets.normalize import IMAGENET_MEAN, IMAGENET_STD
from seed_solo.runs.atomic import write_json
from seed_solo.runs.folders import ARGS_FILE
from seed_solo.runs.tables import markdown_table

MODELS = ("teacher", "seed", "mocov2plus")
TEST_SHARE = 1 / 3
SIZE = 32


def digits_folders(root: Path, seed: int, per_class: Optional[int] = None) -> Path:
    """scikit-learn's digits (the first ``per_class`` of each class; all: about 180) as
    ``root/train`` and ``root/test`` image folders (written once; ``done.json`` last, so an
    interrupted write is redone)."""
    from sklearn.datasets import load_digits  # scikit-learn ships the data

    marker, wanted = root / "done.json", {"seed": seed, "size": SIZE, "per_class": per_class}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return root
    shutil.rmtree(root / "train", ignore_errors=True)
    shutil.rmtree(root / "test", ignore_errors=True)
    digits = load_digits()
    kept = np.concatenate([np.flatnonzero(digits.target == c)[:per_class] for c in range(10)])
    train, test = (kept[i] for i in holdout(digits.target[kept], TEST_SHARE, seed))
    for split, indices in (("train", train), ("test", test)):
        for i in indices:
            folder = root / split / str(digits.target[i])
            folder.mkdir(parents=True, exist_ok=True)
            grey = Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8))
            grey.resize((SIZE, SIZE), Image.BICUBIC).convert("RGB").save(folder / f"{i:04d}.png")
    write_json(marker, wanted)
    return root


def teacher_args(ckpt: str, block: Optional[int]) -> str:
    """An ``args.json`` beside the teacher's backbone checkpoint, so that ``seed_solo.transfer``
    rebuilds it as it rebuilds a student (the demo's teacher sees 32 px, ImageNet-normalised)."""
    args = {"name": "teacher", "method": "teacher",
            "backbone": {"name": "efficientnet_lite0", "kwargs": {"block": block}},
            "data": {"dataset": "custom"},
            "augmentations": [{"crop_size": SIZE, "mean": list(IMAGENET_MEAN),
                               "std": list(IMAGENET_STD)}]}
    write_json(Path(ckpt).parent / ARGS_FILE, args)
    return ckpt


def run_stage(stages: Stages, out: Path, plan: Plan, seed: int,
              trained: Dict[str, Any]) -> Dict[str, Any]:
    """The transfer stage: ``{model: {"test_acc1", "knn_acc1", ...}}``. The digits are capped
    at the plan's training images per class (all of them in the full plan, 30 in the quick)."""
    per_class = plan.split.train if plan.split.train < 200 else None
    return stages.run("transfer-digits", "transfer with frozen features: scikit-learn's digits",
                      lambda: transfer(out, seed, trained, per_class))


def transfer(out: Path, seed: int, trained: Dict[str, Any],
             per_class: Optional[int] = None) -> Dict[str, Any]:
    """``seed_solo.transfer`` of the three models on the digits; ``{model: {...}}``."""
    runs = trained["runs"]
    data = digits_folders(out / "data" / "digits", seed, per_class)
    sources = {m: teacher_args(runs[m]["ckpt"], trained["block"]) if m == "teacher"
               else runs[m]["ckpt"] for m in MODELS}
    # no loader workers: decoding the digits' small PNGs costs less than starting workers
    argv = [*(f"{m}={sources[m]}" for m in MODELS), "--datasets", f"digits={data}",
            "--out", str(out / "transfer"), "--num-workers", "0", "--seed", str(seed)]
    print("  python -m seed_solo.transfer " + " ".join(argv), flush=True)
    rows = transfer_command.main(argv)
    return {r["model"]: {k: r[k] for k in ("test_acc1", "knn_acc1", "lambda", "val_acc1",
                                           "images")} for r in rows}


def section(found: Dict[str, Any], meta: Dict[str, Any]) -> str:
    """The transfer table (Markdown; the command's own ``transfer/transfer.csv`` has it too)."""
    header = ["model", "digits logistic top-1", "digits kNN top-1", "lambda"]
    rows = [[label(m, meta["cache_views"]), f"{found[m]['test_acc1']:.2f}",
             f"{found[m]['knn_acc1']:.2f}", f"{found[m]['lambda']:.3g}"] for m in MODELS]
    images = found[MODELS[0]]["images"]
    refit = images["train"] + images["val"]
    return "\n".join(
        ["### Transfer with frozen features: scikit-learn's digits", "",
         markdown_table(header, rows),
         "", f"`seed_solo.transfer` (Kornblith et al. 2019): l2-regularised logistic "
           f"regression on frozen features of the {SIZE} px digits, its regularisation chosen "
           f"on {images['val']} held-out training images, refitted on {refit} and scored on "
           f"{images['test']} test images; kNN (k=20, cosine) on "
           "the same features.", ""])
