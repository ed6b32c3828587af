"""The SEED student's projection head (Fang et al., ICLR 2021, section 3)."""

from __future__ import annotations

from torch import nn


def projection_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Module:
    """Linear(F, hidden) - ReLU - Linear(hidden, d): (B, F) backbone features -> (B, d)."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)
    )
