"""The hydra entry points' command line: relative --config-path from the current folder, --help."""

from __future__ import annotations

import sys

import pytest

from seed_solo.harness.hydra_cli import absolute_config_path
from tests.support.commands import REPO, run


@pytest.mark.parametrize("argv, expected", [
    (["--config-path", "configs/x", "--config-name", "a"],
     ["--config-path", "/home/u/configs/x", "--config-name", "a"]),
    (["--config-path=configs/x", "k=v"], ["--config-path=/home/u/configs/x", "k=v"]),
    (["-cp", "../c", "-cn", "a"], ["-cp", "/home/u/../c", "-cn", "a"]),
    (["--config-path", "/abs/c", "k=v"], ["--config-path", "/abs/c", "k=v"]),
    (["data.train_path=configs/x"], ["data.train_path=configs/x"]),  # not a config path
])
def test_relative_config_path_is_taken_from_the_current_folder(argv, expected):
    assert absolute_config_path(argv, cwd="/home/u") == expected


def _run(args, cwd):
    return run([sys.executable, "-m", *args], expect=None, timeout=300, cwd=cwd)


@pytest.mark.slow
@pytest.mark.solo
def test_distill_composes_a_config_given_by_a_relative_path():
    # --cfg job prints the composed config and runs nothing
    run = _run(["seed_solo.distill", "--config-path", "configs/distill/imagenet",
                "--config-name", "seed_r18", "--cfg", "job", "method_kwargs.queue_size=4096"],
               cwd=REPO)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "name: resnet18" in run.stdout and "queue_size: 4096" in run.stdout


@pytest.mark.parametrize("entry, key", [("seed_solo.distill", "method_kwargs.teacher"),
                                        ("seed_solo.linear", "pretrained_feature_extractor"),
                                        ("seed_solo.finetune", "subset.file")])
@pytest.mark.slow
def test_help_without_a_config_names_the_configs_and_keys(entry, key, tmp_path):
    run = _run([entry, "--help"], cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"usage: python -m {entry} --config-path DIR" in run.stdout
    assert key in run.stdout and "configs/" in run.stdout
    assert "Config {}" not in run.stdout
