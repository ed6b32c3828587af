"""Meta's published teacher layouts built with timm: the DINOv2, DINOv3, DINO and MoCo v3 ViTs
(:mod:`seed_solo.teachers.vit`) and DINOv3's ConvNeXts (:mod:`seed_solo.teachers.convnext`).

============  =========================================================  ====================
format        keys (``module.`` stripped)                                embedding -> d
============  =========================================================  ====================
dinov2        flat: ``cls_token``, ``pos_embed``, ``mask_token``,         CLS (384/768/1024/
              ``register_tokens`` (reg4), ``blocks.N.ls1.gamma``,         1536), ``mean`` or
              ``mlp.w12``/``w3`` (ViT-g)                                  ``cls+mean`` (2x)
dinov3        flat: ``cls_token``, ``storage_tokens``, ``mask_token``,    as dinov2 (384/768/
              ``rope_embed.periods``, ``attn.qkv.bias_mask``              1024)
timm-dinov2   a timm DINOv2's ``state_dict()``: ``ls1.gamma``, no         as dinov2
              ``mask_token``, ``reg_token`` (reg4)
timm-dinov3   a timm DINOv3's ``state_dict()`` (Eva): ``reg_token``,       as dinov3
              ``gamma_1``, no ``pos_embed``
dino-vit      flat timm-style ViT keys, no ``mask_token``, no layer       CLS (384/768)
              scale
mocov3-vit    ``base_encoder.*`` (``momentum_encoder.*``,                 head(CLS): 3-layer
              ``predictor.*`` dropped), ``base_encoder.head.{0..7}``      MLP -> 256 (``head=
                                                                          none``: CLS)
convnext      DINOv3 ConvNeXt: ``downsample_layers.I.J``,                 normed global mean
              ``stages.I.J.{dwconv,pwconv1,pwconv2,gamma}``, ``norm``     (768/768/1024/1536)
============  =========================================================  ====================

Loading checks every key and shape, named as the user's file spells them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Set, Tuple

from torch import nn

from seed_solo.core.errors import CheckpointError, ConfigError
from seed_solo.runs.checkpoint_files import StateDict, load_exact
from seed_solo.teachers.convnext import PooledEmbedder, convnext
from seed_solo.teachers.heads import mlp_from_state_dict, output_dim
from seed_solo.teachers.vit import (
    EMBEDDINGS,
    TokenEmbedder,
    dino_vit,
    dinov2,
    dinov3,
    mocov3_head,
    mocov3_vit,
    timm_dinov2,
    timm_dinov3,
)


@dataclass(frozen=True)
class MetaLayout:
    """A checkpoint layout of Meta's, built with timm.

    Attributes:
        name: the ``teacher_format`` value.
        build: state dict (``module.`` stripped) -> (timm model, its state dict, head state dict).
        detect: True when a key set is of this layout.
        prefix: the checkpoint's prefix of the backbone's keys, for messages.
        embedding: the default embedding.
        description: one line for messages.
        head: the layout's own projection head, built from the head's state dict; a file of
            this layout must hold it unless the head is declined (``head="none"``). None: a
            head, if any, is rebuilt from its keys (:func:`mlp_from_state_dict`).
    """

    name: str
    build: Callable[[StateDict], Tuple[nn.Module, StateDict, StateDict]]
    detect: Callable[[Set[str]], bool]
    prefix: str
    embedding: str
    description: str
    head: Optional[Callable[[StateDict], nn.Module]] = None


META_FORMATS: Dict[str, MetaLayout] = {
    f.name: f
    for f in (
        MetaLayout("mocov3-vit", mocov3_vit,
                   lambda k: "base_encoder.cls_token" in k or _vit("base_encoder.")(k),
                   "base_encoder.", "cls", "MoCo v3 ViT: base_encoder + 3-layer BN head -> 256",
                   head=mocov3_head),
        MetaLayout("dinov3", dinov3, lambda k: bool({"storage_tokens", "rope_embed.periods"} & k)
                   or "blocks.0.attn.qkv.bias_mask" in k, "", "cls",
                   "DINOv3 ViT (storage_tokens, RoPE): backbone only"),
        MetaLayout("convnext", convnext, lambda k: "downsample_layers.0.0.weight" in k, "",
                  "pooled", "DINOv3 ConvNeXt (Meta's ConvNeXt keys): pooled, normed features"),
        # timm's own files of Meta's models first. A DINOv2 file of timm's keys is Meta's
        # without mask_token, which no forward uses: the same network, loaded as timm's. Meta
        # names a register model's registers register_tokens, timm reg_token.
        MetaLayout("timm-dinov2", timm_dinov2,
                   lambda k: {"cls_token", "pos_embed", "blocks.0.ls1.gamma"} <= k
                   and not {"mask_token", "register_tokens"} & k, "", "cls",
                   "DINOv2 ViT saved from timm (timm's keys): backbone only"),
        MetaLayout("timm-dinov3", timm_dinov3,
                   lambda k: {"cls_token", "reg_token", "blocks.0.gamma_1"} <= k
                   and "pos_embed" not in k, "", "cls",
                   "DINOv3 ViT saved from timm (timm's Eva keys): backbone only"),
        # DINOv2's blocks have layer scales (ls1.gamma), DINO's none: a key missing elsewhere
        # still finds its layout, whose build names it
        MetaLayout("dinov2", dinov2, lambda k: "mask_token" in k and "pos_embed" in k
                   or _vit("")(k) and "blocks.0.ls1.gamma" in k, "", "cls",
                   "DINOv2 ViT (+ register_tokens): backbone only"),
        MetaLayout("dino-vit", dino_vit, lambda k: ("cls_token" in k and "pos_embed" in k
                                                     or _vit("")(k)) and "mask_token" not in k,
                   "", "cls", "DINO ViT (timm-style keys): backbone only"),
    )
}


def _vit(prefix: str) -> Callable[[Set[str]], bool]:
    """Keys of a timm-style ViT block under ``prefix``."""
    return lambda k: f"{prefix}blocks.0.attn.qkv.weight" in k and (
        f"{prefix}blocks.0.mlp.fc1.weight" in k or f"{prefix}blocks.0.mlp.w12.weight" in k)


def detect_meta_layout(keys: Set[str]) -> str | None:
    """The name of the ViT layout of ``keys`` (``module.`` stripped), None when none fits."""
    for fmt in META_FORMATS.values():
        if fmt.detect(keys):
            return fmt.name
    return None


def _source_key(fmt: MetaLayout) -> Callable[[str], str]:
    # timm's names back to Meta's, so messages name keys as the user's file spells them
    renames = {"dinov2": [("reg_token", "register_tokens")],
               "convnext": [("stem.", "downsample_layers.0."), ("conv_dw", "dwconv"),
                            ("mlp.fc", "pwconv"), ("head.norm", "norm"),
                            (".blocks.", ".")],
               "dinov3": [("reg_token", "storage_tokens"), ("gamma_1", "ls1.gamma"),
                          ("gamma_2", "ls2.gamma"), ("q_bias", "qkv.bias"),
                          ("v_bias", "qkv.bias")]}.get(fmt.name, [])

    def name(key: str) -> str:
        for new, old in renames:
            key = key.replace(new, old)
        return fmt.prefix + key

    return name


def build_meta_layout(sd: StateDict, fmt: str, name: str = "checkpoint",
                      embedding: str | None = None,
                      head: str | None = None) -> Tuple[nn.Module, int, str]:
    """(TokenEmbedder, d, description) of a ViT state dict ``sd`` in layout ``fmt``.

    Args:
        head: ``none`` leaves a projection head out (the embedding is then the backbone's);
            otherwise a layout with its own head (MoCo v3) must hold all of it.

    Raises:
        CheckpointError: a missing, unexpected or wrong-shaped key, named as in the file.
    """
    layout = META_FORMATS[fmt]
    embedding = embedding or layout.embedding
    if layout.embedding == "pooled":
        if embedding != "pooled":
            raise ConfigError(f"{fmt}: a CNN embeds its pooled features; drop "
                              f"teacher_options.embedding={embedding!r}.")
        model, body, _ = layout.build(sd)
        load_exact(model, body, name, fmt, _source_key(layout))
        dim = int(model.num_features)
        return PooledEmbedder(model), dim, f"{fmt} ConvNeXt -> {dim}"
    if embedding not in EMBEDDINGS:
        raise ConfigError(f"teacher_options.embedding={embedding!r} is not one of "
                          f"{', '.join(EMBEDDINGS)}; pick one.")
    model, body, head_sd = layout.build(sd)
    load_exact(model, body, name, fmt, _source_key(layout))
    if head not in (None, "projector", "none"):
        raise ConfigError(f"teacher_options.head={head!r}: pass none (the backbone's embedding) "
                          "or leave it unset (the file's projection head).")
    projector = None
    if head == "none":
        head_sd = {}
    elif layout.head is not None and not head_sd:
        raise CheckpointError(
            f"{name} ({fmt}) lacks its projection head ({layout.prefix}head.*), which the "
            "publisher's model holds; fetch the file again, or pass teacher_options.head=none "
            "to distil the backbone's CLS token instead.")
    if head_sd:
        projector = (layout.head(head_sd) if layout.head is not None
                     else mlp_from_state_dict(head_sd, "relu", f"{name} head"))
        load_exact(projector, head_sd, f"{name} head", fmt,
                   lambda k: layout.prefix + "head." + k)
    width = int(model.embed_dim)
    feat = 2 * width if embedding == "cls+mean" else width
    if projector is not None and embedding != "cls":
        raise ConfigError(f"{fmt}: the projection head takes the CLS token; leave "
                          "teacher_options.embedding unset or 'cls'.")
    dim = output_dim(projector, feat) if projector is not None else feat
    registers = getattr(model, "num_reg_tokens", 0) or 0
    extra = f" +{registers} registers" if registers else ""
    desc = (f"{fmt} {type(model).__name__}-{width} x{len(model.blocks)}{extra} [{embedding}] "
            f"-> {dim}")
    return TokenEmbedder(model, embedding, projector), dim, desc
