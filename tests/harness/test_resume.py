"""Auto-resume continues only the same run, in its own folder, from a checkpoint that opens."""

from __future__ import annotations

import json

import pytest
import torch

from tests.support.commands import distill_script, on_cpu, run
from tests.support.solo import needs_solo

pytestmark = [needs_solo, pytest.mark.slow]
CPU = [*on_cpu(), "optimizer.batch_size=8", "augmentations.0.crop_size=32",
       "method_kwargs.queue_size=200"]


def distill(data, out, teacher, *overrides, expect=0):
    return run(distill_script(*CPU, f"checkpoint.dir={out}", *overrides),
               {"DATA_DIR": str(data), "TEACHER": teacher}, expect=expect)


def folders(out):
    return sorted(p for p in (out / "seed").iterdir() if p.is_dir())


def names(folder, pattern="*"):
    return sorted(p.name.split("-")[-1] for p in folder.glob(pattern))


def test_resume_takes_the_same_run_its_folder_and_a_whole_checkpoint(tiny_data, tmp_path):
    out = tmp_path / "runs"
    r18, r34 = "torchvision:resnet18", "torchvision:resnet34"
    distill(tiny_data, out, r18, "max_epochs=1")
    (first,) = folders(out)
    assert names(first, "*.ckpt") == ["ep=0.ckpt"]
    assert json.loads((first / "identity.json").read_text())["method_kwargs.teacher"] == r18

    # another teacher is another run: said, and trained from scratch in a new folder
    other = distill(tiny_data, out, r34, "max_epochs=1")
    assert (f"starting a new run: the run folder in {out / 'seed'} is another run ({first.name}: "
            f"method_kwargs.teacher: '{r18}' -> '{r34}')") in other.stdout
    assert "Resuming" not in other.stdout
    second = next(p for p in folders(out) if p != first)
    assert names(second, "*.ckpt") == ["ep=0.ckpt"]

    # the same run with more epochs continues in its own folder, metrics included
    more = distill(tiny_data, out, r18, "max_epochs=2")
    assert f"Resuming from {first}/" in more.stdout and "ep=0.ckpt" in more.stdout
    assert len(folders(out)) == 2 and names(first, "*.ckpt") == ["ep=1.ckpt"]
    epochs = [json.loads(line)["epoch"] for line in (first / "metrics.jsonl").open()]
    assert epochs == [0, 1]

    # a later checkpoint cut off mid-save is skipped, a leftover temp file is removed
    ckpt1 = next(first.glob("*ep=1.ckpt"))
    body = ckpt1.read_bytes()
    cut = first / ckpt1.name.replace("ep=1", "ep=7")
    cut.write_bytes(body[: len(body) // 2])
    (first / f".{ckpt1.name.replace('ep=1', 'ep=2')}.999.part").write_bytes(body[:100])
    again = distill(tiny_data, out, r18, "max_epochs=3")
    assert f"skipping {cut}" in again.stdout and "truncated" in again.stdout
    assert f"Resuming from {ckpt1}" in again.stdout
    assert not list(first.glob(".*.part"))
    last = next(first.glob("*ep=2.ckpt"))
    assert torch.load(last, map_location="cpu", weights_only=False)["epoch"] == 2
    stamp = last.stat().st_mtime_ns

    # the run is complete: a rerun says so, names the way to a fresh run, trains nothing
    done = distill(tiny_data, out, r18, "max_epochs=3")
    assert (f"{first} is already complete (epoch 3 of 3), nothing to train" in done.stdout
            and "add auto_resume.enabled=False" in done.stdout)
    assert names(first, "*.ckpt") == ["ep=2.ckpt", "ep=7.ckpt"]  # the cut-off one is left
    assert last.stat().st_mtime_ns == stamp

    # resuming another run's checkpoint by hand is refused, unless forced
    theirs = next(second.glob("*.ckpt"))
    refused = distill(tiny_data, tmp_path / "elsewhere", r18, "max_epochs=2",
                      f"+resume_from_checkpoint='{theirs}'", expect=2)
    assert (f"belongs to a different run (method_kwargs.teacher: '{r34}' -> '{r18}')"
            in refused.stderr)
