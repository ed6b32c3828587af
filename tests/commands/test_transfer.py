"""``seed-solo transfer`` on tiny CIFAR-10, STL-10 and image-folder data sets written here: one
table for two students, features reused by a second run and extracted again when a student's
checkpoint changes, and bad input as one ``error:`` line.

The command runs in this process, through ``seed_solo.cli.main`` (what the ``seed-solo`` script
calls: its exit code and its one ``error:`` line included): a process per run would spend more
on imports than on the run."""

import csv
import json
import shutil

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from seed_solo import cli
from tests.support.data import make_image_folders
from tests.support.solo import needs_solo
from tests.support.student_runs import write_student_run
from tests.support.transfer_files import write_cifar10, write_stl10

pytestmark = [needs_solo]


@pytest.fixture
def transfer(capsys):
    """``seed-solo transfer ARGS``: its (stdout, stderr), the exit code checked."""
    def call(*args, expect=0):
        code = cli.main(["transfer", *args, "--num-workers", "0", "--max-iter", "40"])
        out, err = capsys.readouterr()
        assert code == expect, err[-2000:]
        return out, err
    return call


def test_one_table_for_two_students_and_features_reused_until_a_student_changes(tmp_path,
                                                                                transfer):
    a = write_student_run(tmp_path / "a" / "run1", seed=0)
    b = write_student_run(tmp_path / "b" / "run2", seed=1)
    write_cifar10(tmp_path / "cifar", train_per_class=6, test_per_class=3)
    write_stl10(tmp_path / "stl", train_per_class=3, test_per_class=2)
    make_image_folders(tmp_path / "folders", classes=5, train_per_class=6, val_per_class=2)
    out = tmp_path / "out"
    args = [f"A={a.parent}", f"B={b}", "--datasets",
            f"cifar10={tmp_path / 'cifar'},stl10={tmp_path / 'stl'},tiny={tmp_path / 'folders'}",
            "--out", str(out)]
    first, _ = transfer(*args)

    rows = json.loads((out / "transfer.json").read_text())
    assert [(r["model"], r["dataset"]) for r in rows] == [
        (m, d) for m in "AB" for d in ("cifar10", "stl10", "tiny")]
    cifar = rows[0]
    # 60 CIFAR training images: 1 of each class's 6 held out for lambda; 30 test images
    assert cifar["images"] == {"train": 50, "val": 10, "test": 30}
    assert len(cifar["curve"]) == 45 and cifar["image_size"] == 32
    with open(out / "transfer.csv") as f:
        table = list(csv.reader(f))
    assert table[0] == ["model", "cifar10 logistic", "cifar10 kNN", "stl10 logistic",
                        "stl10 kNN", "tiny logistic", "tiny kNN"]
    assert table[1][:3] == ["A", f"{cifar['test_acc1']:.2f}", f"{cifar['knn_acc1']:.2f}"]
    assert (out / "transfer.png").read_bytes()[:4] == b"\x89PNG"
    assert "| A |" in (out / "transfer.md").read_text()

    # the stored features, refitted by scikit-learn with the chosen lambda, score the same
    def stored(split, model="A", dataset="cifar10"):
        with np.load(out / "features" / model / dataset / split / "features.npz") as d:
            return d["features"], d["labels"]

    (tx, ty), (sx, sy) = stored("train"), stored("test")
    sk = LogisticRegression(C=1 / (cifar["lambda"] * len(ty)), max_iter=5000).fit(tx, ty)
    assert 100 * (sk.predict(sx) == sy).mean() == pytest.approx(cifar["test_acc1"], abs=7)

    # a second run (of one data set, to keep the test short) reads every split's features back
    args[3] = f"tiny={tmp_path / 'folders'}"
    second, _ = transfer(*args)
    assert second.count("seed-solo: reusing the features") == 4  # 2 models x 2 splits
    assert "  features " in first and "  features " not in second
    tiny = [r for r in rows if r["dataset"] == "tiny"]
    assert json.loads((out / "transfer.json").read_text()) == tiny

    # student B's checkpoint replaced at the same path: only its features are extracted again
    before = stored("train", "B", "tiny")[0]
    write_student_run(b.parent, seed=2)
    third, _ = transfer(*args)
    assert third.count("extracting them again") == 2  # B's 2 splits
    assert third.count("seed-solo: reusing the features") == 2  # A's
    assert "fingerprint" in third
    assert json.loads((out / "transfer.json").read_text())[0] == tiny[0]
    after = stored("train", "B", "tiny")[0]
    assert after.shape == before.shape and not np.allclose(after, before)


def test_bad_input_is_one_error_line_naming_it(tmp_path, transfer):
    good = write_student_run(tmp_path / "s" / "run1")
    make_image_folders(tmp_path / "folders", classes=5, train_per_class=2, val_per_class=1)
    bad = tmp_path / "bad" / "run1"
    bad.mkdir(parents=True)
    shutil.copy(good.parent / "args.json", bad)
    (bad / good.name).write_bytes(good.read_bytes()[:3000])
    shutil.copytree(tmp_path / "folders", tmp_path / "other")
    (tmp_path / "other" / "val" / "class1").rename(tmp_path / "other" / "val" / "dog")
    for models, data, words in (
            ([str(bad)], f"f={tmp_path / 'folders'}", [good.name]),
            ([str(good)], f"cifar10={tmp_path / 'folders'}", ["no cifar-10-batches-py/"]),
            ([str(good)], f"o={tmp_path / 'other'}", ["differ", "class1", "dog"])):
        _, err = transfer(*models, "--datasets", data, "--out", str(tmp_path / "out"), expect=2)
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
        assert all(w in lines[0] for w in words), lines[0]
