"""DDP and the state every rank holds identically: left out of DDP's per-step broadcast."""

import pytest
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from seed_solo.core.distributed import ddp_ignore
from seed_solo.core.queue import EmbeddingQueue
from tests.support.gloo import run_ranks


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.student = nn.BatchNorm1d(4)  # trains: its buffers are broadcast from rank 0
        self.teacher = nn.Linear(4, 4)
        self.teacher.requires_grad_(False)
        self.teacher.register_buffer("stat", torch.zeros(4))
        self.queue = EmbeddingQueue(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x) + self.teacher(x).detach()


def _one_ddp_step(rank, world):
    torch.manual_seed(0)
    model = Toy()
    names = ddp_ignore(model, ("teacher.", "queue."))
    # rank-specific values written before DDP's start-up broadcast and between forwards
    with torch.no_grad():
        model.teacher.weight.fill_(rank + 1)
    ddp = DistributedDataParallel(model, broadcast_buffers=True)
    with torch.no_grad():
        model.student.running_mean.fill_(10.0 * (rank + 1))
        model.teacher.stat.fill_(10.0 * (rank + 1))
        model.queue.embeddings.fill_(10.0 * (rank + 1))
    ddp(torch.randn(6, 4)).sum().backward()
    return {
        "names": names,
        "teacher_weight": model.teacher.weight[0, 0].item(),
        "teacher_stat": model.teacher.stat[0].item(),
        "queue": model.queue.embeddings[0, 0].item(),
        # BN in train mode updated its (broadcast) running mean in this forward
        "student_running_mean": model.student.running_mean[0].item(),
    }


@pytest.mark.slow
def test_ignored_state_is_neither_broadcast_at_start_nor_every_forward(tmp_path):
    got = run_ranks(_one_ddp_step, tmp_path)
    assert got[0]["names"] == [
        "teacher.weight",
        "teacher.bias",
        "teacher.stat",
        "queue.embeddings",
        "queue.ptr",
        "queue.num_filled",
    ]
    for rank, g in enumerate(got):
        # ignored: each rank keeps its own values
        assert g["teacher_weight"] == rank + 1
        assert g["teacher_stat"] == g["queue"] == 10.0 * (rank + 1)
    # not ignored: rank 1's running mean (20) was overwritten by rank 0's (10) before the forward,
    # then both moved by momentum 0.1 towards their own batch mean
    assert abs(got[1]["student_running_mean"] - 9.0) < 0.5
    assert abs(got[0]["student_running_mean"] - 9.0) < 0.5


def test_ddp_ignore_adds_to_an_existing_list():
    model = Toy()
    ddp_ignore(model, ("queue.",))
    names = ddp_ignore(model, ("teacher.", "queue."))
    assert names == [
        "queue.embeddings",
        "queue.ptr",
        "queue.num_filled",
        "teacher.weight",
        "teacher.bias",
        "teacher.stat",
    ]
    assert model._ddp_params_and_buffers_to_ignore == names
