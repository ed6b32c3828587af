"""ViT teachers in Meta's published layouts (DINOv2, DINOv3, DINO, MoCo v3), built with timm.

Each layout is a pure state-dict conversion (timm's ``checkpoint_filter_fn`` for DINOv2 and
DINOv3, a prefix rule for DINO and MoCo v3) onto a timm model whose size (width, depth, patch,
registers) is read off the checkpoint; :mod:`seed_solo.teachers.meta_layouts` names them,
detects them and loads them with every key checked.

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
from typing import Any, Mapping, Tuple

import timm
import torch
import torch.nn.functional as F
from timm.models import eva, vision_transformer
from torch import Tensor, nn

from seed_solo.runs.checkpoint_files import StateDict
from seed_solo.teachers.frozen import check_patch_multiple

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
        for side, key in ((x.shape[-2], "crop height"), (x.shape[-1], "crop width")):
            check_patch_multiple(side, patch[0], key)
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


def dinov2(sd: StateDict) -> Tuple[nn.Module, StateDict, StateDict]:
    width = _width(sd, "cls_token", "dinov2")
    patch = int(sd["patch_embed.proj.weight"].shape[-1])
    grid = _grid(sd["pos_embed"].shape[1] - 1, "dinov2")
    reg = "_reg4" if "register_tokens" in sd else ""
    size = _size(width, "dinov2")
    model = _create(f"vit_{size}_patch14{reg}_dinov2", patch_size=patch, img_size=grid * patch,
                    depth=_depth(sd), dynamic_img_size=True)
    with_dinov2_positions(model)
    return model, vision_transformer.checkpoint_filter_fn(dict(sd), model), {}


def with_dinov2_positions(model: nn.Module) -> nn.Module:
    """A timm DINOv2 ViT built with ``dynamic_img_size`` that resizes its position grid to each
    input by DINOv2's own rule (:func:`dinov2_resample`) instead of timm's."""
    model._pos_embed = types.MethodType(_dinov2_pos_embed, model)
    return model


# --- timm's own layouts of Meta's models: a ``state_dict()`` of timm's DINOv2 / DINOv3 --------

def timm_dinov2(sd: StateDict) -> Tuple[nn.Module, StateDict, StateDict]:
    """``timm.create_model("vit_*_patch14[_reg4]_dinov2").state_dict()``: timm's keys (``ls1.
    gamma``, ``reg_token``, no ``mask_token``), loaded as they are; DINOv2's grid rule."""
    width = _width(sd, "cls_token", "timm-dinov2")
    patch = _width(sd, "patch_embed.proj.weight", "timm-dinov2")
    reg = "_reg4" if "reg_token" in sd else ""
    # reg4 models fold the CLS slot of the grid into cls_token (timm's no_embed_class)
    grid = _grid(sd["pos_embed"].shape[1] - (0 if reg else 1), "timm-dinov2")
    model = _create(f"vit_{_size(width, 'timm-dinov2')}_patch14{reg}_dinov2", patch_size=patch,
                    img_size=grid * patch, depth=_depth(sd), dynamic_img_size=True)
    return with_dinov2_positions(model), dict(sd), {}


def timm_dinov3(sd: StateDict) -> Tuple[nn.Module, StateDict, StateDict]:
    """``timm.create_model("vit_*_patch16_dinov3[_qkvb]").state_dict()``: timm's Eva keys
    (``reg_token``, ``gamma_1``, ``q_bias``/``v_bias`` in the qkvb variant), loaded as they are."""
    width = _width(sd, "cls_token", "timm-dinov3")
    patch = _width(sd, "patch_embed.proj.weight", "timm-dinov3")
    qkvb = "_qkvb" if "blocks.0.attn.q_bias" in sd else ""
    model = _create(f"vit_{_size(width, 'timm-dinov3')}_patch16_dinov3{qkvb}", patch_size=patch,
                    depth=_depth(sd))
    return model, dict(sd), {}


def dinov3(sd: StateDict) -> Tuple[nn.Module, StateDict, StateDict]:
    width = _width(sd, "cls_token", "dinov3")
    size = _size(width, "dinov3")
    bias = sd.get("blocks.0.attn.qkv.bias")
    # timm has a qkv-bias and a bias-free variant; the distilled B/L files hold all-zero biases
    qkvb = "_qkvb" if bias is not None and bool(bias.abs().sum() > 0) else ""
    patch = int(sd["patch_embed.proj.weight"].shape[-1])
    model = _create(f"vit_{size}_patch16_dinov3{qkvb}", patch_size=patch, depth=_depth(sd))
    return model, eva.checkpoint_filter_fn(dict(sd), model), {}


def dino_vit(sd: StateDict) -> Tuple[nn.Module, StateDict, StateDict]:
    width = _width(sd, "cls_token", "dino-vit")
    patch = int(sd["patch_embed.proj.weight"].shape[-1])
    grid = _grid(sd["pos_embed"].shape[1] - 1, "dino-vit")
    size = _size(width, "dino-vit")
    model = _create(f"vit_{size}_patch16_224", patch_size=patch, img_size=grid * patch,
                    depth=_depth(sd), dynamic_img_size=True)
    return model, vision_transformer.checkpoint_filter_fn(dict(sd), model), {}


def mocov3_vit(sd: StateDict) -> Tuple[nn.Module, StateDict, StateDict]:
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
