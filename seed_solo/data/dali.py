"""solo-learn's DALI data modules (``data.format=dali``) on GPUs and on a CPU (``dali.device=cpu``).

solo-learn's modules create every DALI pipeline with ``device_id=trainer.local_rank``, which
asks DALI for a CUDA context even when all operators run on the CPU, so they fail on a machine
without a GPU. DALI runs a pipeline of CPU operators with ``device_id=None``. The subclasses here
change only that, for CPU pipelines: the pipeline builders, the seeds (``seed + local_rank``),
the readers, sharding, augmentations and batch layout all stay solo-learn's. With
``dali.device=gpu`` they are solo-learn's modules unchanged.

Used by :mod:`seed_solo.distill` (:func:`pretrain_datamodule`) and :mod:`seed_solo.linear`
(:func:`classification_datamodule`); the labelled validation loader stays the torchvision one,
as before.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Optional

from omegaconf import DictConfig

from seed_solo.core.errors import ConfigError, MissingDependencyError

INSTALL_HINT = 'pip install -e ".[dali]" (nvidia-dali-cuda120)'


def solo_dali():
    """solo-learn's DALI module, or an error that says how to install DALI."""
    try:
        from solo.data import dali_dataloader
    except ImportError as exc:  # nvidia.dali missing: solo imports it at the top of the module
        raise MissingDependencyError(
            f"data.format=dali needs NVIDIA DALI, which is not importable ({exc}); install it "
            f"with {INSTALL_HINT}, or use data.format=image_folder."
        ) from exc
    return dali_dataloader


def check_device(cfg: DictConfig, cuda_available: bool) -> None:
    """Refuse ``data.format=dali`` without DALI installed, ``dali.device=gpu`` where no CUDA
    GPU will run it (``cpu`` runs anywhere), and fewer than 1 worker thread."""
    solo_dali()
    device = (cfg.get("dali") or {}).get("device", "gpu")
    if device not in ("cpu", "gpu"):
        raise ConfigError(
            f"dali.device={device!r} is not a DALI device; set dali.device=cpu or gpu."
        )
    if device == "gpu" and (cfg.get("accelerator") == "cpu" or not cuda_available):
        raise ConfigError(
            "dali.device=gpu needs a CUDA GPU and accelerator=gpu; on a CPU set dali.device=cpu "
            "(DALI's CPU operators) or data.format=image_folder."
        )
    workers = int((cfg.get("data") or {}).get("num_workers", 1))
    if workers < 1:
        raise ConfigError(
            f"data.num_workers={workers}: DALI reads and augments images in data.num_workers "
            "threads and needs at least 1; set data.num_workers=2 (or more), or use "
            "data.format=image_folder."
        )


def _cpu_capable(builder: type) -> type:
    """``builder`` (a solo-learn pipeline builder) whose CPU pipelines get ``device_id=None``.

    solo-learn's ``__init__`` runs first, so ``seed = seed + device_id`` is its own; only the
    ``device_id`` handed to DALI's ``Pipeline`` afterwards changes.
    """

    class CPUCapable(builder):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            if self.device == "cpu":
                self.device_id = None

    CPUCapable.__name__ = CPUCapable.__qualname__ = f"CPUCapable{builder.__name__}"
    return CPUCapable


@contextlib.contextmanager
def _builder_named(module: Any, name: str, cls: type) -> Iterator[None]:
    """``module.<name>`` is ``cls`` for the duration (solo's pretrain setup names its builder
    directly, with no hook); restored afterwards, even on an error."""
    original = getattr(module, name)
    setattr(module, name, cls)
    try:
        yield
    finally:
        setattr(module, name, original)


def pretrain_datamodule(cfg: DictConfig, transforms: Callable) -> Any:
    """solo-learn's ``PretrainDALIDataModule`` for ``cfg`` (parsed by solo's ``parse_cfg``).

    ``transforms`` is the ``FullTransformPipeline`` of DALI augmentations. A batch is
    ``[indexes, [large crops..., small crops...], targets]``; ``indexes`` are image indices when
    ``dali.encode_indexes_into_labels`` is on, positions in the batch otherwise (solo-learn's rule).
    """
    dl = solo_dali()

    class PretrainDALIDataModule(dl.PretrainDALIDataModule):
        def setup(self, stage: Optional[str] = None) -> None:
            if self.dali_device != "cpu":
                return super().setup(stage)
            builder = _cpu_capable(dl.PretrainPipelineBuilder)
            with _builder_named(dl, "PretrainPipelineBuilder", builder):
                return super().setup(stage)

    return PretrainDALIDataModule(
        dataset=cfg.data.dataset,
        train_data_path=cfg.data.train_path,
        transforms=transforms,
        num_large_crops=cfg.data.num_large_crops,
        num_small_crops=cfg.data.num_small_crops,
        num_workers=cfg.data.num_workers,
        batch_size=cfg.optimizer.batch_size,
        no_labels=cfg.data.no_labels,
        data_fraction=cfg.data.fraction,
        dali_device=cfg.dali.device,
        encode_indexes_into_labels=cfg.dali.encode_indexes_into_labels,
    )


def classification_datamodule(cfg: DictConfig) -> Any:
    """solo-learn's ``ClassificationDALIDataModule`` for ``cfg`` (parsed by solo's linear
    ``parse_cfg``): 224 px random-resized crops and flips for training, as solo-learn's."""
    dl = solo_dali()
    module = dl.ClassificationDALIDataModule(
        dataset=cfg.data.dataset,
        train_data_path=cfg.data.train_path,
        val_data_path=cfg.data.val_path,
        num_workers=cfg.data.num_workers,
        batch_size=cfg.optimizer.batch_size,
        data_fraction=cfg.data.fraction,
        dali_device=cfg.dali.device,
    )
    if cfg.dali.device == "cpu":
        # solo-learn's own hook: the class its setup builds both pipelines with
        module.pipeline_class = _cpu_capable(module.pipeline_class)
    return module
