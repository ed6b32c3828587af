"""A teacher-embedding cache: the frozen teacher's z_T of V replayable views of every image.

A cache is a folder holding ``embeddings.npy`` (N x V x d, float16 by default, L2-normalised
rows; memory-mapped, never loaded whole) and ``meta.json`` (what it was made from: teacher
source and file fingerprint, d, V, seed, dtype, the augmentation config and its hash, crop
size, the hash of the ordered image list, N) and ``checksums.json`` (a CRC-32 of each chunk's
rows, as the pass wrote them). :mod:`seed_solo.harness.cache_pass` builds it under
``PATH.partial`` and renames it into place when complete, so a folder named ``PATH`` with a
``meta.json`` is always whole. A training run reads it with :class:`TeacherCache`, which
refuses a cache made for another run with a sentence naming the setting
(:meth:`TeacherCache.check`), and a truncated or corrupt one naming the file, the chunk and the
fix: every chunk is checked once per process when the cache is opened (:meth:`TeacherCache.
verify`, at the speed of CRC-32: about 1 GB/s on one core).

Pure numpy/torch: no solo-learn (the views are made in :mod:`seed_solo.teacher_cache.views`).
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from seed_solo.core.errors import DataError
from seed_solo.runs.atomic import write_json
from seed_solo.runs.identity import Difference, as_json, differences, teacher_file

FORMAT_VERSION = 1
META, EMBEDDINGS, PARTIAL = "meta.json", "embeddings.npy", ".partial"
CHECKSUMS = "checksums.json"
#: (path, size, mtime) of the caches this process has verified
_VERIFIED: set = set()
DTYPES = ("float16", "float32")
#: the fields a run and its cache must agree on, in the order a mismatch is reported
#: (``augmentations_hash`` is written for readers of the file; the entries themselves are compared)
CHECKED = ("format_version", "teacher", "teacher_format", "teacher_options", "teacher_file",
           "seed", "augmentations", "crop_size", "size", "images", "dim")


def partial_path(path: Union[str, Path]) -> Path:
    """Where the pass builds the cache at ``path`` until it is complete."""
    path = Path(path)
    return path.with_name(path.name + PARTIAL)


def json_hash(value: Any) -> str:
    """sha256 of ``value`` as canonical JSON (sorted keys)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def expected_meta(teacher: str, teacher_format: str, teacher_options: Mapping[str, Any],
                  seed: int, augmentations: Mapping[str, Any], crop_size: int, images: str,
                  size: int) -> Dict[str, Any]:
    """The metadata a run's cache must carry (see :data:`CHECKED`; ``dim`` is the teacher's),
    as it reads back from ``meta.json``."""
    meta = {
        "format_version": FORMAT_VERSION,
        "teacher": teacher,
        "teacher_format": teacher_format,
        "teacher_options": dict(teacher_options),
        "teacher_file": teacher_file(teacher),
        "seed": int(seed),
        "augmentations": dict(augmentations),
        "augmentations_hash": json_hash(dict(augmentations)),
        "crop_size": int(crop_size),
        "images": images,
        "size": int(size),
    }
    return as_json(meta)


def chunk_checksum(rows: np.ndarray) -> str:
    """CRC-32 of a chunk's rows (the bytes of an N_c x V x d slab), as 8 hex digits."""
    return f"{zlib.crc32(memoryview(np.ascontiguousarray(rows)).cast('B')):08x}"


def write_checksums(folder: Path, chunk_images: int, sums: Sequence[str]) -> None:
    """``checksums.json`` of a cache: the CRC-32 of each chunk of ``chunk_images`` images."""
    write_json(folder / CHECKSUMS, {"algorithm": "crc32", "chunk_images": int(chunk_images),
                                    "chunks": list(sums)})


def _npy_layout(path: Path) -> Tuple[int, int]:
    """(bytes the ``.npy`` file must hold, bytes it holds) from its header."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read(f)
        expected = f.tell() + int(np.prod(shape)) * np.dtype(dtype).itemsize
    return expected, os.path.getsize(path)


def _describe(found: List[Difference]) -> str:
    """The first difference between a cache's metadata and a run's, as a sentence's clause."""
    key, cached, expected = found[0]
    if key.startswith("augmentations."):
        return "augmentations differ (" + ", ".join(
            f"{k[len('augmentations.'):]}: {a!r} in the cache, {b!r} in this run"
            for k, a, b in found if k.startswith("augmentations.")) + ")"
    if key == "images":
        return (f"the image list differs (sha256 {str(cached)[:12]} in the cache, "
                f"{str(expected)[:12]} in this run: other files, order or data.fraction)")
    return f"{key} is {cached!r} in the cache but {expected!r} in this run"


