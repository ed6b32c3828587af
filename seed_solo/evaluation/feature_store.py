"""Frozen features on disk: extracted once per (model, data set split), then reused.

A split's folder holds ``meta.json`` (what the features are of: the fingerprint of the model's
checkpoint file, the data set, the split, its size, the image preprocessing) and, once
complete, ``features.npz`` (``features`` (N, F) float32, ``labels`` (N,) int64). Extraction
runs in chunks of :data:`CHUNK` images, each written atomically (``runs/atomic.py``) as
``part-<k>.npz``: a run killed mid-way resumes at the first missing chunk, and no reader ever
sees a half-written file. A later run whose ``meta.json`` would differ (another checkpoint file
at the same path, by :func:`seed_solo.runs.identity.file_fingerprint`; another image size...)
says which setting differs and extracts again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from seed_solo.runs.atomic import atomic_path, write_json
from seed_solo.runs.folders import temp_files
from seed_solo.runs.identity import differences

CHUNK = 4096
META, DONE = "meta.json", "features.npz"


@torch.no_grad()
def extract(model: nn.Module, dataset: Dataset, device: torch.device, batch_size: int,
            num_workers: int) -> Tuple[np.ndarray, np.ndarray]:
    """(features (N, F) float32, labels (N,) int64) of ``model`` (eval mode) on ``dataset``."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False,
                        pin_memory=device.type == "cuda")
    feats, labels = [], []
    for images, targets in loader:
        feats.append(model(images.to(device, non_blocking=True)).float().cpu().numpy())
        labels.append(np.asarray(targets, dtype=np.int64))
    return np.concatenate(feats), np.concatenate(labels)


def _save(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def _load(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    with np.load(path) as data:
        return data["features"], data["labels"]


def stored_features(folder: Path, meta: Dict[str, Any], model: nn.Module, dataset: Dataset,
                    device: torch.device, batch_size: int = 256, num_workers: int = 4,
                    log: Callable[[str], Any] = print,
                    chunk: int = CHUNK) -> Tuple[np.ndarray, np.ndarray]:
    """The features of ``dataset`` under ``model``: read from ``folder`` when it holds them for
    the same ``meta``, else extracted (resuming at the first missing chunk) and stored.

    Args:
        meta: what the features depend on (JSON-serialisable); ``images`` is added.
        chunk: images per atomically written part.
    """
    folder = Path(folder)
    meta = json.loads(json.dumps({**meta, "images": len(dataset), "chunk": chunk}, default=str))
    old = json.loads((folder / META).read_text()) if (folder / META).is_file() else None
    if old is not None and old != meta:
        changed = ", ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in differences(old, meta)[:3])
        log(f"seed-solo: the features in {folder} are of another setting ({changed}); "
            "extracting them again.")
        shutil.rmtree(folder)
    if (folder / DONE).is_file() and old == meta:
        log(f"seed-solo: reusing the features in {folder}")
        return _load(folder / DONE)
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in temp_files(folder):  # a chunk a killed run was writing
        leftover.unlink()
    write_json(folder / META, meta)
    model.eval().to(device)
    chunks = range(0, len(dataset), chunk)
    for k, start in enumerate(chunks):
        part = folder / f"part-{k:05d}.npz"
        if part.is_file():
            continue
        indices = range(start, min(start + chunk, len(dataset)))
        x, y = extract(model, Subset(dataset, indices), device, batch_size, num_workers)
        _save(part, features=x, labels=y)
        log(f"  features {indices.stop}/{len(dataset)} -> {folder}")
    parts = [_load(folder / f"part-{k:05d}.npz") for k in range(len(chunks))]
    features, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    _save(folder / DONE, features=features, labels=labels)
    for k in range(len(chunks)):
        (folder / f"part-{k:05d}.npz").unlink()
    return features, labels
