"""Run folders: the one "which checkpoint" rule, the args.json reader, atomic writes."""

from __future__ import annotations

import json
import os

import pytest
import torch

from seed_solo.runs.atomic import atomic_path, write_json
from seed_solo.runs.folders import (
    checkpoint_epoch,
    checkpoints,
    find_checkpoint,
    read_args,
    run_dirs,
)
from seed_solo.runs.identity import first_difference, identity


def _touch(path, mtime):
    torch.save({"epoch": 0}, path)
    os.utime(path, (mtime, mtime))


def test_the_last_checkpoint_is_the_highest_epoch_never_the_newest_file(tmp_path):
    # ep=10 sorts before ep=2 as text, and is the oldest file: neither may decide
    _touch(tmp_path / "run-ep=10.ckpt", 1_000)
    _touch(tmp_path / "run-ep=2.ckpt", 3_000)
    _touch(tmp_path / "run-ep=9.ckpt", 2_000)
    assert [p.name for p in checkpoints(tmp_path)] == ["run-ep=2.ckpt", "run-ep=9.ckpt",
                                                        "run-ep=10.ckpt"]
    assert find_checkpoint(tmp_path).name == "run-ep=10.ckpt"
    assert checkpoint_epoch("a-b-ep=10.ckpt") == 10 and checkpoint_epoch("last.ckpt") == -1
    # a later epoch cut off while it was written is passed over, and said so
    whole = (tmp_path / "run-ep=10.ckpt").read_bytes()
    (tmp_path / "run-ep=11.ckpt").write_bytes(whole[: len(whole) // 2])
    said = []
    assert find_checkpoint(tmp_path, log=said.append).name == "run-ep=10.ckpt"
    assert len(said) == 1 and "run-ep=11.ckpt' is truncated" in said[0]


def test_a_file_is_its_own_checkpoint_and_an_empty_folder_says_what_to_pass(tmp_path):
    assert find_checkpoint(tmp_path / "given.ckpt") == tmp_path / "given.ckpt"
    with pytest.raises(FileNotFoundError, match="no whole \\*.ckpt file in .*run folder"):
        find_checkpoint(tmp_path)


def test_args_json_is_read_from_the_folder_or_beside_a_checkpoint(tmp_path):
    (tmp_path / "args.json").write_text(json.dumps({"method": "seed"}))
    assert read_args(tmp_path) == read_args(tmp_path / "x-ep=0.ckpt") == {"method": "seed"}
    with pytest.raises(FileNotFoundError, match="args.json.*Checkpointer"):
        read_args(tmp_path / "elsewhere" / "x.ckpt")


def test_run_folders_are_ordered_by_their_last_epoch(tmp_path):
    for name, epochs in (("zz-first", [0, 1]), ("aa-resumed", [2, 3]), ("mm-empty", [])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "args.json").write_text("{}")
        for e in epochs:
            _touch(tmp_path / name / f"r-ep={e}.ckpt", 5_000 - e)
    (tmp_path / "no-args").mkdir()
    assert [p.name for p in run_dirs(tmp_path)] == ["mm-empty", "zz-first", "aa-resumed"]


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    dest = tmp_path / "sub" / "result.json"
    write_json(dest, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text('{"a": 2, "trunc')
            raise RuntimeError("killed mid-write")
    assert json.loads(dest.read_text()) == {"a": 1}
    assert sorted(p.name for p in dest.parent.iterdir()) == ["result.json"]  # no temp left
    write_json(dest, {"a": 3})
    assert json.loads(dest.read_text()) == {"a": 3}


def test_a_cached_run_is_not_the_live_run_and_old_identities_still_match():
    live = {"method": "seed", "method_kwargs": {"teacher": "torchvision:resnet50"}}
    cached = {"method": "seed", "method_kwargs": {"teacher": "torchvision:resnet50",
                                                  "teacher_cache": "/caches/r50-v8"}}
    assert first_difference(identity(live), identity(cached)) == (
        "method_kwargs.teacher_cache: None -> '/caches/r50-v8'")
    # identity.json written before teacher_cache was a key: a live run still resumes it
    old = {k: v for k, v in identity(live).items() if k != "method_kwargs.teacher_cache"}
    assert first_difference(old, identity(live)) is None
    assert first_difference(identity(cached), identity(cached)) is None
