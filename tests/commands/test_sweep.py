"""The tau_T sweep (the paper's Table 5): one run per value, each evaluated by kNN, one table;
a rerun reads finished values back instead of training them again."""

import json

import pytest

from tests.support.commands import CPU, REPO
from tests.support.solo import needs_solo

pytestmark = needs_solo


def test_a_tau_t_sweep_writes_one_table_and_resumes(tiny_data, tmp_path):
    from seed_solo.sweep import main

    out = tmp_path / "sweep"
    argv = ["--config-path", str(REPO / "configs/distill/imagenet"), "--config-name", "seed_r18",
            "--values", "0.001,0.05", "--out", str(out), "--knn-val", str(tiny_data / "val"),
            *CPU, f"data.train_path={tiny_data}/train", "data.val_path=null",
            "method_kwargs.teacher=torchvision:resnet18", "backbone.name=tiny_resnet10",
            "+backbone.kwargs.width=4", "optimizer.batch_size=8", "augmentations.0.crop_size=32",
            "method_kwargs.queue_size=64", "knn_eval.enabled=False", "max_epochs=1"]
    table = main(argv)
    lines = [ln for ln in table.splitlines() if ln.startswith("| ")]
    assert lines[0].startswith("| method_kwargs.tau_teacher | kNN top-1")
    assert [ln.split(" | ")[0].strip("|* ") for ln in lines[1:]] == ["0.001", "0.05"]
    results = {v: json.loads((out / "results" / f"{v}.json").read_text()) for v in ("0.001",
                                                                                     "0.05")}
    for value, r in results.items():  # each value trained its own student with that tau_T
        args = json.loads((tmp_path / r["run_dir"] / "args.json").read_text())
        assert args["method_kwargs"]["tau_teacher"] == pytest.approx(float(value))
        assert 0 <= r["knn_acc1"] <= 100
    assert (out / "sweep.csv").read_text().splitlines()[0].startswith("method_kwargs.tau_teacher,")
    # finished values are read back, not trained again: the same table
    assert main(argv).splitlines()[:4] == table.splitlines()[:4]
