"""What the leaderboard runs: its rows, sizes, seeds and the one queue size.

Every objective of :data:`seed_solo.core.objectives.registry.OBJECTIVES` with its publisher's
settings (head, temperatures, self-positive, enqueue rule, mixup), plus solo-learn's MoCo v2+
and SimCLR alone; all on the demo's student (tiny_resnet10), data, augmentations, epochs,
batch and optimiser (``demo/configs/distill/demo_base.yaml``). What differs from a publisher's
recipe is shared by every row: one queue size :data:`QUEUE` (the bank is sized to the data),
one view per image (two for the methods that need two: MoCo, SimCLR, SEED + MoCo v2).
Nothing is chosen on the test set: the teacher's layer is chosen on held-out training images
(:mod:`seed_solo.demo.layer`), every other setting is the publisher's default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

from seed_solo.core.objectives.registry import OBJECTIVES, overrides
from seed_solo.demo.data import Split
from seed_solo.demo.plan import Plan

#: the queue of every row that has one (distillation banks and MoCo's): about half of the 2,000
#: training images, LightlyTrain's own rule (1,024 for 2,000-4,000 images)
QUEUE = {"full": 1024, "quick": 64}
SEEDS = {"full": (0, 1, 2), "quick": (0, 1)}

PLANS = {
    # ~50 minutes on 2 idle CPU cores: a third of the demo's images, 8 epochs instead of 12
    "full": Plan(Split(train=200, heldout=50, val=200, val_online=20), epochs=8,
                 batch_size=128, linear_epochs=10, layer_bank_per_class=100, warmup_epochs=1),
    # the pipeline end to end on 200 images (a linear batch of 128 needs them), one epoch,
    # two seeds
    "quick": Plan(Split(train=20, heldout=5, val=10, val_online=5), epochs=1, batch_size=32,
                  linear_epochs=1, layer_bank_per_class=10, warmup_epochs=0),
}


@dataclass(frozen=True)
class Row:
    """A leaderboard row: ``name`` (an objective or an SSL method), the packaged distill
    ``config`` it starts from, its solo-learn ``method`` and a ``label``."""

    name: str
    config: str
    method: str
    label: str

    @property
    def teacher(self) -> bool:
        return self.name in OBJECTIVES

    def overrides(self, queue: int) -> List[str]:
        """The row's settings on top of its config: the objective's (registry), the queue."""
        found = [o for o in overrides(self.name) if ".queue_size=" not in o] \
            if self.teacher else []
        if self.teacher or self.method == "mocov2plus":
            found.append(f"++method_kwargs.queue_size={queue}")
        return found


def _objective_row(name: str) -> Row:
    obj = OBJECTIVES[name]
    config = "seed_mocov2_tiny" if obj.method != "seed" else "seed_tiny"
    return Row(name, config, obj.method, f"{name}: {obj.summary.split(':')[0]}")


ROWS: Tuple[Row, ...] = (
    *(_objective_row(n) for n in OBJECTIVES),
    Row("mocov2plus", "mocov2plus_tiny", "mocov2plus", "MoCo v2+ alone (solo-learn)"),
    Row("simclr", "simclr_tiny", "simclr", "SimCLR alone (solo-learn)"),
)
ROW_NAMES: Dict[str, Row] = {r.name: r for r in ROWS}