class TeacherCache:
    """A finished cache at ``path``: ``lookup`` returns the cached z_T of (image, view) pairs.

    Attributes:
        meta: the contents of ``meta.json``.
        views: V, views per image. dim: d, the embedding size. size: N, images.
    """

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path).expanduser()
        meta_file = self.path / META
        if not meta_file.is_file():
            hint = ("a pass into it was interrupted: rerun the same `python -m seed_solo.cache` "
                    "command to finish it" if partial_path(self.path).exists() else
                    "build it with `python -m seed_solo.cache` (docs/cache.md)")
            raise DataError(f"no teacher cache at {self.path} (no {META}); {hint}.")
        self.meta: Dict[str, Any] = json.loads(meta_file.read_text())
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"teacher cache {self.path} has format_version {self.meta.get('format_version')!r}"
                f", this seed-solo reads {FORMAT_VERSION}; rebuild it with `python -m "
                "seed_solo.cache`."
            )
        self.views, self.dim, self.size = (int(self.meta[k]) for k in ("views", "dim", "size"))
        expected, found = _npy_layout(self.path / EMBEDDINGS)
        if found < expected:
            raise DataError(
                f"teacher cache {self.path}: {EMBEDDINGS} is truncated ({found} of {expected} "
                "bytes), a copy or a disk cut short; copy the whole folder again, or delete it "
                "and rebuild it with `python -m seed_solo.cache` and the run's config.")
        shape = self.array.shape
        if shape != (self.size, self.views, self.dim):
            raise DataError(f"teacher cache {self.path}: {EMBEDDINGS} has shape {shape}, "
                            f"{META} says {(self.size, self.views, self.dim)}; rebuild it.")
        self.verify()

    def verify(self) -> None:
        """Check every chunk's rows against ``checksums.json``, once per process and file.

        Raises:
            DataError: a chunk whose rows differ from what the pass wrote, naming its images
                and the fix. A cache written before checksums existed is not checked.
        """
        stat = os.stat(self.path / EMBEDDINGS)
        key = (str(self.path.resolve()), stat.st_size, stat.st_mtime_ns)
        sums = self.checksums()
        if key in _VERIFIED or sums is None:
            return
        step = int(sums["chunk_images"])
        for c, expected in enumerate(sums["chunks"]):
            if chunk_checksum(self.array[c * step:(c + 1) * step]) != expected:
                raise DataError(
                    f"teacher cache {self.path}: the rows of images {c * step}.."
                    f"{min(self.size, (c + 1) * step) - 1} (chunk {c}) in {EMBEDDINGS} differ "
                    "from what the cache pass wrote: the file is corrupt. Copy the folder "
                    "again from a good copy, or delete it and rebuild it with `python -m "
                    "seed_solo.cache` and the run's config.")
        _VERIFIED.add(key)

    def checksums(self) -> Optional[Dict[str, Any]]:
        """``checksums.json`` (None for a cache written without one)."""
        path = self.path / CHECKSUMS
        return json.loads(path.read_text()) if path.is_file() else None

    @property
    def array(self) -> np.ndarray:
        """The N x V x d embeddings, memory-mapped read-only (opened once per process)."""
        if getattr(self, "_array", None) is None:
            self._array = np.load(self.path / EMBEDDINGS, mmap_mode="r")
        return self._array

    def __getstate__(self) -> Dict[str, Any]:  # a memory map is reopened, never pickled
        return {k: v for k, v in self.__dict__.items() if k != "_array"}

    def lookup(self, indexes: Tensor, views: Tensor) -> Tensor:
        """(B,) image indexes and (B,) view numbers -> (B, d) float32 L2-normalised embeddings
        z_T, read from the memory map (only these B rows are read)."""
        i = indexes.detach().cpu().numpy().astype(np.int64)
        v = views.detach().cpu().numpy().astype(np.int64)
        if i.size and (i.min() < 0 or i.max() >= self.size or v.min() < 0
                       or v.max() >= self.views):
            raise IndexError(f"teacher cache {self.path} holds {self.size} images x "
                             f"{self.views} views; asked for image {i.max()} view {v.max()}.")
        rows = torch.from_numpy(np.asarray(self.array[i, v], dtype=np.float32))
        return F.normalize(rows, dim=1)  # unit rows again after float16's rounding, as live

    def check(self, expected: Mapping[str, Any]) -> None:
        """Raise :class:`DataError` naming the first field of :data:`CHECKED` on which this
        cache and ``expected`` (:func:`expected_meta` of the run) disagree."""
        found = differences(self.meta, expected, [f for f in CHECKED if f in expected])
        if found:
            raise DataError(
                f"teacher cache {self.path} was made for another run: {_describe(found)}; "
                "build a cache with `python -m seed_solo.cache` and the same config and "
                "overrides as this run, or point method_kwargs.teacher_cache at that one."
            )
