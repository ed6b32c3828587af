"""The embedding queue: FIFO order, wrap-around, checkpoint round trip, DDP gather."""

import pytest
import torch
import torch.nn.functional as F

from seed_solo.core.queue import EmbeddingQueue
from tests.support.gloo import run_ranks
from tests.support.host_reads import HostReads


def rows(start, n, dim=4):
    """n distinct unit rows whose first coordinate encodes their index start..start+n-1."""
    idx = torch.arange(start, start + n, dtype=torch.float32)
    x = torch.zeros(n, dim)
    x[:, 0] = idx + 1
    x[:, 1] = 1000.0
    return F.normalize(x, dim=1)


def ids(queue_rows):
    """Recover the indexes written by `rows` from normalised rows."""
    return torch.round(queue_rows[:, 0] / queue_rows[:, 1] * 1000.0 - 1).long().tolist()


def fifo_reference(batches, size):
    """The last `size` items, oldest first, by plain list manipulation."""
    items = [i for b in batches for i in b]
    return items[-size:]


def queue_in_age_order(q):
    """Entries from oldest to newest (slot order rotated at the pointer once full)."""
    data = q.get()
    if len(q) < q.size:
        return ids(data)
    return ids(torch.cat([data[q.position :], data[: q.position]]))


def test_starts_empty_and_fills_in_order():
    q = EmbeddingQueue(10, 4)
    assert q.get().shape == (0, 4)
    q.enqueue(rows(0, 3))
    assert ids(q.get()) == [0, 1, 2]
    q.enqueue(rows(3, 4))
    assert ids(q.get()) == [0, 1, 2, 3, 4, 5, 6]
    assert len(q) == 7


@pytest.mark.parametrize("size", [5, 8, 13])
@pytest.mark.parametrize("batch_sizes", [[3] * 7, [4, 4, 4, 4], [1, 6, 2, 9, 3], [20], [13, 1]])
def test_fifo_with_batches_that_do_not_divide_size(size, batch_sizes):
    q = EmbeddingQueue(size, 4)
    batches, start = [], 0
    for n in batch_sizes:
        q.enqueue(rows(start, n))
        batches.append(list(range(start, start + n)))
        start += n
        assert queue_in_age_order(q) == fifo_reference(batches, size)
        assert len(q) == min(start, size)
        assert q.position == int(q.ptr) and len(q) == int(q.num_filled)


def test_oldest_is_overwritten_first():
    q = EmbeddingQueue(4, 4)
    q.enqueue(rows(0, 4))
    q.enqueue(rows(4, 1))
    # slot 0 held the oldest entry (0); it now holds 4, the rest is untouched
    assert ids(q.get()) == [4, 1, 2, 3]


def test_get_is_a_view_without_copy():
    q = EmbeddingQueue(6, 4)
    q.enqueue(rows(0, 6))
    assert q.get().data_ptr() == q.embeddings.data_ptr()


