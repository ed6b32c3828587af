"""The cache pass: run the frozen teacher once over V replayable views of every image.

    python -m seed_solo.cache --config-path DIR --config-name NAME [same overrides as distill] \
        +cache.path=PATH +cache.views=V [+cache.dtype=float16|float32] [+cache.batch_size=B]

Then train with the same command plus ``+method_kwargs.teacher_cache=PATH``
(:mod:`seed_solo.distill`); details in docs/cache.md.

The images are split into chunks (``cache.chunk_images``); under torchrun every rank takes the
chunks ``c`` with ``c % WORLD_SIZE == RANK`` and writes their rows straight into the shared
memory-mapped ``PATH.partial/embeddings.npy``, then a ``done/`` marker per chunk. A pass that
stops (killed, or ``cache.max_chunks`` reached) continues from the chunks without a marker
when the same command runs again, with any number of processes; the last one renames
``PATH.partial`` to ``PATH``. Nothing is ever held whole in memory: one batch of views and its
embeddings at a time.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

import seed_solo  # noqa: F401  (registers SEED and the students with solo-learn)
from seed_solo.atomic import write_json
from seed_solo.hydra_cli import run_hydra
from seed_solo.teacher_cache import (
    DTYPES,
    EMBEDDINGS,
    FORMAT_VERSION,
    META,
    TeacherCache,
    partial_path,
)
from seed_solo.trainer import devices_for_parse
from seed_solo.views import AllViews, run_meta, training_images, view_transform

DONE = "done"
DEFAULTS = {"path": None, "views": None, "dtype": "float16", "batch_size": None,
            "chunk_images": 1024, "max_chunks": None, "num_workers": None, "device": "auto"}


def settings(cfg: DictConfig) -> Dict[str, Any]:
    """``cfg.cache`` with its defaults, checked."""
    given = OmegaConf.to_container(cfg.get("cache") or {}, resolve=True)
    unknown = set(given) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown cache settings {sorted(unknown)}; known: {sorted(DEFAULTS)}.")
    s = {**DEFAULTS, **given}
    if not s["path"]:
        raise ValueError("+cache.path=PATH is not set: the folder the cache is written to.")
    if not isinstance(s["views"], int) or s["views"] < 1:
        raise ValueError(f"+cache.views={s['views']}: set the number of views per image, V >= 1 "
                         "(8 is a good start: at most 8 epochs before a view repeats).")
    if s["dtype"] not in DTYPES:
        raise ValueError(f"cache.dtype={s['dtype']!r}; expected one of {DTYPES}.")
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


class Ranks:
    """This process's rank and the world size under torchrun (WORLD_SIZE/RANK), with a gloo
    group for the barriers; one process otherwise."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        self.rank = int(os.environ.get("RANK", 0))
        if self.world > 1 and not torch.distributed.is_initialized():
            # a rank may wait at the last barrier for hours while the others finish their shard
            torch.distributed.init_process_group("gloo", timeout=datetime.timedelta(days=7))

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _meta_difference(old: Dict[str, Any], new: Dict[str, Any]) -> Optional[str]:
    for key in sorted(set(old) | set(new)):
        if key != "versions" and old.get(key) != new.get(key):
            return f"{key}: {old.get(key)!r} there, {new.get(key)!r} now"
    return None


def _prepare(tmp: Path, meta: Dict[str, Any], shape: tuple, dtype: str) -> None:
    """Rank 0: the partial folder with its memory map and meta.json, or checks that an
    interrupted pass there was of this same cache."""
    if (tmp / META).is_file():
        diff = _meta_difference(json.loads((tmp / META).read_text()), meta)
        if diff:
            raise ValueError(f"{tmp} holds an interrupted pass of another cache ({diff}); "
                             "delete it, or rerun with the settings it was started with.")
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


