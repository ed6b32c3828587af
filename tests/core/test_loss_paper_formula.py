"""The SEED objective against a per-sample loop written from the paper's formula."""

import math

import pytest
import torch
import torch.nn.functional as F

from seed_solo.core.objectives import seed_loss
from tests.support.vectors import unit


def naive_seed_loss(z_s, z_t, queue, tau_t, tau_s):
    """L = mean_i -sum_j p_T,j log p_S,j over D+ = [D; z_T,i], one sample at a time."""
    total = 0.0
    for i in range(z_s.shape[0]):
        d_plus = [z_t[i]] + [queue[j] for j in range(queue.shape[0])]
        s_t = [float(z_t[i] @ d) / tau_t for d in d_plus]
        s_s = [float(z_s[i] @ d) / tau_s for d in d_plus]
        m_t, m_s = max(s_t), max(s_s)
        e_t = [math.exp(v - m_t) for v in s_t]
        lse_s = m_s + math.log(sum(math.exp(v - m_s) for v in s_s))
        p_t = [e / sum(e_t) for e in e_t]
        total += -sum(p * (v - lse_s) for p, v in zip(p_t, s_s))
    return total / z_s.shape[0]


@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("queue_size", [0, 1, 5, 33])
@pytest.mark.parametrize("taus", [(0.01, 0.2), (0.07, 0.07), (0.5, 0.1), (1e-4, 0.2)])
def test_matches_naive_formula(batch, queue_size, taus):
    tau_t, tau_s = taus
    z_s, z_t, queue = unit(batch, 16, seed=1), unit(batch, 16, seed=2), unit(queue_size, 16, seed=3)
    got = seed_loss(z_s.float(), z_t.float(), queue.float(), tau_t, tau_s)
    want = naive_seed_loss(z_s, z_t, queue, tau_t, tau_s)
    assert got.item() == pytest.approx(want, rel=1e-4, abs=1e-4)


def test_tiny_teacher_temperature_is_infonce_with_teacher_key():
    # tau_T -> 0: p_T is one-hot on z_T (similarity 1 beats every queue entry), so L is
    # InfoNCE with the teacher embedding as the positive key and the queue as negatives.
    z_s, z_t, queue = unit(6, 32, seed=4), unit(6, 32, seed=5), unit(50, 32, seed=6)
    tau_s = 0.2
    pos = (z_s * z_t).sum(1, keepdim=True)
    logits = torch.cat([pos, z_s @ queue.T], 1) / tau_s
    infonce = F.cross_entropy(logits, torch.zeros(6, dtype=torch.long))
    got = seed_loss(z_s, z_t, queue, tau_teacher=1e-6, tau_student=tau_s)
    assert got.item() == pytest.approx(infonce.item(), abs=1e-6)


def test_empty_queue_gives_zero_loss():
    # D+ holds only z_T: both distributions are the one-hot on it
    z = unit(4, 8)
    assert seed_loss(unit(4, 8, seed=9), z, torch.empty(0, 8)).item() == pytest.approx(0.0)


def test_student_equal_to_teacher_at_equal_temperatures_gives_the_targets_entropy():
    # with equal temperatures and z_S = z_T the student reproduces p_T: the loss is p_T's entropy
    z_t, queue = unit(5, 8, seed=7), unit(20, 8, seed=8)
    loss = seed_loss(z_t.clone(), z_t, queue, tau_teacher=0.3, tau_student=0.3)
    logits = torch.cat([(z_t * z_t).sum(1, keepdim=True), z_t @ queue.T], 1) / 0.3
    p = logits.softmax(1)
    entropy = -(p * p.log()).sum(1).mean()
    assert loss.item() == pytest.approx(entropy.item(), rel=1e-5)


def test_gradients_reach_student_only():
    z_s = unit(4, 8, seed=10).float().requires_grad_()
    z_t = unit(4, 8, seed=11).float().requires_grad_()
    queue = unit(12, 8, seed=12).float().requires_grad_()
    seed_loss(z_s, z_t, queue).backward()
    assert z_s.grad is not None and z_s.grad.abs().sum() > 0
    assert z_t.grad is None
    assert queue.grad is None


def test_float32_even_under_autocast():
    z_s, z_t, queue = unit(4, 8, seed=13).float(), unit(4, 8, seed=14).float(), unit(9, 8).float()
    ref = seed_loss(z_s, z_t, queue)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = seed_loss(z_s.bfloat16(), z_t, queue.bfloat16())
    assert got.dtype == torch.float32
    # only the bf16 rounding of the inputs differs
    assert got.item() == pytest.approx(
        seed_loss(z_s.bfloat16().float(), z_t, queue.bfloat16().float()).item(), rel=1e-6
    )
    assert ref.dtype == torch.float32


@pytest.mark.parametrize(
    "args, match",
    [
        ((unit(4, 8).float(), unit(4, 6).float(), unit(3, 8).float()), "student and teacher"),
        ((unit(4, 8).float(), unit(4, 8).float(), unit(3, 6).float()), "queue must be"),
    ],
)
def test_shape_errors_say_what_is_wrong(args, match):
    with pytest.raises(ValueError, match=match):
        seed_loss(*args)


def test_nonpositive_temperature_is_an_error():
    z = unit(2, 4).float()
    with pytest.raises(ValueError, match="temperatures must be positive"):
        seed_loss(z, z, z, tau_teacher=0.0)
