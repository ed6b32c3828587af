"""A backbone's last feature map before global pooling, and its pooled features from that map.

The dense objectives regress a teacher's patch tokens from the student's last feature map, and
a CNN teacher's last feature map is its dense target; both read it here. Known backbones:

- ``TinyResNet`` and EfficientNet-Lite0 (:mod:`seed_solo.nets`): the map after the last block
  (Lite0: after its conv head when it has one); pooled = its mean.
- ResNets with torchvision's layout (torchvision's, solo-learn's with the CIFAR stem,
  :class:`seed_solo.nets.resnet.ResNet`): ``layer4``'s output; pooled = ``avgpool`` then ``fc``
  (the identity in a student).
- timm CNNs: ``forward_features`` (a 4-D map); pooled = ``forward_head`` (MobileNetV3's conv
  head included), which is exactly what the backbone's own forward returns.

A backbone of another kind (a ViT student, a model without ``forward_features``) has no map
here: :func:`has_feature_map` is False and :func:`feature_map` raises.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
from torch import Tensor, nn
from torchvision.models import ResNet as TorchvisionResNet

from seed_solo.core.errors import ConfigError
from seed_solo.nets.lite0 import Lite0Features
from seed_solo.nets.resnet import ResNet
from seed_solo.nets.tiny_resnet import TinyResNet

MapFn = Callable[[nn.Module, Tensor], Tuple[Tensor, Tensor]]


def _tiny(net: TinyResNet, x: Tensor) -> Tuple[Tensor, Tensor]:
    m = net.layers(net.stem(x))
    return m, m.mean(dim=(2, 3))


def _lite0(net: Lite0Features, x: Tensor) -> Tuple[Tensor, Tensor]:
    m = net.blocks(net.stem(net._prepare(x)))
    if net.head is not None:
        m = net.head(m)
    return m, m.mean(dim=(2, 3))


def _resnet(net: nn.Module, x: Tensor) -> Tuple[Tensor, Tensor]:
    m = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    m = net.layer4(net.layer3(net.layer2(net.layer1(m))))
    pooled = torch.flatten(net.avgpool(m), 1)
    return m, getattr(net, "fc", nn.Identity())(pooled)


def _timm(net: nn.Module, x: Tensor) -> Tuple[Tensor, Tensor]:
    m = net.forward_features(x)
    if m.ndim != 4:
        raise ConfigError(f"{type(net).__name__} gives tokens of shape {tuple(m.shape)}, not a "
                          "(B, C, h, w) feature map; dense objectives need a CNN student.")
    return m, net.forward_head(m)


def _map_fn(net: nn.Module) -> Optional[MapFn]:
    if isinstance(net, TinyResNet):
        return _tiny
    if isinstance(net, Lite0Features):
        return _lite0
    if isinstance(net, (TorchvisionResNet, ResNet)):
        return _resnet
    if hasattr(net, "forward_features") and hasattr(net, "forward_head") \
            and not hasattr(net, "patch_embed"):
        return _timm
    return None


def has_feature_map(net: nn.Module) -> bool:
    """True when :func:`feature_map` knows ``net``'s last feature map."""
    return _map_fn(net) is not None


def feature_map(net: nn.Module, x: Tensor) -> Tuple[Tensor, Tensor]:
    """(B, 3, H, W) images -> ((B, C, h, w) last feature map, (B, F) pooled features): the
    pooled features are those ``net(x)`` returns, computed from the same map."""
    fn = _map_fn(net)
    if fn is None:
        raise ConfigError(
            f"a {type(net).__name__} backbone has no feature map seed-solo can read; dense "
            "objectives need a CNN (a seed-solo student, a torchvision ResNet, a timm CNN)."
        )
    return fn(net, x)
