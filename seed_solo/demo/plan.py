"""What the demo runs: its configs, teacher, models, sizes and evaluation settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from seed_solo.demo.data import Split

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
    # ~16 minutes on 2 CPU cores with every group (README; docs/performance.md: throughputs)
    "full": Plan(Split(train=600, heldout=100, val=1000, val_online=200), epochs=12,
                 batch_size=128, linear_epochs=5, layer_bank_per_class=200, warmup_epochs=1),
    # the CI run: the whole pipeline on a few hundred images, one epoch each
    "quick": Plan(Split(train=30, heldout=10, val=30, val_online=20), epochs=1,
                  batch_size=64, linear_epochs=1, layer_bank_per_class=30, warmup_epochs=0),
}


def label(name: str, views: int) -> str:
    """The table's name of model ``name`` (the cached row names its ``views``)."""
    return LABELS[name].format(views=views)


def model_overrides(name: str, block: Optional[int]) -> List[str]:
    """What tells an evaluation config which model it evaluates: the teacher's pooled block, or
    the student's pretraining method (the cached SEED run is a SEED run)."""
    if name == "teacher":
        return [f"backbone.kwargs.block={'null' if block is None else block}"]
    return [f"pretrain_method={'seed' if name == 'seed-cache' else name}"]
