"""Which ops of a piece of code make the host wait for the device, recorded on any device.

On a GPU, an op whose result's value or size the host must know (``.item()``, ``int(t)``,
``nonzero``, boolean indexing, ...) blocks the Python thread until the device has run everything
queued before it. ``torch.cuda.set_sync_debug_mode`` catches these only on CUDA; this records the
same ops from the dispatcher, so CPU tests can assert that a training step has none. (A
``tolist()`` of a CPU tensor runs no op and is not seen; on a GPU it shows as a copy to the host.)
"""

from __future__ import annotations

from typing import Any, List

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# ops whose output value or shape is read back by the host
_READ_BACK = {"_local_scalar_dense", "nonzero", "masked_select", "_unique2", "unique_consecutive",
              "unique_dim", "nonzero_static", "argwhere"}


class HostReads(TorchDispatchMode):
    """Context manager; ``.ops`` lists the read-back ops run inside it, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: List[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = func._overloadpacket.__name__
        if name in _READ_BACK:
            self.ops.append(str(func))
        elif name in ("index", "index_put", "index_put_") and any(
            isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
            for i in _flat(args[1:2])  # the indices, not the indexed tensor
        ):
            self.ops.append(f"{func} with a boolean mask")
        elif name in ("_to_copy", "copy_") and _device_to_host(name, args, kwargs or {}):
            self.ops.append(f"{func} from the device to the host")
        elif name == "repeat_interleave" and (kwargs or {}).get("output_size") is None:
            self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def _device_to_host(name: str, args: Any, kwargs: Any) -> bool:
    if name == "copy_":
        dst, src = args[0], args[1]
        return dst.device.type == "cpu" and src.device.type != "cpu"
    target = kwargs.get("device")
    to_host = target is not None and torch.device(target).type == "cpu"
    return to_host and args[0].device.type != "cpu"


def _flat(args: Any) -> List[Any]:
    out: List[Any] = []
    for a in args:
        if isinstance(a, (list, tuple)):
            out.extend(_flat(a))
        else:
            out.append(a)
    return out
