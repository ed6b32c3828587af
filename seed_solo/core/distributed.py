"""Guarded collectives: every call also works in one process without a process group."""

from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.distributed as dist
from torch import Tensor, nn


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


# all_gather_into_tensor was renamed all_gather_single in torch 2.14 (the old name warns)
_all_gather_single = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


@torch.no_grad()
def gather_padded(x: Tensor, capacity: int) -> tuple[Tensor, Tensor]:
    """Rows of every rank, each padded to ``capacity``, and which of them are real; no host sync.

    Unlike :func:`gather_rows`, no size is exchanged and nothing is read back to the host: every
    rank sends a fixed ``(capacity, ...)`` block, so the collective is one ``all_gather`` that the
    device can run asynchronously. ``capacity`` must bound every rank's N_r (the per-device batch
    size of a training loader with ``drop_last``).

    Returns:
        rows ``(world * capacity, ...)``, rank blocks in rank order, padding zero-filled; and
        ``valid`` ``(world * capacity,)`` bool, True for the first N_r rows of block r. In a single
        process the block of this process alone.
    """
    n = x.shape[0]
    if n > capacity:
        raise ValueError(
            f"this rank has {n} rows to gather but the capacity is {capacity}; pass the largest "
            "per-rank row count (the per-device batch size times the crops)."
        )
    flat = x.reshape(n, math.prod(x.shape[1:]))
    block = flat.new_zeros(capacity, flat.shape[1] + 1)  # last column: 1 for a real row
    block[:n, :-1] = flat
    block[:n, -1] = 1
    if is_distributed():
        out = block.new_empty(dist.get_world_size() * capacity, block.shape[1])
        _all_gather_single(out, block.contiguous())
        block = out
    return block[:, :-1].reshape(-1, *x.shape[1:]), block[:, -1] > 0


def ddp_ignore(module: nn.Module, prefixes: Iterable[str]) -> list[str]:
    """Keep DistributedDataParallel from broadcasting or reducing state under ``prefixes``.

    For state that every rank already holds identically and that never trains: a frozen
    teacher (loaded from the same file on every rank) and the queue (written with the same
    gathered rows on every rank). With ``broadcast_buffers=True``, DDP's default, it would
    otherwise re-send every buffer from rank 0 before each forward: 32 MiB a step for a 65,536 x
    128 queue, and the teacher's weights once at start-up. Call before DDP wraps ``module``.

    Returns:
        The names of the parameters and buffers now ignored, also stored on ``module`` where
        DDP reads them (``_ddp_params_and_buffers_to_ignore``).
    """
    prefixes = tuple(prefixes)
    names = [
        name
        for name, _ in [*module.named_parameters(), *module.named_buffers()]
        if name.startswith(prefixes)
    ]
    previous = list(getattr(module, "_ddp_params_and_buffers_to_ignore", []))
    names = previous + [n for n in names if n not in previous]
    torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
        module, names
    )
    return names
