"""Checkpoint layouts of public SSL teachers, each a pure state-dict conversion to one model.

Every format turns its checkpoint into the keys of ``Embedder(ResNet, head)``: ``backbone.*``
(torchvision ResNet keys, any depth or width, read off the checkpoint) and ``head.*`` (an MLP
rebuilt from its keys, or nothing: the pooled feature is the embedding). The keys a format
knows to be training-only (MoCo's key encoder and queue, SwAV's prototypes...) are dropped;
every other key must fit, or loading fails naming it.

=========  ===================================================  ==========================  =====
format     keys (after ``state_dict`` and a ``module.`` prefix)  head -> d                   input
=========  ===================================================  ==========================  =====
moco       ``encoder_q.*`` (drop ``encoder_k.*``, ``queue*``)    v1 fc / v2 fc.0-ReLU-fc.2   imnet
mocov3     ``base_encoder.*`` (drop ``momentum_encoder.*``,      fc: Lin-BN-ReLU-Lin-BN      imnet
           ``predictor.*``)
swav       flat ``*`` (drop ``prototypes.*``)                    projection_head: Lin-BN-    imnet
                                                                 ReLU-Lin (L2-normalised)
simclr     flat torchvision keys (drop ``fc.*``)                 none: pooled F              [0,1]
backbone   flat torchvision keys (drop ``fc.*``): DINO,          none: pooled F              imnet
           Barlow Twins, VICReg
=========  ===================================================  ==========================  =====
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Set, Tuple

from torch import nn

from seed_solo.core.errors import CheckpointError, ConfigError
from seed_solo.nets.normalize import IMAGENET_MEAN, IMAGENET_STD, Renormalize
from seed_solo.nets.resnet import ResNet, arch_name, spec_from_state_dict
from seed_solo.runs.checkpoint_files import StateDict, load_exact, unwrap_state_dict
from seed_solo.teachers.heads import Embedder, mlp_from_state_dict, output_dim
from seed_solo.teachers.meta_layouts import META_FORMATS, build_meta_layout, detect_meta_layout

INPUT_NORMS = ("imagenet", "none")


@dataclass(frozen=True)
class Format:
    """A checkpoint layout.

    Attributes:
        name: the ``teacher_format`` value.
        encoder: prefix of the network's keys (``""``: the whole dict).
        head: prefix of the head's keys inside the encoder (None: no head, d = F).
        drop: key prefixes that are training-only and dropped.
        input_norm: ``imagenet`` (mean/std normalised inputs) or ``none`` ([0, 1] pixels).
        detect: True when a key set (``module.`` stripped) is of this layout.
        description: one line for ``seed-solo zoo`` and errors.
        normalize: the original forward L2-normalises the embedding (SwAV).
    """

    name: str
    encoder: str
    head: str | None
    drop: Tuple[str, ...]
    input_norm: str
    detect: Callable[[Set[str]], bool] | None
    description: str
    normalize: bool = False

    def convert(self, sd: Mapping[str, Any]) -> StateDict:
        """Pure conversion to ``Embedder`` keys: ``backbone.*``, ``head.*``; dropped keys gone;
        keys this layout does not know are kept as they are, so loading names them."""
        sd = strip_module(sd)
        out: StateDict = {}
        for key, value in sd.items():
            if key.startswith(self.drop):
                continue
            if not key.startswith(self.encoder):
                out[key] = value
                continue
            rest = key[len(self.encoder):]
            if self.head is not None and rest.startswith(self.head):
                out["head." + rest[len(self.head):]] = value
            else:
                out["backbone." + rest] = value
        return out


    def source_key(self, key: str) -> str:
        """The checkpoint's name (``module.`` prefix left out) of a converted key."""
        if key.startswith("head.") and self.head is not None:
            return self.encoder + self.head + key[len("head."):]
        if key.startswith("backbone."):
            return self.encoder + key[len("backbone."):]
        return key


def strip_module(sd: Mapping[str, Any]) -> Dict[str, Any]:
    """Remove the ``module.`` prefix DistributedDataParallel adds, when every key has it."""
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module."):]: v for k, v in sd.items()}
    return dict(sd)


def _has(prefix: str) -> Callable[[Set[str]], bool]:
    return lambda keys: any(k.startswith(prefix) for k in keys)


def _is_resnet(keys: Set[str]) -> bool:
    return "conv1.weight" in keys and "layer1.0.conv1.weight" in keys


