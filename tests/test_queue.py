"""The embedding queue: FIFO order, wrap-around, checkpoint round trip, DDP gather."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from host_reads import HostReads

from seed_solo.queue import EmbeddingQueue


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


def _ddp_worker(rank, world, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        result = []
        for pattern in PATTERNS:
            q = EmbeddingQueue(11, 4)
            offset = 0
            for n_per_rank in pattern:
                # rank r holds its own slice of the step's global batch
                start = offset + sum(n_per_rank[:rank])
                q.enqueue(rows(start, n_per_rank[rank]))
                offset += sum(n_per_rank)
            result.append({"emb": q.embeddings, "ptr": q.position, "n": len(q)})
        torch.save(result, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_enqueue_equals_single_process_with_concatenated_batch(tmp_path):
    """Two gloo processes, equal and unequal per-rank batches (incl. an empty one)."""
    world = 2
    mp.start_processes(
        _ddp_worker,
        args=(world, str(tmp_path / "init"), str(tmp_path)),
        nprocs=world,
        join=True,
        start_method="spawn",
    )
    for i, pattern in enumerate(PATTERNS):
        single = EmbeddingQueue(11, 4)
        offset = 0
        for n_per_rank in pattern:
            single.enqueue(rows(offset, sum(n_per_rank)))
            offset += sum(n_per_rank)
        for rank in range(world):
            got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)[i]
            assert torch.equal(got["emb"], single.embeddings), f"pattern {i}, rank {rank}"
            assert (got["ptr"], got["n"]) == (single.position, len(single))


# per step, (rows on rank 0, rows on rank 1); capacity 4, queue 16: full after the third step
NO_SYNC_STEPS = [(4, 4), (4, 3), (2, 4), (4, 4), (0, 1), (3, 4)]


def _ddp_capacity_worker(rank, world, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        result = {}
        for capacity in (None, 4):
            q = EmbeddingQueue(16, 4)
            offset, reads_when_full = 0, []
            for n_per_rank in NO_SYNC_STEPS:
                start = offset + sum(n_per_rank[:rank])
                full = len(q) == q.size
                with HostReads() as reads:
                    q.enqueue(rows(start, n_per_rank[rank]), capacity=capacity)
                if full:
                    reads_when_full += reads.ops
                offset += sum(n_per_rank)
            result[capacity] = {
                "emb": q.embeddings,
                "ptr": q.position,
                "n": len(q),
                "reads": reads_when_full,
            }
        # capacity patterns of the general test, incl. 14 padded rows for 11 slots
        result["patterns"] = []
        for pattern in PATTERNS:
            q = EmbeddingQueue(11, 4)
            offset = 0
            capacity = max(max(n) for n in pattern)
            for n_per_rank in pattern:
                start = offset + sum(n_per_rank[:rank])
                q.enqueue(rows(start, n_per_rank[rank]), capacity=capacity)
                offset += sum(n_per_rank)
            result["patterns"].append({"emb": q.embeddings, "ptr": q.position, "n": len(q)})
        torch.save(result, f"{out_dir}/cap{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_enqueue_with_capacity_matches_and_reads_nothing_back_once_full(tmp_path):
    """With a capacity, rows travel in fixed blocks and the pointer stays on the device.

    Same queue as one process enqueueing the concatenated batches, for unequal and empty
    per-rank batches; once the queue is full, no op reads a value back to the host. Without a
    capacity the sizes are exchanged and read every step (``.item()``), which the recorder sees.
    """
    world = 2
    mp.start_processes(
        _ddp_capacity_worker,
        args=(world, str(tmp_path / "init"), str(tmp_path)),
        nprocs=world,
        join=True,
        start_method="spawn",
    )
    single = EmbeddingQueue(16, 4)
    offset = 0
    for n_per_rank in NO_SYNC_STEPS:
        single.enqueue(rows(offset, sum(n_per_rank)))
        offset += sum(n_per_rank)
    for rank in range(world):
        got = torch.load(tmp_path / f"cap{rank}.pt", weights_only=True)
        for capacity in (None, 4):
            assert torch.equal(got[capacity]["emb"], single.embeddings), (rank, capacity)
            assert (got[capacity]["ptr"], got[capacity]["n"]) == (single.position, 16)
        assert got[4]["reads"] == []
        assert "aten._local_scalar_dense.default" in got[None]["reads"]
        for i, pattern in enumerate(PATTERNS):
            ref = EmbeddingQueue(11, 4)
            offset = 0
            for n_per_rank in pattern:
                ref.enqueue(rows(offset, sum(n_per_rank)))
                offset += sum(n_per_rank)
            out = got["patterns"][i]
            assert torch.equal(out["emb"], ref.embeddings), f"pattern {i}, rank {rank}"
            assert (out["ptr"], out["n"]) == (ref.position, len(ref))


def test_capacity_smaller_than_the_batch_is_a_clear_error():
    from seed_solo.distributed import gather_padded

    with pytest.raises(ValueError, match="capacity is 3"):
        gather_padded(rows(0, 5), 3)


def test_gather_padded_in_one_process_marks_the_real_rows():
    from seed_solo.distributed import gather_padded

    block, valid = gather_padded(rows(0, 2), 5)
    assert block.shape == (5, 4)
    assert valid.tolist() == [True, True, False, False, False]
    assert torch.equal(block[:2], rows(0, 2)) and not block[2:].any()