def test_enqueue_normalises_and_checks_dim():
    q = EmbeddingQueue(3, 4)
    q.enqueue(torch.full((2, 4), 3.0))
    assert torch.allclose(q.get().norm(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        q.enqueue(torch.ones(2, 5))


@pytest.mark.parametrize("size, dim", [(0, 4), (4, 0), (-1, 2)])
def test_invalid_size_is_an_error(size, dim):
    with pytest.raises(ValueError, match="positive"):
        EmbeddingQueue(size, dim)


def test_state_dict_round_trip_restores_content_and_pointer(tmp_path):
    q = EmbeddingQueue(7, 4)
    for s in range(0, 12, 3):
        q.enqueue(rows(s, 3))
    torch.save(q.state_dict(), tmp_path / "q.pt")
    r = EmbeddingQueue(7, 4)
    r.load_state_dict(torch.load(tmp_path / "q.pt", weights_only=True))
    assert torch.equal(r.get(), q.get())
    assert (r.position, len(r)) == (q.position, len(q)) == (5, 7)
    # both continue identically
    q.enqueue(rows(12, 2))
    r.enqueue(rows(12, 2))
    assert queue_in_age_order(r) == queue_in_age_order(q) == list(range(7, 14))


def test_loading_a_queue_of_another_size_is_a_clear_error():
    q = EmbeddingQueue(8, 4)
    with pytest.raises(ValueError, match="queue_size"):
        q.load_state_dict(EmbeddingQueue(6, 4).state_dict())


PATTERNS = [[(3, 3), (3, 3), (3, 3)], [(4, 2), (1, 5), (3, 3)], [(7, 6), (0, 2)]]


def enqueue_steps(q, steps, rank=None, offset=0, **kwargs):
    """Enqueue per step ``(rows of rank 0, rows of rank 1)``: this rank's slice of the step's
    global batch, or (``rank=None``) the whole global batch at once, as one process would.
    Row indexes start at ``offset``."""
    for n_per_rank in steps:
        if rank is None:
            q.enqueue(rows(offset, sum(n_per_rank)), **kwargs)
        else:
            q.enqueue(rows(offset + sum(n_per_rank[:rank]), n_per_rank[rank]), **kwargs)
        offset += sum(n_per_rank)
    return q


def state(q):
    return {"emb": q.embeddings, "ptr": q.position, "n": len(q)}


def _ranks_enqueue(rank, world):
    return [state(enqueue_steps(EmbeddingQueue(11, 4), p, rank)) for p in PATTERNS]


@pytest.mark.slow
def test_ddp_enqueue_equals_single_process_with_concatenated_batch(tmp_path):
    """Two gloo processes, equal and unequal per-rank batches (incl. an empty one)."""
    results = run_ranks(_ranks_enqueue, tmp_path)
    for i, pattern in enumerate(PATTERNS):
        single = enqueue_steps(EmbeddingQueue(11, 4), pattern)
        for rank, got in enumerate(results):
            assert torch.equal(got[i]["emb"], single.embeddings), f"pattern {i}, rank {rank}"
            assert (got[i]["ptr"], got[i]["n"]) == (single.position, len(single))


# per step, (rows on rank 0, rows on rank 1); capacity 4, queue 16: full after the third step
NO_SYNC_STEPS = [(4, 4), (4, 3), (2, 4), (4, 4), (0, 1), (3, 4)]


def _ranks_enqueue_with_capacity(rank, world):
    result = {}
    for capacity in (None, 4):
        q = EmbeddingQueue(16, 4)
        offset, reads_when_full = 0, []
        for step in NO_SYNC_STEPS:
            full = len(q) == q.size
            with HostReads() as reads:
                enqueue_steps(q, [step], rank, offset, capacity=capacity)
            if full:
                reads_when_full += reads.ops
            offset += sum(step)
        result[capacity] = {**state(q), "reads": reads_when_full}
    # capacity patterns of the general test, incl. 14 padded rows for 11 slots
    result["patterns"] = [
        state(enqueue_steps(EmbeddingQueue(11, 4), p, rank, capacity=max(max(n) for n in p)))
        for p in PATTERNS
    ]
    return result


@pytest.mark.slow
def test_ddp_enqueue_with_capacity_matches_and_reads_nothing_back_once_full(tmp_path):
    """With a capacity, rows travel in fixed blocks and the pointer stays on the device.

    Same queue as one process enqueueing the concatenated batches, for unequal and empty
    per-rank batches; once the queue is full, no op reads a value back to the host. Without a
    capacity the sizes are exchanged and read every step (``.item()``), which the recorder sees.
    """
    results = run_ranks(_ranks_enqueue_with_capacity, tmp_path)
    single = enqueue_steps(EmbeddingQueue(16, 4), NO_SYNC_STEPS)
    for rank, got in enumerate(results):
        for capacity in (None, 4):
            assert torch.equal(got[capacity]["emb"], single.embeddings), (rank, capacity)
            assert (got[capacity]["ptr"], got[capacity]["n"]) == (single.position, 16)
        assert got[4]["reads"] == []
        assert "aten._local_scalar_dense.default" in got[None]["reads"]
        for i, pattern in enumerate(PATTERNS):
            ref = enqueue_steps(EmbeddingQueue(11, 4), pattern)
            out = got["patterns"][i]
            assert torch.equal(out["emb"], ref.embeddings), f"pattern {i}, rank {rank}"
            assert (out["ptr"], out["n"]) == (ref.position, len(ref))


def test_capacity_smaller_than_the_batch_is_a_clear_error():
    from seed_solo.core.distributed import gather_padded

    with pytest.raises(ValueError, match="capacity is 3"):
        gather_padded(rows(0, 5), 3)


def test_gather_padded_in_one_process_marks_the_real_rows():
    from seed_solo.core.distributed import gather_padded

    block, valid = gather_padded(rows(0, 2), 5)
    assert block.shape == (5, 4)
    assert valid.tolist() == [True, True, False, False, False]
    assert torch.equal(block[:2], rows(0, 2)) and not block[2:].any()
