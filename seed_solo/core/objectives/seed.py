"""The SEED objective (Fang et al., "SEED: Self-supervised Distillation for Visual
Representation", ICLR 2021, eq. 1-3): cross-entropy between the teacher's and the student's
similarity distributions over D+.

``p_T = softmax(z_T . D+ / tau_T)``, ``p_S = softmax(z_S . D+ / tau_S)`` and
``L = mean_i -sum_j p_T,j log p_S,j``, where ``D+`` is the queue ``D`` plus the sample's own
teacher embedding ``z_T``. As ``tau_T -> 0``, ``p_T`` is one-hot on ``z_T`` and ``L`` is InfoNCE
with ``z_T`` as the positive key.

Precision: everything runs in float32 (float64 if an input is float64) even under autocast, and
the products in full float32 even where TF32 is allowed (:func:`ieee_float32_matmul`):
``1 / tau_T = 100`` amplifies bf16 rounding of the teacher similarities (about 4e-3) into a
visibly different target distribution.

:func:`seed_loss` is the fused implementation used in training; :func:`seed_loss_reference` is
the formula written with autograd, the oracle the tests compare it with. Pure torch: no
solo-learn import, so it serves any training loop.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable


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


def seed_loss_reference(
    student: Tensor,
    teacher: Tensor,
    queue: Tensor,
    tau_teacher: float = 0.01,
    tau_student: float = 0.2,
) -> Tensor:
    """:func:`seed_loss` as the paper writes it, in float32 with autograd throughout.

    Same arguments and result. Unlike the fused loss it saves the queue for backward, so the
    queue must not be modified in place before backward runs (enqueue after the optimizer
    step); and its backward runs later, under the caller's matmul precision.
    """
    _check_inputs(student, teacher, queue, tau_teacher, tau_student)
    device_type = student.device.type
    with torch.autocast(device_type=device_type, enabled=False), ieee_float32_matmul():
        z_s = student.float()
        z_t = teacher.detach().float()
        bank = queue.detach().float()
        with torch.no_grad():
            p_t = F.softmax(seed_logits(z_t, z_t, bank, tau_teacher), dim=1)
        log_p_s = F.log_softmax(seed_logits(z_s, z_t, bank, tau_student), dim=1)
        return -(p_t * log_p_s).sum(dim=1).mean()


@contextlib.contextmanager
def ieee_float32_matmul() -> Iterator[None]:
    """Float32 products in full float32 inside, whatever ``torch.set_float32_matmul_precision``.

    Lightning suggests ``"high"`` or ``"medium"`` on GPUs with tensor cores, which lets float32
    products run in TF32 (10-bit mantissa, relative error about 5e-4) or bf16; multiplied by
    ``1 / tau_T = 100``, that moves the teacher's logits by about 0.05 and its target
    distribution by about 5 %. The setting is restored on exit.
    """
    previous = torch.get_float32_matmul_precision()
    if previous == "highest":
        yield
        return
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def _check_inputs(
    student: Tensor, teacher: Tensor, queue: Tensor, tau_teacher: float, tau_student: float
) -> None:
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


# exp() of arguments below about -87 returns float32 subnormals, which run 5-10x slower on x86
# CPUs (teacher logits at tau_T = 0.01 mostly land there). Clamping at -80 changes each such
# term by under 2e-35 against a largest term of 1: far below float32 resolution of the sums.
_MIN_EXP_ARG = -80.0


class _FusedSeedLoss(torch.autograd.Function):
    """SEED's loss and its gradient in one pass over the queue, without a (B, K+1) graph.

    The student and teacher similarities come from one matrix product ``[z_S/tau_S; z_T/tau_T]
    D^T`` (2B x K); the positive column is handled apart, so nothing is concatenated; the
    softmaxes run in place; the gradient ``dL/dz_S = ((p_S - p_T) D+) / (tau_S B)`` is a second
    product, taken in the forward only when the student needs a gradient, and it is the only
    tensor saved (B x d), so the queue may change before backward runs.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        z_s: Tensor,
        z_t: Tensor,
        queue: Tensor,
        tau_teacher: float,
        tau_student: float,
        need_grad: bool,
    ) -> Tensor:
        b, k = z_s.shape[0], queue.shape[0]
        pos_s = (z_s * z_t).sum(1) / tau_student  # B, student logit of the positive z_T
        pos_t = (z_t * z_t).sum(1) / tau_teacher  # B, teacher logit of the positive z_T
        logits = torch.cat([z_s / tau_student, z_t / tau_teacher]) @ queue.T  # 2BxK
        s, t = logits[:b], logits[b:]  # BxK views: student, teacher

        # p_T in place in t; the max includes the positive, which keeps exp() in range
        m_t = torch.maximum(pos_t, t.amax(1)) if k else pos_t
        t.sub_(m_t[:, None]).clamp_min_(_MIN_EXP_ARG).exp_()
        e_t0 = (pos_t - m_t).exp()
        inv_t = (t.sum(1) + e_t0).reciprocal()
        t.mul_(inv_t[:, None])
        p_t0 = e_t0 * inv_t

        # sum_j p_T,j s_j, before s turns into probabilities
        cross = p_t0 * pos_s + torch.linalg.vecdot(t, s)
        m_s = torch.maximum(pos_s, s.amax(1)) if k else pos_s
        s.sub_(m_s[:, None]).clamp_min_(_MIN_EXP_ARG).exp_()
        e_s0 = (pos_s - m_s).exp()
        z_sum = s.sum(1) + e_s0
        loss = (m_s + z_sum.log() - cross).mean()

        grad = None
        if need_grad:
            inv_s = z_sum.reciprocal()
            g = s.mul_(inv_s[:, None]).sub_(t)  # BxK: p_S - p_T over the queue
            g0 = e_s0 * inv_s - p_t0  # B: p_S - p_T at the positive
            grad = torch.addmm(z_t * g0[:, None], g, queue).div_(tau_student * b)  # Bxd
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_loss: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return grad * grad_loss, None, None, None, None, None


