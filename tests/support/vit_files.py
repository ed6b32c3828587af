"""ViT checkpoints in Meta's published key layouts, made from timm models of the same design.

The layouts were checked against the releasing repositories' model code (facebookresearch/
dinov2 ``DinoVisionTransformer``, dinov3 ``DinoVisionTransformer`` with ``storage_tokens`` and
``rope_embed``, dino ``vision_transformer.py``, moco-v3 ``vits.py`` + ``builder.py``); none of
that code is copied here. Depth is cut to one block to keep the tests CPU-fast; widths are the
published ones (384/768) so the architecture lookup is the real one.
"""

from __future__ import annotations

import timm
import torch
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
    out["mask_token"] = torch.zeros(1, width)
    out["rope_embed.periods"] = torch.rand(width // ref.blocks[0].attn.num_heads // 4)
    return out


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
