"""A pretraining run's config and method: solo-learn's main_pretrain, with seed-solo registered.

``python -m seed_solo.distill`` and the cache pass parse their config here; the benchmarks and
tests build the same method the same way.
"""

from __future__ import annotations

from typing import Any, Tuple

import torch
from omegaconf import DictConfig, OmegaConf
from solo.args import pretrain as solo_pretrain
from solo.methods import METHODS
from solo.utils.misc import make_contiguous

from seed_solo.core.errors import ConfigError
from seed_solo.core.objectives.registry import DISTILL_METHODS
from seed_solo.harness.config import check_data, devices_for_parse, require_epochs
from seed_solo.harness.config_keys import check_method_kwargs
from seed_solo.harness.registration import register

# solo-learn's main_pretrain insists on 2 large crops except for these methods
ANY_CROPS = ("seed", "wmse", "mae")


def parse_pretrain(cfg: DictConfig, check: bool = True) -> Tuple[DictConfig, Any]:
    """(solo-learn's parsed pretrain config, the Trainer's ``devices``) of a distill config.

    Registers seed-solo with solo-learn (the run's ``timm:``/``torchvision:`` student too), and
    refuses an unknown method, a ``method_kwargs`` key the method does not read, or a crop
    count the method cannot train on.
    """
    OmegaConf.set_struct(cfg, False)
    register([str(cfg.get("backbone", {}).get("name", ""))])
    check_method_kwargs(cfg)
    if check:
        require_epochs(cfg)
    devices = devices_for_parse(cfg, check)
    check_data(cfg)
    cfg = solo_pretrain.parse_cfg(cfg)
    if cfg.method not in METHODS:
        raise ConfigError(f"unknown method {cfg.method!r}; choose from {sorted(METHODS)}.")
    if cfg.data.num_large_crops != 2 and cfg.method not in ANY_CROPS:
        raise ConfigError(
            f"{cfg.method} needs 2 large crops, the augmentations give "
            f"{cfg.data.num_large_crops}; set num_crops: 2 in the first augmentation."
        )
    if cfg.method in DISTILL_METHODS:  # the objective's settings, checked before any data
        cfg = METHODS[cfg.method].add_and_assert_specific_cfg(cfg)
    return cfg, devices


def build_method(cfg: DictConfig) -> torch.nn.Module:
    """The solo-learn method ``cfg.method`` (SEED loads its teacher here), laid out in memory
    as solo-learn's main_pretrain lays it out."""
    model = METHODS[cfg.method](cfg)
    make_contiguous(model)
    if not cfg.performance.disable_channel_last:
        model = model.to(memory_format=torch.channels_last)
    return model
