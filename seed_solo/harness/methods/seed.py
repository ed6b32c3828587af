"""SEED as a solo-learn method: a thin adapter over the core (loss, queue, frozen teacher)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence

import omegaconf
import torch
import torch.nn.functional as F
from solo.methods.base import BaseMethod
from solo.utils.misc import omegaconf_select
from torch import Tensor
from torch.nn.modules.module import _IncompatibleKeys

from seed_solo.core.distributed import ddp_ignore
from seed_solo.core.objectives import seed_loss
from seed_solo.core.queue import EmbeddingQueue
from seed_solo.nets.projector import projection_head
from seed_solo.students.registry import unknown_student
from seed_solo.teacher_cache.store import TeacherCache

TEACHER_PREFIX = "teacher."
#: what solo-learn's online classifier logs in training: meaningless without labels
CLASS_METRICS = ("train_class_loss", "train_acc1", "train_acc5")


class SEED(BaseMethod):
    """SEED (Fang et al., ICLR 2021): distil a frozen teacher's similarity structure over a
    queue of past teacher embeddings into a student backbone plus projection head.

    Settings under ``method_kwargs`` (defaults in :meth:`add_and_assert_specific_cfg`):
        teacher (str): zoo name, URL, checkpoint path, or ``torchvision:NAME`` / ``timm:NAME``.
        teacher_format (str): checkpoint layout, ``auto`` detects it.
        teacher_precision (str): ``32``, ``bf16``, ``16`` or ``auto`` (bf16 on CUDA, else 32).
        teacher_options (dict): extra keyword arguments for the teacher loader.
        queue_size (int): K, entries in the queue (65,536).
        tau_teacher (float): tau_T (0.01). tau_student (float): tau_S (0.2).
        proj_hidden_dim (int): hidden width of the student head (default: backbone features).
        proj_output_dim (int): d; defaults to, and must equal, the teacher's embedding size.
        teacher_cache (str): a cache folder from ``python -m seed_solo.cache``: no teacher is
            loaded; z_T of each sample is the cached embedding of the view the student sees
            (batches from :func:`seed_solo.teacher_cache.views.cached_train_loader`; docs/cache.md).

    Every large crop of solo-learn's pipeline is one SEED sample, seen by student and teacher
    alike. Small crops, if configured, are distilled against a second queue of teacher
    embeddings of small crops (the paper's "small patches" variant): loss = L(large) + L(small).

    The teacher is neither trained nor saved: ``state_dict`` leaves it out, so checkpoints are
    student-sized and a resumed run reloads the teacher from ``method_kwargs.teacher``.
    """

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        kwargs = cfg.method_kwargs
        self.tau_teacher: float = kwargs.tau_teacher
        self.tau_student: float = kwargs.tau_student

        self.teacher: Optional[Any] = None
        self.teacher_cache: Optional[TeacherCache] = None
        if kwargs.teacher_cache:  # no teacher in memory: z_T comes from the cache
            self.teacher_cache = TeacherCache(kwargs.teacher_cache)
            embed_dim, source = self.teacher_cache.dim, f"cache {kwargs.teacher_cache}"
        else:
            self.teacher = teacher_from_cfg(cfg)
            embed_dim, source = self.teacher.embed_dim, repr(str(kwargs.teacher))
            for i, aug in enumerate(cfg.augmentations):  # now, not at the first step
                self.teacher.check_crop(aug.crop_size, f"augmentations.{i}.crop_size")
        # an unlabelled folder: no online classifier loss (it would be NaN) or accuracy
        self.no_labels = bool(cfg.data.get("no_labels", False))
        if kwargs.proj_output_dim is None:
            kwargs.proj_output_dim = embed_dim
        elif int(kwargs.proj_output_dim) != embed_dim:
            raise ValueError(
                f"method_kwargs.proj_output_dim={kwargs.proj_output_dim} but teacher "
                f"{source} embeds into {embed_dim} dimensions; set proj_output_dim="
                f"{embed_dim} or leave it unset."
            )
        if kwargs.proj_hidden_dim is None:
            kwargs.proj_hidden_dim = self.features_dim

        self.projector = projection_head(self.features_dim, kwargs.proj_hidden_dim, embed_dim)
        self.queue = EmbeddingQueue(kwargs.queue_size, embed_dim)
        self.small_queue = (
            EmbeddingQueue(kwargs.queue_size, embed_dim) if self.num_small_crops else None
        )
        self._pending: List[tuple] = []
        # identical on every rank by construction: DDP must not re-send them every step
        ddp_ignore(self, (TEACHER_PREFIX, "queue.", "small_queue."))

    @staticmethod
    def add_and_assert_specific_cfg(cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = super(SEED, SEED).add_and_assert_specific_cfg(cfg)
        if cfg.backbone.name not in BaseMethod._BACKBONES:
            raise KeyError(unknown_student(str(cfg.backbone.name), BaseMethod._BACKBONES))
        kw = "method_kwargs."
        teacher = omegaconf_select(cfg, kw + "teacher", None)
        if teacher in (None, ""):
            raise ValueError(
                "method_kwargs.teacher is not set; give a zoo name (see `seed-solo zoo list`), "
                "a checkpoint path or URL, or torchvision:NAME / timm:NAME."
            )
        cfg.method_kwargs.teacher_format = omegaconf_select(cfg, kw + "teacher_format", "auto")
        cfg.method_kwargs.teacher_precision = str(
            omegaconf_select(cfg, kw + "teacher_precision", "auto")
        )
        cfg.method_kwargs.teacher_options = omegaconf_select(cfg, kw + "teacher_options", {})
        cfg.method_kwargs.queue_size = omegaconf_select(cfg, kw + "queue_size", 65536)
        cfg.method_kwargs.tau_teacher = omegaconf_select(cfg, kw + "tau_teacher", 0.01)
        cfg.method_kwargs.tau_student = omegaconf_select(cfg, kw + "tau_student", 0.2)
        cfg.method_kwargs.proj_hidden_dim = omegaconf_select(cfg, kw + "proj_hidden_dim", None)
        cfg.method_kwargs.proj_output_dim = omegaconf_select(cfg, kw + "proj_output_dim", None)
        cfg.method_kwargs.teacher_cache = omegaconf_select(cfg, kw + "teacher_cache", None)
        if cfg.method_kwargs.teacher_cache and (
                cfg.data.num_large_crops != 1 or cfg.data.num_small_crops):
            raise ValueError(
                "method_kwargs.teacher_cache replays one view per image, but the augmentations "
                f"give {cfg.data.num_large_crops} large and {cfg.data.num_small_crops} small "
                "crops; use one augmentation with num_crops: 1 (small patches need the live "
                "teacher)."
            )

        batch = cfg.optimizer.batch_size
        per_step = batch * max(1, int(omegaconf_select(cfg, "data.num_large_crops", 1)))
        if cfg.method_kwargs.queue_size < per_step:
            raise ValueError(
                f"method_kwargs.queue_size={cfg.method_kwargs.queue_size} is smaller than the "
                f"{per_step} teacher embeddings one step enqueues per process (batch {batch}); "
                "use a queue at least that large (the paper uses 65536)."
            )
        for name in ("tau_teacher", "tau_student"):
            if not cfg.method_kwargs[name] > 0:
                raise ValueError(f"method_kwargs.{name} must be positive.")
        return cfg

    @property
    def learnable_params(self) -> List[Dict[str, Any]]:
        """The student's: backbone, online classifier and projector; never the teacher."""
        return super().learnable_params + [
            {"name": "projector", "params": self.projector.parameters()}
        ]

    def base_training_step(self, X: Tensor, targets: Tensor) -> Dict[str, Any]:
        """solo-learn's step of the online classifier; without labels only the forward (the
        classifier's loss over no labelled sample would be NaN)."""
        if not self.no_labels:
            return super().base_training_step(X, targets)
        out = self(X)
        zero = out["feats"].new_zeros(())
        out.update({"loss": zero, "acc1": zero, "acc5": zero})
        return out

    def log_dict(self, dictionary: Dict[str, Any], *args: Any, **kwargs: Any) -> None:
        """Lightning's, without the online classifier's metrics when there are no labels."""
        if self.no_labels:
            dictionary = {k: v for k, v in dictionary.items() if k not in CLASS_METRICS}
        if dictionary:
            super().log_dict(dictionary, *args, **kwargs)

    def forward(self, X: Tensor) -> Dict[str, Any]:
        out = super().forward(X)
        out["z"] = F.normalize(self.projector(out["feats"]), dim=-1)
        return out

    def multicrop_forward(self, X: Tensor) -> Dict[str, Any]:
        out = super().multicrop_forward(X)
        out["z"] = F.normalize(self.projector(out["feats"]), dim=-1)
        return out

    def training_step(self, batch: Sequence[Any], batch_idx: int) -> Tensor:
        """batch = [indexes, [crop_1 .. crop_n], targets]; returns SEED loss + probe loss."""
        out = super().training_step(batch, batch_idx)
        crops = batch[1]
        crops = [crops] if isinstance(crops, Tensor) else crops
        large = self.num_large_crops
        # (queue, crops, log name): large crops, then small ones against their own queue
        groups = [(self.queue, slice(0, large), "train_seed_loss")]
        if self.small_queue is not None:
            groups.append((self.small_queue, slice(large, None), "train_seed_small_loss"))

        total = out["loss"]
        self._pending = []
        for queue, part, name in groups:
            z_s = torch.cat(out["z"][part])  # (crops*B)xd
            z_t = self.teacher_embeddings(batch[0], crops[part]).to(z_s.device)
            loss = seed_loss(z_s, z_t, queue.get(), self.tau_teacher, self.tau_student)
            # at most batch_size rows per crop: under DDP they travel in blocks that size
            self._pending.append((queue, z_t, self.batch_size * len(crops[part])))
            self.log(name, loss, on_step=False, on_epoch=True, sync_dist=True)
            total = total + loss
        return total

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
            raise ValueError(
                "method_kwargs.teacher_cache needs batches of seed_solo.teacher_cache.views."
                "ReplayedViews "
                f"(first element (B, 2) image and view numbers), got shape {tuple(keys.shape)}; "
                "train with `python -m seed_solo.distill`."
            )
        return self.teacher_cache.lookup(keys[:, 0], keys[:, 1])

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # after the step: every loss of this step read the queue as it was before it
        for queue, z_t, capacity in self._pending:
            queue.enqueue(z_t, capacity=capacity)
        self._pending = []

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
            raise RuntimeError(
                f"SEED checkpoint does not fit this model: missing keys {missing}, unexpected "
                f"keys {result.unexpected_keys}; resume with the same backbone, "
                "proj_hidden_dim and queue_size."
            )
        return _IncompatibleKeys(missing, result.unexpected_keys)


def _is_view_keys(keys: Any) -> bool:
    return isinstance(keys, Tensor) and not keys.is_floating_point() and keys.ndim == 2 \
        and keys.shape[1] == 2


def teacher_from_cfg(cfg: omegaconf.DictConfig) -> Any:
    """The frozen teacher ``cfg.method_kwargs`` names (also run by the cache pass)."""
    # imported here, not at the top: evaluating a SEED student loads this module, never teachers
    from seed_solo.teachers import load_teacher

    kwargs = cfg.method_kwargs
    return load_teacher(
        str(kwargs.teacher),
        format=str(kwargs.teacher_format),
        precision=kwargs.teacher_precision,
        channels_last=not cfg.performance.disable_channel_last,
        **kwargs.teacher_options,
    )
