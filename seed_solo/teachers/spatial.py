"""A teacher's dense output: its embedding and its feature map from one forward.

- ViT teachers (:class:`~seed_solo.teachers.vit.TokenEmbedder`: DINOv2, DINOv3, DINO, MoCo v3;
  and ``timm:NAME`` ViTs): the map is the last block's normed patch tokens on their grid,
  (B, D, H/p, W/p), CLS and register tokens left out; the embedding is what the teacher embeds
  with (CLS by default).
- CNN teachers (ResNet layouts, solo-learn checkpoints, ``torchvision:``/``timm:`` models,
  DINOv3 ConvNeXt, the packaged EfficientNet-Lite0): the map is the backbone's last feature map
  before pooling (:func:`seed_solo.students.spatial.feature_map`); the embedding is the pooled
  map through the teacher's head.

A teacher of another kind has no map: :func:`has_maps` is False.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from seed_solo.core.errors import ConfigError
from seed_solo.students.spatial import feature_map, has_feature_map
from seed_solo.teachers.convnext import PooledEmbedder
from seed_solo.teachers.heads import Embedder
from seed_solo.teachers.vit import TokenEmbedder, patch_map


def _backbone(model: nn.Module) -> Optional[nn.Module]:
    """The CNN whose map :func:`feature_map` reads, or None."""
    net = model.backbone if isinstance(model, (Embedder, PooledEmbedder)) else model
    return net if has_feature_map(net) else None


def _timm_vit(model: nn.Module) -> Optional[nn.Module]:
    """The timm ViT inside a ``timm:NAME`` teacher (``Embedder(vit)``), or None."""
    net = model.backbone if isinstance(model, Embedder) else None
    found = all(hasattr(net, a) for a in ("patch_embed", "num_prefix_tokens", "forward_head"))
    return net if found else None


def has_maps(model: nn.Module) -> bool:
    """True when :func:`embed_and_map` knows ``model``'s feature map."""
    return (isinstance(model, TokenEmbedder) or _backbone(model) is not None
            or _timm_vit(model) is not None)


def embed_and_map(model: nn.Module, x: Tensor) -> Tuple[Tensor, Tensor]:
    """(B, 3, H, W) -> ((B, d) embedding, as ``model(x)`` gives it; (B, C, h, w) map)."""
    if isinstance(model, TokenEmbedder):
        tokens = model.tokens(x)
        return model.embed(tokens), model.patch_map(tokens, x.shape[-2:])
    vit, net = _timm_vit(model), _backbone(model)
    if vit is not None:  # a timm:NAME ViT: its pooled output (CLS or mean) and patch tokens
        tokens = vit.forward_features(x)
        maps, pooled = patch_map(vit, tokens, x.shape[-2:]), vit.forward_head(tokens)
    elif net is not None:
        maps, pooled = feature_map(net, x)
    else:
        raise ConfigError(f"the teacher ({type(model).__name__}) has no feature map seed-solo "
                          "can read; pick a global objective (docs/objectives.md).")
    if isinstance(model, Embedder):
        z = model.head(pooled)
        return (F.normalize(z, dim=1) if model.normalize else z), maps
    return pooled, maps  # a bare network or a PooledEmbedder: the pooled features embed
