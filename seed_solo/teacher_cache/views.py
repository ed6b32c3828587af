"""Replayable views: view ``v`` of image ``i`` is fixed by ``(seed, i, v)``.

A view is one crop of solo-learn's own torchvision/PIL pipeline (``build_transform_pipeline``: crop
box, flip, colour jitter, grayscale, blur, solarisation), run with the random number generators it
draws from (torch's CPU generator for the torchvision transforms, python's ``random`` for
solo-learn's GaussianBlur; numpy's too, though nothing draws from it today) seeded from a hash of
``(seed, i, v)`` and restored afterwards. The same view is therefore regenerated bit for bit by the
cache pass (:mod:`seed_solo.harness.cache_pass`) and by every training epoch that draws it, whatever
the worker, the process or the order; nothing depends on the global RNG state, which the pipeline
leaves as it found it.

Training from a cache draws per image and epoch one of its ``V`` views (:func:`epoch_view`) in
the sampler, in the main process, and the data set reports the ``(index, view)`` it rendered as
the batch's first element, so the loader looks up exactly the view the student saw
(:class:`CachedRows`). DALI
pipelines cannot be replayed this way: they keep the live teacher.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
from typing import Any, Callable, Iterator, List, Sequence, Tuple

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from solo.data.pretrain_dataloader import build_transform_pipeline, prepare_datasets
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from seed_solo.core.errors import ConfigError, DataError
from seed_solo.core.objectives.registry import SSL_METHOD
from seed_solo.data.unreadable import CheckedImages
from seed_solo.teacher_cache.store import TeacherCache, expected_meta

_VIEW, _SCHEDULE, _ORDER = 1, 2, 3  # domains of the hash, so no two uses share a stream
_MASK = (1 << 64) - 1


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 arrays: a well-spread 64-bit hash, the same everywhere."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _hash(*parts: Any) -> np.ndarray:
    """A uint64 hash of integers and integer arrays (broadcast), combined in order."""
    h = np.full((), 0x9E3779B97F4A7C15, dtype=np.uint64)
    for part in parts:
        value = np.asarray(part).astype(np.int64).astype(np.uint64)
        with np.errstate(over="ignore"):
            h = _mix(h ^ value) + np.uint64(0x9E3779B97F4A7C15)
    return _mix(h)


def view_seed(seed: int, index: int, view: int) -> int:
    """The 64-bit RNG seed of view ``view`` of image ``index``."""
    return int(_hash(_VIEW, seed, index, view))


def epoch_views(seed: int, indexes: Sequence[int], epoch: int, views: int) -> np.ndarray:
    """The view each image of ``indexes`` uses in ``epoch``: a permutation of ``range(views)``
    per image and round of ``views`` epochs, seeded by ``(seed, index, epoch // views)``, so
    every view is used once before any repeats."""
    indexes = np.asarray(indexes, dtype=np.int64).reshape(-1, 1)
    out = np.empty(len(indexes), dtype=np.int64)
    for lo in range(0, len(indexes), 1 << 16):  # blocks: a few MB of temporaries, not GBs
        keys = _hash(_SCHEDULE, seed, indexes[lo:lo + (1 << 16)], epoch // views,
                     np.arange(views))  # block x V
        out[lo:lo + len(keys)] = np.argsort(keys, axis=1, kind="stable")[:, epoch % views]
    return out


def epoch_view(seed: int, index: int, epoch: int, views: int) -> int:
    """The view image ``index`` uses in ``epoch`` (see :func:`epoch_views`)."""
    return int(epoch_views(seed, [index], epoch, views)[0])


@contextlib.contextmanager
def seeded(key: int) -> Iterator[None]:
    """Inside: torch's CPU generator, python's ``random`` and numpy's global RNG seeded from
    ``key``; afterwards, all three exactly as they were (CUDA generators are never touched)."""
    torch_state = torch.default_generator.get_state()
    py_state, np_state = random.getstate(), np.random.get_state()
    torch.default_generator.manual_seed(key & _MASK)
    random.seed(key)
    np.random.seed(key & 0xFFFFFFFF)
    try:
        yield
    finally:
        torch.default_generator.set_state(torch_state)
        random.setstate(py_state)
        np.random.set_state(np_state)


def render_view(transform: Callable[[Any], Tensor], image: Any, seed: int, index: int,
                view: int) -> Tensor:
    """View ``view`` of image ``index``: ``transform(image)`` under :func:`seeded`."""
    with seeded(view_seed(seed, index, view)):
        return transform(image)


def view_transform(cfg: DictConfig) -> Callable[[Any], Tensor]:
    """solo-learn's one-crop pipeline of ``cfg.augmentations`` (PIL image -> 3 x H x W)."""
    single_view_augmentation(cfg)
    return build_transform_pipeline(cfg.data.dataset, cfg.augmentations[0])


def single_view_augmentation(cfg: DictConfig) -> dict:
    """The one augmentation entry a cached run replays, as a dict. Its first crop of each image
    is the replayed view; SEED + MoCo v2 (``method=seed_mocov2``) takes a second crop, a fresh
    random one the teacher never sees."""
    augs = cfg.augmentations
    crops = [int(a.num_crops) for a in augs]
    want = 2 if cfg.get("method") == SSL_METHOD else 1
    if len(augs) != 1 or crops != [want]:
        raise ConfigError(
            f"a teacher cache replays one crop per image, but the augmentations give crops "
            f"{crops}; use one augmentation with num_crops: {want} (small patches need the live "
            "teacher: drop method_kwargs.teacher_cache)."
        )
    return OmegaConf.to_container(augs[0], resolve=True)


def images_digest(images: Any) -> str:
    """sha256 of the ordered image list of a solo-learn training set: relative paths and labels
    of an image folder, file names of an unlabelled folder, or the pixels of CIFAR/STL-10."""
    h = hashlib.sha256()
    samples = getattr(images, "samples", None)
    names = getattr(images, "images", None)
    data = getattr(images, "data", None)
    if samples is not None:
        root = str(getattr(images, "root", ""))
        for path, label in samples:
            rel = str(path)[len(root):].lstrip("/\\") if str(path).startswith(root) else path
            h.update(f"{rel}\t{label}\n".encode())
    elif names is not None:
        for name in names:
            h.update(f"{name}\n".encode())
    elif data is not None:
        h.update(np.ascontiguousarray(np.asarray(data)).tobytes())
        h.update(json.dumps(list(map(int, getattr(images, "targets", None) or
                                     getattr(images, "labels", [])))).encode())
    else:
        raise DataError(f"cannot list the images of a {type(images).__name__} data set; a "
                        "teacher cache needs an image folder, CIFAR or STL-10.")
    return h.hexdigest()


def run_meta(cfg: DictConfig, images: Any) -> dict:
    """What a cache for this run must say (the fields :meth:`TeacherCache.check` compares)."""
    kw = cfg.method_kwargs
    aug = single_view_augmentation(cfg)
    aug.pop("num_crops", None)
    return expected_meta(
        teacher=str(kw.teacher),
        teacher_format=str(kw.get("teacher_format", "auto")),
        teacher_options=OmegaConf.to_container(OmegaConf.create(kw.get("teacher_options") or {}),
                                               resolve=True),
        seed=int(cfg.seed),
        augmentations={"dataset": str(cfg.data.dataset), **aug},
        crop_size=int(aug["crop_size"]),
        images=images_digest(images),
        size=len(images),
    )


def training_images(cfg: DictConfig) -> CheckedImages:
    """solo-learn's training set of ``cfg`` without a transform: items ``(index, PIL, label)``,
    unreadable images named or skipped as in a live run."""
    check_cacheable(cfg)
    images = prepare_datasets(
        cfg.data.dataset, None, train_data_path=cfg.data.train_path,
        data_format=cfg.data.format, no_labels=cfg.data.no_labels,
        data_fraction=cfg.data.fraction,
    )
    return CheckedImages(images, cfg.data.get("on_corrupt", "error"))


class ReplayedViews(Dataset):
    """Training items from a key ``(i, v)``: ``(tensor([index, v]), [view v of image index,
    then crops - 1 fresh crops], label)``, the first element in place of solo-learn's index
    (BaseMethod ignores it)."""

    def __init__(self, images: Any, transform: Callable[[Any], Tensor], seed: int,
                 crops: int = 1) -> None:
        self.images, self.transform, self.seed = images, transform, int(seed)
        self.crops = int(crops)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: Tuple[int, int]) -> Tuple[Tensor, List[Tensor], Any]:
        i, view = key
        index, image, label = self.images[int(i)]  # a skipped image is replaced, with its index
        crop = render_view(self.transform, image, self.seed, index, int(view))
        fresh = [self.transform(image) for _ in range(self.crops - 1)]
        return torch.tensor([index, int(view)]), [crop, *fresh], label


