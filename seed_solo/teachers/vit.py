"""ViT teachers in Meta's published layouts (DINOv2, DINOv3, DINO, MoCo v3), built with timm.

Each layout is a pure state-dict conversion (timm's ``checkpoint_filter_fn`` for DINOv2 and
DINOv3, a prefix rule for DINO and MoCo v3) onto a timm model whose size (width, depth, patch,
registers) is read off the checkpoint; :mod:`seed_solo.teachers.meta_layouts` names them,
detects them and loads them with every key checked.

The models run at any crop size that is a multiple of the patch: the position embedding stays
at the checkpoint's grid (DINOv2: 37 x 37 patches of 14 px = 518 px) and is brought to the
input's grid at each forward by the publisher's own rule (:class:`GridRule`, docs/teachers.md):

- DINO and DINOv2 without registers: bicubic by the scale factor (M' + 0.1) / M, without
  antialiasing (DINO's ``interpolate_pos_encoding``; DINOv2's hub: ``interpolate_offset=0.1``,
  ``interpolate_antialias=False``);
- DINOv2 with registers: bicubic to the size M', antialiased (its hub's ``*_reg`` models:
  ``interpolate_offset=0.0``, ``interpolate_antialias=True``);
- MoCo v3: no interpolation: its position embedding is a fixed 2-D sin-cos of the grid
  (``vits.py``), so the model built for another size has the sin-cos of that grid
  (:func:`sincos_grid`); a file whose ``pos_embed`` is not that sin-cos is refused;
- DINOv3: RoPE on coordinates normalised to the grid, no learned grid; its ``rope_embed.
  periods``, ``qkv.bias_mask`` and ``mask_token`` must be those of the model it builds.

At the checkpoint's own grid every rule returns the stored embedding. A 224 px crop is 16 x 16 =
256 patches of 14 px; 518 px is 1369 (about 5.3x the tokens, more than that in compute).
"""

from __future__ import annotations

import math
import re
import types
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Tuple

import timm
import torch
import torch.nn.functional as F
from timm.models import eva, vision_transformer
from torch import Tensor, nn

from seed_solo.core.errors import CheckpointError, ConfigError
from seed_solo.runs.checkpoint_files import StateDict

EMBEDDINGS = ("cls", "mean", "cls+mean")

#: ViT width -> timm size name (the published S/B/L/g sizes)
_SIZES = {384: "small", 768: "base", 1024: "large", 1536: "giant"}


