"""The re-derived schedule keeps solo-learn's ``static_lr`` parameter groups (SimSiam's and
NNSiam's predictor) at their own lr, with a real Lightning Trainer and solo-learn's own
scheduler and ``static_lr`` wrapper, as ``BaseMethod.configure_optimizers`` builds them."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from seed_solo.harness.schedule import ResumedSchedule
from tests.support.solo import needs_solo

pytestmark = needs_solo
STEPS = 4  # per epoch: 8 samples, 2 per batch


def module(epochs, lr, batch):
    from lightning.pytorch import LightningModule
    from solo.methods.base import static_lr
    from solo.utils.lr_scheduler import LinearWarmupCosineAnnealingLR

    class Tiny(LightningModule):
        def __init__(self):
            super().__init__()
            self.body, self.predictor = torch.nn.Linear(3, 3), torch.nn.Linear(3, 1)
            self.batch_size = batch  # what solo-learn's methods hold; only named in the line
            self.lrs = []

        def on_train_batch_start(self, *_):
            self.lrs.append([g["lr"] for g in self.optimizers().param_groups])

        def training_step(self, batch, _):
            return self.predictor(self.body(batch[0])).pow(2).mean()

        def configure_optimizers(self):
            optimizer = torch.optim.SGD([{"params": self.body.parameters()},
                                         {"params": self.predictor.parameters()}],
                                        lr=lr, momentum=0.9)
            scheduler = LinearWarmupCosineAnnealingLR(optimizer, warmup_epochs=STEPS,
                                                      max_epochs=epochs * STEPS,
                                                      warmup_start_lr=0.0, eta_min=0.0)
            scheduler.get_lr = partial(static_lr, get_lr=scheduler.get_lr,
                                       param_group_indexes=[1], lrs_to_replace=[lr])
            return [optimizer], [{"scheduler": scheduler, "interval": "step", "frequency": 1}]

    return Tiny()


def fit(model, epochs, root, ckpt=None, said=None):
    from lightning.pytorch import Trainer

    trainer = Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=root,
                      callbacks=[ResumedSchedule(said.append if said is not None else print)])
    data = DataLoader(TensorDataset(torch.randn(8, 3)), batch_size=2)
    trainer.fit(model, data, ckpt_path=ckpt, weights_only=False)  # our file: a partial inside
    return trainer


def test_static_groups_keep_their_lr_and_the_others_follow_the_new_schedule(tmp_path):
    torch.manual_seed(0)
    fit(module(2, 0.1, 2), 2, tmp_path)
    (ckpt,) = tmp_path.glob("**/*.ckpt")
    said = []
    model = module(3, 0.05, 1)  # half the global batch: half the lr; and 3 epochs
    fit(model, 3, tmp_path / "again", str(ckpt), said)
    assert said == ["lr schedule re-derived for this run: base lr 0.1 -> 0.05 (global batch 2 -> "
                    "1), 2 -> 3 epochs; resumed after 2 epochs at lr 0.025."]
    # steps 8..11: the second half of a cosine from 0.05 over 8 steps; the predictor stays at 0.05
    cosine = [0.5 * 0.05 * (1 + math.cos(math.pi * (step - STEPS) / (2 * STEPS)))
              for step in range(2 * STEPS, 3 * STEPS)]
    assert [body for body, _ in model.lrs] == pytest.approx(cosine, rel=1e-6)
    assert [predictor for _, predictor in model.lrs] == [0.05] * STEPS
