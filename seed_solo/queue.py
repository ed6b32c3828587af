"""A FIFO of past teacher embeddings, the instance queue D of SEED (and of MoCo)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seed_solo.distributed import gather_rows


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
        # host copies, so reading and writing never waits on the device
        self._ptr = 0
        self._filled = 0

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}, filled={self._filled}"

    def __len__(self) -> int:
        return self._filled

    def get(self) -> Tensor:
        """The valid entries, (min(filled, size), dim): a view (no copy), in slot order.

        The view shares storage with the queue: use it before the next :meth:`enqueue`, and let
        backward run before enqueueing (autograd checks that saved tensors were not modified).
        """
        return self.embeddings[: self._filled]

    @torch.no_grad()
    def enqueue(self, rows: Tensor, gather: bool = True) -> None:
        """Append ``rows`` (N, dim), oldest out first; gathers from every rank when ``gather``."""
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise ValueError(
                f"enqueue expects (N, {self.dim}) embeddings, got {tuple(rows.shape)}; "
                "the queue dimension must match the teacher's embedding size."
            )
        if gather:
            rows = gather_rows(rows)
        rows = F.normalize(rows.detach().to(self.embeddings.dtype), dim=1)
        n = rows.shape[0]
        if n == 0:
            return
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

    def reset(self) -> None:
        self.embeddings.zero_()
        self._ptr = self._filled = 0
        self.ptr.fill_(0)
        self.num_filled.fill_(0)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        key = prefix + "embeddings"
        if key in state_dict and tuple(state_dict[key].shape) != (self.size, self.dim):
            raise ValueError(
                f"checkpoint queue {key} has shape {tuple(state_dict[key].shape)}, this run "
                f"expects ({self.size}, {self.dim}); resume with the same queue_size and "
                "teacher embedding size."
            )
        super()._load_from_state_dict(state_dict, prefix, *args)
        self._ptr = int(self.ptr)
        self._filled = int(self.num_filled)
