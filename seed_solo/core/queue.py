"""A FIFO of past teacher embeddings, the instance queue D of SEED (and of MoCo)."""

from __future__ import annotations

from typing import Any, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seed_solo.core.distributed import gather_padded, gather_rows, is_distributed
from seed_solo.core.errors import CheckpointError


class EmbeddingQueue(nn.Module):
    """FIFO of ``size`` L2-normalised embeddings of ``dim`` floats, saved in checkpoints.

    How it starts: empty. Slots not yet written are left out of :meth:`get`, so the first steps
    see a short queue rather than the original code's random unit vectors, which act as
    ``K`` noise negatives (about 2,000 steps at K=65,536 and batch 32) until overwritten.

    Any batch size works, including ones that do not divide ``size`` (writes wrap around) and
    batches larger than the queue (only the newest ``size`` rows are kept). Under DDP,
    :meth:`enqueue` gathers the rows of every rank first, so all ranks hold the same queue.

    Buffers (in ``state_dict``): ``embeddings`` (size, dim), ``ptr`` (next slot to write) and
    ``num_filled`` (valid rows, at most ``size``).
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if int(size) < 1 or int(dim) < 1:
            raise ValueError(
                f"queue size and dim must be positive integers, got size={size}, dim={dim}."
            )
        self.size = int(size)
        self.dim = int(dim)
        self.register_buffer("embeddings", torch.zeros(self.size, self.dim))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("num_filled", torch.zeros((), dtype=torch.long))
        # host copies, so reading and writing never waits on the device (_ptr is None when
        # only the device knows it, after a write under DDP with a capacity)
        self._ptr: int | None = 0
        self._filled = 0

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}, filled={self._filled}"

    @property
    def position(self) -> int:
        """The next slot to write (reads the device after a write under DDP with a capacity)."""
        return int(self.ptr) if self._ptr is None else self._ptr

    def __len__(self) -> int:
        return self._filled

    def get(self) -> Tensor:
        """The valid entries, (min(filled, size), dim): a view (no copy), in slot order.

        The view shares storage with the queue: use it before the next :meth:`enqueue`, and let
        backward run before enqueueing (autograd checks that saved tensors were not modified).
        """
        return self.embeddings[: self._filled]

    @torch.no_grad()
    def preview(self, rows: Tensor) -> Tensor:
        """The valid entries as they will be once ``rows`` (N, dim) are enqueued (oldest out
        first, at most ``size``), without writing: the bank of an objective that enqueues
        before it scores (LightlyTrain). Rows are normalised as :meth:`enqueue` writes them;
        the order of the rows is not slot order (no objective depends on it)."""
        rows = F.normalize(rows.detach().to(self.embeddings.dtype), dim=1)
        if self._filled < self.size:
            fifo = self.embeddings[: self._filled]
        else:  # full: the oldest entry is at the write position
            p = self.position
            fifo = torch.cat([self.embeddings[p:], self.embeddings[:p]])
        return torch.cat([fifo, rows])[-self.size:]

    @torch.no_grad()
    def enqueue(self, rows: Tensor, gather: bool = True, capacity: int | None = None) -> None:
        """Append ``rows`` (N, dim), oldest out first; gathers from every rank when ``gather``.

        Args:
            rows: (N, dim) embeddings; normalised here.
            gather: under DDP, append the rows of every rank (in rank order), so that all ranks
                hold the same queue.
            capacity: an upper bound on any rank's N (the per-device batch size times the
                crops). Under DDP it makes the enqueue wait on nothing: rows travel in fixed
                blocks and the write position stays on the device, so the host reads the device
                only while the queue is filling. Without it, ranks first exchange their N,
                which the host must read every step.
        """
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise ValueError(
                f"enqueue expects (N, {self.dim}) embeddings, got {tuple(rows.shape)}; "
                "the queue dimension must match the teacher's embedding size."
            )
        if gather and capacity is not None and is_distributed():
            block, valid = gather_padded(rows, capacity)
            if block.shape[0] <= self.size:
                self._write_on_device(block, valid)
                return
            rows = block[valid]  # more rows than slots: keep the newest, as below
        elif gather:
            rows = gather_rows(rows)
        self._write(rows)

    def _write(self, rows: Tensor) -> None:
        """Write from the host's pointer (reading it once from the device after a device write)."""
        rows = F.normalize(rows.detach().to(self.embeddings.dtype), dim=1)
        n = rows.shape[0]
        if n == 0:
            return
        if self._ptr is None:  # the last write happened on the device
            self._ptr = int(self.ptr)
        start = self._ptr
        if n > self.size:
            # only the newest `size` rows survive; they land where FIFO order would put them
            start = (start + n - self.size) % self.size
            rows = rows[-self.size :]
        m = rows.shape[0]
        first = min(m, self.size - start)
        self.embeddings[start : start + first] = rows[:first]
        if first < m:
            self.embeddings[: m - first] = rows[first:]
        self._ptr = (start + m) % self.size
        self._filled = min(self._filled + n, self.size)
        self.ptr.fill_(self._ptr)
        self.num_filled.fill_(self._filled)

    def _write_on_device(self, block: Tensor, valid: Tensor) -> None:
        """Write the valid rows of ``block`` (M <= size, dim) in order, from the device pointer.

        The M slots after the pointer are all rewritten: the valid rows first, in order; each
        padding row rewrites its slot with that slot's current content. Everything stays on the
        device; only while the queue fills does the host read how many rows are valid.
        """
        m = block.shape[0]
        order = torch.argsort((~valid).to(torch.uint8), stable=True)  # valid rows first
        slots = (self.ptr + torch.arange(m, device=block.device)) % self.size
        fresh = F.normalize(block[order].to(self.embeddings.dtype), dim=1)
        new = torch.where(valid[order, None], fresh, self.embeddings[slots])
        self.embeddings.index_copy_(0, slots, new)
        count = valid.sum()
        self.ptr.copy_((self.ptr + count) % self.size)
        self.num_filled.copy_((self.num_filled + count).clamp_max(self.size))
        self._ptr = None
        if self._filled < self.size:  # once full, it stays full: no more reads
            self._filled = int(self.num_filled)

    def reset(self) -> None:
        self.embeddings.zero_()
        self._ptr = self._filled = 0
        self.ptr.fill_(0)
        self.num_filled.fill_(0)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        key = prefix + "embeddings"
        if key in state_dict and tuple(state_dict[key].shape) != (self.size, self.dim):
            raise CheckpointError(
                f"checkpoint queue {key} has shape {tuple(state_dict[key].shape)}, this run "
                f"expects ({self.size}, {self.dim}); resume with the same queue_size and "
                "teacher embedding size."
            )
        super()._load_from_state_dict(state_dict, prefix, *args)
        self._ptr = int(self.ptr)
        self._filled = int(self.num_filled)


def scoring_bank(queue: EmbeddingQueue, rows: Tensor, enqueue: str = "after",
                 gather: bool = True) -> Tuple[Tensor, Tensor, bool]:
    """The rows a queue objective scores this step's ``rows`` (N, dim) against, and what to
    enqueue once the step is done: ``(bank, rows to enqueue, whether that enqueue gathers)``.

    - ``enqueue="after"``: the queue as it was before this step (SEED, CompRess); then ``rows``
      are enqueued, every process's when ``gather``.
    - ``enqueue="before"``: the queue with this step's rows already in it (LightlyTrain): every
      process's rows when ``gather`` (gathered here, once), only this process's otherwise.
    """
    if enqueue == "after":
        return queue.get(), rows, gather
    if enqueue != "before":
        raise ValueError(f"enqueue must be 'after' or 'before', got {enqueue!r}.")
    if gather:
        rows = gather_rows(rows)
    return queue.preview(rows), rows, False