def seed_loss(
    student: Tensor,
    teacher: Tensor,
    queue: Tensor,
    tau_teacher: float = 0.01,
    tau_student: float = 0.2,
) -> Tensor:
    """The SEED loss L (module docstring), fused.

    The fused path: one (2B x d) x (d x K) product gives both similarity matrices, the softmaxes
    run in place, and the gradient is formed in the forward (one (B x K) x (K x d) product), so
    no (B, K+1) logits are concatenated, no queue copy is made and nothing waits on the device.
    It equals :func:`seed_loss_reference` to float32 rounding (``tests/core/test_loss_fused.py``:
    loss within 1e-5 relative, gradient within 1e-5 relative of its largest entry).

    Args:
        student: (B, d) L2-normalised student embeddings z_S; gradients flow into it.
        teacher: (B, d) L2-normalised teacher embeddings z_T of the same views; detached here.
        queue: (K, d) L2-normalised past teacher embeddings D, as they were before this step
            (K may be 0 while the queue fills). Detached and read, never copied or saved.
        tau_teacher: tau_T, temperature of the target distribution (paper: 0.01).
        tau_student: tau_S, temperature of the student distribution (paper: 0.2).

    Returns:
        Scalar loss, the mean over the B samples.
    """
    _check_inputs(student, teacher, queue, tau_teacher, tau_student)
    dtype = torch.float64 if torch.float64 in (student.dtype, teacher.dtype) else torch.float32
    with torch.autocast(device_type=student.device.type, enabled=False), ieee_float32_matmul():
        z_s = student.to(dtype)
        need_grad = torch.is_grad_enabled() and z_s.requires_grad
        return _FusedSeedLoss.apply(
            z_s,
            teacher.detach().to(dtype),
            queue.detach().to(dtype),
            float(tau_teacher),
            float(tau_student),
            need_grad,
        )
