"""ViT (and DINOv3 ConvNeXt) teachers in Meta's published layouts, built with timm and converted
by timm's own filters.

Each layout is a pure state-dict conversion (timm's ``checkpoint_filter_fn`` for DINOv2 and
DINOv3, a prefix rule for DINO and MoCo v3) onto a timm model whose size (width, depth, patch,
registers) is read off the checkpoint; loading then checks every key and shape by name.

============  =========================================================  ====================
format        keys (``module.`` stripped)                                embedding -> d
============  =========================================================  ====================
dinov2        flat: ``cls_token``, ``pos_embed``, ``mask_token``,         CLS (384/768/1024/
              ``register_tokens`` (reg4), ``blocks.N.ls1.gamma``,         1536), ``mean`` or
              ``mlp.w12``/``w3`` (ViT-g)                                  ``cls+mean`` (2x)
dinov3        flat: ``cls_token``, ``storage_tokens``, ``mask_token``,    as dinov2 (384/768/
              ``rope_embed.periods``, ``attn.qkv.bias_mask``              1024)
dino-vit      flat timm-style ViT keys, no ``mask_token``                 CLS (384/768)
mocov3-vit    ``base_encoder.*`` (``momentum_encoder.*``,                 head(CLS): 3-layer
              ``predictor.*`` dropped), ``base_encoder.head.{0..7}``      MLP -> 256
convnext      DINOv3 ConvNeXt: ``downsample_layers.I.J``,                 normed global mean
              ``stages.I.J.{dwconv,pwconv1,pwconv2,gamma}``, ``norm``     (768/768/1024/1536)
============  =========================================================  ====================

The models run at any crop size that is a multiple of the patch: the position embedding stays
at the checkpoint's grid (DINOv2: 37 x 37 patches of 14 px = 518 px) and is interpolated to
the input's grid at each forward, by DINOv2's own rule (bicubic, no antialiasing, a 0.1
patch offset: :func:`dinov2_resample`). A 224 px crop is 16 x 16 = 256
patches; 518 px is 1369 (about 5.3x the tokens, more than that in compute). DINOv3 uses RoPE
and has no grid.
"""

from __future__ import annotations

import math
import re
import types
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Set, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seed_solo.state_dict import StateDict, load_exact
from seed_solo.teachers.heads import mlp_from_state_dict, output_dim

EMBEDDINGS = ("cls", "mean", "cls+mean")

#: ViT width -> timm size name (the published S/B/L/g sizes)
_SIZES = {384: "small", 768: "base", 1024: "large", 1536: "giant"}


class TokenEmbedder(nn.Module):
    """(B, 3, H, W) -> timm ViT tokens (B, prefix + N, D) -> CLS / patch mean / both -> head.

    ``embedding``: ``cls`` (the normed CLS token, D), ``mean`` (mean of the normed patch tokens,
    registers left out, D) or ``cls+mean`` (their concatenation, 2D: DINOv2's linear probe input).
    """

    def __init__(self, backbone: nn.Module, embedding: str = "cls",
                 head: nn.Module | None = None) -> None:
        super().__init__()
        if embedding not in EMBEDDINGS:
            raise ValueError(f"teacher_options.embedding={embedding!r} is not one of "
                             f"{', '.join(EMBEDDINGS)}; pick one.")
        self.backbone = backbone
        self.head = head if head is not None else nn.Identity()
        self.embedding = embedding

    def forward(self, x: Tensor) -> Tensor:
        patch = self.backbone.patch_embed.patch_size
        if x.shape[-2] % patch[0] or x.shape[-1] % patch[1]:
            raise ValueError(
                f"crop {tuple(x.shape[-2:])} px is not a multiple of the ViT teacher's "
                f"{patch[0]} px patches; set the crop sizes to multiples of {patch[0]} "
                f"(e.g. {patch[0] * 16} = 16 x {patch[0]})."
            )
        tokens = self.backbone.forward_features(x)  # B x (prefix + N) x D, final norm applied
        cls = tokens[:, 0]
        if self.embedding == "cls":
            z = cls
        else:
            mean = tokens[:, self.backbone.num_prefix_tokens:].mean(dim=1)
            z = mean if self.embedding == "mean" else torch.cat([cls, mean], dim=1)
        return self.head(z)


