"""Run a function on several CPU processes joined in one gloo process group."""

from pathlib import Path
from typing import Any, Callable, List

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _entry(rank: int, fn: Callable[[int, int], Any], world: int, tmp: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp}/init", rank=rank, world_size=world)
    try:
        torch.save(fn(rank, world), f"{tmp}/result{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_ranks(fn: Callable[[int, int], Any], tmp_path: Path, world: int = 2) -> List[Any]:
    """``fn(rank, world)`` on ``world`` spawned processes; their results, in rank order.

    ``fn`` must be a module-level function; its result must be loadable with
    ``torch.load(weights_only=True)`` (tensors, numbers, strings, lists and dicts of them).
    """
    mp.start_processes(_entry, args=(fn, world, str(tmp_path)), nprocs=world, join=True,
                       start_method="spawn")
    return [torch.load(tmp_path / f"result{r}.pt", weights_only=True) for r in range(world)]
