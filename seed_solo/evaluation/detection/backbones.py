"""A student's feature stages under an FPN, and torchvision's Faster / Mask R-CNN on top.

The student module itself becomes the detector's ``backbone.body.model`` (its parameter names
unchanged), so the detector starts from exactly the student's weights. Its feature stages:

- timm students (``mobilenetv3_large``, ``efficientnet_b0``, any ``timm:NAME``): the stages of
  the model's ``feature_info``, run by ``forward_intermediates`` (what timm's
  ``features_only=True`` returns), the layers after the deepest one used pruned;
- torchvision ResNets (``resnet18/34/50``, ``torchvision:resnet*``): ``layer1`` .. ``layer4``;
- ``tiny_resnet10``: ``layers.0`` .. ``layers.3``;
- torchvision models made of a ``features`` sequence (``torchvision:mobilenet_v3_large``...):
  the last module at each resolution.

Strides are measured by a dry forward; the FPN takes the deepest :attr:`DetectorSpec.levels`
stages whose strides increase. A student with fewer than two strides (a ViT) cannot feed an
FPN and is refused. Anchors are ``anchor_scale x stride`` px at each level (32 px at stride 4,
detectron2's and torchvision's FPN default), plus a max-pooled level on top.

Norm (MoCo's detectron2 protocol uses SyncBN in the backbone and the new layers):
``sync``: BatchNorm and the FPN's own BatchNorm synchronised across processes (timm's converter,
which keeps timm's fused BatchNorm+activation layers whole); ``bn``: the same, per process;
``frozen``: every backbone BatchNorm frozen (statistics and affine), an FPN without norm
(torchvision's default). Stages that do not train (``trainable_stages``) are always frozen,
BatchNorm statistics included, so they leave training exactly as the student gave them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

import torch
import torchvision
from timm.layers import convert_sync_batchnorm, freeze_batch_norm_2d
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from seed_solo.core.errors import ConfigError
from seed_solo.nets.tiny_resnet import TinyResNet

ARCHS = ("faster_rcnn", "mask_rcnn")
NORMS = ("sync", "bn", "frozen")
#: px of the dry forward that measures each stage's stride
PROBE = 128


@dataclass(frozen=True)
class DetectorSpec:
    """The detector's settings (``detector.*`` of the config).

    Attributes:
        arch: ``faster_rcnn`` or ``mask_rcnn``.
        levels: how many of the student's deepest stages (strictly increasing strides) feed the
            FPN (4: detectron2's P2-P5 on a ResNet).
        trainable_stages: stages that train, counted from the deepest (stem = the shallowest);
            -1: all (MoCo's ``FREEZE_AT: 0``).
        norm: ``sync``, ``bn`` or ``frozen`` (module docstring).
        fpn_channels, box_head_dim, mask_head_dim: widths of the new layers (256, 1024, 256 in
            detectron2's FPN models; smaller for CPU runs).
        min_size: training short sides in px, one drawn per batch; the last is the test size.
        max_size: the longest side in px after resizing.
        anchor_scale: anchor side = this x the level's stride.
        image_mean, image_std: the normalisation of [0, 1] RGB images (the student's).
        options: further keyword arguments of torchvision's ``FasterRCNN`` (``rpn_*``, ``box_*``).
    """

    arch: str = "faster_rcnn"
    levels: int = 4
    trainable_stages: int = -1
    norm: str = "sync"
    fpn_channels: int = 256
    box_head_dim: int = 1024
    mask_head_dim: int = 256
    min_size: Tuple[int, ...] = (800,)
    max_size: int = 1333
    anchor_scale: int = 8
    image_mean: Tuple[float, ...] = (0.485, 0.456, 0.406)
    image_std: Tuple[float, ...] = (0.229, 0.224, 0.225)
    options: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"detector.arch={self.arch!r} is not one of {', '.join(ARCHS)}.")
        if self.norm not in NORMS:
            raise ConfigError(f"detector.norm={self.norm!r} is not one of {', '.join(NORMS)}.")
        if self.levels < 2:
            raise ConfigError(f"detector.levels={self.levels}: an FPN needs at least 2 levels.")


class StudentStages(nn.Module):
    """The student's feature maps at its stage ends, as an FPN body.

    ``forward``: (B, 3, H, W) -> ``{"0": (B, C_0, H/s_0, W/s_0), ...}`` for the chosen levels,
    shallowest first. The student is held as ``model``, its parameter names unchanged.

    Attributes:
        channels, strides: C_i and s_i of the returned levels.
        groups: the parameter names of each stage, stem first (what ``trainable_stages`` counts).
    """

    def __init__(self, model: nn.Module, name: str, levels: int) -> None:
        super().__init__()
        self.model = model
        self.name = name
        self.pieces = _pieces(model, name)
        size = PROBE
        was = model.training
        try:
            with torch.no_grad():
                probe = self._all_features(torch.zeros(1, 3, size, size).to(_device(model)),
                                           model.eval())
        except (AssertionError, RuntimeError) as err:
            raise ConfigError(
                f"the student {name} cannot feed an FPN: it does not run on a {size} px "
                f"image ({err}); a detector's images vary in size: pick a convolutional "
                "student (a ResNet, MobileNetV3, EfficientNet, tiny_resnet10, a timm CNN)."
            ) from None
        finally:
            model.train(was)
        strides = [size // f.shape[-1] for f in probe]
        self.candidates = _stage_ends(strides)
        chosen = self.candidates[-levels:]
        if len(chosen) < 2:
            raise ConfigError(
                f"the student {name} cannot feed an FPN: its stages have strides {strides} "
                f"(at {size} px), and an FPN needs at least 2 stages of increasing stride; "
                "pick a convolutional student (a ResNet, MobileNetV3, EfficientNet, "
                "tiny_resnet10 or a timm CNN).")
        self.ends = chosen
        self.channels = [int(probe[i].shape[1]) for i in chosen]
        self.strides = [strides[i] for i in chosen]
        self.groups = self._groups()
        self._prune()

    def _all_features(self, x: Tensor, model: nn.Module) -> List[Tensor]:
        if self.pieces is None:  # timm
            return list(model.forward_intermediates(
                x, indices=list(range(len(model.feature_info))), intermediates_only=True))
        out = []
        for piece in self.pieces:
            x = model.get_submodule(piece)(x)
            out.append(x)
        return out

    def _groups(self) -> List[List[str]]:
        """Parameter and buffer names per stage, in module order: a stage runs to the end of
        one candidate level (its module and everything inside it)."""
        if self.pieces is None:
            ends = [self.model.feature_info[i]["module"] for i in self.candidates]
        else:
            ends = [self.pieces[i] for i in self.candidates]
        modules = [m for m, _ in self.model.named_modules()]
        position = {m: i for i, m in enumerate(modules)}
        bounds = [max(i for i, m in enumerate(modules) if m == e or m.startswith(e + "."))
                  for e in ends]
        groups: List[List[str]] = [[] for _ in ends]
        for n in self.model.state_dict():
            owner = position[n.rpartition(".")[0]]
            stage = next((k for k, b in enumerate(bounds) if owner <= b), None)
            if stage is not None:
                groups[stage].append(n)
        return groups

    def _prune(self) -> None:
        """Drop what runs after the deepest level used: unused parameters break DDP."""
        if self.pieces is None:
            self.model.prune_intermediate_layers(self.ends, prune_head=True)
            return
        last = self.ends[-1]
        for piece in self.pieces[last + 1:]:
            parent, _, child = piece.rpartition(".")
            setattr(self.model.get_submodule(parent) if parent else self.model, child,
                    nn.Identity())
        if hasattr(self.model, "fc"):
            self.model.fc = nn.Identity()

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        if self.pieces is None:
            feats = self.model.forward_intermediates(x, indices=self.ends,
                                                     intermediates_only=True)
            return OrderedDict((str(i), f) for i, f in enumerate(feats))
        out: OrderedDict[str, Tensor] = OrderedDict()
        wanted = {end: str(k) for k, end in enumerate(self.ends)}
        for i, piece in enumerate(self.pieces[: self.ends[-1] + 1]):
            x = self.model.get_submodule(piece)(x)
            if i in wanted:
                out[wanted[i]] = x
        return out


def _device(model: nn.Module) -> torch.device:
    return next(iter(model.parameters()), torch.zeros(())).device


def _pieces(model: nn.Module, name: str) -> List[str] | None:
    """The modules a student runs in sequence (None: a timm model, run by timm)."""
    if hasattr(model, "forward_intermediates") and hasattr(model, "feature_info"):
        return None
    if isinstance(model, torchvision.models.ResNet):
        return ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
    if isinstance(model, TinyResNet):
        return ["stem"] + [f"layers.{i}" for i in range(len(model.layers))]
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        return [f"features.{i}" for i in range(len(features))]
    raise ConfigError(
        f"the student {name} ({type(model).__name__}) cannot feed an FPN: seed-solo knows "
        "its feature stages only for timm models (feature_info), torchvision ResNets, "
        "tiny_resnet10 and torchvision models made of a `features` sequence; pick one of those.")


def _stage_ends(strides: Sequence[int]) -> List[int]:
    """Indices of the last output at each stride, where the strides grow (a stage's end)."""
    ends: List[int] = []
    for i, s in enumerate(strides):
        if ends and strides[ends[-1]] == s:
            ends[-1] = i
        elif not ends or s > strides[ends[-1]]:
            ends.append(i)
    return ends


class StudentFPN(nn.Module):
    """``body`` (the student's stages) and torchvision's FPN: (B, 3, H, W) -> {level: (B,
    fpn_channels, h, w)} with one more max-pooled level ("pool"); ``out_channels`` for
    torchvision's detectors."""

    def __init__(self, body: StudentStages, channels: int, norm: str) -> None:
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(
            body.channels, channels, extra_blocks=LastLevelMaxPool(),
            norm_layer=None if norm == "frozen" else nn.BatchNorm2d)
        self.out_channels = channels

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return self.fpn(self.body(x))


def freeze_stages(body: StudentStages, trainable: int, norm: str) -> List[str]:
    """Freeze all but the ``trainable`` deepest stages (-1: none frozen), their BatchNorm
    statistics included; ``norm=frozen`` freezes every BatchNorm of the backbone. Returns the
    names of the parameters and buffers that no longer change."""
    groups = body.groups
    keep = len(groups) if trainable < 0 else min(trainable, len(groups))
    frozen = {n for g in groups[: len(groups) - keep] for n in g}
    for n, p in body.model.named_parameters():
        if n in frozen:
            p.requires_grad_(False)
    norms = [m for m, module in body.model.named_modules()
             if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    for path in norms:
        if norm == "frozen" or f"{path}.running_mean" in frozen:
            parent, _, child = path.rpartition(".")
            holder = body.model.get_submodule(parent) if parent else body.model
            setattr(holder, child, freeze_batch_norm_2d(getattr(holder, child)))
    return sorted(frozen)


def build_detector(student: nn.Module, name: str, num_classes: int,
                   spec: DetectorSpec) -> nn.Module:
    """torchvision's Faster R-CNN (or Mask R-CNN) over an FPN on ``student``'s stages.

    Args:
        student: the backbone, (B, 3, H, W) -> (B, F); it becomes ``backbone.body.model``.
        name: how messages name it (its registry name, and the run it comes from).
        num_classes: object classes, background not counted.
    """
    body = StudentStages(student, name, spec.levels)
    freeze_stages(body, spec.trainable_stages, spec.norm)
    backbone = StudentFPN(body, spec.fpn_channels, spec.norm)
    names = [str(i) for i in range(len(body.strides))]
    sizes = tuple((spec.anchor_scale * s,) for s in [*body.strides, 2 * body.strides[-1]])
    anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    box_pool = MultiScaleRoIAlign(names, output_size=7, sampling_ratio=2)
    c = spec.fpn_channels
    kwargs: Dict[str, Any] = dict(
        min_size=tuple(spec.min_size), max_size=spec.max_size,
        image_mean=list(spec.image_mean), image_std=list(spec.image_std),
        rpn_anchor_generator=anchors, box_roi_pool=box_pool,
        box_head=TwoMLPHead(c * 7 * 7, spec.box_head_dim),
        box_predictor=FastRCNNPredictor(spec.box_head_dim, num_classes + 1), **spec.options)
    if spec.arch == "faster_rcnn":
        detector = FasterRCNN(backbone, None, **kwargs)
    else:
        m = spec.mask_head_dim
        detector = MaskRCNN(
            backbone, None, mask_roi_pool=MultiScaleRoIAlign(names, 14, sampling_ratio=2),
            mask_head=MaskRCNNHeads(c, (m, m, m, m), 1),
            mask_predictor=MaskRCNNPredictor(m, m, num_classes + 1), **kwargs)
    if spec.norm == "sync":
        # timm's converter: torch's would turn timm's BatchNormAct2d into a bare SyncBatchNorm
        # and drop its activation; outside torch.distributed a SyncBatchNorm is a BatchNorm
        detector = convert_sync_batchnorm(detector)
    # a loaded student comes in eval mode, and Lightning keeps each module's mode: its
    # BatchNorm would train on frozen statistics where a random init's updates them
    return detector.train()
