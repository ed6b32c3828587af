"""A queue saved by one number of processes resumes under another (a job requeued on fewer
GPUs): rows kept, pointer and fill count consistent, the next enqueue continues FIFO order.

The queue's state (rows, pointer, fill count) does not depend on the world size; the fixed-size
gather blocks are re-derived from each run's world size at every enqueue. Checked against one
process that enqueues the same rows in the same (step, rank) order.
"""

from __future__ import annotations

import functools

import pytest
import torch

from seed_solo.core.queue import EmbeddingQueue
from tests.support.gloo import run_ranks

SIZE, DIM, BATCH = 24, 4, 3


def rows_of(step: int, rank: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 * step + rank)
    return torch.randn(BATCH, DIM, generator=g)


def steps(queue, world, rank, first, count):
    for step in range(first, first + count):
        queue.enqueue(rows_of(step, rank), capacity=BATCH)


def _run(rank, world, state_file, first, count):
    queue = EmbeddingQueue(SIZE, DIM)
    if state_file:
        queue.load_state_dict(torch.load(state_file, weights_only=True))
    steps(queue, world, rank, first, count)
    return {k: v.clone() for k, v in queue.state_dict().items()}


def reference(plan):
    """One process, the rows of every (step, rank) of ``plan`` = [(world, steps), ...]."""
    queue, step = EmbeddingQueue(SIZE, DIM), 0
    for world, count in plan:
        for s in range(step, step + count):
            queue.enqueue(torch.cat([rows_of(s, r) for r in range(world)]), gather=False)
        step += count
    return queue.state_dict()


@pytest.mark.slow
@pytest.mark.parametrize("worlds", [(4, 2, 1), (1, 4)])
def test_the_queue_resumes_under_another_world_size(worlds, tmp_path):
    plan, step, state_file = [], 0, None
    for i, world in enumerate(worlds):
        count = 3 if i == 0 else 2  # 4 ranks x 3 steps x 3 rows = 36 > 24: it has wrapped
        fn = functools.partial(_run, state_file=state_file, first=step, count=count)
        if world == 1:
            states = [fn(0, 1)]
        else:
            (tmp_path / f"w{i}").mkdir()
            states = run_ranks(fn, tmp_path / f"w{i}", world=world)
        for s in states[1:]:  # every rank holds the same queue
            assert all(torch.equal(s[k], states[0][k]) for k in s)
        plan.append((world, count))
        step += count
        ref = reference(plan)
        assert int(states[0]["ptr"]) == int(ref["ptr"])
        assert int(states[0]["num_filled"]) == int(ref["num_filled"])
        torch.testing.assert_close(states[0]["embeddings"], ref["embeddings"])
        state_file = tmp_path / f"state{i}.pt"
        torch.save(states[0], state_file)