def check_patch_multiple(size: int, patch: Optional[int], key: str = "the crop") -> None:
    """Refuse an input side ``size`` that a ViT with ``patch`` px patches cannot cut up whole,
    naming the setting ``key`` and the nearest sizes that work."""
    if patch is None or size % patch == 0:
        return
    below, above = max(patch, size // patch * patch), (size // patch + 1) * patch
    raise ConfigError(
        f"{key}={size} px is not a multiple of the ViT teacher's {patch} px patches; set it "
        f"to a multiple of {patch}, e.g. {below} or {above} ({above // patch} x {patch})."
    )


class TokenEmbedder(nn.Module):
    """(B, 3, H, W) -> timm ViT tokens (B, prefix + N, D) -> CLS / patch mean / both -> head.

    ``embedding``: ``cls`` (the normed CLS token, D), ``mean`` (mean of the normed patch tokens,
    registers left out, D) or ``cls+mean`` (their concatenation, 2D: DINOv2's linear probe input).
    """

    def __init__(self, backbone: nn.Module, embedding: str = "cls",
                 head: nn.Module | None = None) -> None:
        super().__init__()
        if embedding not in EMBEDDINGS:
            raise ConfigError(f"teacher_options.embedding={embedding!r} is not one of "
                              f"{', '.join(EMBEDDINGS)}; pick one.")
        self.backbone = backbone
        self.head = head if head is not None else nn.Identity()
        self.embedding = embedding

    def tokens(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> the backbone's (B, prefix + N, D) tokens, final norm applied."""
        patch = self.backbone.patch_embed.patch_size
        for side, key in ((x.shape[-2], "crop height"), (x.shape[-1], "crop width")):
            check_patch_multiple(side, patch[0], key)
        return self.backbone.forward_features(x)

    def embed(self, tokens: Tensor) -> Tensor:
        """(B, prefix + N, D) tokens -> the (B, d) embedding (CLS / patch mean / both, head)."""
        cls = tokens[:, 0]
        if self.embedding == "cls":
            z = cls
        else:
            mean = tokens[:, self.backbone.num_prefix_tokens:].mean(dim=1)
            z = mean if self.embedding == "mean" else torch.cat([cls, mean], dim=1)
        return self.head(z)

    def patch_map(self, tokens: Tensor, size: Tuple[int, int]) -> Tensor:
        """(B, prefix + N, D) tokens of a (H, W) px input -> (B, D, H/p, W/p): the normed patch
        tokens on their grid, CLS and registers left out."""
        return patch_map(self.backbone, tokens, size)

    def forward(self, x: Tensor) -> Tensor:
        return self.embed(self.tokens(x))


def patch_map(vit: nn.Module, tokens: Tensor, size: Tuple[int, int]) -> Tensor:
    """A timm ViT's (B, prefix + N, D) tokens of a (H, W) px input -> (B, D, H/p, W/p), the
    patch tokens on their grid (CLS and registers left out)."""
    patch = vit.patch_embed.patch_size
    grid = (size[0] // patch[0], size[1] // patch[1])
    patches = tokens[:, vit.num_prefix_tokens:]
    return patches.transpose(1, 2).reshape(patches.shape[0], patches.shape[2], *grid)


def _depth(sd: Mapping[str, Any], prefix: str = "") -> int:
    found = {int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"blocks\.(\d+)\.",
                                                                 k))}
    if not found:
        raise CheckpointError(f"no '{prefix}blocks.N.*' keys: this is not a ViT checkpoint; pass "
                              "the right teacher_format.")
    return max(found) + 1


def _need(sd: Mapping[str, Any], key: str, fmt: str, prefix: str = "") -> Tensor:
    """``sd[key]``, or a :class:`CheckpointError` naming ``prefix + key`` (the file's name)."""
    if key not in sd:
        raise CheckpointError(
            f"{fmt} checkpoint lacks {prefix + key!r}, which the publisher's model holds (its "
            "strict load refuses a file without it): the file is cut or altered, or of another "
            "layout; fetch it again, or pass the right teacher_format.")
    return sd[key]


def _width(sd: Mapping[str, Any], key: str, fmt: str, prefix: str = "") -> int:
    return int(_need(sd, key, fmt, prefix).shape[-1])


def _size(width: int, fmt: str) -> str:
    if width not in _SIZES:
        raise CheckpointError(
            f"{fmt}: a width of {width} is none of the published sizes {sorted(_SIZES)}; build "
            "the model yourself or pass a timm:NAME format.")
    return _SIZES[width]


def _grid(num_pos: int, fmt: str) -> int:
    side = math.isqrt(num_pos)
    if side * side != num_pos:
        raise CheckpointError(
            f"{fmt}: pos_embed holds {num_pos} patch positions, not a square grid.")
    return side


def _create(name: str, **kwargs: Any) -> nn.Module:
    return timm.create_model(name, pretrained=False, num_classes=0, **kwargs).eval()


# --- position grids: each publisher's rule -------------------------------------------------

@dataclass(frozen=True)
class GridRule:
    """How a learned (1, M*M, D) patch position grid is resized to H x W patches: bicubic, by
    the scale factor (H + offset) / M when ``offset`` is set, else to the size H x W; with or
    without antialiasing. At the stored grid, the stored embedding."""

    offset: float
    antialias: bool

    def __call__(self, patch_pos: Tensor, grid: Tuple[int, int]) -> Tensor:
        m = math.isqrt(patch_pos.shape[1])
        if grid == (m, m):
            return patch_pos
        dim = patch_pos.shape[-1]
        p = patch_pos.float().reshape(1, m, m, dim).permute(0, 3, 1, 2)
        if self.offset:
            size = {"scale_factor": ((grid[0] + self.offset) / m, (grid[1] + self.offset) / m)}
        else:
            size = {"size": grid}
        p = F.interpolate(p, mode="bicubic", antialias=self.antialias, **size)
        return p.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], dim).to(patch_pos.dtype)


