"""The cache pass: run the frozen teacher once over V replayable views of every image
(``python -m seed_solo.cache``; docs/cache.md).

The images are split into chunks (``cache.chunk_images``); under torchrun every rank takes the
chunks ``c`` with ``c % WORLD_SIZE == RANK`` and writes their rows straight into the shared
memory-mapped ``PATH.partial/embeddings.npy``, then a ``done/`` marker per chunk. A pass that
stops (killed, or ``cache.max_chunks`` reached) continues from the chunks without a marker
when the same command runs again, with any number of processes; the last one renames
``PATH.partial`` to ``PATH``. Nothing is ever held whole in memory: one batch of views and its
embeddings at a time.

Each chunk's marker holds the CRC-32 of its rows; the last step gathers them into
``checksums.json``, against which every run checks the cache. One pass at a time writes a
cache: the first process holds ``PATH.lock`` (:func:`seed_solo.runs.locks.folder_lock`) from
start to end, and a second pass into the same path stops with one sentence saying so.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import PIL
import torch
import torch.distributed as dist
import torchvision
from lightning.pytorch import seed_everything
from omegaconf import DictConfig, OmegaConf
from solo.methods import METHODS
from torch.utils.data import DataLoader

from seed_solo.core.distributed import is_distributed, rank, world_size
from seed_solo.core.errors import ConfigError, DataError
from seed_solo.core.objectives.registry import DISTILL_METHODS, objective
from seed_solo.harness.config_keys import refuse_unknown
from seed_solo.harness.methods.distillation import teacher_from_cfg
from seed_solo.harness.pretrain import parse_pretrain
from seed_solo.runs.atomic import write_json
from seed_solo.runs.identity import differences
from seed_solo.runs.locks import folder_lock
from seed_solo.teacher_cache.store import (
    DTYPES,
    EMBEDDINGS,
    FORMAT_VERSION,
    META,
    TeacherCache,
    chunk_checksum,
    partial_path,
    write_checksums,
)
from seed_solo.teacher_cache.views import AllViews, run_meta, training_images, view_transform

DONE = "done"
DEFAULTS = {"path": None, "views": None, "dtype": "float16", "batch_size": None,
            "chunk_images": 1024, "max_chunks": None, "num_workers": None, "device": "auto"}


def settings(cfg: DictConfig) -> Dict[str, Any]:
    """``cfg.cache`` with its defaults, checked."""
    given = OmegaConf.to_container(cfg.get("cache") or {}, resolve=True)
    refuse_unknown("cache", list(given), DEFAULTS, " (docs/cache.md)")
    s = {**DEFAULTS, **given}
    if not s["path"]:
        raise ConfigError("+cache.path=PATH is not set: the folder the cache is written to.")
    if not isinstance(s["views"], int) or s["views"] < 1:
        raise ConfigError(f"+cache.views={s['views']}: set the number of views per image, V >= 1 "
                          "(8 is a good start: at most 8 epochs before a view repeats).")
    if s["dtype"] not in DTYPES:
        raise ConfigError(f"cache.dtype={s['dtype']!r}; expected one of {DTYPES}.")
    s["batch_size"] = int(s["batch_size"] or cfg.optimizer.batch_size)
    s["num_workers"] = int(cfg.data.num_workers if s["num_workers"] is None else s["num_workers"])
    return s


def weights_fingerprint(module: torch.nn.Module) -> str:
    """sha256 of a module's state dict (names, shapes, dtypes and bytes)."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _device(choice: str, accelerator: str) -> torch.device:
    if choice == "auto":
        gpu = torch.cuda.is_available() and accelerator != "cpu"
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if gpu else "cpu")
    return torch.device(choice)


class ProcessGroup:
    """Inside: torchrun's processes (``WORLD_SIZE`` > 1) joined in a gloo group for the pass's
    barriers, ranks and world size from :mod:`seed_solo.core.distributed`; one process
    otherwise."""

    def __enter__(self) -> ProcessGroup:
        self.own = int(os.environ.get("WORLD_SIZE", 1)) > 1 and not dist.is_initialized()
        if self.own:  # a rank may wait at the last barrier for hours while others finish
            dist.init_process_group("gloo", timeout=datetime.timedelta(days=7))
        self.rank, self.world = rank(), world_size()
        return self

    def barrier(self) -> None:
        if is_distributed():
            dist.barrier()

    def __exit__(self, *exc: Any) -> None:
        if self.own and dist.is_initialized():
            dist.destroy_process_group()