FORMATS: Dict[str, Format] = {
    f.name: f
    for f in (
        Format("mocov3", "base_encoder.", "fc.", ("momentum_encoder.", "predictor."), "imagenet",
               _has("base_encoder."), "MoCo v3 ResNet: base_encoder + 2-layer BN head"),
        Format("moco", "encoder_q.", "fc.", ("encoder_k.", "queue"), "imagenet",
               _has("encoder_q."), "MoCo v1/v2: encoder_q with fc (v1) or fc.0/fc.2 (v2) head"),
        Format("swav", "", "projection_head.", ("prototypes.",), "imagenet",
               lambda k: _is_resnet(k) and (_has("projection_head.")(k) or _has("prototypes.")(k)),
               "SwAV ResNet-50 / RN50w2/w4/w5 with projection_head, prototypes dropped",
               normalize=True),
        Format("simclr", "", None, ("fc.",), "none", None,
               "SimCLR v1 converted to PyTorch: backbone only, inputs in [0, 1] (no mean/std)"),
        Format("backbone", "", None, ("fc.",), "imagenet", _is_resnet,
               "backbone only (DINO, Barlow Twins, VICReg): pooled features are the embedding"),
    )
}


def detect_format(sd: Mapping[str, Any]) -> str:
    """The name of the first format whose ``detect`` accepts the keys of ``sd``: the ViT
    layouts of :mod:`seed_solo.teachers.meta_layouts` first, then the ResNet ones.

    Raises:
        ValueError: no format fits; names a few keys and the formats.
    """
    keys = set(strip_module(sd))
    vit = detect_meta_layout(keys)
    if vit is not None:
        return vit
    for fmt in FORMATS.values():
        if fmt.detect is not None and fmt.detect(keys):
            return fmt.name
    sample = ", ".join(sorted(keys)[:6])
    raise CheckpointError(
        f"could not detect the checkpoint's layout from its keys ({sample}, ...); expected one "
        f"of {', '.join([*META_FORMATS, *FORMATS])} or a solo-learn .ckpt with args.json beside "
        "it: pass teacher_format explicitly."
    )


def build_from_checkpoint(raw: Any, fmt: str = "auto", name: str = "checkpoint",
                          input_norm: str | None = None, embedding: str | None = None,
                          head: str | None = None
                          ) -> Tuple[nn.Module, int, nn.Module | None, str]:
    """Build the teacher of a loaded checkpoint ``raw`` in layout ``fmt``.

    Args:
        raw: what ``torch.load`` returned (a dict, possibly holding ``state_dict``).
        fmt: a key of :data:`FORMATS` or ``auto``.
        name: the file's name, for messages.
        input_norm: override the format's input normalisation (``imagenet`` or ``none``).
        embedding: ViT layouts only: ``cls`` (default), ``mean`` or ``cls+mean``.
        head: ``none`` leaves the file's projection head out: a ResNet layout then embeds with
            the pooled backbone features (SimReg's and CompRess's target), a ViT layout with its
            token embedding; default: the head.

    Returns:
        (model, d, preprocess, description); ``model`` maps ImageNet-normalised images to (B, d).
    """
    sd = unwrap_state_dict(raw)
    if fmt == "auto":
        fmt = detect_format(sd)
    norm = input_norm or "imagenet"
    if norm not in INPUT_NORMS:
        raise ConfigError(f"input_norm must be one of {INPUT_NORMS}, got {norm!r}.")
    if fmt in META_FORMATS:
        model, dim, desc = build_meta_layout(strip_module(sd), fmt, name, embedding, head)
        pre = Renormalize(IMAGENET_MEAN, IMAGENET_STD) if norm == "none" else None
        return model, dim, pre, desc
    if embedding not in (None, "pooled"):
        raise ConfigError(f"teacher_options.embedding={embedding!r} applies to ViT formats "
                          f"({', '.join(META_FORMATS)}); {fmt!r} embeds pooled features: drop it.")
    layout = FORMATS[fmt]
    converted = layout.convert(sd)
    if head not in (None, "projector", "none"):
        raise ConfigError(f"teacher_options.head must be 'none' (the pooled backbone features) or "
                         f"left unset, got {head!r}.")
    if head == "none":
        converted = {k: v for k, v in converted.items() if not k.startswith("head.")}
    backbone_sd = {k[len("backbone."):]: v for k, v in converted.items()
                   if k.startswith("backbone.")}
    try:
        spec = spec_from_state_dict(backbone_sd)
    except ValueError as err:
        raise CheckpointError(f"{name} as format {fmt!r}: {err}") from err
    backbone = ResNet(spec)
    head_sd = {k[len("head."):]: v for k, v in converted.items() if k.startswith("head.")}
    head = mlp_from_state_dict(head_sd, "relu", f"{name} head") if head_sd else None
    model = Embedder(backbone, head, normalize=layout.normalize)
    load_exact(model, converted, name, fmt, layout.source_key)
    dim = output_dim(model.head, spec.num_features)
    norm = input_norm or layout.input_norm
    if norm not in INPUT_NORMS:
        raise ConfigError(f"input_norm must be one of {INPUT_NORMS}, got {norm!r}.")
    pre = Renormalize(IMAGENET_MEAN, IMAGENET_STD) if norm == "none" else None
    return model, dim, pre, f"{fmt} {arch_name(spec)} -> {dim}"