#: DINO (vision_transformer.py) and DINOv2 without registers (hub: interpolate_offset=0.1,
#: interpolate_antialias=False)
OFFSET_RULE = GridRule(offset=0.1, antialias=False)
#: DINOv2 with registers (hub ``dinov2_vit*14_reg``: interpolate_offset=0.0,
#: interpolate_antialias=True)
SIZE_RULE = GridRule(offset=0.0, antialias=True)


def sincos_grid(grid: Tuple[int, int], dim: int, temperature: float = 10000.0) -> Tensor:
    """MoCo v3's fixed 2-D sin-cos embedding of an H x W grid, (1, H*W, dim): for frequencies
    w_i = temperature^(-i / (dim/4)), the first two quarters are sin, cos of one grid index
    times w, the last two of the other. MoCo v3 enumerates its grid column-major over (W, H)
    (``meshgrid(arange(W), arange(H))``), while tokens come row-major: token k takes the
    indices (k // H, k % H), which on a square grid are its (row, column)."""
    h, w = grid
    k = torch.arange(h * w)
    a, b = (k // h).float(), (k % h).float()
    omega = 1.0 / temperature ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    out_a, out_b = a[:, None] * omega[None], b[:, None] * omega[None]
    return torch.cat([out_a.sin(), out_a.cos(), out_b.sin(), out_b.cos()], dim=1)[None]


def mocov3_rule(patch_pos: Tensor, grid: Tuple[int, int]) -> Tensor:
    """MoCo v3's model built for ``grid``: the sin-cos of that grid (none is interpolated)."""
    m = math.isqrt(patch_pos.shape[1])
    if grid == (m, m):
        return patch_pos
    return sincos_grid(grid, patch_pos.shape[-1]).to(patch_pos)


def _grid_pos_embed(self: nn.Module, x: Tensor) -> Tensor:
    """timm ``VisionTransformer._pos_embed`` for NHWC patches, the grid by ``self.grid_rule``."""
    b, h, w, c = x.shape  # B x H x W x D (dynamic_img_size patch embedding)
    prefix = 0 if self.no_embed_class else self.num_prefix_tokens
    prefix_pos, patch_pos = self.pos_embed[:, :prefix], self.pos_embed[:, prefix:]
    patch_pos = self.grid_rule(patch_pos, (h, w))
    x = x.reshape(b, h * w, c)
    tokens = [self.cls_token.expand(b, -1, -1)]
    if self.reg_token is not None:
        tokens.append(self.reg_token.expand(b, -1, -1))
    if self.no_embed_class:  # reg4: the CLS slot of pos_embed was folded into cls_token
        x = torch.cat(tokens + [x + patch_pos], dim=1)
    else:
        x = torch.cat(tokens + [x], dim=1) + torch.cat([prefix_pos, patch_pos], dim=1)
    return self.pos_drop(x)


def with_positions(model: nn.Module,
                   rule: Callable[[Tensor, Tuple[int, int]], Tensor]) -> nn.Module:
    """A timm ViT built with ``dynamic_img_size`` whose position grid follows ``rule`` (a
    :class:`GridRule` or :func:`mocov3_rule`) instead of timm's own resize."""
    model.grid_rule = rule
    model._pos_embed = types.MethodType(_grid_pos_embed, model)
    return model


# --- the layouts: state dict -> (timm model, converted state dict, head state dict) -----------

def dinov2(sd: StateDict) -> Tuple[nn.Module, StateDict, StateDict]:
    width = _width(sd, "cls_token", "dinov2")
    patch = _width(sd, "patch_embed.proj.weight", "dinov2")
    grid = _grid(_need(sd, "pos_embed", "dinov2").shape[1] - 1, "dinov2")
    mask = _need(sd, "mask_token", "dinov2")  # unused here, but part of the published model
    if tuple(mask.shape) != (1, width):
        raise CheckpointError(f"dinov2: mask_token has shape {tuple(mask.shape)}, DINOv2's is "
                              f"(1, {width}); the file is altered: fetch it again.")
    reg = "_reg4" if "register_tokens" in sd else ""
    size = _size(width, "dinov2")
    model = _create(f"vit_{size}_patch14{reg}_dinov2", patch_size=patch, img_size=grid * patch,
                    depth=_depth(sd), dynamic_img_size=True)
    with_positions(model, SIZE_RULE if reg else OFFSET_RULE)
    return model, vision_transformer.checkpoint_filter_fn(dict(sd), model), {}


def with_dinov2_positions(model: nn.Module) -> nn.Module:
    """A timm DINOv2 ViT built with ``dynamic_img_size`` whose position grid follows DINOv2's
    own rule for its kind: :data:`SIZE_RULE` with registers, :data:`OFFSET_RULE` without."""
    registers = getattr(model, "reg_token", None) is not None
    return with_positions(model, SIZE_RULE if registers else OFFSET_RULE)


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
    depth = _depth(sd)
    biases = [_need(sd, f"blocks.{i}.attn.qkv.bias", "dinov3") for i in range(depth)]
    # timm has a qkv-bias and a bias-free variant; the distilled B/L files hold all-zero biases
    qkvb = "_qkvb" if any(bool(b.abs().sum() > 0) for b in biases) else ""
    patch = _width(sd, "patch_embed.proj.weight", "dinov3")
    model = _create(f"vit_{size}_patch16_dinov3{qkvb}", patch_size=patch, depth=depth)
    check_dinov3_extras(sd, model)
    if not qkvb:  # all zero: the bias-free variant is the same network
        sd = {k: v for k, v in sd.items() if not k.endswith("attn.qkv.bias")}
    return model, eva.checkpoint_filter_fn(dict(sd), model), {}


def check_dinov3_extras(sd: Mapping[str, Tensor], model: nn.Module) -> None:
    """The keys of a DINOv3 file that timm's conversion drops, checked against what Meta's model
    does with them, so that the model built is the published one.

    - ``mask_token`` (1, D): Meta's forward adds ``0 * mask_token`` to the CLS token, so it
      must be there and finite;
    - ``blocks.N.attn.qkv.bias_mask``: Meta multiplies the qkv bias by it; timm keeps the Q and
      V thirds and drops K's, which holds only for a mask of ones, zeros, ones;
    - ``rope_embed.periods``: Meta's RoPE reads its periods from the file; timm computes them,
      so they must be the ones timm computes for this model.

    Raises:
        CheckpointError: naming the first key that is missing or holds other values.
    """
    width = int(model.embed_dim)
    mask = _need(sd, "mask_token", "dinov3")
    if tuple(mask.shape) != (1, width) or not torch.isfinite(mask).all():
        raise CheckpointError(
            f"dinov3: mask_token must be (1, {width}) and finite (Meta's forward adds 0 x "
            f"mask_token to the CLS token); this file's is {tuple(mask.shape)}"
            f"{'' if torch.isfinite(mask).all() else ' with NaN or inf'}: fetch it again.")
    expected = torch.cat([torch.ones(width), torch.zeros(width), torch.ones(width)])
    for i in range(len(model.blocks)):
        key = f"blocks.{i}.attn.qkv.bias_mask"
        found = _need(sd, key, "dinov3")
        if tuple(found.shape) != tuple(expected.shape) or not torch.equal(found.float(),
                                                                           expected):
            raise CheckpointError(
                f"dinov3: {key} is not DINOv3's mask of the K bias (ones on Q and V, zeros on "
                "K): this file's attention would use other biases than the model built here; "
                "fetch it again.")
    periods = _need(sd, "rope_embed.periods", "dinov3").float()
    ours = model.rope.periods.float()
    if periods.shape != ours.shape or not torch.allclose(periods, ours, rtol=1e-5, atol=0):
        raise CheckpointError(
            f"dinov3: rope_embed.periods {periods.tolist()[:3]}... are not the periods of "
            f"DINOv3's RoPE for this model ({ours.tolist()[:3]}..., base 100): its positions "
            "would differ from the model built here; fetch the file again.")


def dino_vit(sd: StateDict) -> Tuple[nn.Module, StateDict, StateDict]:
    width = _width(sd, "cls_token", "dino-vit")
    patch = _width(sd, "patch_embed.proj.weight", "dino-vit")
    grid = _grid(_need(sd, "pos_embed", "dino-vit").shape[1] - 1, "dino-vit")
    size = _size(width, "dino-vit")
    model = _create(f"vit_{size}_patch16_224", patch_size=patch, img_size=grid * patch,
                    depth=_depth(sd), dynamic_img_size=True)
    with_positions(model, OFFSET_RULE)
    return model, vision_transformer.checkpoint_filter_fn(dict(sd), model), {}


def mocov3_vit(sd: StateDict) -> Tuple[nn.Module, StateDict, StateDict]:
    enc = {k[len("base_encoder."):]: v for k, v in sd.items()
           if k.startswith("base_encoder.")}
    rest = {k: v for k, v in sd.items()
            if not k.startswith(("base_encoder.", "momentum_encoder.", "predictor."))}
    fmt, prefix = "mocov3-vit", "base_encoder."
    width = _width(enc, "cls_token", fmt, prefix)
    patch = _width(enc, "patch_embed.proj.weight", fmt, prefix)
    pos = _need(enc, "pos_embed", fmt, prefix)
    grid = _grid(pos.shape[1] - 1, fmt)
    fixed = torch.cat([torch.zeros(1, 1, width), sincos_grid((grid, grid), width)], dim=1)
    if pos.shape != fixed.shape or not torch.allclose(pos.float(), fixed, atol=1e-5):
        raise CheckpointError(
            f"{fmt}: {prefix}pos_embed is not MoCo v3's fixed 2-D sin-cos embedding of its "
            f"{grid} x {grid} grid (vits.py): the file is altered or not MoCo v3's; fetch it "
            "again.")
    size = _size(width, fmt)
    # MoCo v3's vits.py: 12 heads for ViT-S too (timm's ViT-S has 6); no key shows the count
    heads = {384: 12, 768: 12, 1024: 16}.get(width, width // 64)
    model = _create(f"vit_{size}_patch16_224", patch_size=patch, img_size=grid * patch,
                    depth=_depth(enc), num_heads=heads, dynamic_img_size=True)
    with_positions(model, mocov3_rule)
    body = {k: v for k, v in enc.items() if not k.startswith("head.")}
    head = {k[len("head."):]: v for k, v in enc.items() if k.startswith("head.")}
    body.update(rest)  # keys outside the known prefixes: loading names them
    return model, body, head


def mocov3_head(head_sd: Mapping[str, Tensor]) -> nn.Module:
    """MoCo v3's projection head of a ViT (builder.py ``_build_mlp(3, D, mlp_dim, dim)``):
    Linear-BN-ReLU-Linear-BN-ReLU-Linear-BN(affine=False), no Linear biases; its widths read
    off ``head.0.weight`` (mlp_dim x D) and ``head.6.weight`` (dim x mlp_dim)."""
    fmt, prefix = "mocov3-vit", "base_encoder.head."
    mlp_dim, width = _need(head_sd, "0.weight", fmt, prefix).shape
    dim = _need(head_sd, "6.weight", fmt, prefix).shape[0]
    return nn.Sequential(
        nn.Linear(width, mlp_dim, bias=False), nn.BatchNorm1d(mlp_dim), nn.ReLU(),
        nn.Linear(mlp_dim, mlp_dim, bias=False), nn.BatchNorm1d(mlp_dim), nn.ReLU(),
        nn.Linear(mlp_dim, dim, bias=False), nn.BatchNorm1d(dim, affine=False))
