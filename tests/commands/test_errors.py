"""Expected failures end an entry point with one `error:` line and exit code 2, no traceback."""

from __future__ import annotations

import sys

import pytest
import torch

from tests.support import commands
from tests.support.commands import error_lines, on_cpu
from tests.support.data import make_image_folders
from tests.support.solo import needs_solo

pytestmark = [needs_solo, pytest.mark.slow]
CPU = [*on_cpu(), "optimizer.batch_size=4"]


def run(cmd, env=None):
    return commands.run(cmd, env, expect=None, timeout=300)


def assert_one_line_error(proc, starts):
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = error_lines(proc)
    assert len(lines) == 1 and lines[0].startswith(starts), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Error executing job" not in proc.stderr


def test_zero_epochs_is_one_sentence_and_debug_shows_the_trace(tiny_data, tmp_path):
    cmd = ["bash", "scripts/distill/imagenet/seed_r18.sh", *CPU, "max_epochs=0",
           f"checkpoint.dir={tmp_path}"]
    env = {"DATA_DIR": str(tiny_data), "TEACHER": "torchvision:resnet18"}
    assert_one_line_error(run(cmd, env), "error: max_epochs=0: train for at least 1 epoch")
    debug = run(cmd, {**env, "SEED_SOLO_DEBUG": "1"})
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    assert "ConfigError: max_epochs=0" in debug.stderr


def test_linear_on_fewer_than_five_classes_says_why(tmp_path):
    data = make_image_folders(tmp_path / "data", classes=3, train_per_class=4, val_per_class=2)
    from seed_solo.students.registry import create_student

    backbone = create_student("resnet18")
    ckpt = tmp_path / "student-ep=0.ckpt"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in backbone.state_dict().items()}},
               ckpt)
    proc = run(["bash", "scripts/linear/imagenet/seed_r18.sh", *CPU, "max_epochs=1",
                "+data.augmentations.crop_size=32", f"checkpoint.dir={tmp_path / 'lin'}"],
               {"DATA_DIR": str(data), "CKPT": str(ckpt)})
    assert_one_line_error(proc, "error: linear evaluation reports top-5 accuracy")
    assert "has 3" in proc.stderr


def test_knn_of_a_truncated_student_checkpoint_names_the_file(tiny_data, tmp_path):
    from seed_solo.students.registry import create_student

    state = {f"backbone.{k}": v for k, v in create_student("resnet18").state_dict().items()}
    torch.save({"state_dict": state}, tmp_path / "whole.ckpt")
    body = (tmp_path / "whole.ckpt").read_bytes()
    (tmp_path / "run-ep=3.ckpt").write_bytes(body[: len(body) // 3])
    (tmp_path / "whole.ckpt").unlink()
    (tmp_path / "args.json").write_text('{"method": "seed", "backbone": {"name": "resnet18"}}')
    proc = run([sys.executable, "-m", "seed_solo.knn", "--pretrained_checkpoint_dir",
                str(tmp_path), "--dataset", "custom", "--train_data_path",
                f"{tiny_data}/train", "--val_data_path", f"{tiny_data}/val"])
    assert_one_line_error(proc, f"error: no whole *.ckpt file in '{tmp_path}'")
    assert "Passed over: checkpoint" in proc.stderr and "run-ep=3.ckpt' is truncated" in proc.stderr
