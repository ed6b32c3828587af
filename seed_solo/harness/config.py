"""A command's config: composed by hydra as the commands do, parsed as solo-learn does.

:func:`compose_config` is what the demo, the benchmarks and the tests use to build the config a
command would get from its command line; :func:`parse_linear` (and, for training,
:func:`seed_solo.harness.pretrain.parse_pretrain`) are the commands' own first step:
solo-learn's ``parse_cfg``, after the checks solo-learn lacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence, Tuple, Union

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from solo.args import linear as solo_linear

from seed_solo.core.errors import ConfigError
from seed_solo.data.image_folders import check_data_paths
from seed_solo.harness.backbones import register_students
from seed_solo.harness.launch import check_launch


def compose_config(config_dir: Union[str, Path], name: str,
                   overrides: Sequence[str] = ()) -> DictConfig:
    """The config ``python -m seed_solo.<command> --config-path config_dir --config-name name
    *overrides`` starts from (hydra's compose; keys may be added afterwards)."""
    with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.2"):
        cfg = compose(config_name=name, overrides=list(overrides))
    OmegaConf.set_struct(cfg, False)
    return cfg


def require_epochs(cfg: DictConfig) -> None:
    """``max_epochs`` must be a whole number of at least 1 (0 would divide by zero later)."""
    epochs = cfg.get("max_epochs")
    if not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(
            f"max_epochs={epochs}: train for at least 1 epoch (max_epochs=1 or more).")


def devices_for_parse(cfg: DictConfig, check: bool = True) -> Any:
    """solo-learn's parse_cfg scales the lr by ``len(cfg.devices) * cfg.num_nodes``: give it a
    list, after checking both against what torchrun or srun started (:mod:`.launch`;
    ``check=False`` for a pass that trains nothing and shards over whatever was started).

    Returns the user's original value, to hand to the Trainer afterwards.
    """
    original = cfg.get("devices", 1)
    if isinstance(original, int):
        cfg.devices = list(range(max(1, original)))
    elif isinstance(original, str):
        count = int(original) if original.isdigit() else len(original.split(","))
        cfg.devices = list(range(max(1, count)))
    if check:
        check_launch(len(cfg.devices), int(cfg.get("num_nodes", 1) or 1), original)
    return original


def processes(cfg: DictConfig) -> int:
    """How many processes train: ``devices`` (a list, after :func:`devices_for_parse`) per
    node times ``num_nodes``."""
    return len(cfg.devices) * int(cfg.get("num_nodes", 1) or 1)


def global_batch(cfg: DictConfig) -> int:
    """Images per optimiser step over all processes: ``optimizer.batch_size`` is per process."""
    return int(cfg.optimizer.batch_size) * processes(cfg)


def check_data(cfg: DictConfig) -> None:
    """The image folders of ``cfg.data`` exist and list each image once
    (:func:`seed_solo.data.image_folders.check_data_paths`), before solo-learn lists them."""
    data = cfg.get("data") or {}
    check_data_paths(str(data.get("dataset", "")), str(data.get("format", "image_folder")),
                     {"data.train_path": data.get("train_path"),
                      "data.val_path": data.get("val_path")})


def parse_linear(cfg: DictConfig) -> Tuple[DictConfig, Any]:
    """(solo-learn's parsed linear config, the Trainer's ``devices``)."""
    OmegaConf.set_struct(cfg, False)
    register_students([str(cfg.get("backbone", {}).get("name", ""))])  # solo checks the name
    require_epochs(cfg)
    check_data(cfg)
    devices = devices_for_parse(cfg)
    return solo_linear.parse_cfg(cfg), devices
