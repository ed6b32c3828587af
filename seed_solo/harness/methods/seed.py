"""SEED as a solo-learn method, with an ``objective`` switch: a thin adapter over the core
(objectives, queue, frozen teacher).

``method: seed`` trains every objective of :mod:`seed_solo.core.objectives.registry` but
``seed-mocov2`` (:mod:`seed_solo.harness.methods.seed_mocov2`): SEED (the default), CompRess-1q,
LightlyTrain v1 and v3, l2, SimReg and dense regression.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import omegaconf
import torch
import torch.nn.functional as F
from solo.methods.base import BaseMethod
from torch import Tensor

from seed_solo.core.distributed import ddp_ignore
from seed_solo.core.errors import ConfigError
from seed_solo.core.mixup import draw_mixup, mixup
from seed_solo.core.objectives import (
    dense_loss,
    l2_loss,
    queue_kl,
    seed_loss,
    simreg_loss,
    to_grid,
    token_kl,
)
from seed_solo.core.queue import EmbeddingQueue
from seed_solo.harness.methods.distillation import (
    TEACHER_PREFIX,
    TeacherDistillation,
    check_embed_dim,
    distill_cfg,
    uses_queue,
)
from seed_solo.nets.projector import default_hidden, student_head
from seed_solo.students.spatial import feature_map, has_feature_map

#: what solo-learn's online classifier logs in training: meaningless without labels
CLASS_METRICS = ("train_class_loss", "train_acc1", "train_acc5")


class SEED(TeacherDistillation, BaseMethod):
    """SEED (Fang et al., ICLR 2021) and the other objectives: distil a frozen teacher into a
    student backbone plus head.

    Settings under ``method_kwargs`` (defaults: the objective's, :data:`registry.DEFAULTS`):
        objective (str): a name of :data:`seed_solo.core.objectives.registry.OBJECTIVES`.
        teacher (str): zoo name, URL, checkpoint path, or ``torchvision:NAME`` / ``timm:NAME``.
        teacher_format (str): checkpoint layout, ``auto`` detects it.
        teacher_precision (str): ``32``, ``bf16``, ``16`` or ``auto`` (bf16 on CUDA, else 32).
        teacher_options (dict): extra keyword arguments for the teacher loader.
        teacher_cache (str): a cache folder from ``python -m seed_solo.cache`` (global
            objectives): no teacher is loaded; z_T of each sample is the cached embedding of
            the view the student sees (docs/cache.md).
        head (str): the student head, ``mlp`` (SEED), ``linear``, ``simreg``.
        proj_hidden_dim (int): its hidden width (mlp: backbone features; simreg: twice that).
        proj_output_dim (int): d; defaults to, and must equal, the teacher's embedding size.
        queue_size (int): K. tau_teacher, tau_student (float): tau_T, tau_S.
        self_positive (bool), enqueue (``after``/``before``), queue_gather (bool): which rows
            the queue KL scores against (:meth:`TeacherDistillation.bank`).
        mixup (bool): batch mixup of the images both networks see (:mod:`seed_solo.core.mixup`).
        local_weight, tau_local (float): the token-similarity KL's weight and temperature.
        dense_normalize (bool): the dense objective's per-location normalisation.

    Every large crop of solo-learn's pipeline is one sample, seen by student and teacher
    alike. Small crops, if configured, are distilled against a second queue of teacher
    embeddings of small crops (the paper's "small patches" variant): loss = L(large) + L(small).
    The logged ``train_seed_loss`` is the objective's value: SEED's cross-entropy for
    self-positive queue objectives, KL for the others (queue_kl's docstring), or the
    regression loss.

    The teacher is neither trained nor saved: ``state_dict`` leaves it out, so checkpoints are
    student-sized and a resumed run reloads the teacher from ``method_kwargs.teacher``.
    """

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        kwargs = cfg.method_kwargs
        self.objective = distill_cfg(cfg, "seed")
        self.tau_teacher: float = kwargs.tau_teacher
        self.tau_student: float = kwargs.tau_student
        embed_dim, source = self.setup_teacher(cfg)
        check_embed_dim(kwargs, embed_dim, source)
        # an unlabelled folder: no online classifier loss (it would be NaN) or accuracy
        self.no_labels = bool(cfg.data.get("no_labels", False))
        if kwargs.proj_hidden_dim is None:
            kwargs.proj_hidden_dim = default_hidden(kwargs.head, self.features_dim)

        self.projector = (student_head(kwargs.head, self.features_dim, kwargs.proj_hidden_dim,
                                       embed_dim) if self.objective.global_term else None)
        self.local_projector = self._local_head(cfg) if self.objective.dense else None
        queued = uses_queue(self.objective)
        self.queue = EmbeddingQueue(kwargs.queue_size, embed_dim) if queued else None
        self.small_queue = (EmbeddingQueue(kwargs.queue_size, embed_dim)
                            if queued and self.num_small_crops else None)
        # identical on every rank by construction: DDP must not re-send them every step
        ddp_ignore(self, (TEACHER_PREFIX, "queue.", "small_queue."))

    def _local_head(self, cfg: omegaconf.DictConfig) -> torch.nn.Module:
        """The per-location linear head, (C_S channels of the student's map) -> (C_T of the
        teacher's), sized by one forward of each network on a blank crop."""
        if not self.teacher.has_maps:
            kind = type(self.teacher.model).__name__
            raise ConfigError(
                f"objective {self.objective.name!r} needs the teacher's patch tokens or feature "
                f"map, and teacher {cfg.method_kwargs.teacher!r} ({kind}) has none seed-solo "
                "can read; use a ViT (dinov2, dinov3, dino-vit, mocov3-vit) or CNN teacher, or a "
                "global objective (seed, compress-1q, lightly-v1, l2, simreg)."
            )
        if not has_feature_map(self.backbone):
            raise ConfigError(
                f"objective {self.objective.name!r} needs the student's last feature map, and "
                f"backbone {cfg.backbone.name!r} has none seed-solo can read; use a CNN student."
            )
        size = int(cfg.augmentations[0].crop_size)
        blank = torch.zeros(1, 3, size, size)
        was_training = self.backbone.training
        with torch.no_grad():
            self.backbone.eval()
            student_channels = feature_map(self.backbone, blank)[0].shape[1]
            teacher_channels = self.teacher.forward_maps(blank)[1].shape[1]
        self.backbone.train(was_training)
        return torch.nn.Linear(student_channels, teacher_channels)

    @staticmethod
    def add_and_assert_specific_cfg(cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = super(SEED, SEED).add_and_assert_specific_cfg(cfg)
        distill_cfg(cfg, "seed")
        return cfg

    @property
    def learnable_params(self) -> List[Dict[str, Any]]:
        """The student's: backbone, online classifier and heads; never the teacher."""
        heads = [(n, m) for n, m in (("projector", self.projector),
                                     ("local_projector", self.local_projector)) if m is not None]
        return super().learnable_params + [{"name": n, "params": m.parameters()}
                                           for n, m in heads]

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
        if self.local_projector is None:
            out = super().forward(X)
        else:  # the map and the pooled features from one pass of the backbone
            if not self.no_channel_last:  # as BaseMethod.forward
                X = X.to(memory_format=torch.channels_last)
            maps, feats = feature_map(self.backbone, X)
            out = {"logits": self.classifier(feats.detach()), "feats": feats, "map": maps}
        if self.projector is not None:
            out["z"] = F.normalize(self.projector(out["feats"]), dim=-1)
        return out

    def multicrop_forward(self, X: Tensor) -> Dict[str, Any]:
        out = super().multicrop_forward(X)
        out["z"] = F.normalize(self.projector(out["feats"]), dim=-1)
        return out

    def training_step(self, batch: Sequence[Any], batch_idx: int) -> Tensor:
        """batch = [indexes, [crop_1 .. crop_n], targets]; returns the objective + probe loss."""
        crops = batch[1]
        crops = [crops] if isinstance(crops, Tensor) else list(crops)
        if self.cfg.method_kwargs.mixup:  # one lambda and pairing for every crop of the step
            lam, perm = draw_mixup(len(crops[0]))
            crops = [mixup(c, lam, perm) for c in crops]
            batch = [batch[0], crops, batch[2]]
        out = super().training_step(batch, batch_idx)
        large = self.num_large_crops
        # (queue, crops, log name): large crops, then small ones against their own queue
        groups = [(self.queue, slice(0, large), "train_seed_loss")]
        if self.num_small_crops:
            groups.append((self.small_queue, slice(large, None), "train_seed_small_loss"))

        total = out["loss"]
        self._pending = []
        for queue, part, name in groups:
            loss = self.objective_loss(out, batch[0], crops, part, queue)
            self.log(name, loss, on_step=False, on_epoch=True, sync_dist=True)
            total = total + loss
        return total

    def objective_loss(self, out: Dict[str, Any], keys: Tensor, crops: List[Tensor],
                       part: slice, queue: Optional[EmbeddingQueue]) -> Tensor:
        """The objective on the crops ``part`` of the step (global term + local term)."""
        kw, obj = self.cfg.method_kwargs, self.objective
        t_map = None
        if obj.dense:
            z_t, t_map = self.teacher.forward_maps(torch.cat(crops[part]))
        else:
            z_t = self.teacher_embeddings(keys, crops[part])
        loss = 0.0
        if obj.global_term is not None:
            z_s = torch.cat(out["z"][part])  # (crops*B)xd
            z_t = z_t.to(z_s.device)
            if obj.global_term == "l2":
                loss = l2_loss(z_s, z_t)
            elif obj.global_term == "simreg":
                loss = simreg_loss(z_s, z_t)
            else:  # at most batch_size rows per crop: under DDP they travel in blocks that size
                bank = self.bank(queue, z_t, self.batch_size * len(crops[part]))
                if kw.self_positive:  # SEED's fused cross-entropy (same gradient as the KL)
                    loss = seed_loss(z_s, z_t, bank, self.tau_teacher, self.tau_student)
                else:
                    loss = queue_kl(z_s, z_t, bank, self.tau_teacher, self.tau_student)
        if obj.local_term is not None:
            s_map = torch.cat(out["map"][part])
            projected = self.project_map(to_grid(s_map, t_map.shape[-2:]))
            t_map = t_map.to(projected.device)
            if obj.local_term == "dense":
                loss = loss + dense_loss(projected, t_map, kw.dense_normalize)
            else:
                loss = loss + kw.local_weight * token_kl(projected, t_map, kw.tau_local)
        return loss

    def project_map(self, maps: Tensor) -> Tensor:
        """The per-location linear head on a (B, C_S, h, w) map -> (B, C_T, h, w)."""
        return self.local_projector(maps.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
