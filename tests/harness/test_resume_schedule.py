"""A run resumed with a larger ``max_epochs`` follows the schedule of its new length, not the
one saved in the checkpoint (which, with the warm-up as long as the first run, divided by zero).

Through ``python -m seed_solo.distill``: 8 images, 2 per step, so 4 steps per epoch; a 1-epoch
run with a 1-epoch warm-up, resumed to 4 epochs.
"""

from __future__ import annotations

import math

import pytest
import torch

from tests.support.commands import environment
from tests.support.data import make_image_folders
from tests.support.distill_cpu import BATCH, distill, overrides, write_teacher
from tests.support.solo import needs_solo

pytestmark = [needs_solo, pytest.mark.slow]
START_LR = 3e-5  # solo-learn's default scheduler.warmup_start_lr


def expected_lr(base, step, warmup, total):
    """A fresh warm-up cosine schedule (eta_min 0) after ``step`` steps, written out here."""
    if step < warmup:
        return START_LR + step * (base - START_LR) / (warmup - 1)
    return 0.5 * base * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def test_a_longer_resumed_run_follows_the_schedule_of_its_new_length(tmp_path):
    data = make_image_folders(tmp_path / "data", classes=2, train_per_class=4, val_per_class=1)
    teacher, out, env = str(write_teacher(tmp_path / "t.pth.tar")), tmp_path / "runs", environment()
    per_epoch, base = 8 // BATCH, 0.03 * BATCH / 256
    args = overrides(data, out, teacher, 1, 1, "scheduler.warmup_epochs=1",
                     "+checkpoint.keep_prev=True")
    first = distill([*args, "max_epochs=1"], env)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    (folder,) = (out / "seed").iterdir()
    (ckpt0,) = folder.glob("*-ep=0.ckpt")
    saved = torch.load(ckpt0, map_location="cpu", weights_only=False)["lr_schedulers"][0]
    assert (saved["warmup_epochs"], saved["max_epochs"]) == (per_epoch, per_epoch)

    longer = distill([*args, "max_epochs=4"], env)
    assert longer.returncode == 0, longer.stdout[-2000:] + longer.stderr[-3000:]
    assert "Resuming from" in longer.stdout
    # the first step after the resume: step 4 of a 16-step schedule with a 4-step warm-up
    at_resume = expected_lr(base, per_epoch, per_epoch, 4 * per_epoch)
    assert (f"lr schedule re-derived for this run: base lr {base:.6g} -> {base:.6g} "
            f"(global batch {BATCH} -> {BATCH}), 1 -> 4 epochs; resumed after 1 epochs at lr "
            f"{at_resume:.6g}.") in longer.stdout

    # after the first resumed epoch, the lr is the new schedule's at step 8 (0.75 x base)
    state = torch.load(next(folder.glob("*-ep=1.ckpt")), map_location="cpu", weights_only=False)
    schedule = state["lr_schedulers"][0]
    assert (schedule["warmup_epochs"], schedule["max_epochs"]) == (per_epoch, 4 * per_epoch)
    assert schedule["last_epoch"] == state["global_step"] == 2 * per_epoch
    lr = expected_lr(base, 2 * per_epoch, per_epoch, 4 * per_epoch)
    assert lr == pytest.approx(0.75 * base)
    groups = state["optimizer_states"][0]["param_groups"]
    assert groups[0]["lr"] == pytest.approx(lr, rel=1e-9)
    assert state["optimizer_states"][0]["state"]  # the momentum buffers, restored and used
    last = torch.load(next(folder.glob("*-ep=3.ckpt")), map_location="cpu", weights_only=False)
    assert last["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)
