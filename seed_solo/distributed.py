"""Guarded collectives: every call also works in one process without a process group."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True only inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@torch.no_grad()
def gather_rows(x: Tensor) -> Tensor:
    """Concatenate ``x`` (N_r, ...) from every rank in rank order, without gradient.

    Ranks may hold different N_r (the last batch of an epoch): sizes are exchanged first and
    rows padded, so no rank hangs or silently drops rows.

    Returns:
        (sum_r N_r, ...) on every rank; ``x`` itself in a single process.
    """
    if not is_distributed():
        return x
    n = dist.get_world_size()
    local = torch.tensor([x.shape[0]], device=x.device, dtype=torch.long)
    sizes = [torch.zeros_like(local) for _ in range(n)]
    dist.all_gather(sizes, local)
    counts = [int(s.item()) for s in sizes]
    longest = max(counts)
    if x.shape[0] < longest:
        pad = x.new_zeros((longest - x.shape[0], *x.shape[1:]))
        x = torch.cat([x, pad])
    out = [torch.empty_like(x) for _ in range(n)]
    dist.all_gather(out, x.contiguous())
    return torch.cat([o[:c] for o, c in zip(out, counts)])