def run(cfg: DictConfig) -> None:
    """Build (or finish) the cache ``cfg.cache.path`` for the distill run ``cfg`` describes."""
    from lightning.pytorch import seed_everything
    from solo.args.pretrain import parse_cfg

    from seed_solo.methods.seed import SEED, teacher_from_cfg

    OmegaConf.set_struct(cfg, False)
    s = settings(cfg)
    if cfg.get("method") != "seed":
        raise ValueError(f"method={cfg.get('method')!r}: a teacher cache is for method=seed.")
    if cfg.get("method_kwargs", {}).get("teacher_cache"):
        del cfg.method_kwargs.teacher_cache  # the run's own key, harmless here
    devices_for_parse(cfg, check=False)  # no lr here: any number of processes shards it
    cfg = SEED.add_and_assert_specific_cfg(parse_cfg(cfg))  # the run's defaults, as distill
    path, tmp = Path(s["path"]).expanduser(), partial_path(Path(s["path"]).expanduser())
    images = training_images(cfg)
    transform = view_transform(cfg)
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
    if (path / META).is_file():
        finished = TeacherCache(path)
        finished.check(meta)
        done = finished.meta
        if (done["views"], done["dtype"]) != (s["views"], s["dtype"]):
            raise ValueError(f"{path} is a finished cache with {done['views']} views in "
                             f"{done['dtype']}; delete it or choose another cache.path.")
        print(f"seed-solo cache: {path} is already complete; nothing to do.")
        return
    if path.exists():
        raise ValueError(f"cache.path={path} exists and is not a teacher cache; choose "
                         "another path or delete it.")

    ranks = Ranks()
    try:
        size, views, chunk = len(images), s["views"], int(s["chunk_images"])
        if ranks.rank == 0:
            _prepare(tmp, meta, (size, views, teacher.embed_dim), s["dtype"])
        ranks.barrier()
        total = math.ceil(size / chunk)
        todo = [c for c in range(ranks.rank, total, ranks.world)
                if not (tmp / DONE / f"{c:06d}").exists()]
        if s["max_chunks"] is not None:
            todo = todo[: int(s["max_chunks"])]
        _encode(teacher, AllViews(images, transform, cfg.seed, views), tmp, todo, chunk,
                s, device, ranks.rank == 0)
        ranks.barrier()
        if ranks.rank == 0:
            left = [c for c in range(total) if not (tmp / DONE / f"{c:06d}").exists()]
            if left:
                print(f"seed-solo cache: stopped with {total - len(left)} of {total} chunks "
                      f"done in {tmp}; run the same command again to continue.")
            else:
                shutil.rmtree(tmp / DONE)
                os.replace(tmp, path)
                print(f"seed-solo cache: wrote {path} ({size} images x {views} views x "
                      f"{teacher.embed_dim} {s['dtype']}).")
        ranks.barrier()
    finally:
        ranks.close()


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
        out[indexes.numpy()] = z.view(b, v, -1).cpu().numpy().astype(out.dtype)
        done += b
        if int(indexes[-1]) == last[pending[0]]:
            out.flush()
            (tmp / DONE / f"{pending.pop(0):06d}").touch()
            if report:
                rate = done / (time.perf_counter() - start)
                print(f"seed-solo cache: {done}/{total} images of this rank's shard "
                      f"({100 * done / total:.0f} %), {rate:.1f} img/s ({rate * v:.1f} "
                      f"views/s), ETA {_eta((total - done) / rate)}", flush=True)
    del out


def _versions() -> Dict[str, str]:
    """Library versions the views were rendered with (a different Pillow may round a resize
    differently: recorded, not checked)."""
    import PIL
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "pillow": PIL.__version__, "format_version": str(FORMAT_VERSION)}


HELP = """
usage: python -m seed_solo.cache --config-path DIR --config-name NAME [KEY=VALUE ...] \\
           +cache.path=PATH +cache.views=V [+cache.dtype=float16|float32] [+cache.batch_size=B]

Runs the frozen teacher of a distill config once over V replayable views of every training
image and writes N x V x d embeddings to PATH (embeddings.npy + meta.json). Give the same
config and overrides as the distill run, which then adds +method_kwargs.teacher_cache=PATH.
Under torchrun each process takes a share of the images; rerun the same command to resume.
More settings: +cache.chunk_images (1024, the unit of resuming), +cache.max_chunks (stop after
that many chunks), +cache.num_workers, +cache.device (auto | cpu | cuda:N). See docs/cache.md.
"""


def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    run_hydra(main, HELP)