def _depth(sd: Mapping[str, Any], prefix: str = "") -> int:
    found = {int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"blocks\.(\d+)\.",
                                                                 k))}
    if not found:
        raise ValueError(f"no '{prefix}blocks.N.*' keys: this is not a ViT checkpoint; pass "
                         "the right teacher_format.")
    return max(found) + 1


def _width(sd: Mapping[str, Any], key: str, fmt: str) -> int:
    if key not in sd:
        raise ValueError(f"{fmt} checkpoint lacks {key!r}; check teacher_format (keys start "
                         f"{', '.join(sorted(sd)[:4])}).")
    return int(sd[key].shape[-1])


def _size(width: int, fmt: str) -> str:
    if width not in _SIZES:
        raise ValueError(f"{fmt}: a width of {width} is none of the published sizes "
                         f"{sorted(_SIZES)}; build the model yourself or pass a timm:NAME format.")
    return _SIZES[width]


def _grid(num_pos: int, fmt: str) -> int:
    side = math.isqrt(num_pos)
    if side * side != num_pos:
        raise ValueError(f"{fmt}: pos_embed holds {num_pos} patch positions, not a square grid.")
    return side


def _create(name: str, **kwargs: Any) -> nn.Module:
    import timm

    return timm.create_model(name, pretrained=False, num_classes=0, **kwargs).eval()


# --- the layouts: state dict -> (timm model, converted state dict, head state dict) -----------
#: DINOv2's own position-embedding interpolation (its released models' settings)
DINOV2_INTERPOLATE_OFFSET = 0.1
DINOV2_INTERPOLATE_ANTIALIAS = False


def dinov2_resample(patch_pos: Tensor, grid: Tuple[int, int]) -> Tensor:
    """(1, M*M, D) patch position embeddings -> (1, H*W, D) for a grid of H x W patches, as
    DINOv2's ``interpolate_pos_encoding`` does: bicubic, no antialiasing, a scale factor of
    (H + 0.1) / M; timm's default (antialiased, by size) gives other values when it shrinks."""
    m = math.isqrt(patch_pos.shape[1])
    if grid == (m, m):
        return patch_pos
    dim = patch_pos.shape[-1]
    p = patch_pos.float().reshape(1, m, m, dim).permute(0, 3, 1, 2)
    scale = ((grid[0] + DINOV2_INTERPOLATE_OFFSET) / m, (grid[1] + DINOV2_INTERPOLATE_OFFSET) / m)
    p = F.interpolate(p, scale_factor=scale, mode="bicubic",
                      antialias=DINOV2_INTERPOLATE_ANTIALIAS)
    return p.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], dim).to(patch_pos.dtype)


def _dinov2_pos_embed(self: nn.Module, x: Tensor) -> Tensor:
    """timm ``VisionTransformer._pos_embed`` for NHWC patches, with :func:`dinov2_resample`."""
    b, h, w, c = x.shape  # B x H x W x D (dynamic_img_size patch embedding)
    prefix = 0 if self.no_embed_class else self.num_prefix_tokens
    prefix_pos, patch_pos = self.pos_embed[:, :prefix], self.pos_embed[:, prefix:]
    patch_pos = dinov2_resample(patch_pos, (h, w))
    x = x.reshape(b, h * w, c)
    tokens = [self.cls_token.expand(b, -1, -1)]
    if self.reg_token is not None:
        tokens.append(self.reg_token.expand(b, -1, -1))
    if self.no_embed_class:  # reg4: the CLS slot of pos_embed was folded into cls_token
        x = torch.cat(tokens + [x + patch_pos], dim=1)
    else:
        x = torch.cat(tokens + [x], dim=1) + torch.cat([prefix_pos, patch_pos], dim=1)
    return self.pos_drop(x)


def _dinov2(sd: StateDict) -> Tuple[nn.Module, StateDict, StateDict]:
    from timm.models.vision_transformer import checkpoint_filter_fn

    width = _width(sd, "cls_token", "dinov2")
    patch = int(sd["patch_embed.proj.weight"].shape[-1])
    grid = _grid(sd["pos_embed"].shape[1] - 1, "dinov2")
    reg = "_reg4" if "register_tokens" in sd else ""
    size = _size(width, "dinov2")
    model = _create(f"vit_{size}_patch14{reg}_dinov2", patch_size=patch, img_size=grid * patch,
                    depth=_depth(sd), dynamic_img_size=True)
    model._pos_embed = types.MethodType(_dinov2_pos_embed, model)
    return model, checkpoint_filter_fn(dict(sd), model), {}


