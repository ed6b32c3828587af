"""Checkpoints in the exact layouts of the public releases, from the architectures that made them.

Widths and depths are shrunk (one block per stage, narrow bottlenecks) to keep the tests
CPU-fast; key names, nesting, heads and the training-only extras are as released.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet


def perturb_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BatchNorm running statistics, so eval-mode BN is not the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.rand(buf.shape, generator=g) * 0.4 - 0.2)
            elif name.endswith("running_var"):
                buf.copy_(torch.rand(buf.shape, generator=g) + 0.5)
    return model.eval()


def tv_resnet(num_classes: int) -> ResNet:
    """torchvision's ResNet class, Bottleneck blocks, one per stage, narrow (width_per_group 16)."""
    return ResNet(Bottleneck, [1, 1, 1, 1], num_classes=num_classes, width_per_group=16)


# --- MoCo v1 / v2 (facebookresearch/moco, moco/builder.py) ---------------------------------
def moco_encoder(dim: int = 16, mlp: bool = True) -> nn.Module:
    enc = tv_resnet(dim)
    if mlp:  # MoCo v2: fc -> Sequential(Linear(dim_mlp, dim_mlp), ReLU(), fc)
        dim_mlp = enc.fc.weight.shape[1]
        enc.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), enc.fc)
    return perturb_bn(enc)


def moco_checkpoint(enc: nn.Module, dim: int = 16, K: int = 32) -> dict:
    sd = {}
    for k, v in enc.state_dict().items():
        sd["module.encoder_q." + k] = v
        sd["module.encoder_k." + k] = v.clone()
    sd["module.queue"] = F.normalize(torch.randn(dim, K), dim=0)
    sd["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
    return {"epoch": 200, "arch": "resnet50", "state_dict": sd,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.03, "params": [0, 1]}]}}


# --- MoCo v3 (facebookresearch/moco-v3, moco/builder.py, MoCo_ResNet) -----------------------
def _build_mlp(num_layers, input_dim, mlp_dim, output_dim, last_bn=True):
    mlp = []
    for layer in range(num_layers):
        dim1 = input_dim if layer == 0 else mlp_dim
        dim2 = output_dim if layer == num_layers - 1 else mlp_dim
        mlp.append(nn.Linear(dim1, dim2, bias=False))
        if layer < num_layers - 1:
            mlp.append(nn.BatchNorm1d(dim2))
            mlp.append(nn.ReLU(inplace=True))
        elif last_bn:
            mlp.append(nn.BatchNorm1d(dim2, affine=False))
    return nn.Sequential(*mlp)


def mocov3_model(dim: int = 16, mlp_dim: int = 32) -> nn.Module:
    base = tv_resnet(mlp_dim)
    hidden_dim = base.fc.weight.shape[1]
    del base.fc
    base.fc = _build_mlp(2, hidden_dim, mlp_dim, dim)
    return perturb_bn(base)


def mocov3_checkpoint(base: nn.Module, dim: int = 16, mlp_dim: int = 32) -> dict:
    predictor = _build_mlp(2, dim, mlp_dim, dim, False)
    sd = {}
    for k, v in base.state_dict().items():
        sd["module.base_encoder." + k] = v
        sd["module.momentum_encoder." + k] = v.clone()
    for k, v in predictor.state_dict().items():
        sd["module.predictor." + k] = v
    return {"epoch": 1000, "arch": "resnet50", "state_dict": sd, "optimizer": {},
            "scaler": {"scale": 65536.0, "growth_factor": 2.0}}


# --- SwAV (facebookresearch/swav, src/resnet50.py), written in its structure ------------------
class SwAVResNet(nn.Module):
    """SwAV's ResNet: ConstantPad2d(1) then a padding-2 stem, ``widen`` scales every stage."""

    def __init__(self, layers, widen=1, width_per_group=64, output_dim=16, hidden_mlp=32,
                 nmb_prototypes=24):
        super().__init__()
        self.padding = nn.ConstantPad2d(1, 0.0)
        self.inplanes = width_per_group * widen
        self.base_width = width_per_group
        num_out_filters = width_per_group * widen
        self.conv1 = nn.Conv2d(3, num_out_filters, kernel_size=7, stride=2, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(num_out_filters)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(num_out_filters, layers[0])
        num_out_filters *= 2
        self.layer2 = self._make_layer(num_out_filters, layers[1], stride=2)
        num_out_filters *= 2
        self.layer3 = self._make_layer(num_out_filters, layers[2], stride=2)
        num_out_filters *= 2
        self.layer4 = self._make_layer(num_out_filters, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.projection_head = nn.Sequential(
            nn.Linear(num_out_filters * Bottleneck.expansion, hidden_mlp),
            nn.BatchNorm1d(hidden_mlp),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_mlp, output_dim),
        )
        self.prototypes = nn.Linear(output_dim, nmb_prototypes, bias=False)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, downsample,
                             base_width=self.base_width)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes, base_width=self.base_width)
                   for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.padding(x)))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return F.normalize(self.projection_head(x), dim=1, p=2)


def swav_model(widen: int = 2) -> SwAVResNet:
    return perturb_bn(SwAVResNet([1, 2, 1, 1], widen=widen, width_per_group=8))


def swav_checkpoint(model: nn.Module) -> dict:
    # SwAV's release is the DDP model's state dict itself, with no "state_dict" wrapper
    return {"module." + k: v for k, v in model.state_dict().items()}


# --- backbone-only releases (DINO, Barlow Twins, VICReg) and SimCLR v1 converted ---------------
def backbone_model() -> nn.Module:
    net = tv_resnet(10)
    net.fc = nn.Identity()
    return perturb_bn(net)


def simclr_checkpoint(net: nn.Module) -> dict:
    """tonylins/simclr-converter: {"state_dict": torchvision keys with the linear-eval fc}."""
    sd = dict(net.state_dict())
    sd["fc.weight"] = torch.randn(10, 2048)
    sd["fc.bias"] = torch.zeros(10)
    return {"state_dict": sd}


def clone(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)


def write_zoo(path: Path, url: str, checksum: str | None = None, name: str = "my-moco") -> Path:
    lines = [f"{name}:", "  method: MoCo v2", "  arch: resnet50", "  format: moco",
             "  embed_dim: 16", f"  url: {url}", "  top1: 1.5", "  licence: MIT"]
    if checksum:
        lines.append(f"  checksum: {checksum}")
    path.write_text("\n".join(lines) + "\n")
    return path
