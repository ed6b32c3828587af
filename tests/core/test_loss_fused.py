"""The fused SEED loss (the default ``seed_loss``) against the float32 autograd reference.

Stated tolerance: the loss within 1e-5 relative (1e-6 absolute) and the gradient within 1e-5
relative to its largest entry, i.e. float32 rounding; in float64 both agree to 1e-10.
"""

import functools

import pytest
import torch
import torch.nn.functional as F

from seed_solo.core.objectives import seed_loss, seed_loss_reference
from tests.support.vectors import unit as unit_vectors

unit = functools.partial(unit_vectors, dtype=torch.float32)  # float32 unless asked


def near(*shape, around, spread, seed):
    """Unit vectors close to rows of ``around``, so the teacher's target is not one-hot."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, around.shape[0], (shape[0],), generator=g)
    noise = torch.randn(*shape, generator=g, dtype=around.dtype)
    return F.normalize(around[idx] + spread * noise, dim=-1)


def loss_and_grad(fn, z_s, z_t, queue, tau_t, tau_s):
    z = z_s.clone().requires_grad_()
    loss = fn(z, z_t, queue, tau_t, tau_s)
    (grad,) = torch.autograd.grad(loss, z)
    return loss.detach(), grad


@pytest.mark.parametrize("batch", [1, 5, 32])
@pytest.mark.parametrize("queue_size", [0, 1, 7, 300])
@pytest.mark.parametrize("taus", [(0.01, 0.2), (1e-4, 0.2), (0.07, 0.07), (0.5, 0.05)])
def test_fused_equals_float32_reference(batch, queue_size, taus):
    dim = 16
    queue = unit(queue_size, dim, seed=3)
    z_t = near(batch, dim, around=torch.cat([queue, unit(4, dim, seed=9)]), spread=0.1, seed=2)
    z_s = near(batch, dim, around=z_t, spread=0.5, seed=1)
    want, want_grad = loss_and_grad(seed_loss_reference, z_s, z_t, queue, *taus)
    got, got_grad = loss_and_grad(seed_loss, z_s, z_t, queue, *taus)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(want.item(), rel=1e-5, abs=1e-6)
    scale = want_grad.abs().max().clamp_min(1e-12)
    assert (got_grad - want_grad).abs().max() <= 1e-5 * scale + 1e-7


def test_fused_equals_reference_in_float64_at_paper_sizes():
    # K = 4096, d = 128, a target spread over many entries (queue near the teacher embeddings)
    queue = unit(4096, 128, seed=5, dtype=torch.float64)
    z_t = near(8, 128, around=queue, spread=0.05, seed=6)
    z_s = near(8, 128, around=z_t, spread=0.3, seed=7)
    want, want_grad = loss_and_grad(seed_loss_reference, z_s, z_t, queue, 0.01, 0.2)
    # the reference computes in float32; the fused path keeps float64 inputs in float64
    assert seed_loss(z_s, z_t, queue).dtype == torch.float64
    got, got_grad = loss_and_grad(seed_loss, z_s, z_t, queue, 0.01, 0.2)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    assert torch.allclose(got_grad, want_grad, rtol=1e-4, atol=1e-5 * want_grad.abs().max())


def test_fused_gradient_matches_finite_differences_in_float64():
    queue = unit(40, 8, seed=10, dtype=torch.float64)
    z_t = near(3, 8, around=queue, spread=0.2, seed=11)
    z_s = near(3, 8, around=z_t, spread=0.5, seed=12).requires_grad_()
    assert torch.autograd.gradcheck(lambda z: seed_loss(z, z_t, queue, 0.05, 0.2), (z_s,))


def test_backward_scales_with_the_upstream_gradient():
    queue, z_t = unit(50, 8, seed=13), unit(4, 8, seed=14)
    z_s = unit(4, 8, seed=15).requires_grad_()
    (g1,) = torch.autograd.grad(seed_loss(z_s, z_t, queue), z_s)
    (g3,) = torch.autograd.grad(3.0 * seed_loss(z_s, z_t, queue), z_s)
    assert torch.allclose(g3, 3.0 * g1, rtol=1e-6)


def test_queue_is_neither_copied_nor_saved():
    # the fused path saves only the (B, d) gradient: writing the queue before backward
    # (an early enqueue) must neither fail nor change the gradient
    queue, z_t = unit(64, 8, seed=16), unit(4, 8, seed=17)
    z_s = unit(4, 8, seed=18).requires_grad_()
    (want,) = torch.autograd.grad(seed_loss_reference(z_s, z_t, queue.clone()), z_s)
    loss = seed_loss(z_s, z_t, queue)
    queue.zero_()
    loss.backward()
    assert torch.allclose(z_s.grad, want, rtol=1e-5, atol=1e-7)


def test_no_gradient_work_without_grad():
    queue, z_t, z_s = unit(30, 8, seed=19), unit(2, 8, seed=20), unit(2, 8, seed=21)
    with torch.no_grad():
        loss = seed_loss(z_s.requires_grad_(), z_t, queue)
    assert loss.grad_fn is None
    assert loss.item() == pytest.approx(seed_loss_reference(z_s, z_t, queue).item(), rel=1e-5)


def test_bf16_inputs_under_autocast_are_computed_in_float32():
    queue, z_t = unit(100, 16, seed=22), unit(6, 16, seed=23)
    z_s = unit(6, 16, seed=24).bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = seed_loss(z_s, z_t, queue.bfloat16())
    loss.backward()
    want = seed_loss_reference(z_s.detach().float(), z_t, queue.bfloat16().float())
    assert loss.dtype == torch.float32 and z_s.grad.dtype == torch.bfloat16
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)


@pytest.mark.parametrize("fn", [seed_loss, seed_loss_reference])
def test_products_run_in_full_float32_when_the_user_allows_tf32(fn):
    """``set_float32_matmul_precision("high")`` (TF32 on GPUs) is lifted inside, then restored."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Precision(TorchDispatchMode):
        seen = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func._overloadpacket.__name__ in ("mm", "addmm", "bmm", "matmul"):
                self.seen.append(torch.get_float32_matmul_precision())
            return func(*args, **(kwargs or {}))

    z_s, z_t, queue = unit(4, 8, seed=0), unit(4, 8, seed=1), unit(50, 8, seed=2)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        with Precision() as rec:
            fn(z_s.requires_grad_(), z_t, queue)
        assert rec.seen and set(rec.seen) == {"highest"}
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(previous)
