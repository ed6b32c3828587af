"""The save path of a run (``python -m seed_solo.distill``'s ``run``, in this process): bytes go
straight into the run folder, never TMPDIR; the states a kill leaves are continued without a
lost or doubled ``metrics.jsonl`` row and without an abandoned folder; a place that cannot be
written and a checkpoint Lightning cannot restore are one sentence."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile

import pytest
import torch

from seed_solo import distill
from seed_solo.core.errors import CheckpointError, ConfigError
from seed_solo.harness.config import compose_config
from seed_solo.runs.folders import checkpoint_problem, checkpoints
from tests.support.data import make_image_folders
from tests.support.distill_cpu import overrides, write_teacher
from tests.support.mounts import tmpfs
from tests.support.solo import needs_solo

pytestmark = needs_solo


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    base = tmp_path_factory.mktemp("save_path")
    data = make_image_folders(base / "data", classes=2, train_per_class=4, val_per_class=1)
    return data, write_teacher(base / "teacher.pth")


@pytest.fixture
def no_tmpdir(tmp_path, monkeypatch):
    """Python's temporary folder is one that does not exist: any temporary file fails."""
    missing = tmp_path / "no-such-tmpdir"
    monkeypatch.setattr(tempfile, "tempdir", str(missing))
    return missing


def _run(inputs, out, *extra):
    data, teacher = inputs
    args = overrides(data, out, str(teacher), 1, 1, "+enable_model_summary=False", *extra)
    distill.run(compose_config(args[1], args[3], args[4:]))
    return sorted(p for p in (out / "seed").iterdir())


@pytest.fixture(scope="module")
def one_epoch(inputs, tmp_path_factory):
    """The checkpoint folder of a finished one-epoch run, to copy."""
    out = tmp_path_factory.mktemp("one_epoch") / "runs"
    _run(inputs, out, "max_epochs=1")
    return out


def _copy(folder, dest):
    shutil.copytree(folder, dest)
    (run_dir,) = (dest / "seed").iterdir()
    return run_dir


def _epochs(run_dir):
    return [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").open()]


def _dead_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_metrics_rows_follow_the_checkpoint_across_kills_and_nothing_uses_tmpdir(
        inputs, tmp_path, no_tmpdir):
    out = tmp_path / "runs"
    (run_dir,) = _run(inputs, out, "max_epochs=2", "+checkpoint.keep_prev=True")
    assert [c.name[-9:] for c in checkpoints(run_dir)] == ["ep=0.ckpt", "ep=1.ckpt"]
    assert _epochs(run_dir) == [0, 1] and not no_tmpdir.exists()
    # a kill after epoch 1's checkpoint was renamed, before its row was appended
    lines = (run_dir / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "metrics.jsonl").write_text("".join(lines[:1]))
    assert _run(inputs, out, "max_epochs=3", "+checkpoint.keep_prev=True") == [run_dir]
    assert _epochs(run_dir) == [0, 1, 2]
    # a kill after epoch 3's row was appended, before its checkpoint was written
    (checkpoints(run_dir)[-1]).unlink()  # ep=2: the rerun resumes from ep=1
    assert _run(inputs, out, "max_epochs=3", "+checkpoint.keep_prev=True") == [run_dir]
    assert _epochs(run_dir) == [0, 1, 2]


def test_a_run_killed_in_its_first_save_continues_in_its_own_folder(inputs, one_epoch,
                                                                   tmp_path):
    out = tmp_path / "runs"
    run_dir = _copy(one_epoch, out)
    (ckpt,) = checkpoints(run_dir)
    torn = run_dir / f".{ckpt.name}.{_dead_pid()}.part"
    torn.write_bytes(ckpt.read_bytes()[:1000])  # what a kill mid-save leaves
    ckpt.unlink()
    (run_dir / "metrics.jsonl").unlink()
    assert _run(inputs, out, "max_epochs=1") == [run_dir]  # no second, abandoned folder
    assert not torn.exists() and [c.name for c in checkpoints(run_dir)] == [ckpt.name]
    assert checkpoint_problem(ckpt, training_state=True) is None


def test_a_checkpoint_lightning_cannot_restore_is_named(inputs, one_epoch, tmp_path):
    out = tmp_path / "runs"
    run_dir = _copy(one_epoch, out)
    (ckpt,) = checkpoints(run_dir)
    crafted = torch.load(ckpt, map_location="cpu", weights_only=False)
    crafted["state_dict"]["projector.0.weight"] = torch.zeros(3, 3)
    torch.save(crafted, run_dir / "seed_r18-imagenet-crafted-ep=5.ckpt")
    with pytest.raises(CheckpointError, match=r"cannot resume from .*crafted-ep=5.ckpt: "
                       r"Lightning's restore failed \(RuntimeError: .*size mismatch for "
                       r"projector.0.weight.*Move it out of the run folder"):
        _run(inputs, out, "max_epochs=7")


def test_a_full_checkpoint_dir_is_one_sentence_and_leaves_no_partial_file(inputs, tmp_path):
    with tmpfs(tmp_path / "small", size="64k") as small:
        with pytest.raises(ConfigError, match=r"cannot write .*-ep=0.ckpt: no space is left on "
                           r"its device; free space or make it writable there, or choose "
                           r"another checkpoint.dir."):
            _run(inputs, small, "max_epochs=1")
        assert not list(small.rglob("*.part"))


def test_a_read_only_checkpoint_dir_is_one_sentence(inputs, tmp_path):
    with tmpfs(tmp_path / "ro", readonly=True) as read_only:
        with pytest.raises(ConfigError, match=rf"cannot write {read_only}/seed: its file "
                           r"system is read-only; .* choose another checkpoint.dir."):
            _run(inputs, read_only, "max_epochs=1")


def test_a_run_whose_loss_turns_non_finite_stops_naming_the_step(inputs, tmp_path):
    out = tmp_path / "runs"
    with pytest.raises(ConfigError, match=r"the training loss became non-finite \(NaN or inf\) "
                       r"at step \d+ \(epoch 0\); stopped before saving this epoch"):
        _run(inputs, out, "max_epochs=2", "optimizer.lr=1e30")
    assert not [c for d in (out / "seed").iterdir() for c in checkpoints(d)]
