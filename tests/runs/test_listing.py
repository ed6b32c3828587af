"""``seed-solo runs``: every run folder under a folder, by last write, with its epochs, status
and identity; ``--latest`` the newest one holding a checkpoint."""

from __future__ import annotations

import json
import os
import re

from seed_solo.cli import main
from seed_solo.runs.listing import find_runs, latest_run


def run_folder(root, method, run, epochs_done, max_epochs, teacher="t.pth", when=0.0,
               identity=None):
    """A run folder as a run writes it: args.json, identity.json, checkpoints named ep=E."""
    folder = root / method / run
    folder.mkdir(parents=True)
    (folder / "args.json").write_text(json.dumps({
        "method": method, "max_epochs": max_epochs, "backbone": {"name": "resnet18"},
        "method_kwargs": {"teacher": teacher}, "data": {"train_path": "/data/train"}}))
    (folder / "identity.json").write_text(json.dumps(identity or {"teacher": teacher}))
    for ep in range(epochs_done):
        (folder / f"seed-{run}-ep={ep}.ckpt").write_bytes(b"x")
    for f in folder.iterdir():  # the clock of its last write
        os.utime(f, (when, when))
    return folder


def test_runs_are_listed_by_last_write_with_epochs_status_and_identity(tmp_path, capsys):
    # names and epochs deliberately out of time order: only the clock orders the listing
    done = run_folder(tmp_path, "seed", "zzzz", 3, 3, when=1_000_000)
    stopped = run_folder(tmp_path, "seed", "aaaa", 1, 5, teacher="u.pth", when=3_000_000)
    empty = run_folder(tmp_path, "seed", "mmmm", 0, 5, when=2_000_000)
    linear = run_folder(tmp_path, "linear", "bbbb", 2, 2, when=4_000_000)
    runs = find_runs(tmp_path)
    assert [r.folder for r in runs] == [done, empty, stopped, linear]
    assert [(r.epochs_done, r.max_epochs, r.status) for r in runs] == [
        (3, 3, "complete"), (0, 5, "no checkpoint"), (1, 5, "stopped"), (2, 2, "complete")]
    assert runs[0].identity == runs[1].identity != runs[2].identity  # same teacher: same run
    assert [r.folder for r in find_runs(tmp_path, "seed")] == [done, empty, stopped]
    assert latest_run(tmp_path) == linear
    assert latest_run(tmp_path, "seed") == stopped  # mmmm is newer but holds no checkpoint

    assert main(["runs", str(tmp_path), "--method", "seed"]) == 0
    rows = [re.split(r"\s{2,}", line) for line in capsys.readouterr().out.splitlines()
            if str(tmp_path) in line]  # columns are two or more spaces apart
    assert [(r[1], r[5], r[6], r[7]) for r in rows] == [
        (str(done), "3/3", "complete", runs[0].identity),
        (str(empty), "0/5", "no checkpoint", runs[1].identity),
        (str(stopped), "1/5", "stopped", runs[2].identity)]
    assert main(["runs", str(tmp_path), "--method", "seed", "--latest"]) == 0
    assert capsys.readouterr().out.strip() == str(stopped)


def test_latest_without_a_run_is_one_error_line(tmp_path, capsys):
    assert main(["runs", str(tmp_path / "nothing"), "--latest"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: no run folder with a checkpoint under ")
