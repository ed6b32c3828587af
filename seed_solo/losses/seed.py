"""The SEED objective (Fang et al., "SEED: Self-supervised Distillation for Visual
Representation", ICLR 2021, eq. 1-3).

Pure torch: no solo-learn import, so it serves any training loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def seed_logits(
    embeddings: Tensor, positives: Tensor, queue: Tensor, temperature: float
) -> Tensor:
    """Similarities of each embedding with its own positive and with every queue entry.

    Args:
        embeddings: (B, d) L2-normalised z (student or teacher).
        positives: (B, d) L2-normalised z_T, the sample's own teacher embedding.
        queue: (K, d) L2-normalised D, read-only.
        temperature: tau, dividing every similarity.

    Returns:
        (B, K + 1) logits over D+ = [z_T ; D]: column 0 is the positive.
    """
    positive = (embeddings * positives).sum(dim=1, keepdim=True)  # Bx1
    negatives = embeddings @ queue.T  # BxK
    return torch.cat([positive, negatives], dim=1) / temperature


def seed_loss(
    student: Tensor,
    teacher: Tensor,
    queue: Tensor,
    tau_teacher: float = 0.01,
    tau_student: float = 0.2,
) -> Tensor:
    """Cross-entropy between the teacher's and the student's similarity distributions over D+.

    ``p_T = softmax(z_T . D+ / tau_T)``, ``p_S = softmax(z_S . D+ / tau_S)`` and
    ``L = mean_i -sum_j p_T,j log p_S,j``, where ``D+`` is the queue ``D`` plus the sample's own
    teacher embedding ``z_T``. As ``tau_T -> 0``, ``p_T`` is one-hot on ``z_T`` and ``L`` is InfoNCE
    with ``z_T`` as the positive key.

    Everything runs in float32 even under autocast: ``1 / tau_T = 100`` amplifies bf16 rounding of
    the teacher similarities (about 4e-3) into a visibly different target distribution.

    Args:
        student: (B, d) L2-normalised student embeddings z_S; gradients flow into it.
        teacher: (B, d) L2-normalised teacher embeddings z_T of the same views; detached here.
        queue: (K, d) L2-normalised past teacher embeddings D, as they were before this step
            (K may be 0 while the queue fills). Detached here; it must not be modified in place
            before backward runs, so enqueue after the optimizer step.
        tau_teacher: tau_T, temperature of the target distribution (paper: 0.01).
        tau_student: tau_S, temperature of the student distribution (paper: 0.2).

    Returns:
        Scalar loss, the mean over the B samples.
    """
    if student.ndim != 2 or student.shape != teacher.shape:
        raise ValueError(
            f"student and teacher embeddings must both be (B, d), got {tuple(student.shape)} "
            f"and {tuple(teacher.shape)}; check that the student head outputs the teacher's size."
        )
    if queue.ndim != 2 or queue.shape[1] != student.shape[1]:
        raise ValueError(
            f"queue must be (K, {student.shape[1]}), got {tuple(queue.shape)}; build the queue "
            "with the teacher's embedding size."
        )
    if tau_teacher <= 0 or tau_student <= 0:
        raise ValueError(
            f"temperatures must be positive, got tau_teacher={tau_teacher}, "
            f"tau_student={tau_student}."
        )
    device_type = student.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        z_s = student.float()
        z_t = teacher.detach().float()
        bank = queue.detach().float()
        with torch.no_grad():
            p_t = F.softmax(seed_logits(z_t, z_t, bank, tau_teacher), dim=1)
        log_p_s = F.log_softmax(seed_logits(z_s, z_t, bank, tau_student), dim=1)
        return -(p_t * log_p_s).sum(dim=1).mean()
