"""The demo's semi-supervised rows: ``seed_solo.finetune`` of the teacher and of the SEED and
MoCo v2+ students with 1 % and 10 % of Fashion-MNIST's training labels, in this process, with the
command line each stands for.

The demo's training folder is a class-balanced 10 % of Fashion-MNIST's 60,000 training images
(600 per class, :mod:`seed_solo.demo.data`); 10 % of the labels is that folder, 1 % a seeded,
class-balanced 60 per class of it (``subset.per_class``, the rule of
:mod:`seed_solo.evaluation.subsets`). The quick plan keeps the same shares of its 30 per class.
Every model is scored on the demo's class-balanced 2,000-image subset of the test set
(``val_online``, the online kNN's): six validations of all 10,000 would cost as much as the
fine-tuning itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from seed_solo import finetune as finetune_command
from seed_solo.demo.plan import CONFIGS, Plan, label, model_overrides
from seed_solo.demo.stages import Stages, show
from seed_solo.harness.config import compose_config
from seed_solo.runs.tables import write_table

FINETUNE_CONFIGS = CONFIGS / "finetune"
CLASSES = 10  # Fashion-MNIST's
MODELS = ("teacher", "seed", "mocov2plus")
#: (row, share of Fashion-MNIST's training labels, epochs: 45 and 93 steps of 64 images, capped
#: at the plan's distillation epochs, so 1 in the quick plan)
FRACTIONS = (("1pct", 0.01, 5), ("10pct", 0.10, 1))
BATCH = 64
#: the share of Fashion-MNIST's training labels the demo's training folder holds
TRAIN_FOLDER_SHARE = 0.10


def per_class(plan: Plan, share: float) -> int:
    """Labelled images per class for ``share`` of the labels: 60 / 600 in the full plan."""
    return max(1, round(plan.split.train * share / TRAIN_FOLDER_SHARE))


def finetune(out: Path, paths: Dict[str, Path], plan: Plan, name: str, ckpt: str,
             block: Optional[int], seed: int, row: str, share: float,
             epochs: int) -> Dict[str, Any]:
    """``seed_solo.finetune`` of model ``name`` on ``share`` of the labels."""
    config = "finetune_teacher" if name == "teacher" else "finetune_student"
    overrides = [
        f"data.train_path={paths['train']}",
        f"data.val_path={paths['val_online']}",
        f"checkpoint.dir={out / 'runs' / 'finetune' / row / name}",
        f"max_epochs={epochs}",
        f"check_val_every_n_epoch={epochs}",
        f"pretrained_feature_extractor='{ckpt}'",  # quoted for hydra: names hold "ep=N"
        f"subset.per_class={per_class(plan, share)}",
        # a batch no larger than the subset (the loader drops an incomplete last batch)
        f"optimizer.batch_size={min(BATCH, per_class(plan, share) * CLASSES)}",
        f"subset.seed={seed}",
        f"seed={seed}",
    ]
    overrides += model_overrides(name, block)
    show("seed_solo.finetune", FINETUNE_CONFIGS, config, overrides)
    metrics = finetune_command.run(compose_config(FINETUNE_CONFIGS, config, overrides))
    return {"acc1": metrics["val_acc1"], "acc5": metrics.get("val_acc5"),
            "labelled_images": metrics["labelled_images"], "epochs": epochs,
            "overrides": overrides}


def run_stages(stages: Stages, out: Path, plan: Plan, seed: int,
               trained: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """The six fine-tuning stages: ``{model: {"1pct": ..., "10pct": ...}}``."""
    paths, block, runs = trained["paths"], trained["block"], trained["runs"]
    found: Dict[str, Dict[str, Any]] = {m: {} for m in MODELS}
    for row, share, epochs in FRACTIONS:
        for m in MODELS:
            found[m][row] = stages.run(
                f"finetune-{row}-{m}", f"fine-tuning with {share:.0%} of the labels: {m}",
                lambda m=m, row=row, share=share, epochs=epochs: finetune(
                    out, paths, plan, m, runs[m]["ckpt"], block, seed, row, share,
                    min(epochs, plan.epochs)))
    return found


def section(out: Path, found: Dict[str, Dict[str, Any]], meta: Dict[str, Any]) -> str:
    """The semi-supervised table (Markdown, also ``semisup.csv``)."""
    header = ["model"] + [f"fine-tune {share:.0%} labels top-1" for _, share, _ in FRACTIONS] + [
        "wall (s)"]
    rows: List[List[str]] = []
    for m in MODELS:
        accs = [f"{found[m][row]['acc1']:.2f}" for row, _, _ in FRACTIONS]
        wall = sum(found[m][row]["wall_s"] for row, _, _ in FRACTIONS)
        rows.append([label(m, meta["cache_views"]), *accs, f"{wall:.0f}"])
    table = write_table(out / "semisup.csv", header, rows)
    first = found[MODELS[0]]
    sizes = ", ".join(
        f"{share:.0%}: {first[row]['labelled_images']} images ({first[row]['epochs']} "
        f"epoch{'' if first[row]['epochs'] == 1 else 's'})" for row, share, _ in FRACTIONS)
    return "\n".join(
        ["### Semi-supervised: fine-tuning with a few labels", "", table,
         "", f"The whole network and a new classifier, `seed_solo.finetune` (Nesterov SGD, no "
           f"weight decay, cosine: demo/configs/finetune/) on class-balanced, seeded subsets of "
           f"Fashion-MNIST's training labels ({sizes}, batch {BATCH}); top-1 on the class-balanced "
           f"{meta['plan']['split']['val_online'] * CLASSES} test images of the online kNN.", ""])
