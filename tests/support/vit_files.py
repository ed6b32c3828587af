"""ViT checkpoints in Meta's published key layouts, made from timm models of the same design.

The layouts were checked against the releasing repositories' model code (facebookresearch/
dinov2 ``DinoVisionTransformer``, dinov3 ``DinoVisionTransformer`` with ``storage_tokens`` and
``rope_embed``, dino ``vision_transformer.py``, moco-v3 ``vits.py`` + ``builder.py``); none of
that code is copied here. Depth is cut to one block to keep the tests CPU-fast; widths are the
published ones (384/768) so the architecture lookup is the real one.
"""

from __future__ import annotations

import math

import timm
import torch
import torch.nn.functional as F
from torch import nn


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter random; layer scales and norm gains near 1 (timm starts layer scales at
    1e-5, which would make every block nearly the identity and hide a wrong conversion)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            gain = p.ndim == 1 and ("gamma" in name or name.endswith("weight"))
            p.copy_(1 + 0.2 * noise if gain else 0.05 * noise)
    return model.eval()


def dinov2_reference(width: int = 384, reg: bool = False, grid: int = 2) -> nn.Module:
    size = {384: "small", 768: "base"}[width]
    name = f"vit_{size}_patch14{'_reg4' if reg else ''}_dinov2"
    return randomize(timm.create_model(name, pretrained=False, num_classes=0, depth=1,
                                       img_size=14 * grid, dynamic_img_size=True))


def dinov2_checkpoint(ref: nn.Module) -> dict:
    """``dinov2_vit*14[_reg4]_pretrain.pth``: a flat state dict, no prefix, with ``mask_token``;
    registers as ``register_tokens`` and a CLS slot in ``pos_embed`` (timm folds it away)."""
    sd = {k: v.clone() for k, v in ref.state_dict().items()}
    width = sd["cls_token"].shape[-1]
    if "reg_token" in sd:
        pe0 = 0.1 * torch.randn(1, width, generator=torch.Generator().manual_seed(1))
        sd["register_tokens"] = sd.pop("reg_token")
        sd["cls_token"] = sd["cls_token"] - pe0
        sd["pos_embed"] = torch.cat([pe0[:, None], sd["pos_embed"]], dim=1)
    sd["mask_token"] = torch.zeros(1, width)
    return sd


def dinov3_reference(width: int = 384, qkv_bias: bool = False) -> nn.Module:
    size = {384: "small", 768: "base"}[width]
    name = f"vit_{size}_patch16_dinov3{'_qkvb' if qkv_bias else ''}"
    return randomize(timm.create_model(name, pretrained=False, num_classes=0, depth=1))