def _dinov3(sd: StateDict) -> Tuple[nn.Module, StateDict, StateDict]:
    from timm.models.eva import checkpoint_filter_fn

    width = _width(sd, "cls_token", "dinov3")
    size = _size(width, "dinov3")
    bias = sd.get("blocks.0.attn.qkv.bias")
    # timm has a qkv-bias and a bias-free variant; the distilled B/L files hold all-zero biases
    qkvb = "_qkvb" if bias is not None and bool(bias.abs().sum() > 0) else ""
    patch = int(sd["patch_embed.proj.weight"].shape[-1])
    model = _create(f"vit_{size}_patch16_dinov3{qkvb}", patch_size=patch, depth=_depth(sd))
    return model, checkpoint_filter_fn(dict(sd), model), {}


def _dino_vit(sd: StateDict) -> Tuple[nn.Module, StateDict, StateDict]:
    from timm.models.vision_transformer import checkpoint_filter_fn

    width = _width(sd, "cls_token", "dino-vit")
    patch = int(sd["patch_embed.proj.weight"].shape[-1])
    grid = _grid(sd["pos_embed"].shape[1] - 1, "dino-vit")
    size = _size(width, "dino-vit")
    model = _create(f"vit_{size}_patch16_224", patch_size=patch, img_size=grid * patch,
                    depth=_depth(sd), dynamic_img_size=True)
    return model, checkpoint_filter_fn(dict(sd), model), {}