def _prepare(tmp: Path, meta: Dict[str, Any], shape: tuple, dtype: str) -> None:
    """Rank 0: the partial folder with its memory map and meta.json, or checks that an
    interrupted pass there was of this same cache."""
    if (tmp / META).is_file():
        found = differences(json.loads((tmp / META).read_text()), meta, ignore=("versions",))
        if found:
            key, there, now = found[0]
            raise DataError(f"{tmp} holds an interrupted pass of another cache ({key}: "
                            f"{there!r} there, {now!r} now); delete it, or rerun with the "
                            "settings it was started with.")
        return
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / DONE).mkdir(parents=True)
    np.lib.format.open_memmap(tmp / EMBEDDINGS, mode="w+", dtype=dtype, shape=shape).flush()
    write_json(tmp / META, meta)  # last: a partial folder with meta.json has its full array


def _batches(chunks: List[int], chunk_images: int, size: int, batch: int) -> List[List[int]]:
    """Batches of image indexes that never straddle two chunks."""
    out = []
    for c in chunks:
        lo, hi = c * chunk_images, min(size, (c + 1) * chunk_images)
        out.extend(list(range(i, min(hi, i + batch))) for i in range(lo, hi, batch))
    return out


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass
class Pass:
    """What one cache pass writes: its settings, target, images, views and teacher."""

    settings: Dict[str, Any]
    path: Path
    images: Any
    transform: Any
    meta: Dict[str, Any]
    teacher: Any
    device: torch.device
    seed: int

    @property
    def partial(self) -> Path:
        return partial_path(self.path)

    def chunk_done(self, chunk: int) -> bool:
        return (self.partial / DONE / f"{chunk:06d}").exists()


def prepare_pass(cfg: DictConfig) -> Pass:
    """The pass of the distill config ``cfg`` (with ``cache.*`` settings): parsed as the run
    parses it, its images, views and teacher, and the metadata its cache will carry."""
    OmegaConf.set_struct(cfg, False)
    s = settings(cfg)
    if cfg.get("method") not in DISTILL_METHODS:
        raise ConfigError(f"method={cfg.get('method')!r}: a teacher cache is for the "
                          f"distillation methods ({', '.join(DISTILL_METHODS)}).")
    if cfg.get("method_kwargs", {}).get("teacher_cache"):
        del cfg.method_kwargs.teacher_cache  # the run's own key, harmless here
    cfg, _ = parse_pretrain(cfg, check=False)  # no lr here: any number of processes shards it
    cfg = METHODS[cfg.method].add_and_assert_specific_cfg(cfg)  # the run's defaults, as distill
    if objective(cfg.method_kwargs.objective).dense:
        raise ConfigError(f"objective {cfg.method_kwargs.objective!r} needs the teacher's feature "
                          "maps, which a cache does not hold: train it with the live teacher.")
    images = training_images(cfg)
    meta = run_meta(cfg, images)
    seed_everything(cfg.seed, verbose=False)
    device = _device(str(s["device"]), str(cfg.get("accelerator", "auto")))
    teacher = teacher_from_cfg(cfg).to(device)
    meta.update({
        "dim": teacher.embed_dim, "views": s["views"], "dtype": s["dtype"],
        "teacher_weights": weights_fingerprint(teacher),
        "teacher_precision": str(cfg.method_kwargs.teacher_precision),
        "versions": _versions(),
    })
    return Pass(s, Path(s["path"]).expanduser(), images, view_transform(cfg), meta, teacher,
                device, int(cfg.seed))


def finished(job: Pass) -> bool:
    """True when ``job.path`` already holds this cache; refuses a folder holding another."""
    if (job.path / META).is_file():
        done = TeacherCache(job.path)
        done.check(job.meta)
        if (done.meta["views"], done.meta["dtype"]) != (job.settings["views"],
                                                        job.settings["dtype"]):
            raise ConfigError(f"{job.path} is a finished cache with {done.meta['views']} views "
                              f"in {done.meta['dtype']}; delete it or choose another cache.path.")
        print(f"seed-solo cache: {job.path} is already complete; nothing to do.")
        return True
    if job.path.exists():
        raise ConfigError(f"cache.path={job.path} exists and is not a teacher cache; choose "
                          "another path or delete it.")
    return False


