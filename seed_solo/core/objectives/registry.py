"""The objectives by name: what each computes, where it comes from, and its settings.

:data:`OBJECTIVES` is the one list of objective names (``method_kwargs.objective``); the names
are stable. Each entry says which solo-learn method trains it (``seed``, or ``seed_mocov2`` for
SEED plus MoCo v2's own loss), its global term (a loss of one vector per view) and its local
term (a loss of feature maps), and the ``method_kwargs`` it defaults to, with their source.
:data:`DEFAULTS` are the settings every objective shares unless it says otherwise (SEED's).

Pure data, no torch: the configs (``configs/distill/imagenet/<objective>_r18.yaml``), the docs
(docs/objectives.md) and the command lines (:func:`overrides`) read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from seed_solo.core.errors import ConfigError
from seed_solo.core.unknown_names import unknown_name

#: the solo-learn methods that train an objective
METHOD, SSL_METHOD = "seed", "seed_mocov2"
DISTILL_METHODS = (METHOD, SSL_METHOD)
#: the global terms (one embedding per view) and local terms (feature maps)
GLOBAL_TERMS = ("queue_kl", "l2", "simreg")
LOCAL_TERMS = ("dense", "token_kl")
HEADS = ("mlp", "linear", "simreg")
ENQUEUE = ("after", "before")

#: method_kwargs every objective has, with SEED's values (Fang et al., ICLR 2021)
DEFAULTS: Dict[str, Any] = {
    "head": "mlp",             # the student head: mlp (SEED), linear, simreg (4 layers, BN)
    "queue_size": 65536,       # K
    "tau_teacher": 0.01,       # tau_T
    "tau_student": 0.2,        # tau_S
    "self_positive": True,     # the sample's own z_T in the bank (SEED's D+)
    "enqueue": "after",        # this step's z_T join the bank after scoring, or before
    "queue_gather": True,      # under DDP: every process's z_T enqueued (False: per process)
    "mixup": False,            # batch mixup of the images teacher and student see
    "local_weight": 0.0,       # weight of the local term (token_kl)
    "tau_local": 0.07,         # temperature of token_kl
    "dense_normalize": True,   # dense: per-location normalised MSE (False: plain MSE)
    "ssl_weight": 1.0,         # seed_mocov2: weight of MoCo v2's loss
}


@dataclass(frozen=True)
class Objective:
    """One objective: ``name`` (``method_kwargs.objective``), the solo-learn ``method`` that
    trains it, its ``global_term`` and ``local_term`` (None: none), the ``settings`` it changes
    from :data:`DEFAULTS`, its ``source`` and a one-line ``summary``."""

    name: str
    summary: str
    source: str
    global_term: Optional[str] = "queue_kl"
    local_term: Optional[str] = None
    method: str = METHOD
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dense(self) -> bool:
        """True when the objective needs feature maps of the teacher and the student (so no
        teacher cache, which stores one embedding per view)."""
        return self.local_term is not None

    def defaults(self) -> Dict[str, Any]:
        """Every setting of :data:`DEFAULTS`, with this objective's values."""
        return {**DEFAULTS, **self.settings}


OBJECTIVES: Dict[str, Objective] = {o.name: o for o in (
    Objective(
        "seed", "SEED: KL of similarity distributions over D+ = [z_T; queue], tau_T < tau_S",
        "Fang et al., ICLR 2021; github.com/jacobswan1/SEED seed/builder.py"),
    Objective(
        "compress-1q", "CompRess-1q: queue KL with no self-positive, one temperature, linear "
        "head, a bank of 128,000",
        "Abbasi Koohpayegani et al., NeurIPS 2020; github.com/UMBCvision/CompRess "
        "train_student_one_queue.py, nn/compress_loss.py (CompReSSA)",
        settings={"head": "linear", "queue_size": 128000, "tau_teacher": 0.04,
                  "tau_student": 0.04, "self_positive": False}),
    Objective(
        "lightly-v1", "LightlyTrain distillation v1: queue KL, the batch enqueued before "
        "scoring, one temperature 0.07, linear head, per-process queue, batch mixup",
        "github.com/lightly-ai/lightly-train src/lightly_train/_methods/distillation/",
        settings={"head": "linear", "queue_size": 8192, "tau_teacher": 0.07,
                  "tau_student": 0.07, "self_positive": False, "enqueue": "before",
                  "queue_gather": False, "mixup": True}),
    Objective(
        "l2", "SEED's Table 4 l2 baseline: squared l2 distance of the normalised embeddings",
        "Fang et al., ICLR 2021, Table 4", global_term="l2"),
    Objective(
        "simreg", "SimReg: 2 - 2 cos through a 4-layer BN prediction head, same weak view",
        "Navaneet et al., BMVC 2021; github.com/UCDvision/simreg simreg.py, mlp_arch.py",
        global_term="simreg", settings={"head": "simreg"}),
    Objective(
        "seed-mocov2", "SEED + MoCo v2: SEED's loss on the first view plus solo-learn's MoCo "
        "v2+ loss of the student (the paper's Table 4 supplementary term)",
        "Fang et al., ICLR 2021, Table 4; solo-learn solo/methods/mocov2plus.py",
        method=SSL_METHOD),
    Objective(
        "dense", "dense regression: the student's last feature map, per-location linear head, "
        "against the teacher's patch tokens / last feature map, normalised MSE",
        "LightlyTrain distillationv2 (src/lightly_train/_methods/distillationv2/)",
        global_term=None, local_term="dense", settings={"head": "linear"}),
    Objective(
        "lightly-v3", "LightlyTrain distillation v3: lightly-v1's queue KL plus the KL of "
        "token-to-token similarity rows (weight 1, tau 0.07)",
        "github.com/lightly-ai/lightly-train src/lightly_train/_methods/distillationv3/",
        local_term="token_kl",
        settings={"head": "linear", "queue_size": 8192, "tau_teacher": 0.07,
                  "tau_student": 0.07, "self_positive": False, "enqueue": "before",
                  "queue_gather": False, "mixup": True, "local_weight": 1.0}),
)}


def objective(name: Any) -> Objective:
    """The objective ``name``; an unknown name fails naming the closest."""
    if name not in OBJECTIVES:
        raise ConfigError(unknown_name("objective", str(name), OBJECTIVES,
                                       "set method_kwargs.objective to one of "
                                       + ", ".join(OBJECTIVES)))
    return OBJECTIVES[name]


def overrides(name: str) -> List[str]:
    """The hydra overrides that turn any distill config into objective ``name`` with its
    defaults: ``method=...``, ``++method_kwargs.objective=...`` and every setting."""
    obj = objective(name)
    found = [f"method={obj.method}", f"++method_kwargs.objective={name}"]
    found += [f"++method_kwargs.{k}={_hydra(v)}" for k, v in obj.defaults().items()]
    return found


def _hydra(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
