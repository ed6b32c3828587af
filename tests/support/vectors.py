"""Random unit vectors for the loss tests, reproducible from a seed."""

import torch
import torch.nn.functional as F


def unit(*shape, seed=0, dtype=torch.float64):
    """``shape`` rows of L2-normalised Gaussian noise, drawn in float64 then cast to ``dtype``."""
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1).to(dtype)