def run(cfg: DictConfig) -> None:
    """Build (or finish) the cache ``cfg.cache.path`` for the distill run ``cfg`` describes."""
    job = prepare_pass(cfg)
    with ProcessGroup() as group, _one_pass(job, group.rank == 0):
        if finished(job):
            return
        s, size = job.settings, len(job.images)
        chunk = int(s["chunk_images"])
        if group.rank == 0:
            _prepare(job.partial, job.meta, (size, s["views"], job.teacher.embed_dim), s["dtype"])
        group.barrier()
        total = math.ceil(size / chunk)
        todo = [c for c in range(group.rank, total, group.world) if not job.chunk_done(c)]
        if s["max_chunks"] is not None:
            todo = todo[: int(s["max_chunks"])]
        views = AllViews(job.images, job.transform, job.seed, s["views"])
        _encode(job.teacher, views, job.partial, todo, chunk, s, job.device, group.rank == 0)
        group.barrier()
        if group.rank == 0:
            _finish(job, total)
        group.barrier()


@contextlib.contextmanager
def _one_pass(job: Pass, first: bool) -> Iterator[None]:
    """The first process of the pass holds ``PATH.lock`` while inside; another pass already
    holding it stops this one with a :class:`ConfigError` at once."""
    if not first:
        yield
        return
    busy = (f"another cache pass is writing {job.path} (it holds {job.path}.lock); wait for it "
            "to finish and run this command again (it then finds the cache complete), or "
            "choose another cache.path.")
    job.path.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(job.path.parent, timeout=0, busy=busy, name=f"{job.path.name}.lock"):
        yield


def _finish(job: Pass, total: int) -> None:
    """Rank 0, after every rank's shard: rename the partial folder into place when every chunk
    is done, else say how far the pass got."""
    left = [c for c in range(total) if not job.chunk_done(c)]
    if left:
        print(f"seed-solo cache: stopped with {total - len(left)} of {total} chunks done in "
              f"{job.partial}; run the same command again to continue.")
        return
    chunk, sums = int(job.settings["chunk_images"]), []
    array = np.load(job.partial / EMBEDDINGS, mmap_mode="r")
    for c in range(total):  # a marker of a pass before checksums is empty: sum its rows now
        marker = (job.partial / DONE / f"{c:06d}").read_text().strip()
        sums.append(marker or chunk_checksum(array[c * chunk:(c + 1) * chunk]))
    del array
    write_checksums(job.partial, chunk, sums)
    shutil.rmtree(job.partial / DONE)
    os.replace(job.partial, job.path)
    s = job.settings
    print(f"seed-solo cache: wrote {job.path} ({len(job.images)} images x {s['views']} views x "
          f"{job.teacher.embed_dim} {s['dtype']}).")


def _encode(teacher, dataset, tmp: Path, chunks: List[int], chunk: int, s: Dict[str, Any],
            device: torch.device, report: bool) -> None:
    """Embed the views of ``chunks``' images into the memory map, marking each chunk done."""
    if not chunks:
        return
    out = np.load(tmp / EMBEDDINGS, mmap_mode="r+")
    batches = _batches(chunks, chunk, len(dataset), s["batch_size"])
    if report:
        print(f"seed-solo cache: {len(chunks)} chunks of up to {chunk} images to embed on this "
              f"rank, {dataset.views} views each, on {device}", flush=True)
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=s["num_workers"],
                        pin_memory=device.type == "cuda")
    total = sum(len(b) for b in batches)
    last = {c: min(len(dataset), (c + 1) * chunk) - 1 for c in chunks}
    pending, done, start = list(chunks), 0, time.perf_counter()
    for indexes, crops in loader:
        b, v = crops.shape[:2]
        z = teacher(crops.flatten(0, 1).to(device, non_blocking=True))  # (b*V) x d
        rows = z.view(b, v, -1).cpu().numpy().astype(out.dtype)
        if not np.isfinite(rows).all():
            raise DataError(f"the teacher gave non-finite embeddings for images "
                            f"{int(indexes[0])}..{int(indexes[-1])}; check the teacher file "
                            "(and teacher_precision: 16 may overflow) before caching it.")
        out[indexes.numpy()] = rows
        done += b
        if int(indexes[-1]) == last[pending[0]]:
            out.flush()
            c = pending.pop(0)
            sums = chunk_checksum(out[c * chunk:min(len(dataset), (c + 1) * chunk)])
            (tmp / DONE / f"{c:06d}").write_text(sums)
            if report:
                rate = done / (time.perf_counter() - start)
                print(f"seed-solo cache: {done}/{total} images of this rank's shard "
                      f"({100 * done / total:.0f} %), {rate:.1f} img/s ({rate * v:.1f} "
                      f"views/s), ETA {_eta((total - done) / rate)}", flush=True)
    del out


def _versions() -> Dict[str, str]:
    """Library versions the views were rendered with (a different Pillow may round a resize
    differently: recorded, not checked)."""
    return {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "pillow": PIL.__version__, "format_version": str(FORMAT_VERSION)}
