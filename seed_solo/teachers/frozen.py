"""The frozen teacher f_T: a pretrained network that embeds views and never trains."""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seed_solo.core.errors import CheckpointError, ConfigError
from seed_solo.teachers.spatial import embed_and_map, has_maps
from seed_solo.teachers.vit import check_patch_multiple

PRECISIONS = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}


def normalize_precision(precision: Union[str, int, None], device_type: str = "cpu") -> str:
    """Map ``32 | bf16 | 16 | auto`` (strings or ints) to a key of ``PRECISIONS``.

    ``auto`` (or None) means bf16 on CUDA and 32 elsewhere: CPU bf16 convolutions are slower than
    float32 on most CPUs.
    """
    key = "auto" if precision is None else str(precision).lower()
    key = {"32-true": "32", "fp32": "32", "float32": "32", "bf16-mixed": "bf16",
           "bfloat16": "bf16", "16-mixed": "16", "fp16": "16", "float16": "16"}.get(key, key)
    if key == "auto":
        return "bf16" if device_type == "cuda" else "32"
    if key not in PRECISIONS:
        raise ConfigError(
            f"teacher_precision must be one of 32, bf16, 16 or auto, got {precision!r}."
        )
    return key


def patch_size(model: nn.Module) -> Optional[int]:
    """The side in pixels of the patches a ViT-like ``model`` cuts its input into (its first
    patch embedding's: timm's ``PatchEmbed``), None for a network without patches."""
    for module in model.modules():
        patch = getattr(module, "patch_size", None)
        if patch is not None and hasattr(module, "proj"):
            return int(patch[0] if isinstance(patch, (tuple, list)) else patch)
    return None


class FrozenTeacher(nn.Module):
    """Wraps a network ``model`` (images -> (B, d) embeddings) so that it is frozen three ways.

    1. ``requires_grad=False`` on every parameter, so no optimizer or DDP bucket takes them;
    2. eval mode that survives ``.train()`` (Lightning calls it every epoch): BatchNorm keeps
       its running statistics and dropout stays off;
    3. forward under ``torch.inference_mode``, so no graph is built.

    The output is the L2-normalised embedding z_T in float32, a normal tensor (cloned out of
    inference mode) that the student's loss can use.

    Args:
        model: maps (B, 3, H, W) images to (B, d) embeddings (backbone plus head).
        embed_dim: d, the size of the embedding.
        precision: ``32``, ``bf16``, ``16`` or ``auto`` (bf16 on CUDA, else 32): autocast
            dtype of the teacher's forward. Outside autocast when ``32``, even if the training
            loop runs under autocast.
        preprocess: optional map applied to the images first, e.g. to undo the pipeline's
            ImageNet normalisation for a teacher trained on unnormalised inputs.
        channels_last: convert the network (and inputs) to channels_last, faster on GPUs.
        name: where the teacher came from, for messages.
    """

    def __init__(
        self,
        model: nn.Module,
        embed_dim: int,
        precision: Union[str, int, None] = "auto",
        preprocess: Optional[Callable[[Tensor], Tensor]] = None,
        channels_last: bool = False,
        name: str = "teacher",
    ) -> None:
        super().__init__()
        self.model = model
        self.embed_dim = int(embed_dim)
        self.precision = precision
        self.preprocess = preprocess
        self.channels_last = channels_last
        self.name = name
        for p in self.model.parameters():
            p.requires_grad_(False)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenTeacher:
        """Stays in eval mode whatever ``mode`` says."""
        return super().train(False)

    def check_crop(self, size: int, key: str = "the crop") -> None:
        """Refuse, before any training, a crop of ``size`` px the teacher cannot embed (a ViT's
        must be a multiple of its patch); ``key`` names the setting in the message."""
        check_patch_multiple(int(size), patch_size(self.model), key)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, embed_dim={self.embed_dim}, precision={self.precision!r}"

    @property
    def has_maps(self) -> bool:
        """True when :meth:`forward_maps` can give this teacher's feature map."""
        return has_maps(self.model)

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) images -> (B, d) L2-normalised float32 embeddings z_T, no graph."""
        return self._run(images, self.model)[0]

    def forward_maps(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        """(B, 3, H, W) images -> ((B, d) z_T as :meth:`forward` gives it, (B, C, h, w) float32
        feature map: ViT patch tokens or a CNN's last map, :mod:`seed_solo.teachers.spatial`),
        from one forward, no graph."""
        return self._run(images, lambda x: embed_and_map(self.model, x))

    def _run(self, images: Tensor, fn: Callable[[Tensor], Any]) -> Tuple[Tensor, ...]:
        device_type = images.device.type
        key = normalize_precision(self.precision, device_type)
        dtype = PRECISIONS[key]
        with torch.inference_mode():
            if self.preprocess is not None:
                images = self.preprocess(images)
            if self.channels_last and images.ndim == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=device_type, dtype=dtype or torch.float32,
                                enabled=dtype is not None):
                out = fn(images)
            z, *rest = out if isinstance(out, tuple) else (out,)
            if z.ndim != 2 or z.shape[1] != self.embed_dim:
                raise CheckpointError(
                    f"teacher {self.name!r} returned shape {tuple(z.shape)}, expected "
                    f"(B, {self.embed_dim}); check its format and head."
                )
            found = (F.normalize(z.float(), dim=1), *(r.float() for r in rest))
        # an inference tensor cannot be saved for the student's backward; a clone can
        return tuple(t.clone() for t in found)
