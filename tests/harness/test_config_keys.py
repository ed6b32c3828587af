"""A misspelt key is refused with the nearest valid name, never trained with a default."""

from __future__ import annotations

import sys

import pytest
import torch
from solo.methods import METHODS

from seed_solo.core.errors import ConfigError
from seed_solo.harness.config import compose_config
from seed_solo.harness.config_keys import check_method_kwargs
from seed_solo.harness.hydra_cli import check_overrides, config_errors
from seed_solo.harness.pretrain import parse_pretrain
from seed_solo.harness.registration import register
from tests.support.commands import CPU, REPO, error_lines, run
from tests.support.solo import needs_solo

pytestmark = needs_solo
CONFIGS = REPO / "configs" / "distill" / "imagenet"
ARGV = ["--config-path", str(CONFIGS), "--config-name", "seed_r18"]


@pytest.fixture(autouse=True, scope="module")
def registered():
    register()  # as the commands do before they check the overrides


def _cfg(*overrides):
    return compose_config(CONFIGS, "seed_r18", [*CPU, "data.train_path=/nowhere", *overrides])


@pytest.mark.slow
def test_a_misspelt_override_is_one_sentence_with_the_nearest_key():
    proc = run([sys.executable, "-m", "seed_solo.distill", *ARGV, "method_kwargs.queu_size=10"],
               expect=2, timeout=300)
    (line,) = error_lines(proc)
    # the nearest key first (the objectives' `enqueue` is near too)
    assert line.startswith("error: unknown config key 'method_kwargs.queu_size': "
                           "seed_r18.yaml has no such key. Did you mean "
                           "method_kwargs.queue_size"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr


def test_hydras_own_hint_for_a_misspelt_key_is_refused_too():
    # `+method_kwargs.queu_size=10` composes; it must not train with the default queue
    with pytest.raises(ConfigError, match=r"unknown config key 'method_kwargs.queu_size'; "
                       r"method_kwargs takes .*queue_size.* Did you mean "
                       r"method_kwargs.queue_size"):
        parse_pretrain(_cfg("+method_kwargs.queu_size=10"))


def test_every_key_seed_reads_is_accepted():
    cfg = _cfg("+method_kwargs.teacher_cache=null", "+method_kwargs.teacher_options={}")
    check_method_kwargs(cfg)  # raises on any key SEED does not declare


@pytest.mark.parametrize("override, sentence", [
    ("data.on_corupt=skip", "unknown config key 'data.on_corupt': seed_r18.yaml has no such "
                            "key. Did you mean data.on_corrupt?"),
    ("method_kwargs.teacher_cache=/c", "method_kwargs.teacher_cache is not in the config file "
                                       "seed_r18.yaml; add it with a + in front: "
                                       "+method_kwargs.teacher_cache=/c."),
    ("+max_epochs=4", "max_epochs is already in the config seed_r18.yaml: set it without the "
                      "+ (max_epochs=4), or with ++ to add or override it."),
    ("augmentations=mocov3", "In 'seed_base': Could not find 'augmentations/mocov3'; "
                             "available options in 'augmentations': compress, mocov2, "
                             "mocov2_small_patches, weak."),
])
def test_hydras_refusals_of_an_override_are_one_sentence(override, sentence):
    with pytest.raises(ConfigError) as err:
        check_overrides([*ARGV, override])
    assert str(err.value) == sentence


def test_a_cache_setting_typo_names_the_setting_meant(tiny_data):
    from seed_solo.harness.cache_pass import settings

    cfg = _cfg("+cache.path=/tmp/c", "+cache.viewz=4")
    with pytest.raises(ConfigError, match=r"unknown config key 'cache.viewz'; cache takes .* "
                       r"Did you mean cache.views\b"):
        settings(cfg)


def test_a_methods_own_declaration_drives_the_check():
    """A method (or objective) that adds keys declares them with ``known_kwargs``."""

    class WithObjective(METHODS["seed"] if "seed" in METHODS else object):
        @staticmethod
        def known_kwargs(cfg):
            return ["teacher", "objective", "beta"]

    METHODS["seed_test_objective"] = WithObjective
    try:
        cfg = _cfg("method=seed_test_objective", "+method_kwargs.objective=simreg")
        del cfg.method_kwargs["queue_size"], cfg.method_kwargs["tau_teacher"]
        for key in ("teacher_format", "teacher_precision", "tau_student", "proj_hidden_dim",
                    "proj_output_dim"):
            del cfg.method_kwargs[key]
        check_method_kwargs(cfg)
        cfg.method_kwargs.betta = 2
        with pytest.raises(ConfigError, match="Did you mean method_kwargs.beta"):
            check_method_kwargs(cfg)
    finally:
        del METHODS["seed_test_objective"]


def test_solo_learns_bare_asserts_become_one_sentence():
    with pytest.raises(ConfigError, match=r"solo-learn refused the config: `assert "
                       r"cfg.data.dataset in _SUPPORTED_DATASETS` failed "
                       r"\(solo/args/pretrain.py:\d+\)"):
        with config_errors():
            parse_pretrain(_cfg("data.dataset=imagenet-1k"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="accelerator=gpu works here")
def test_lightnings_refusal_of_the_trainer_settings_is_one_sentence():
    from seed_solo.harness.trainer import build_trainer

    with pytest.raises(ConfigError, match=r"Lightning refused the trainer settings .*: No "
                       r"supported gpu backend found"):
        build_trainer(_cfg("accelerator=gpu"), [], 1)


def test_solo_learns_refusal_of_a_scheduler_name_is_one_sentence(tiny_data):
    from seed_solo.harness.methods.seed import SEED
    from tests.support.seed_method import make_cfg

    model = SEED(make_cfg(tiny_data, "scheduler.name=cosin", "backbone.name=tiny_resnet10"))
    with pytest.raises(ConfigError, match=r"solo-learn refused the config: cosin not in "
                       r"\(warmup_cosine, cosine, step\) \(solo/methods/base.py:\d+\)"):
        with config_errors():
            model.configure_optimizers()
