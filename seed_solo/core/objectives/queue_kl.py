"""The generalised queue KL: the student's similarity distribution over a bank of teacher
embeddings matches the teacher's. SEED, CompRess-1q and LightlyTrain's distillation v1 are
configurations of it (:mod:`seed_solo.core.objectives.registry`).

For sample i with teacher embedding z_T,i and student embedding z_S,i (both L2-normalised)
and a bank B (K, d) of teacher embeddings:

    B_i+  = [z_T,i ; B] with ``self_positive`` (SEED's D+), else B (CompRess, LightlyTrain)
    p_T,i = softmax(z_T,i . B_i+ / tau_T)        p_S,i = softmax(z_S,i . B_i+ / tau_S)
    L     = mean_i KL(p_T,i || p_S,i) = mean_i sum_j p_T,ij (log p_T,ij - log p_S,ij)

Which rows the bank holds is the caller's choice: the queue as it was before this step
("enqueue after scoring": SEED, CompRess-1q) or the queue with this step's teacher rows already
in it ("enqueue before scoring": LightlyTrain, :meth:`seed_solo.core.queue.EmbeddingQueue.preview`).

KL and SEED's cross-entropy ``H(p_T, p_S)`` (:func:`seed_solo.core.objectives.seed.seed_loss`)
differ by the teacher's entropy ``H(p_T)``, which does not depend on the student: the gradients
are the same. KL is what CompRess (``F.kl_div(..., reduction="batchmean")``) and LightlyTrain
(``KLDivLoss(reduction="batchmean")``) compute; it is 0 when the student matches the teacher.

Float32 (float64 if an input is) even under autocast, full-precision products
(:func:`~seed_solo.core.objectives.seed.ieee_float32_matmul`), as SEED's loss. Pure torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seed_solo.core.errors import ConfigError
from seed_solo.core.objectives.seed import ieee_float32_matmul, seed_logits


def queue_kl(
    student: Tensor,
    teacher: Tensor,
    bank: Tensor,
    tau_teacher: float,
    tau_student: float,
    self_positive: bool = False,
) -> Tensor:
    """L of the module docstring.

    Args:
        student: (B, d) L2-normalised student embeddings z_S; gradients flow into it.
        teacher: (B, d) L2-normalised teacher embeddings z_T of the same views; detached.
        bank: (K, d) L2-normalised teacher embeddings scored against; detached, K may be 0.
        tau_teacher: tau_T. tau_student: tau_S.
        self_positive: prepend each sample's own z_T to the bank (SEED's D+).

    Returns:
        Scalar: the mean over the B samples of KL(p_T || p_S); 0 (still a function of
        ``student``, so backward runs) when there is nothing to score against.
    """
    _check(student, teacher, bank, tau_teacher, tau_student)
    dtype = torch.float64 if torch.float64 in (student.dtype, teacher.dtype) else torch.float32
    with torch.autocast(device_type=student.device.type, enabled=False), ieee_float32_matmul():
        z_s = student.to(dtype)
        z_t = teacher.detach().to(dtype)
        rows = bank.detach().to(dtype)
        if rows.shape[0] == 0 and not self_positive:
            return (z_s * 0).sum()
        if self_positive:
            with torch.no_grad():
                logits_t = seed_logits(z_t, z_t, rows, tau_teacher)
            logits_s = seed_logits(z_s, z_t, rows, tau_student)
        else:
            with torch.no_grad():
                logits_t = z_t @ rows.T / tau_teacher
            logits_s = z_s @ rows.T / tau_student
        log_p_t = F.log_softmax(logits_t, dim=1)
        log_p_s = F.log_softmax(logits_s, dim=1)
        return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1).mean()


def _check(student: Tensor, teacher: Tensor, bank: Tensor, tau_teacher: float,
           tau_student: float) -> None:
    if student.ndim != 2 or student.shape != teacher.shape:
        raise ConfigError(
            f"student and teacher embeddings must both be (B, d), got {tuple(student.shape)} and "
            f"{tuple(teacher.shape)}; check that the student head outputs the teacher's size."
        )
    if bank.ndim != 2 or bank.shape[1] != student.shape[1]:
        raise ConfigError(f"the bank must be (K, {student.shape[1]}), got {tuple(bank.shape)}; "
                          "build the queue with the teacher's embedding size.")
    if not (tau_teacher > 0 and tau_student > 0):
        raise ConfigError(f"temperatures must be positive, got tau_teacher={tau_teacher}, "
                          f"tau_student={tau_student}.")
