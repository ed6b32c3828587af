"""The journey from Python, as docs/journey.md shows it: ``from seed_solo.journey import distill,
export, knn, linear``, on labelled ``train/`` and ``val/`` folders, in this process."""

from __future__ import annotations

import json

import pytest

from tests.support.data import make_image_folders
from tests.support.distill_cpu import write_teacher
from tests.support.solo import needs_solo

pytestmark = [needs_solo]


def test_distill_then_knn_linear_and_export_from_python(tmp_path):
    from seed_solo.journey import distill, export, knn, linear

    data = make_image_folders(tmp_path / "data")  # 5 classes, 8 + 4 images each
    lines = []
    run = distill(data, teacher=str(write_teacher(tmp_path / "teacher.pth")),
                  student="tiny_resnet10", out=tmp_path / "runs", epochs=2, crop=32,
                  overrides=["+backbone.kwargs.width=4", "method_kwargs.queue_size=64",
                             "data.num_workers=0"], log=lines.append)
    start, end = lines[0], lines[-1]
    assert "data       40 images of 5 classes in" in start and "20 validation images" in start
    assert "evaluation online kNN on val/ after every epoch" in start
    assert "training   2 epochs, batch 32 per device, crops 32 px x1, queue K = 64" in start
    assert run.run_dir.parent == tmp_path / "runs" / "seed"
    assert run.checkpoint.name.endswith("-ep=1.ckpt") and run.exported is None
    rows = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1]
    assert all(0 <= r["val_knn_acc1"] <= 100 and "train_class_loss" in r for r in rows)
    assert f"seed-solo knn {run.run_dir} {data}" in end and f"seed-solo export {run.run_dir}" \
        in end

    (result,) = knn(run.run_dir, data, log=lines.append)
    assert result["k"] == 20 and 0 <= result["acc1"] <= 100
    assert json.loads((run.run_dir / "knn.json").read_text())["results"][0]["acc1"] \
        == result["acc1"]

    metrics = linear(run.run_dir, data, epochs=1, overrides=["data.num_workers=0"],
                     log=lines.append)
    assert 0 <= metrics["val_acc1"] <= 100
    assert metrics["run_folder"].startswith(str(run.run_dir / "linear"))
    assert json.loads((run.run_dir / "linear.json").read_text())["val_acc1"] \
        == pytest.approx(metrics["val_acc1"])

    done = export(run.run_dir, log=lines.append)  # tiny_resnet10 is neither timm nor torchvision
    assert (done.target, done.path, done.note) == ("onnx", run.run_dir / "student.onnx", "")
