"""SEED + MoCo v2 (Fang et al., ICLR 2021, Table 4: "SEED + MoCo-V2", 57.9 against SEED's 57.6
for a ResNet-18, "not necessary"): solo-learn's own MoCo v2+ method, unchanged, with SEED's
loss of the student added.

Everything MoCo does is solo-learn's :class:`solo.methods.mocov2plus.MoCoV2Plus`: the
momentum backbone and projector (``BaseMomentumMethod``, EMA updated in its
``on_train_batch_end``), its queue, ``solo.losses.mocov2plus.mocov2plus_loss_func`` on both
views (symmetric), its ``method_kwargs`` (``proj_hidden_dim``, ``proj_output_dim``,
``temperature``, ``queue_size``). On top, the student's first view is distilled with SEED's
loss through its own head (``seed_projector``, Linear(F, proj_hidden_dim) - ReLU -
Linear(., d)) against its own queue of teacher embeddings (``seed_queue``, ``queue_size``
entries):

    L = L_SEED(view 1) + ssl_weight * L_MoCo(views 1, 2) + the online probe's loss

The teacher sees the first view only, so a teacher cache serves this method too (its first
view replayed, the second a fresh crop).
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import omegaconf
import torch.nn.functional as F
from solo.methods.mocov2plus import MoCoV2Plus
from torch import Tensor

from seed_solo.core.distributed import ddp_ignore
from seed_solo.core.objectives import seed_loss
from seed_solo.core.queue import EmbeddingQueue
from seed_solo.harness.methods.distillation import TEACHER_PREFIX, TeacherDistillation, distill_cfg
from seed_solo.nets.projector import projection_head


class SEEDMoCoV2(TeacherDistillation, MoCoV2Plus):
    """solo-learn's MoCo v2+ plus SEED's loss of the first view (module docstring).

    Settings: MoCo v2+'s, and the teacher's and SEED's of :class:`~seed_solo.harness.methods.
    seed.SEED` (``tau_teacher``, ``tau_student``, ``teacher*``), plus ``ssl_weight``.
    """

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        kwargs = cfg.method_kwargs
        self.objective = distill_cfg(cfg, "seed_mocov2")
        embed_dim, _ = self.setup_teacher(cfg)
        self.seed_projector = projection_head(self.features_dim, kwargs.proj_hidden_dim,
                                              embed_dim)
        self.seed_queue = EmbeddingQueue(kwargs.queue_size, embed_dim)
        self._views: List[Dict[str, Any]] = []
        ddp_ignore(self, (TEACHER_PREFIX, "seed_queue."))

    @staticmethod
    def known_kwargs(cfg: omegaconf.DictConfig) -> List[str]:
        """The distillation keys plus MoCo v2+'s own ``temperature``."""
        return [*TeacherDistillation.known_kwargs(cfg), "temperature"]

    @staticmethod
    def add_and_assert_specific_cfg(cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = super(SEEDMoCoV2, SEEDMoCoV2).add_and_assert_specific_cfg(cfg)
        distill_cfg(cfg, "seed_mocov2")
        return cfg

    @property
    def learnable_params(self) -> List[Dict[str, Any]]:
        return super().learnable_params + [
            {"name": "seed_projector", "params": self.seed_projector.parameters()}]

    def base_training_step(self, X: Tensor, targets: Tensor) -> Dict[str, Any]:
        out = super().base_training_step(X, targets)
        self._views.append(out)  # each large view's outputs, for SEED's term
        return out

    def training_step(self, batch: Sequence[Any], batch_idx: int) -> Tensor:
        """MoCo v2+'s step (solo-learn's), then SEED's loss of the first view."""
        self._views, self._pending = [], []
        moco = super().training_step(batch, batch_idx)  # nce + the online probe's loss
        probe = sum(v["loss"] for v in self._views) / self.num_large_crops
        crops = batch[1]
        z_s = F.normalize(self.seed_projector(self._views[0]["feats"]), dim=-1)
        z_t = self.teacher_embeddings(batch[0], [crops[0]]).to(z_s.device)
        bank = self.bank(self.seed_queue, z_t, self.batch_size)
        loss = seed_loss(z_s, z_t, bank, self.cfg.method_kwargs.tau_teacher,
                         self.cfg.method_kwargs.tau_student)
        self.log("train_seed_loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        self._views = []
        return loss + self.cfg.method_kwargs.ssl_weight * (moco - probe) + probe
