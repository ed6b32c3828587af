"""Every objective under 2-process gloo DDP equals one process on the concatenated batch: the
same losses, weights and queue after a few SGD steps (the queue gathered, or, for
LightlyTrain's per-process queue, each process's own rows)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from seed_solo.core.objectives import (
    dense_loss,
    l2_loss,
    queue_kl,
    seed_loss,
    simreg_loss,
    to_grid,
    token_kl,
)
from seed_solo.core.queue import EmbeddingQueue, scoring_bank
from tests.support.gloo import run_ranks

pytestmark = pytest.mark.slow

FEAT, D, C_T, K, BATCH, STEPS = 5, 4, 3, 16, 8, 3
#: name -> (global term, local term, self_positive, enqueue, gather, tau_T, tau_S)
CASES = {
    "seed": ("queue_kl", None, True, "after", True, 0.01, 0.2),
    "compress-1q": ("queue_kl", None, False, "after", True, 0.04, 0.04),
    "lightly-v1 (gathered)": ("queue_kl", None, False, "before", True, 0.07, 0.07),
    "l2": ("l2", None, True, "after", True, 0, 0),
    "simreg": ("simreg", None, True, "after", True, 0, 0),
    "seed-mocov2": ("seed+moco", None, True, "after", True, 0.01, 0.2),
    "dense": (None, "dense", True, "after", True, 0, 0),
    "lightly-v3 (gathered)": ("queue_kl", "token_kl", False, "before", True, 0.07, 0.07),
}


class Student(nn.Module):
    """A linear global head over fixed features and a per-location linear head over maps."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(FEAT, D).double()
        self.local = nn.Conv2d(FEAT, C_T, 1).double()

    def forward(self, feats, maps):
        return F.normalize(self.head(feats), dim=1), self.local(to_grid(maps, (2, 2)))


def _data(step):
    g = torch.Generator().manual_seed(100 + step)
    return {"feats": torch.randn(BATCH, FEAT, dtype=torch.float64, generator=g),
            "z_t": F.normalize(torch.randn(BATCH, D, dtype=torch.float64, generator=g), dim=1),
            "maps": torch.randn(BATCH, FEAT, 4, 4, dtype=torch.float64, generator=g),
            "t_maps": torch.randn(BATCH, C_T, 2, 2, dtype=torch.float64, generator=g),
            "keys": F.normalize(torch.randn(BATCH, D, dtype=torch.float64, generator=g), dim=1)}


MOCO_QUEUE = F.normalize(torch.randn(D, 10, dtype=torch.float64,
                                     generator=torch.Generator().manual_seed(9)), dim=0)


def _loss(case, z_s, s_map, batch, queue):
    glob, local, self_positive, enqueue, gather, tau_t, tau_s = case
    z_t, rows, gathers = batch["z_t"], None, False
    loss = torch.zeros((), dtype=torch.float64)
    if glob in ("queue_kl", "seed+moco"):
        bank, rows, gathers = scoring_bank(queue, z_t, enqueue, gather)
        if self_positive:
            loss = seed_loss(z_s, z_t, bank, tau_t, tau_s)
        else:
            loss = queue_kl(z_s, z_t, bank, tau_t, tau_s)
        if glob == "seed+moco":  # solo-learn's MoCo v2+ loss, weight 1
            from solo.losses.mocov2plus import mocov2plus_loss_func  # only this case needs solo

            loss = loss + mocov2plus_loss_func(z_s, batch["keys"], MOCO_QUEUE, 0.2)
    elif glob == "l2":
        loss = l2_loss(z_s, z_t)
    elif glob == "simreg":
        loss = simreg_loss(z_s, z_t)
    if local == "dense":
        loss = loss + dense_loss(s_map, batch["t_maps"])
    elif local == "token_kl":
        loss = loss + token_kl(s_map, batch["t_maps"], 0.07)
    return loss, rows, gathers


def _train(rank, world, case, ddp):
    torch.manual_seed(0)
    student = Student()
    model = DistributedDataParallel(student, find_unused_parameters=True) if ddp else student
    opt = torch.optim.SGD(student.parameters(), lr=0.5)
    queue = EmbeddingQueue(K, D).double()
    per = BATCH // world
    losses = []
    for step in range(STEPS):
        batch = {k: v[rank * per:(rank + 1) * per] for k, v in _data(step).items()}
        z_s, s_map = model(batch["feats"], batch["maps"])
        loss, rows, gathers = _loss(case, z_s, s_map, batch, queue)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if rows is not None:
            queue.enqueue(rows, gather=gathers, capacity=per if gathers else None)
        losses.append(loss.detach())
    return {"losses": torch.stack(losses), "queue": queue.get().clone(),
            **{k: v.detach().clone() for k, v in student.state_dict().items()}}


def _all_cases(rank, world):
    found = {name: _train(rank, world, case, True) for name, case in CASES.items()}
    per_process = ("queue_kl", None, False, "before", False, 0.07, 0.07)  # LightlyTrain's own
    found["lightly-v1"] = _train(rank, world, per_process, True)
    return found


def test_two_gloo_processes_equal_one_process_on_the_whole_batch(tmp_path):
    ranks = run_ranks(_all_cases, tmp_path)
    for name, case in CASES.items():
        one = _train(0, 1, case, False)
        for r in ranks:
            got = r[name]
            for key in ("head.weight", "head.bias", "local.weight", "local.bias"):
                torch.testing.assert_close(got[key], one[key], rtol=1e-9, atol=1e-12,
                                           msg=f"{name}: {key}")
            torch.testing.assert_close(got["queue"], one["queue"], msg=f"{name}: queue")
        # each process's loss is the mean over its half: their mean is the whole batch's
        mean = (ranks[0][name]["losses"] + ranks[1][name]["losses"]) / 2
        torch.testing.assert_close(mean, one["losses"], rtol=1e-9, atol=1e-12, msg=name)
        assert not torch.equal(ranks[0][name]["losses"], ranks[1][name]["losses"])
    # LightlyTrain's queue is per process: each holds only the teacher rows of its own halves
    for rank, r in enumerate(ranks):
        own = torch.cat([_data(s)["z_t"][rank * 4:(rank + 1) * 4] for s in range(STEPS)])
        torch.testing.assert_close(r["lightly-v1"]["queue"], own)