def _mocov3_vit(sd: StateDict) -> Tuple[nn.Module, StateDict, StateDict]:
    enc = {k[len("base_encoder."):]: v for k, v in sd.items()
           if k.startswith("base_encoder.")}
    rest = {k: v for k, v in sd.items()
            if not k.startswith(("base_encoder.", "momentum_encoder.", "predictor."))}
    width = _width(enc, "cls_token", "mocov3-vit")
    patch = int(enc["patch_embed.proj.weight"].shape[-1])
    grid = _grid(enc["pos_embed"].shape[1] - 1, "mocov3-vit")
    size = _size(width, "mocov3-vit")
    # MoCo v3's vits.py: 12 heads for ViT-S too (timm's ViT-S has 6); no key shows the count
    heads = {384: 12, 768: 12, 1024: 16}.get(width, width // 64)
    model = _create(f"vit_{size}_patch16_224", patch_size=patch, img_size=grid * patch,
                    depth=_depth(enc), num_heads=heads, dynamic_img_size=True)
    body = {k: v for k, v in enc.items() if not k.startswith("head.")}
    head = {k[len("head."):]: v for k, v in enc.items() if k.startswith("head.")}
    body.update(rest)  # keys outside the known prefixes: loading names them
    return model, body, head


def _convnext(sd: StateDict) -> Tuple[nn.Module, StateDict, StateDict]:
    from timm.models.convnext import ConvNeXt, checkpoint_filter_fn

    dims, depths = [], []
    for i in range(4):
        key = f"downsample_layers.{i}.{0 if i == 0 else 1}.weight"
        if key not in sd:
            raise ValueError(f"convnext checkpoint lacks {key!r}; check teacher_format (keys "
                             f"start {', '.join(sorted(sd)[:4])}).")
        dims.append(int(sd[key].shape[0]))
        depths.append(1 + max((int(m.group(1)) for k in sd
                               if (m := re.match(rf"stages\.{i}\.(\d+)\.", k))), default=-1))
    # the class itself, not a registry name: solo-learn re-registers timm's convnext_* names
    model = ConvNeXt(depths=tuple(depths), dims=tuple(dims), num_classes=0).eval()
    out: StateDict = {}
    for key, value in sd.items():  # one key at a time: a wrong shape stays, for load_exact
        try:
            out.update(checkpoint_filter_fn({key: value}, model))
        except (RuntimeError, KeyError):  # timm's reshape to the model's shape failed
            out[_convnext_name(key)] = value
    return model, out, {}


def _convnext_name(key: str) -> str:
    """timm's name of a Meta ConvNeXt key (what timm's filter renames, without reshaping)."""
    key = key.replace("downsample_layers.0.", "stem.")
    key = re.sub(r"stages\.(\d+)\.(\d+)", r"stages.\1.blocks.\2", key)
    key = re.sub(r"downsample_layers\.(\d+)\.(\d+)", r"stages.\1.downsample.\2", key)
    key = key.replace("dwconv", "conv_dw").replace("pwconv", "mlp.fc")
    return "head.norm." + key[len("norm."):] if key.startswith("norm.") else key


class PooledEmbedder(nn.Module):
    """(B, 3, H, W) -> a timm CNN with ``num_classes=0`` -> its pooled, normed (B, F) features
    (DINOv3 ConvNeXt: the LayerNorm of the global average, the original's CLS output)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone(x)


@dataclass(frozen=True)
class VitFormat:
    """A ViT checkpoint layout.

    Attributes:
        name: the ``teacher_format`` value.
        build: state dict (``module.`` stripped) -> (timm model, its state dict, head state dict).
        detect: True when a key set is of this layout.
        prefix: the checkpoint's prefix of the backbone's keys, for messages.
        embedding: the default embedding.
        description: one line for messages.
    """

    name: str
    build: Callable[[StateDict], Tuple[nn.Module, StateDict, StateDict]]
    detect: Callable[[Set[str]], bool]
    prefix: str
    embedding: str
    description: str


VIT_FORMATS: Dict[str, VitFormat] = {
    f.name: f
    for f in (
        VitFormat("mocov3-vit", _mocov3_vit, lambda k: "base_encoder.cls_token" in k,
                  "base_encoder.", "cls", "MoCo v3 ViT: base_encoder + 3-layer BN head -> 256"),
        VitFormat("dinov3", _dinov3, lambda k: "storage_tokens" in k, "", "cls",
                  "DINOv3 ViT (storage_tokens, RoPE): backbone only"),
        VitFormat("convnext", _convnext, lambda k: "downsample_layers.0.0.weight" in k, "",
                  "pooled", "DINOv3 ConvNeXt (Meta's ConvNeXt keys): pooled, normed features"),
        VitFormat("dinov2", _dinov2, lambda k: "mask_token" in k and "pos_embed" in k, "", "cls",
                  "DINOv2 ViT (+ register_tokens): backbone only"),
        VitFormat("dino-vit", _dino_vit,
                  lambda k: "cls_token" in k and "pos_embed" in k and "mask_token" not in k,
                  "", "cls", "DINO ViT (timm-style keys): backbone only"),
    )
}


def detect_vit(keys: Set[str]) -> str | None:
    """The name of the ViT layout of ``keys`` (``module.`` stripped), None when none fits."""
    for fmt in VIT_FORMATS.values():
        if fmt.detect(keys):
            return fmt.name
    return None


def _source_key(fmt: VitFormat) -> Callable[[str], str]:
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


def build_vit(sd: StateDict, fmt: str, name: str = "checkpoint",
              embedding: str | None = None) -> Tuple[nn.Module, int, str]:
    """(TokenEmbedder, d, description) of a ViT state dict ``sd`` in layout ``fmt``.

    Raises:
        ValueError: a missing, unexpected or wrong-shaped key, named as in the file.
    """
    layout = VIT_FORMATS[fmt]
    embedding = embedding or layout.embedding
    if layout.embedding == "pooled":
        if embedding != "pooled":
            raise ValueError(f"{fmt}: a CNN embeds its pooled features; drop "
                             f"teacher_options.embedding={embedding!r}.")
        model, body, _ = layout.build(sd)
        load_exact(model, body, name, fmt, _source_key(layout))
        dim = int(model.num_features)
        return PooledEmbedder(model), dim, f"{fmt} ConvNeXt -> {dim}"
    if embedding not in EMBEDDINGS:
        raise ValueError(f"teacher_options.embedding={embedding!r} is not one of "
                         f"{', '.join(EMBEDDINGS)}; pick one.")
    model, body, head_sd = layout.build(sd)
    load_exact(model, body, name, fmt, _source_key(layout))
    head = None
    if head_sd:
        head = mlp_from_state_dict(head_sd, "relu", f"{name} head")
        load_exact(head, head_sd, f"{name} head", fmt, lambda k: layout.prefix + "head." + k)
    width = int(model.embed_dim)
    feat = 2 * width if embedding == "cls+mean" else width
    if head is not None and embedding != "cls":
        raise ValueError(f"{fmt}: the projection head takes the CLS token; leave "
                         "teacher_options.embedding unset or 'cls'.")
    dim = output_dim(head, feat) if head is not None else feat
    desc = f"{fmt} {type(model).__name__}-{width} x{len(model.blocks)} [{embedding}] -> {dim}"
    return TokenEmbedder(model, embedding, head), dim, desc