def dinov3_checkpoint(ref: nn.Module) -> dict:
    """``dinov3_vit*16_pretrain_lvd1689m-*.pth``: flat, ``storage_tokens``, ``ls1.gamma``, a
    ``qkv.bias`` whose K third is masked to zero (``bias_mask``), ``rope_embed.periods``."""
    out = {}
    sd = ref.state_dict()
    width = sd["cls_token"].shape[-1]
    for k, v in sd.items():
        if k.endswith("attn.q_bias") or k.endswith("attn.v_bias"):
            continue
        k = k.replace("reg_token", "storage_tokens")
        k = k.replace("gamma_1", "ls1.gamma").replace("gamma_2", "ls2.gamma")
        out[k] = v.clone()
        if k.endswith("attn.qkv.weight"):
            base = k[: -len("weight")]
            q = sd.get(base.replace("qkv.", "q_bias"), torch.zeros(width))
            v_ = sd.get(base.replace("qkv.", "v_bias"), torch.zeros(width))
            out[base + "bias"] = torch.cat([q, torch.zeros(width), v_])
            out[base + "bias_mask"] = torch.cat([torch.ones(width), torch.zeros(width),
                                                 torch.ones(width)])
    out["mask_token"] = 0.01 * torch.randn(1, width, generator=torch.Generator().manual_seed(3))
    out["rope_embed.periods"] = meta_rope_periods(width // ref.blocks[0].attn.num_heads)
    return out


def meta_rope_periods(head_dim: int, base: float = 100.0) -> torch.Tensor:
    """DINOv3's RoPE periods with ``base`` (rope_position_encoding.py): base^(2i / (D_h/2)),
    i < D_h/4, the buffer its files hold as ``rope_embed.periods``."""
    return base ** (2 * torch.arange(head_dim // 4, dtype=torch.float32) / (head_dim // 2))


def mocov3_sincos(grid: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """MoCo v3's fixed position embedding of a grid x grid ViT (vits.py
    ``build_2d_sincos_position_embedding``), (1, 1 + grid^2, dim) with the CLS slot at zero: for
    the patch in row r, column c and w_i = temperature^(-i / (dim/4)), the four quarters are
    sin(r w), cos(r w), sin(c w), cos(c w)."""
    omega = temperature ** -(torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    rows = []
    for r in range(grid):
        for c in range(grid):
            rows.append(torch.cat([torch.sin(r * omega), torch.cos(r * omega),
                                   torch.sin(c * omega), torch.cos(c * omega)]))
    return torch.cat([torch.zeros(1, dim, dtype=torch.float64),
                      torch.stack(rows)]).float()[None]


def dino_vit_reference(width: int = 384, grid: int = 2) -> nn.Module:
    size = {384: "small", 768: "base"}[width]
    return randomize(timm.create_model(f"vit_{size}_patch16_224", pretrained=False,
                                       num_classes=0, depth=1, img_size=16 * grid,
                                       dynamic_img_size=True))


def dino_vit_checkpoint(ref: nn.Module) -> dict:
    """``dino_deitsmall16_pretrain.pth`` / ``dino_vitbase16_pretrain.pth``: the teacher backbone
    only, timm-style keys (DINO's ``vision_transformer.py`` names them as timm does), no head."""
    return {k: v.clone() for k, v in ref.state_dict().items()}


def mocov3_vit_reference(width: int = 384, grid: int = 2, dim: int = 256,
                         mlp_dim: int = 64) -> nn.Module:
    """MoCo v3's ViT (12 heads at every size it released) with its 3-layer projection head."""
    size = {384: "small", 768: "base"}[width]
    vit = timm.create_model(f"vit_{size}_patch16_224", pretrained=False, num_classes=0,
                            depth=1, num_heads=12, img_size=16 * grid, dynamic_img_size=True)
    layers = []
    for i, (a, b) in enumerate([(width, mlp_dim), (mlp_dim, mlp_dim), (mlp_dim, dim)]):
        layers.append(nn.Linear(a, b, bias=False))
        if i < 2:
            layers += [nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        else:
            layers.append(nn.BatchNorm1d(b, affine=False))
    vit.head = nn.Sequential(*layers)  # builder.py: base_encoder.head = _build_mlp(3, ...)
    randomize(vit)
    with torch.no_grad():  # vits.py: fixed, never trained
        vit.pos_embed.copy_(mocov3_sincos(grid, width))
    g = torch.Generator().manual_seed(2)
    for m in vit.head.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    return vit.eval()


def mocov3_vit_forward(ref: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return ref.head(ref.forward_features(x)[:, 0])


def mocov3_vit_checkpoint(ref: nn.Module) -> dict:
    """``vit-s-300ep.pth.tar``: {epoch, arch, state_dict, optimizer}; ``module.base_encoder.*``
    (with ``head.*``), ``module.momentum_encoder.*``, ``module.predictor.*``."""
    sd = {}
    for k, v in ref.state_dict().items():
        sd["module.base_encoder." + k] = v.clone()
        sd["module.momentum_encoder." + k] = v.clone() + 1
    sd["module.predictor.0.weight"] = torch.randn(8, 256)
    return {"epoch": 300, "arch": "vit_small", "state_dict": sd, "optimizer": {}}


def convnext_reference(dims=(16, 32, 64, 128), depths=(1, 1, 2, 1)) -> nn.Module:
    from timm.models.convnext import ConvNeXt

    return randomize(ConvNeXt(depths=depths, dims=dims, num_classes=0))


def convnext_checkpoint(ref: nn.Module) -> dict:
    """``dinov3_convnext_*_pretrain_lvd1689m-*.pth``: Meta's ConvNeXt keys (``downsample_layers.
    I.J``, ``stages.I.J.{dwconv,norm,pwconv1,pwconv2,gamma}``, a final ``norm``)."""
    import re

    out = {}
    for k, v in ref.state_dict().items():
        k = k.replace("stem.", "downsample_layers.0.")
        k = re.sub(r"stages\.(\d+)\.downsample\.(\d+)", r"downsample_layers.\1.\2", k)
        k = re.sub(r"stages\.(\d+)\.blocks\.(\d+)", r"stages.\1.\2", k)
        k = k.replace("conv_dw", "dwconv").replace("mlp.fc", "pwconv")
        k = k.replace("head.norm", "norm")
        out[k] = v.clone()
    return out


# --- the publishers' models as formulas, in float64, from their state dicts (Meta's keys) ------

def _ln(x, sd, key, eps):
    return F.layer_norm(x, x.shape[-1:], sd[key + ".weight"], sd[key + ".bias"], eps)


def _rotate(x, sin, cos):
    """DINOv3's RoPE on the last dim: x cos + (-x_2, x_1) sin, x_1 and x_2 its halves."""
    a, b = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-b, a], dim=-1) * sin


def dinov3_rope(h: int, w: int, periods: torch.Tensor):
    """(sin, cos), each (h*w, D_h), of DINOv3's RoPE at eval: patch (r, c) at coordinates
    (2(r + 0.5)/h - 1, 2(c + 0.5)/w - 1); angles 2 pi coord / period for the row coordinate
    then the column's (D_h/4 each), the whole repeated twice."""
    rows = (torch.arange(h, dtype=torch.float64) + 0.5) / h * 2 - 1
    cols = (torch.arange(w, dtype=torch.float64) + 0.5) / w * 2 - 1
    coords = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(h * w, 2)
    angles = 2 * math.pi * coords[:, :, None] / periods.double()[None, None, :]
    angles = angles.reshape(h * w, -1).repeat(1, 2)
    return angles.sin(), angles.cos()


# the publishers' position rules, each as its model code applies it (see docs/teachers.md)

def offset_rule(patch_pos, grid):
    """DINO; DINOv2 without registers: bicubic by the factor (H + 0.1) / M, not antialiased."""
    m = math.isqrt(patch_pos.shape[1])
    if grid == (m, m):
        return patch_pos
    p = patch_pos.reshape(1, m, m, -1).permute(0, 3, 1, 2)
    p = F.interpolate(p, scale_factor=((grid[0] + 0.1) / m, (grid[1] + 0.1) / m),
                      mode="bicubic", antialias=False)
    return p.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)


def size_rule(patch_pos, grid):
    """DINOv2 with registers (interpolate_offset=0, interpolate_antialias=True): bicubic to the
    size, antialiased."""
    m = math.isqrt(patch_pos.shape[1])
    if grid == (m, m):
        return patch_pos
    p = patch_pos.reshape(1, m, m, -1).permute(0, 3, 1, 2)
    p = F.interpolate(p, size=grid, mode="bicubic", antialias=True)
    return p.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)


def mocov3_rule(patch_pos, grid):
    """MoCo v3: the model built for this size holds the sin-cos of its own grid."""
    assert grid[0] == grid[1]
    return mocov3_sincos(grid[0], patch_pos.shape[-1])[:, 1:].double()


def publisher_tokens(sd: dict, x: torch.Tensor, heads: int, eps: float, positions=None,
                     rope: bool = False) -> torch.Tensor:
    """A Meta ViT's normed tokens (B, prefix + N, D), written from its design, in float64:
    patches (a stride-p convolution, row-major), the CLS token (DINOv3: + 0 x mask_token),
    position embeddings added to CLS and patches (``positions(pos_embed, (H, W))`` gives the
    patch part), register or storage tokens after the CLS token without one, pre-norm blocks
    x + ls1 attn(norm1 x), x + ls2 mlp(norm2 x) (a layer scale only where the file has one;
    DINOv3's qkv bias times its bias_mask; RoPE on the patches' q and k), a final norm."""
    sd = {k: v.double() for k, v in sd.items()}
    w = sd["patch_embed.proj.weight"]
    t = F.conv2d(x.double(), w, sd["patch_embed.proj.bias"], stride=w.shape[-1])
    b, dim, h, wd = t.shape
    t = t.flatten(2).transpose(1, 2)
    cls = sd["cls_token"].reshape(1, 1, dim).expand(b, -1, -1)
    if "pos_embed" in sd:
        cls = cls + sd["pos_embed"][:, :1]
        t = t + positions(sd["pos_embed"][:, 1:], (h, wd))
    if "mask_token" in sd and rope:
        cls = cls + 0 * sd["mask_token"]
    extra = sd.get("register_tokens", sd.get("storage_tokens"))
    seq = [cls] + ([extra.expand(b, -1, -1)] if extra is not None else []) + [t]
    x = torch.cat(seq, dim=1)
    sincos = dinov3_rope(h, wd, sd["rope_embed.periods"]) if rope else None
    n_patch = h * wd
    for i in range(1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))):
        p = f"blocks.{i}."
        y = _ln(x, sd, p + "norm1", eps)
        bias = sd.get(p + "attn.qkv.bias")
        if bias is not None and p + "attn.qkv.bias_mask" in sd:
            bias = bias * sd[p + "attn.qkv.bias_mask"]
        qkv = F.linear(y, sd[p + "attn.qkv.weight"], bias)
        q, k, v = qkv.reshape(b, -1, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
        if sincos is not None:
            q = torch.cat([q[..., :-n_patch, :], _rotate(q[..., -n_patch:, :], *sincos)], -2)
            k = torch.cat([k[..., :-n_patch, :], _rotate(k[..., -n_patch:, :], *sincos)], -2)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dim // heads), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, -1, dim)
        y = F.linear(y, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        x = x + sd.get(p + "ls1.gamma", 1.0) * y
        y = _ln(x, sd, p + "norm2", eps)
        y = F.linear(F.gelu(F.linear(y, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])),
                     sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
        x = x + sd.get(p + "ls2.gamma", 1.0) * y
    return _ln(x, sd, "norm", eps)


def mocov3_head_formula(sd: dict, z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """MoCo v3's projection head at eval (builder.py ``_build_mlp(3, ...)``), float64: three
    bias-free linear maps (head.0, head.3, head.6), each followed by batch norm with its running
    statistics (head.1, head.4; head.7 without an affine part), ReLU after the first two."""
    sd = {k: v.double() for k, v in sd.items()}

    def bn(y, i, affine=True):
        y = (y - sd[f"{i}.running_mean"]) / torch.sqrt(sd[f"{i}.running_var"] + eps)
        return y * sd[f"{i}.weight"] + sd[f"{i}.bias"] if affine else y

    y = torch.relu(bn(z.double() @ sd["0.weight"].T, 1))
    y = torch.relu(bn(y @ sd["3.weight"].T, 4))
    return bn(y @ sd["6.weight"].T, 7, affine=False)
