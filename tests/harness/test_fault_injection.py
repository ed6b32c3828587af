"""Kill -9 a 2-process DDP run at random points and mid-save, rerun: it always finishes.

Each kill is followed by the same command again, which must resume (or start over when no
checkpoint was finished), finish, never pick a truncated checkpoint, leave no temporary file,
and keep the queue rows of the checkpoint it resumed from. TMPDIR is put on another file
system (a tmpfs) than the checkpoints, the case where a save used to be a copy, not a rename;
as root it is a tmpfs of 8 MB, smaller than one checkpoint (about 90 MB), so a save that went
through TMPDIR would fail. A kill during the first save must not leave its run folder behind:
the rerun continues in it, and at the end the run has one folder and TMPDIR holds nothing.

The suite kills twice (once mid-save, once at a random moment); SEED_SOLO_FAULT_SEEDS=10 kills
ten times and prints the counts.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from seed_solo.runs.folders import checkpoint_problem, checkpoints, last_checkpoint, temp_files
from tests.support.commands import REPO, distill_script, environment, on_cpu
from tests.support.solo import needs_solo

pytestmark = [needs_solo, pytest.mark.slow]
SEEDS = int(os.environ.get("SEED_SOLO_FAULT_SEEDS", "2"))
WORLD = int(os.environ.get("SEED_SOLO_FAULT_WORLD", "2"))  # CPU processes under Lightning DDP
CPU = [*on_cpu(WORLD), "optimizer.batch_size=4", "augmentations.0.crop_size=32",
       "method_kwargs.queue_size=200", "max_epochs=3"]


def _command(out):
    return distill_script(*CPU, f"checkpoint.dir={out}")


def _env(data, tmpdir):
    return environment(DATA_DIR=str(data), TEACHER="torchvision:resnet18", TMPDIR=str(tmpdir))


def _queue(ckpt):
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    return state["queue.embeddings"][: int(state["queue.num_filled"])]


def _kill_once(cmd, env, out, mode, rng, nth_save=1):
    """Start the run, kill -9 its process group during its ``nth_save`` checkpoint write
    (``mode="save"``) or at a random moment; returns the phase it was killed in."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + (rng.uniform(4, 20) if mode == "random" else 300)
    phase, saves, saving = "finished before the kill", 0, False
    while proc.poll() is None and time.time() < deadline:
        if mode == "save":
            now = any((out / "seed").glob("*/.*.ckpt.*.part"))  # a checkpoint being written
            saves += now and not saving
            saving = now
            if saving and saves == nth_save:
                phase = "mid-save"
                break
        time.sleep(0.002 if mode == "save" else 0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        phase = phase if phase == "mid-save" else "mid-run"
    proc.wait()
    return phase


@contextlib.contextmanager
def _small_tmpdir(path):
    """An 8 MB tmpfs at ``path`` as root; elsewhere a folder on /dev/shm (another file system
    than the checkpoints, but not a small one)."""
    if os.geteuid() == 0:
        path.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(path)]
                          ).returncode == 0:
            try:
                yield path
            finally:
                subprocess.run(["umount", "-l", str(path)], check=False)
            return
    shared = Path("/dev/shm") / f"seed-solo-fault-{os.getpid()}-{path.name}"
    shared.mkdir()
    try:
        yield shared
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no tmpfs at /dev/shm for TMPDIR")
def test_kill_and_rerun_always_finishes_and_keeps_the_queue(tiny_data, tmp_path):
    rng = random.Random(0)
    counts = {"kills": 0, "mid-save": 0, "mid-run": 0, "resumed": 0, "started over": 0,
              "finished": 0}
    for seed in range(SEEDS):
        with _small_tmpdir(tmp_path / f"tmpdir{seed}") as tmpdir:
            _kill_and_rerun(tiny_data, tmp_path / f"run{seed}", tmpdir, seed, rng, counts)
    print("fault injection:", counts)
    assert counts["finished"] == SEEDS and counts["kills"] >= 1


def _kill_and_rerun(tiny_data, out, tmpdir, seed, rng, counts):
    env, cmd = _env(tiny_data, tmpdir), _command(out)
    phase = _kill_once(cmd, env, out, "save" if seed % 2 == 0 else "random", rng,
                       nth_save=1 + (seed // 2) % 2)
    counts["kills"] += phase != "finished before the kill"
    counts[phase] = counts.get(phase, 0) + 1

    runs = [d for d in (out / "seed").glob("*") if d.is_dir()] if (out / "seed").is_dir() \
        else []
    for run_dir in runs:  # no checkpoint on disk is ever a torn one
        assert all(checkpoint_problem(c, training_state=True) is None
                   for c in checkpoints(run_dir)), phase
    before = [c for c in (last_checkpoint(d, lambda _: None, training_state=True)
                        for d in runs) if c]

    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    counts["resumed" if "Resuming from" in again.stdout else "started over"] += 1
    final_dirs = [d for d in (out / "seed").iterdir() if list(d.glob("*.ckpt"))]
    assert len(final_dirs) == 1  # one run folder holds the run
    others = [d for d in (out / "seed").iterdir() if d not in final_dirs]
    if phase == "mid-save":  # a save cut off: its folder is continued, never abandoned
        assert not others, others
    # a kill before the first save may leave a folder behind, never a checkpoint's bytes in it
    assert not [p for d in others for p in d.iterdir() if p.suffix in (".part", ".ckpt")]
    final = last_checkpoint(final_dirs[0], training_state=True)
    assert final is not None and final.name.endswith("ep=2.ckpt")
    assert not temp_files(final_dirs[0])
    left = [p for p in tmpdir.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in left) < 1 << 20, left  # no checkpoint's bytes
    if before:  # the rows saved before the crash are the start of the final queue
        (pre,) = before
        assert final.parent == pre.parent
        rows = _queue(pre) if pre.exists() else None
        if rows is not None:
            assert torch.equal(_queue(final)[: len(rows)], rows)
    counts["finished"] += 1
