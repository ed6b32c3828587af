"""Broken checkpoint files are refused by name, with what to do, before torch sees them."""

from __future__ import annotations

import os

import pytest
import torch

from seed_solo.runs.checkpoint_files import read_checkpoint
from seed_solo.teachers import load_teacher


def _files(tmp_path):
    torch.save({"w": torch.randn(200, 50)}, tmp_path / "whole.pth")
    zipped = (tmp_path / "whole.pth").read_bytes()
    torch.save({"w": torch.randn(200, 50)}, tmp_path / "legacy.pth",
               _use_new_zipfile_serialization=False)
    legacy = (tmp_path / "legacy.pth").read_bytes()
    files = {
        "empty": (b"", "is empty \\(0 bytes\\)"),
        "random": (b"\x13" + os.urandom(4000), "is not a PyTorch checkpoint"),
        "cut-zip": (zipped[: len(zipped) // 2], "is truncated .*a zip archive without its end"),
        "cut-legacy": (legacy[: len(legacy) // 2], "could not be read .*truncated or corrupt"),
    }
    for name, (body, _) in files.items():
        (tmp_path / f"{name}.pth").write_bytes(body)
    return {name: match for name, (_, match) in files.items()}


def test_each_broken_file_gets_its_own_sentence(tmp_path):
    for name, match in _files(tmp_path).items():
        with pytest.raises(ValueError, match=f"{name}.pth' {match}"):
            read_checkpoint(tmp_path / f"{name}.pth", what="checkpoint")
    assert read_checkpoint(tmp_path / "whole.pth")["w"].shape == (200, 50)
    assert read_checkpoint(tmp_path / "legacy.pth")["w"].shape == (200, 50)


@pytest.mark.parametrize("name", ["empty", "random", "cut-zip"])
def test_a_broken_teacher_file_is_named(tmp_path, name):
    match = _files(tmp_path)[name]
    with pytest.raises(ValueError, match=f"teacher checkpoint .*{name}.pth' {match}"):
        load_teacher(str(tmp_path / f"{name}.pth"))