class AllViews(Dataset):
    """Cache-pass items: ``(index, V x 3 x H x W views of image index)``."""

    def __init__(self, images: Any, transform: Callable[[Any], Tensor], seed: int,
                 views: int) -> None:
        self.images, self.transform = images, transform
        self.seed, self.views = int(seed), int(views)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Tuple[int, Tensor]:
        index, image, _ = self.images[int(i)]
        if index != i:  # data.on_corrupt=skip served another image: its views are not i's
            raise DataError(f"image {i} cannot be read; the cache pass needs every image "
                            "readable: replace it (data.on_corrupt=skip is for live runs).")
        return index, torch.stack([render_view(self.transform, image, self.seed, index, v)
                                   for v in range(self.views)])


class ViewSampler(Sampler):
    """Yields ``(index, view)`` keys: the images in a fresh order per epoch, each with its view
    of the epoch (:func:`epoch_view`). Lightning calls :meth:`set_epoch` (and forwards it
    through its DDP sampler wrapper) before each epoch's iterator is made."""

    def __init__(self, size: int, views: int, seed: int) -> None:
        self.size, self.views, self.seed, self.epoch = int(size), int(views), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        order = np.argsort(_hash(_ORDER, self.seed, self.epoch, np.arange(self.size)),
                           kind="stable")
        views = epoch_views(self.seed, order, self.epoch, self.views)
        return iter(zip(order.tolist(), views.tolist()))


