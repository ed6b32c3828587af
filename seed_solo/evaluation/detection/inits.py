"""Where a detector's backbone starts: a trained student, supervised ImageNet weights, or
random weights, of one architecture.

An initialisation is named by a label and a source:

- a seed-solo (or solo-learn) run folder or ``.ckpt``: the student, loaded by
  :func:`seed_solo.students.load.load_student` (every key checked, no teacher);
- ``supervised``: the architecture's supervised ImageNet weights from this machine's caches
  (nothing is downloaded): torchvision's file in ``$TORCH_HOME/hub/checkpoints`` for
  torchvision models (``resnet18/34/50``, ``torchvision:NAME``), timm's in the Hugging Face
  cache for timm models;
- ``random``: the architecture with random weights (seeded).

The architecture is the students' (every run of one comparison must share it), or
``backbone.name`` when no run folder is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Union

import timm
import torch
import torchvision
from torch import nn

from seed_solo.core.errors import ConfigError, MissingFileError
from seed_solo.nets.library_models import timm_model, torchvision_model
from seed_solo.runs.checkpoint_files import read_checkpoint
from seed_solo.runs.folders import find_checkpoint, read_args
from seed_solo.students.load import load_student
from seed_solo.students.registry import STUDENTS
from seed_solo.students.solo_backbone import CIFAR, build_solo_backbone

SUPERVISED = "supervised"
RANDOM = "random"
#: torchvision names of seed-solo's (and solo-learn's) ResNet students
TORCHVISION_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


@dataclass(frozen=True)
class Init:
    """One initialisation: ``label`` in the table, ``source`` a run folder, ``.ckpt``,
    ``supervised`` or ``random``."""

    label: str
    source: str

    @property
    def is_run(self) -> bool:
        return self.source not in (SUPERVISED, RANDOM)


@dataclass(frozen=True)
class Architecture:
    """The backbone every initialisation builds: its registry name, kwargs, and the data set
    and method of its runs (a CIFAR run has solo-learn's 3x3 stem)."""

    name: str
    kwargs: Dict[str, Any] = field(default_factory=dict)
    dataset: str = "imagenet"
    method: str = ""


def parse_inits(value: Union[Mapping[str, str], Sequence[str], str]) -> List[Init]:
    """``{label: source}``, or a list of sources labelled by their run's method
    (``seed``, ``mocov2plus``), ``supervised`` or ``random``."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping):
        found = [Init(str(k), str(v)) for k, v in value.items()]
    else:
        found = []
        for source in (str(v) for v in value):
            label = source if source in (SUPERVISED, RANDOM) else _run_label(source)
            taken = {i.label for i in found}
            label = next(f"{label}-{n}" for n in range(2, 100) if f"{label}-{n}" not in taken) \
                if label in taken else label
            found.append(Init(label, source))
    if not found:
        raise ConfigError("inits is empty; give at least one: a run folder, supervised or "
                          "random (e.g. inits=[trained_models/seed/RUN,random]).")
    return found


def _run_label(source: str) -> str:
    try:
        return str(load_args(source).get("method") or Path(source).name)
    except FileNotFoundError:
        raise MissingFileError(f"inits names {source!r}, which is neither a run folder, a "
                               ".ckpt, supervised nor random; check the path.") from None


def load_args(source: str) -> Dict[str, Any]:
    """The ``args.json`` of a run folder or of a ``.ckpt``'s folder."""
    return read_args(find_checkpoint(source, log=lambda *_: None))


def architecture(inits: Sequence[Init], backbone: Mapping[str, Any]) -> Architecture:
    """The architecture of the runs among ``inits`` (all must agree), else ``backbone``'s."""
    runs = [i for i in inits if i.is_run]
    if not runs:
        name = (backbone or {}).get("name")
        if not name:
            raise ConfigError("no run folder among inits: set backbone.name (e.g. "
                              "backbone.name=resnet18) for supervised and random weights.")
        return Architecture(str(name), dict(backbone.get("kwargs") or {}))
    found = []
    for init in runs:
        args = load_args(init.source)
        bb = args.get("backbone") or {}
        found.append((init, Architecture(str(bb.get("name")), dict(bb.get("kwargs") or {}),
                                         (args.get("data") or {}).get("dataset", "imagenet"),
                                         str(args.get("method", "")))))
    first = found[0][1]
    for init, arch in found[1:]:
        if (arch.name, arch.kwargs, arch.dataset in CIFAR) != (
                first.name, first.kwargs, first.dataset in CIFAR):
            raise ConfigError(
                f"inits {found[0][0].label!r} and {init.label!r} are different architectures "
                f"({first.name} {first.kwargs} vs {arch.name} {arch.kwargs}); a comparison "
                "trains one detector from several initialisations of one backbone: run each "
                "architecture in its own command.")
    return first


def init_backbone(init: Init, arch: Architecture, seed: int = 0) -> nn.Module:
    """The backbone ``init`` starts from, (B, 3, H, W) -> (B, F)."""
    if init.is_run:
        return load_student(init.source).backbone
    if init.source == RANDOM:
        torch.manual_seed(seed)
        return build_solo_backbone(arch.name, arch.kwargs, arch.method, arch.dataset)[0]
    return supervised_backbone(arch)


def _torchvision_name(name: str) -> str | None:
    if name.startswith("torchvision:"):
        return name.split(":", 1)[1]
    return name if name in TORCHVISION_RESNETS else None


def _timm_name(arch: Architecture) -> str | None:
    """The timm model name of a timm student (``mobilenetv3_large`` -> mobilenetv3_large_100)."""
    if arch.name.startswith("timm:"):
        return arch.name.split(":", 1)[1]
    if arch.name not in STUDENTS:
        return None
    model = build_solo_backbone(arch.name, arch.kwargs, arch.method, arch.dataset)[0]
    return (getattr(model, "pretrained_cfg", None) or {}).get("architecture")


def supervised_backbone(arch: Architecture) -> nn.Module:
    """The architecture with its library's supervised ImageNet weights, read from this
    machine's cache (never downloaded)."""
    if arch.dataset in CIFAR and arch.name.startswith("resnet"):
        raise ConfigError(f"{arch.name} trained on {arch.dataset} has solo-learn's 3x3 CIFAR "
                          "stem; supervised ImageNet weights have the 7x7 one: leave "
                          "supervised out of inits.")
    tv = _torchvision_name(arch.name)
    if tv is not None:
        weights = torchvision.models.get_model_weights(tv).DEFAULT
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if not path.is_file():
            raise MissingFileError(
                f"torchvision's supervised ImageNet weights of {tv} are not on this machine "
                f"({path}); download {weights.url} to that file (nothing is downloaded "
                "here), or leave supervised out of inits.")
        sd = read_checkpoint(path, what="torchvision weights")
        return torchvision_model(tv, sd, **arch.kwargs)[0]
    name = _timm_name(arch)
    if name is not None:
        path = _timm_cached_file(name)
        sd = read_checkpoint(path, what="timm weights") if path.suffix != ".safetensors" \
            else _safetensors(path)
        return timm_model(name, sd, **arch.kwargs)[0]
    raise ConfigError(f"seed-solo knows no supervised ImageNet weights of {arch.name!r}; "
                      "leave supervised out of inits.")


def _timm_cached_file(name: str) -> Path:
    """timm's weights of ``name`` in the Hugging Face cache, or one sentence on getting them."""
    from huggingface_hub import try_to_load_from_cache  # timm's own dependency

    cfg = timm.create_model(name, pretrained=False).pretrained_cfg
    repo = cfg.get("hf_hub_id")
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename) if repo else None
        if isinstance(found, str):
            return Path(found)
    raise MissingFileError(
        f"timm's supervised ImageNet weights of {name} are not in this machine's Hugging Face "
        f"cache (repository {repo}); fetch them once with timm.create_model({name!r}, "
        "pretrained=True) where there is internet (nothing is downloaded here), or leave "
        "supervised out of inits.")


def _safetensors(path: Path) -> Dict[str, torch.Tensor]:
    from safetensors.torch import load_file  # timm's own dependency

    return load_file(str(path))
