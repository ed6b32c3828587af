"""``seed-solo distill``: a flat folder of images, a DINOv2 teacher file made from timm as the
docs show, a ResNet-18 student, an ONNX file, in one command; then a rerun, a fresh run and the
run listing. The teacher is timm's real ViT-S/14 (12 blocks, 37 x 37 grid) with random weights,
saved as ``timm.create_model(...).state_dict()``: nothing is downloaded."""

from __future__ import annotations

import json
import math
import re
import sys

import numpy as np
import pytest
import timm
import torch

from seed_solo.cli import main
from tests.support.commands import run
from tests.support.data import make_flat_folder
from tests.support.solo import needs_solo

pytestmark = [needs_solo]


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    """The one-command journey, run once: (its folder, the command, its output)."""
    root = tmp_path_factory.mktemp("journey")
    images = make_flat_folder(root / "images", images=20)
    torch.manual_seed(0)
    torch.save(timm.create_model("vit_small_patch14_dinov2").state_dict(),
               root / "dinov2_vits14_timm.pth")
    command = [sys.executable, "-m", "seed_solo.cli", "distill", str(images), "--teacher",
               str(root / "dinov2_vits14_timm.pth"), "--student", "resnet18", "--out",
               str(root / "runs"), "--epochs", "1", "--crop", "28", "--export", "onnx",
               "method_kwargs.queue_size=64"]
    return root, command, run(command, cwd=root)


def run_folders(root):
    return sorted(p for p in (root / "runs" / "seed").iterdir() if p.is_dir())


@pytest.mark.slow
def test_one_command_from_a_flat_folder_to_an_onnx_student(journey):
    root, _, proc = journey
    out = proc.stdout
    # the settings it chose, before anything ran
    assert "data       20 unlabelled images in" in out
    assert "evaluation online kNN and the online linear probe are skipped: the images have no " \
           "labels" in out
    assert "machine    the CPU, precision 32" in out
    assert "training   1 epoch, batch 20 per device, crops 28 px x1, queue K = 64" in out
    (folder,) = run_folders(root)
    assert f"seed-solo: run folder {folder} (new)" in out
    assert re.search(r"seed-solo: epoch 1/1 in \d+ s; train_seed_loss [\d.e-]+; done", out)
    # where the results are, and the exact next commands
    ckpt = next(folder.glob("*-ep=0.ckpt"))
    assert f"checkpoint {ckpt}" in out and f"exported   {folder / 'student.onnx'}" in out
    assert f"seed-solo knn {folder} LABELLED" in out and f"seed-solo runs {folder.parent}" in out
    assert not [line for line in proc.stderr.splitlines() if "Warning" in line]
    # no labels: no classifier loss (it would be NaN) nor accuracy in the history
    (row,) = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert not [k for k in row if "class_loss" in k or "acc" in k], row
    assert math.isfinite(row["train_seed_loss"])
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert state["queue.embeddings"].shape == (64, 384)  # d of the DINOv2 ViT-S CLS token


@pytest.mark.slow
def test_the_onnx_student_takes_two_sizes(journey):
    import onnxruntime

    root, _, _ = journey
    session = onnxruntime.InferenceSession(str(run_folders(root)[0] / "student.onnx"),
                                           providers=["CPUExecutionProvider"])
    for size in (28, 64):
        x = np.random.default_rng(size).normal(size=(3, 3, size, size)).astype(np.float32)
        assert session.run(None, {"images": x})[0].shape == (3, 512)


@pytest.mark.slow
def test_a_rerun_says_complete_and_fresh_starts_another_run(journey, capsys):
    root, command, _ = journey
    (folder,) = run_folders(root)
    ckpt = next(folder.glob("*.ckpt"))
    stamp = ckpt.stat().st_mtime_ns
    argv = command[command.index("distill"):]  # the same command, in this process
    assert main(argv) == 0
    again = capsys.readouterr().out
    assert f"{folder} is already complete (epoch 1 of 1), nothing to train" in again
    assert "auto_resume.enabled=False (seed-solo distill: --fresh)" in again
    assert run_folders(root) == [folder] and ckpt.stat().st_mtime_ns == stamp

    assert main([a for a in argv if a not in ("--export", "onnx")] + ["--fresh"]) == 0
    assert "(a fresh run)" in capsys.readouterr().out
    folders = run_folders(root)
    assert len(folders) == 2
    (new,) = [f for f in folders if f != folder]

    assert main(["runs", str(root / "runs")]) == 0
    table = capsys.readouterr().out.splitlines()
    rows = [re.split(r"\s{2,}", line) for line in table if line.startswith("20")]
    assert [r[1] for r in rows] == [str(folder), str(new)]  # oldest first
    assert {(r[2], r[3], r[5], r[6]) for r in rows} == {("seed", "resnet18", "1/1", "complete")}
    assert rows[0][7] == rows[1][7]  # the same settings: the same identity
    assert main(["runs", str(root / "runs"), "--latest"]) == 0
    assert capsys.readouterr().out.strip() == str(new)