class CachedRows:
    """A ``collate_fn``: a batch of :class:`ReplayedViews` items, its (B, 2) (image, view) keys
    replaced by their cached (B, d) rows z_T. It runs on the host, in the loader's workers, so
    the rows travel to the device with the batch and a training step never waits on a read."""

    def __init__(self, cache: TeacherCache) -> None:
        self.cache = cache

    def __call__(self, items: List[Any]) -> List[Any]:
        keys, crops, labels = default_collate(items)
        return [self.cache.lookup(keys[:, 0], keys[:, 1]), crops, labels]


def cached_train_loader(cfg: DictConfig) -> Tuple[DataLoader, CheckedImages]:
    """The training loader of a run from ``method_kwargs.teacher_cache``, after checking that
    the cache was made for this run (teacher, augmentations, crop size, images, seed)."""
    images = training_images(cfg)
    cache = TeacherCache(cfg.method_kwargs.teacher_cache)
    cache.check(run_meta(cfg, images))
    crops = int(cfg.augmentations[0].num_crops)
    dataset = ReplayedViews(images, view_transform(cfg), cfg.seed, crops)
    loader = DataLoader(
        dataset, batch_size=cfg.optimizer.batch_size,
        sampler=ViewSampler(len(dataset), cache.views, cfg.seed), collate_fn=CachedRows(cache),
        num_workers=cfg.data.num_workers, pin_memory=True, drop_last=True,
    )
    return loader, images


def check_cacheable(cfg: DictConfig) -> None:
    """Fail early, with the fix, on settings a cache cannot serve."""
    if cfg.data.format == "dali":
        raise ConfigError("a teacher cache needs data.format=image_folder: DALI's "
                          "pipelines cannot be replayed, so DALI runs keep the live teacher.")
    single_view_augmentation(cfg)
