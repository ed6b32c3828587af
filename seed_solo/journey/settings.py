"""What the journey picks so that a user does not have to: the config, the machine's settings,
the data's layout, the objective; each as hydra overrides of the scripts' own configs.

The picks come first and the user's overrides last: a key the user sets (``devices=2``,
``+enable_progress_bar=True``) replaces the pick for that key, whatever its ``+``.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from seed_solo.core.errors import ConfigError, DataError, MissingFileError
from seed_solo.core.unknown_names import unknown_name
from seed_solo.data.folders import ImageFolderShape

#: the scripts' configs, in the checkout beside the package
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
#: the distill (and linear) config of each student that has its own; any other student takes
#: ``seed_r18`` with ``backbone.name`` set
STUDENT_CONFIGS: Dict[str, str] = {"resnet18": "seed_r18", "resnet34": "seed_r34",
                                   "mobilenetv3_large": "seed_mbv3",
                                   "efficientnet_b0": "seed_effb0"}
#: the crop when none is given: a multiple of every ViT patch in use (8, 14, 16, 32)
DEFAULT_CROP = 224
#: images per device and step at most (the configs' 32 per GPU, the paper's 256 on 8 GPUs)
DEFAULT_BATCH = 32
#: the objective every seed-solo build knows
SEED_OBJECTIVE = "seed"


def config_dir(kind: str) -> Path:
    """``configs/<kind>/imagenet`` of the checkout (``kind``: distill or linear)."""
    folder = CONFIGS / kind / "imagenet"
    if not folder.is_dir():
        raise MissingFileError(
            f"{folder} not found: seed-solo distill composes the configs of a seed-solo "
            "checkout; install seed-solo from its checkout (make setup, or pip install -e .)."
        )
    return folder


def student_config(student: str) -> Tuple[str, List[str]]:
    """(config name, overrides) of a student: its own config, else ``seed_r18`` renamed."""
    if student in STUDENT_CONFIGS:
        return STUDENT_CONFIGS[student], []
    return "seed_r18", [f"backbone.name={student}"]


def run_name(student: str) -> str:
    """The ``name`` of a journey's run, in its checkpoint files: ``seed-<student>``."""
    return "seed-" + "".join(c if c.isalnum() or c in "_." else "-" for c in student)


def objective_registry() -> Optional[ModuleType]:
    """The objectives' registry (``seed_solo.core.objectives.registry``: ``OBJECTIVES`` and
    ``overrides(name)``) where this build has one, else None: SEED's loss alone. The one place
    the journey looks objectives up."""
    try:  # the registry of objectives beside SEED's is a later addition to the core
        return importlib.import_module("seed_solo.core.objectives.registry")
    except ModuleNotFoundError:
        return None


def objectives() -> Tuple[str, ...]:
    """The names ``--objective`` accepts."""
    registry = objective_registry()
    return tuple(registry.OBJECTIVES) if registry else (SEED_OBJECTIVE,)


def objective_overrides(name: str) -> List[str]:
    """The overrides that train with objective ``name`` (the registry's, where there is one);
    an unknown name names the known ones."""
    known = objectives()
    if name not in known:
        raise ConfigError(unknown_name("objective", name, known))
    registry = objective_registry()
    return list(registry.overrides(name)) if registry else []


@dataclass(frozen=True)
class Machine:
    """Where a run trains: accelerator, devices, precision, loader workers."""

    accelerator: str
    devices: int
    precision: str
    workers: int

    def overrides(self) -> List[str]:
        many = self.devices > 1
        return [f"accelerator={self.accelerator}", f"devices={self.devices}",
                f"strategy={'ddp' if many else 'auto'}", f"sync_batchnorm={many}",
                f"precision={self.precision}", f"data.num_workers={self.workers}"]

    def describe(self) -> str:
        where = (f"{self.devices} GPU{'s' if self.devices > 1 else ''}"
                 if self.accelerator == "gpu" else "the CPU")
        workers = f"{self.workers} loader worker{'' if self.workers == 1 else 's'}"
        return f"{where}, precision {self.precision}, {workers}"


def this_machine() -> Machine:
    """Every visible GPU (DDP when several), bf16 where the GPU has it, else float16 mixed;
    else the CPU in float32. Loader workers: the CPU cores per device, less one, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if torch.cuda.is_available():
        devices = torch.cuda.device_count()
        precision = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        return Machine("gpu", devices, precision, max(0, min(8, (cores or 1) // devices - 1)))
    return Machine("cpu", 1, "32", max(0, min(8, (cores or 1) - 1)))


def batch_size(shape: ImageFolderShape, devices: int, asked: Optional[int]) -> int:
    """Images per device and step: ``asked``, else :data:`DEFAULT_BATCH`, at most what gives
    every device one whole batch per epoch (the last short batch is dropped)."""
    most = shape.images // devices
    if most < 2:
        raise DataError(f"{shape.train} holds {shape.images} images: training needs at least 2 "
                        f"per device and step ({devices} device(s)); add images.")
    return min(asked or DEFAULT_BATCH, most)


def quoted(value: object) -> str:
    """``value`` as a hydra override's quoted string: paths may hold ``=`` or spaces."""
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def data_paths(shape: ImageFolderShape) -> List[str]:
    """Where the images are: any image folders (solo-learn's ``custom``), read by torchvision."""
    val = quoted(shape.val) if shape.val else "null"
    return ["data.dataset=custom", "data.format=image_folder",
            f"data.train_path={quoted(shape.train)}", f"data.val_path={val}"]


def data_overrides(shape: ImageFolderShape) -> List[str]:
    """:func:`data_paths`, and what the images are: labelled or not, with validation or not."""
    out = [*data_paths(shape), f"knn_eval.enabled={shape.val is not None}"]
    if not shape.labelled:
        out.append("+data.no_labels=True")
    return out


def skipped_evaluations(shape: ImageFolderShape) -> str:
    """What a run on ``shape`` does not evaluate while it trains, and why ("" when nothing)."""
    if not shape.labelled:
        return ("online kNN and the online linear probe are skipped: the images have no labels "
                "(no class sub-folders)")
    if shape.val is None:
        return ("online kNN and the probe's validation accuracy are skipped: there is no val/ "
                "folder beside train/")
    return ""


def progress_bar() -> str:
    """Lightning's bar on a terminal; in a log, the epoch lines alone."""
    return f"+enable_progress_bar={sys.stderr.isatty()}"


def key_of(override: str) -> str:
    """``a.b`` of ``a.b=1``, ``+a.b=1``, ``++a.b=1`` or ``~a.b``."""
    return override.split("=", 1)[0].lstrip("+~")


def merged(picks: Sequence[str], user: Sequence[str]) -> List[str]:
    """``picks`` without the keys ``user`` sets, then ``user``."""
    theirs = {key_of(o) for o in user}
    return [o for o in picks if key_of(o) not in theirs] + list(user)
