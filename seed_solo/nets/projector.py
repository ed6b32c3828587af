"""The student's heads: (B, F) backbone features -> (B, d), one builder per kind.

- ``mlp``: SEED's projection head (Fang et al., ICLR 2021, section 3), Linear(F, hidden) - ReLU
  - Linear(hidden, d); the paper uses hidden = F.
- ``linear``: Linear(F, d): CompRess-1q (``student.fc = nn.Linear(...)`` in
  ``train_student_one_queue.py``) and LightlyTrain's distillation (``student_projection_head``).
  Applied at every location of a feature map, it is also the dense objectives' per-location head.
- ``simreg``: SimReg's prediction head (``mlp_arch.get_mlp`` with ``n_mlp_layers=4``),
  Linear(F, 2F) - BN - ReLU - Linear(2F, F) - Linear(F, 2F) - BN - ReLU - Linear(2F, d): a
  projection and a prediction MLP with no BN or ReLU between them; ``hidden`` is its 2F.
"""

from __future__ import annotations

from typing import Optional

from torch import nn

from seed_solo.core.errors import ConfigError
from seed_solo.core.objectives.registry import HEADS


def projection_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Module:
    """Linear(F, hidden) - ReLU - Linear(hidden, d): (B, F) backbone features -> (B, d)."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)
    )


def simreg_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Module:
    """SimReg's 4-layer head (module docstring); SimReg's own widths are hidden = 2F."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, in_dim),
        nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, out_dim),
    )


def default_hidden(kind: str, in_dim: int) -> Optional[int]:
    """The hidden width a head of ``kind`` gets when none is set: F for SEED's MLP (the paper),
    2F for SimReg's (its ``hidden_dims``), none for a linear head."""
    return {"mlp": in_dim, "simreg": 2 * in_dim}.get(kind)


def student_head(kind: str, in_dim: int, hidden_dim: Optional[int], out_dim: int) -> nn.Module:
    """The head of ``kind`` (module docstring), (B, F) -> (B, d)."""
    if kind not in HEADS:
        raise ConfigError(f"method_kwargs.head={kind!r} is not one of {', '.join(HEADS)}.")
    hidden = int(hidden_dim) if hidden_dim else default_hidden(kind, in_dim)
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "simreg":
        return simreg_head(in_dim, hidden, out_dim)
    return projection_head(in_dim, hidden, out_dim)
