"""Teacher networks as ``Embedder(backbone, head)`` and heads rebuilt from state-dict keys."""

from __future__ import annotations

from typing import Callable, Dict, List, Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from seed_solo.core.errors import CheckpointError


class Embedder(nn.Module):
    """(B, 3, H, W) images -> backbone -> (B, F) pooled features -> head -> (B, d) embeddings.

    ``head`` may be ``nn.Identity()`` (backbone-only teachers: d = F). ``normalize`` L2-normalises
    the output, as SwAV's own forward does.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module | None = None,
                 normalize: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head if head is not None else nn.Identity()
        self.normalize = normalize

    def forward(self, x: Tensor) -> Tensor:
        z = self.head(self.backbone(x))
        return F.normalize(z, dim=1) if self.normalize else z


ACTIVATIONS: Dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU}


def mlp_from_state_dict(sd: Mapping[str, Tensor], activation: str = "relu",
                        what: str = "projector") -> nn.Module:
    """Rebuild an ``nn.Sequential`` MLP from its state dict (keys ``"<index>.<param>"``).

    Every index with a 2-D ``weight`` becomes ``Linear`` (with a bias when ``bias`` is present),
    every index with ``running_mean`` becomes ``BatchNorm1d`` (affine when ``weight`` is
    present), and every index without parameters between them becomes the activation: the
    parameter-free slots of solo-learn's, MoCo's and SwAV's heads are exactly their
    activations, so the rebuilt module has the same indices, hence the same keys, as the
    original. A state dict with keys ``weight``/``bias`` alone is a single ``Linear``.

    Args:
        sd: the head's tensors, prefix removed.
        activation: ``relu`` or ``gelu``.
        what: the head's name, for messages.

    Raises:
        ValueError: a key that fits none of these layers.
    """
    if set(sd) <= {"weight", "bias"} and "weight" in sd:
        w = sd["weight"]
        return nn.Linear(w.shape[1], w.shape[0], bias="bias" in sd)
    by_index: Dict[int, Dict[str, Tensor]] = {}
    for key, value in sd.items():
        head, _, param = key.partition(".")
        if not head.isdigit() or not param:
            raise CheckpointError(
                f"{what}: key {key!r} is not of the form '<index>.<param>' of an nn.Sequential "
                "MLP; pass the checkpoint's format explicitly or load the model yourself."
            )
        by_index.setdefault(int(head), {})[param] = value
    layers: List[nn.Module] = []
    for i in range(max(by_index) + 1):
        params = by_index.get(i)
        if params is None:
            layers.append(ACTIVATIONS[activation]())
        elif "running_mean" in params:
            layers.append(nn.BatchNorm1d(params["running_mean"].shape[0],
                                         affine="weight" in params))
        elif "weight" in params and params["weight"].ndim == 2:
            w = params["weight"]
            layers.append(nn.Linear(w.shape[1], w.shape[0], bias="bias" in params))
        else:
            raise CheckpointError(
                f"{what}: layer {i} with tensors {sorted(params)} is neither Linear nor "
                "BatchNorm1d; this head is not supported by the generic rebuild."
            )
    return nn.Sequential(*layers)


def output_dim(head: nn.Module, in_dim: int) -> int:
    """Width of the last ``Linear``/``BatchNorm1d`` of ``head`` (``in_dim`` when it has none)."""
    dim = in_dim
    for m in head.modules():
        if isinstance(m, nn.Linear):
            dim = m.out_features
        elif isinstance(m, nn.BatchNorm1d):
            dim = m.num_features
    return dim
