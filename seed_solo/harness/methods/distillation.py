"""What every distillation method shares: the frozen teacher or its cache, the queues, the
settings, and a checkpoint without the teacher.

:class:`TeacherDistillation` is mixed into a solo-learn method (``SEED(TeacherDistillation,
BaseMethod)``, ``SEEDMoCoV2(TeacherDistillation, MoCoV2Plus)``); :func:`distill_cfg` sets and
checks the ``method_kwargs`` they share (defaults: the objective's, from
:mod:`seed_solo.core.objectives.registry`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, List, Optional, Tuple

import omegaconf
import torch
from solo.methods.base import BaseMethod
from solo.utils.misc import omegaconf_select
from torch import Tensor
from torch.nn.modules.module import _IncompatibleKeys

from seed_solo.core.errors import CheckpointError, ConfigError
from seed_solo.core.objectives.registry import DEFAULTS, ENQUEUE, HEADS, Objective, objective
from seed_solo.core.queue import EmbeddingQueue, scoring_bank
from seed_solo.students.registry import unknown_student
from seed_solo.teacher_cache.store import TeacherCache

TEACHER_PREFIX = "teacher."
#: method_kwargs every distillation method reads besides the objective's (registry.DEFAULTS)
TEACHER_KEYS = {"teacher_format": "auto", "teacher_precision": "auto", "teacher_options": {},
                "teacher_cache": None, "proj_hidden_dim": None, "proj_output_dim": None}


def distill_cfg(cfg: omegaconf.DictConfig, method: str) -> Objective:
    """Set the shared ``method_kwargs`` defaults of ``cfg`` (the objective's for unset keys)
    and check them for ``method``; returns the objective."""
    kw = "method_kwargs."
    if cfg.backbone.name not in BaseMethod._BACKBONES:
        raise ConfigError(unknown_student(str(cfg.backbone.name), BaseMethod._BACKBONES))
    if omegaconf_select(cfg, kw + "teacher", None) in (None, ""):
        raise ConfigError(
            "method_kwargs.teacher is not set; give a zoo name (see `seed-solo zoo list`), "
            "a checkpoint path or URL, or torchvision:NAME / timm:NAME."
        )
    obj = objective(omegaconf_select(cfg, kw + "objective", "seed"))
    if obj.method != method:
        raise ConfigError(f"objective {obj.name!r} is trained by method={obj.method}, not "
                          f"method={method}; set method={obj.method} (or pick another "
                          "method_kwargs.objective).")
    cfg.method_kwargs.objective = obj.name
    for key, default in {**TEACHER_KEYS, **obj.defaults()}.items():
        cfg.method_kwargs[key] = omegaconf_select(cfg, kw + key, default)
    cfg.method_kwargs.teacher_precision = str(cfg.method_kwargs.teacher_precision)
    m = cfg.method_kwargs
    for key, allowed in (("head", HEADS), ("enqueue", ENQUEUE)):
        if m[key] not in allowed:
            raise ConfigError(f"method_kwargs.{key}={m[key]!r} is not one of "
                              f"{', '.join(allowed)}.")
    for key in ("tau_teacher", "tau_student", "tau_local"):
        if not m[key] > 0:
            raise ConfigError(f"method_kwargs.{key} must be positive.")
    if m.local_weight < 0 or m.ssl_weight < 0:
        raise ConfigError("method_kwargs.local_weight and ssl_weight must not be negative.")
    _check_crops(cfg, obj, method)
    if uses_queue(obj):
        batch = cfg.optimizer.batch_size
        per_step = batch * (1 if method != "seed" else max(1, int(cfg.data.num_large_crops)))
        if m.queue_size < per_step:
            raise ConfigError(
                f"method_kwargs.queue_size={m.queue_size} is smaller than the {per_step} teacher "
                f"embeddings one step enqueues per process (batch {batch}); use a queue at least "
                "that large (the paper uses 65536)."
            )
    return obj


def _check_crops(cfg: omegaconf.DictConfig, obj: Objective, method: str) -> None:
    m, large, small = cfg.method_kwargs, cfg.data.num_large_crops, cfg.data.num_small_crops
    if obj.dense and small:
        raise ConfigError(f"objective {obj.name!r} distils feature maps of the large crops "
                          "only; drop the small crops (num_small_crops: 0).")
    if not m.teacher_cache:
        return
    if obj.dense:
        raise ConfigError(
            f"objective {obj.name!r} needs the teacher's feature maps, and a teacher cache "
            "holds one embedding per view; drop method_kwargs.teacher_cache (or pick a global "
            "objective: seed, compress-1q, lightly-v1, l2, simreg, seed-mocov2)."
        )
    if m.mixup:
        raise ConfigError("method_kwargs.mixup mixes the images the teacher sees, which a "
                          "teacher cache cannot replay; set method_kwargs.mixup=false or drop "
                          "method_kwargs.teacher_cache.")
    want = 1 if method == "seed" else 2
    if large != want or small:
        raise ConfigError(
            "method_kwargs.teacher_cache: a teacher cache replays one crop per image, but the "
            f"augmentations give {large} large and {small} small crops; use one augmentation "
            f"with num_crops: {want} (small patches need the live teacher)."
        )


def uses_queue(obj: Objective) -> bool:
    return obj.global_term == "queue_kl" or obj.method != "seed"


class TeacherDistillation:
    """The teacher side of a distillation method, mixed into a solo-learn method.

    After the method's ``__init__``, :meth:`setup_teacher` loads the frozen teacher (or opens
    the cache); :meth:`teacher_embeddings` gives z_T of a step's crops; :meth:`bank` gives the
    rows a queue objective scores against and schedules this step's enqueue, which
    ``on_train_batch_end`` performs. ``state_dict`` leaves the teacher out (a checkpoint is
    student-sized; a resumed run reloads the teacher from its source).
    """

    teacher: Optional[Any]
    teacher_cache: Optional[TeacherCache]

    @staticmethod
    def known_kwargs(cfg: omegaconf.DictConfig) -> List[str]:
        """Every ``method_kwargs`` key a distillation method reads: the teacher's, the
        objective's settings (any other is refused by name, :mod:`seed_solo.harness.
        config_keys`)."""
        return ["teacher", "objective", *TEACHER_KEYS, *DEFAULTS]

    def setup_teacher(self, cfg: omegaconf.DictConfig) -> Tuple[int, str]:
        """Load the teacher or open the cache; (d, where it came from)."""
        kwargs = cfg.method_kwargs
        self.teacher, self.teacher_cache = None, None
        self._pending: List[tuple] = []
        if kwargs.teacher_cache:  # no teacher in memory: z_T comes from the cache
            self.teacher_cache = TeacherCache(kwargs.teacher_cache)
            return self.teacher_cache.dim, f"cache {kwargs.teacher_cache}"
        self.teacher = teacher_from_cfg(cfg)
        for i, aug in enumerate(cfg.augmentations):  # now, not at the first step
            self.teacher.check_crop(aug.crop_size, f"augmentations.{i}.crop_size")
        return self.teacher.embed_dim, repr(str(kwargs.teacher))

    def teacher_embeddings(self, keys: Tensor, crops: List[Tensor]) -> Tensor:
        """z_T of ``crops``: the live teacher's; with a cache, ``keys`` are the cached (B, d) rows
        of the crops' views, which the cached run's loader puts in the batch on the host
        (:class:`seed_solo.teacher_cache.views.CachedRows`), or the (B, 2) (image, view) pairs
        :class:`~seed_solo.teacher_cache.views.ReplayedViews` reports, looked up here."""
        if self.teacher_cache is None:
            return self.teacher(torch.cat(crops))
        if keys.is_floating_point() and keys.shape == (len(crops[0]), self.teacher_cache.dim):
            return keys
        if not _is_view_keys(keys):
            raise ConfigError(
                "method_kwargs.teacher_cache needs batches of seed_solo.teacher_cache.views."
                "ReplayedViews "
                f"(first element (B, 2) image and view numbers), got shape {tuple(keys.shape)}; "
                "train with `python -m seed_solo.distill`."
            )
        return self.teacher_cache.lookup(keys[:, 0], keys[:, 1])

    def bank(self, queue: EmbeddingQueue, z_t: Tensor, capacity: int) -> Tensor:
        """The rows this step's queue objective scores against (``method_kwargs.enqueue`` and
        ``queue_gather``: :func:`seed_solo.core.queue.scoring_bank`); the enqueue of this
        step's ``z_t`` waits for ``on_train_batch_end``."""
        kw = self.cfg.method_kwargs
        bank, rows, gather = scoring_bank(queue, z_t, kw.enqueue, kw.queue_gather)
        self._pending.append((queue, rows, gather, capacity if gather else None))
        return bank

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # after the step: every loss of this step read the queue as it was before it
        for queue, rows, gather, capacity in self._pending:
            queue.enqueue(rows, gather=gather, capacity=capacity)
        self._pending = []
        super().on_train_batch_end(outputs, batch, batch_idx)

    def state_dict(self, *args: Any, **kwargs: Any) -> OrderedDict[str, Tensor]:
        """The student's state: the teacher is left out (it is reloaded from its source)."""
        state = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", "") + TEACHER_PREFIX
        for key in [k for k in state if k.startswith(prefix)]:
            del state[key]
        return state

    def load_state_dict(
        self, state_dict: OrderedDict[str, Tensor], strict: bool = True, assign: bool = False
    ) -> _IncompatibleKeys:
        """Strict on the student's keys; the teacher's are expected to be absent."""
        student_state = OrderedDict(
            (k, v) for k, v in state_dict.items() if not k.startswith(TEACHER_PREFIX)
        )
        result = super().load_state_dict(student_state, strict=False, assign=assign)
        missing = [k for k in result.missing_keys if not k.startswith(TEACHER_PREFIX)]
        if strict and (missing or result.unexpected_keys):
            raise CheckpointError(
                f"{type(self).__name__} checkpoint does not fit this model: missing keys "
                f"{missing}, unexpected keys {result.unexpected_keys}; resume with the same "
                "backbone, objective, proj_hidden_dim and queue_size."
            )
        return _IncompatibleKeys(missing, result.unexpected_keys)


def check_embed_dim(kwargs: omegaconf.DictConfig, embed_dim: int, source: str) -> None:
    """``proj_output_dim`` defaults to, and must equal, the teacher's d."""
    if kwargs.proj_output_dim is None:
        kwargs.proj_output_dim = embed_dim
    elif int(kwargs.proj_output_dim) != embed_dim:
        raise ConfigError(
            f"method_kwargs.proj_output_dim={kwargs.proj_output_dim} but teacher "
            f"{source} embeds into {embed_dim} dimensions; set proj_output_dim="
            f"{embed_dim} or leave it unset."
        )


def _is_view_keys(keys: Any) -> bool:
    return isinstance(keys, Tensor) and not keys.is_floating_point() and keys.ndim == 2 \
        and keys.shape[1] == 2


def teacher_from_cfg(cfg: omegaconf.DictConfig) -> Any:
    """The frozen teacher ``cfg.method_kwargs`` names (also run by the cache pass)."""
    # imported here, not at the top: evaluating a student loads this module, never teachers
    from seed_solo.teachers import load_teacher

    kwargs = cfg.method_kwargs
    return load_teacher(
        str(kwargs.teacher),
        format=str(kwargs.teacher_format),
        precision=kwargs.teacher_precision,
        channels_last=not cfg.performance.disable_channel_last,
        **kwargs.teacher_options,
    )

