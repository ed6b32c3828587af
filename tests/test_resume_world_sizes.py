"""A run resumes under another number of processes (a job requeued on fewer or more GPUs):
one chain 4 -> 2 -> 1 -> 4 CPU processes under Lightning's own DDP launcher, one epoch each,
through ``python -m seed_solo.distill`` and its auto-resume.

After each run: training went on from the last epoch (epoch and step counters continue); the
queue is valid: its pointer and fill count count every row written so far, the rows of earlier
runs that were not overwritten are kept in place, and the rows this run wrote are the teacher
embeddings of the epoch's 24 images, each exactly once (no padding row, no lost or doubled
block: the fixed-size gather blocks follow the new world size). What the resumed run does not
keep (the sampler's order, the lr scaled for the new global batch: the first run's schedule is
restored, as checked here) is in docs/scaling.md.
"""

from __future__ import annotations

import pytest
import torch
from distill_cpu import BATCH, distill, environment, images_of, overrides, write_teacher
from helpers_e2e import make_image_folders, needs_solo

pytestmark = [needs_solo, pytest.mark.slow]
SIZE = 64  # method_kwargs.queue_size in distill_cpu.overrides


def test_a_run_resumes_with_4_2_1_then_4_processes(tmp_path):
    data = make_image_folders(tmp_path / "data", classes=3, train_per_class=8, val_per_class=1)
    teacher_file = write_teacher(tmp_path / "teacher.pth.tar")
    from seed_solo.teachers import load_teacher

    images = images_of(data)
    embeddings = load_teacher(str(teacher_file))(images)  # (24, 16), one per image
    out, env = tmp_path / "runs", environment()
    total = steps = 0
    previous = None
    for epoch, world in enumerate((4, 2, 1, 4)):
        run = distill(overrides(data, out, str(teacher_file), world, 1, f"max_epochs={epoch + 1}"),
                      env)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
        assert ("Resuming from" in run.stdout) == (epoch > 0)
        (folder,) = [p for p in (out / "seed").iterdir() if p.is_dir()]
        (ckpt,) = folder.glob(f"*-ep={epoch}.ckpt")
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        steps += len(images) // (world * BATCH)
        assert (state["epoch"], state["global_step"]) == (epoch, steps)
        # the lr schedule is restored as the first run (4 x 2 images) built it (docs/scaling.md)
        schedule = state["lr_schedulers"][0]
        assert schedule["base_lrs"][0] == pytest.approx(0.03 * 4 * BATCH / 256)
        assert schedule["max_epochs"] == len(images) // (4 * BATCH)  # its total, in steps

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
