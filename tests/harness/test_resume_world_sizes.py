"""A run resumes under another number of processes (a job requeued on fewer or more GPUs):
one chain 4 -> 2 -> 1 -> 4 CPU processes under Lightning's own DDP launcher, one epoch each,
through ``python -m seed_solo.distill`` and its auto-resume.

After each run: training went on from the last epoch (epoch and step counters continue); the
queue is valid: its pointer and fill count count every row written so far, the rows of earlier
runs that were not overwritten are kept in place, and the rows this run wrote are the teacher
embeddings of the epoch's 24 images, each exactly once (no padding row, no lost or doubled
block: the fixed-size gather blocks follow the new world size); the lr schedule is the new
run's: base lr scaled by the new global batch, lengths in the new steps per epoch, placed at the
same epoch. What the resumed run does not keep (the sample order, a position within an epoch)
is in docs/scaling.md.
"""

from __future__ import annotations

import pytest
import torch

from tests.support.commands import environment
from tests.support.data import make_image_folders
from tests.support.distill_cpu import BATCH, distill, images_of, overrides, write_teacher
from tests.support.solo import needs_solo

pytestmark = [needs_solo, pytest.mark.slow]
SIZE = 64  # method_kwargs.queue_size in distill_cpu.overrides
WARMUP, START_LR = 5, 3e-5  # epochs in configs/distill/imagenet/seed_base.yaml; solo's default
WORLDS = (4, 2, 1, 4)


def base_lr(world):
    return 0.03 * world * BATCH / 256  # the config's 0.03 per 256 images


def test_a_run_resumes_with_4_2_1_then_4_processes(tmp_path):
    data = make_image_folders(tmp_path / "data", classes=3, train_per_class=8, val_per_class=1)
    teacher_file = write_teacher(tmp_path / "teacher.pth.tar")
    from seed_solo.teachers import load_teacher

    images = images_of(data)
    embeddings = load_teacher(str(teacher_file))(images)  # (24, 16), one per image
    out, env = tmp_path / "runs", environment()
    total = steps = 0
    previous = None
    for epoch, world in enumerate(WORLDS):
        run = distill(overrides(data, out, str(teacher_file), world, 1, f"max_epochs={epoch + 1}"),
                      env)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
        assert ("Resuming from" in run.stdout) == (epoch > 0)
        (folder,) = [p for p in (out / "seed").iterdir() if p.is_dir()]
        (ckpt,) = folder.glob(f"*-ep={epoch}.ckpt")
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        per_epoch, base = len(images) // (world * BATCH), base_lr(world)
        steps += per_epoch
        assert (state["epoch"], state["global_step"]) == (epoch, steps)
        # the schedule is this run's, at this epoch: all of it still in the 5-epoch warm-up
        schedule = state["lr_schedulers"][0]
        assert schedule["base_lrs"][0] == pytest.approx(base)
        assert schedule["max_epochs"] == (epoch + 1) * per_epoch  # its total, in steps
        assert schedule["last_epoch"] == (epoch + 1) * per_epoch
        lr = START_LR + (epoch + 1) * per_epoch * (base - START_LR) / (WARMUP * per_epoch - 1)
        assert state["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(lr)
        if epoch > 0:
            before = WORLDS[epoch - 1]
            assert (f"base lr {base_lr(before):.6g} -> {base:.6g} (global batch {before * BATCH} "
                    f"-> {world * BATCH}), {epoch} -> {epoch + 1} epochs; resumed after {epoch} "
                    "epochs") in run.stdout

        sd = state["state_dict"]
        queue, start = sd["queue.embeddings"], total % SIZE
        total += len(images)
        assert int(sd["queue.ptr"]) == total % SIZE
        assert int(sd["queue.num_filled"]) == min(total, SIZE)
        written = (start + torch.arange(len(images))) % SIZE
        kept = torch.ones(SIZE, dtype=torch.bool)
        kept[written] = False
        if previous is not None:
            assert torch.equal(queue[kept], previous[kept])
        else:
            assert not queue[kept].any()  # slots never written stay empty
        # this run's rows: each image's teacher embedding once, in the run's sample order
        distance = torch.cdist(queue[written], embeddings)
        assert distance.min(dim=1).values.max() < 1e-5
        assert sorted(distance.argmin(dim=1).tolist()) == list(range(len(images)))
        previous = queue
