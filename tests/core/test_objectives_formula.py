"""Every objective's value and gradient against its paper's formula, written here one sample
(one location, one entry) at a time in float64 scalars, independently of the vectorised code;
edge cases: empty queue, self in and out of the bank, one class (every embedding the same),
a single sample, grids larger and smaller than the teacher's."""

import math

import pytest
import torch

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
from tests.support.vectors import unit


def _scalars(t):
    """A float64 tensor as nested lists of 0-d tensors that keep the graph."""
    return [_scalars(r) for r in t] if t.ndim else t


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def _log_softmax(logits):
    m = max(float(v.detach()) for v in logits)
    lse = m + torch.log(sum(torch.exp(v - m) for v in logits))
    return [v - lse for v in logits]


def _kl_rows(t_logits, s_logits):
    log_p, log_q = _log_softmax(t_logits), _log_softmax(s_logits)
    return sum(torch.exp(a) * (a - b) for a, b in zip(log_p, log_q))


def naive_queue_kl(z_s, z_t, bank, tau_t, tau_s, self_positive):
    """mean_i KL(softmax(z_T,i . B+ / tau_T) || softmax(z_S,i . B+ / tau_S)), B+ per sample."""
    s, t, b = _scalars(z_s), _scalars(z_t), _scalars(bank)
    total = 0.0
    for i in range(len(s)):
        rows = ([t[i]] if self_positive else []) + list(b)
        if not rows:
            total = total + 0.0 * s[i][0]
            continue
        total = total + _kl_rows([_dot(t[i], r) / tau_t for r in rows],
                                 [_dot(s[i], r) / tau_s for r in rows])
    return total / len(s)


def _leaf(x):
    return x.clone().requires_grad_()


def _value_and_grad(fn, x, *args, **kwargs):
    x = _leaf(x)
    value = fn(x, *args, **kwargs)
    (grad,) = torch.autograd.grad(value, x)
    return value.detach(), grad


def _same(fn, naive, x, *args, **kwargs):
    got, got_grad = _value_and_grad(fn, x, *args, **kwargs)
    want, want_grad = _value_and_grad(naive, x, *args, **kwargs)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-8, atol=1e-12)
    return got, got_grad


@pytest.mark.parametrize("self_positive", [True, False])
@pytest.mark.parametrize("batch, k", [(1, 0), (1, 1), (3, 0), (3, 5), (4, 9)])
@pytest.mark.parametrize("taus", [(0.01, 0.2), (0.04, 0.04), (0.07, 0.07), (0.5, 0.1)])
def test_queue_kl_value_and_gradient_follow_the_formula(self_positive, batch, k, taus):
    z_s, z_t, bank = unit(batch, 6, seed=1), unit(batch, 6, seed=2), unit(k, 6, seed=3)
    value, grad = _same(queue_kl, naive_queue_kl, z_s, z_t, bank, *taus,
                        self_positive=self_positive)
    if k == 0:  # nothing to compare with but (maybe) itself: both distributions are one-hot
        assert value.item() == pytest.approx(0.0, abs=1e-12)
        assert grad.abs().max().item() < 1e-12


def test_queue_kl_with_self_has_seeds_gradient_and_differs_by_the_teachers_entropy():
    # SEED writes the cross-entropy H(p_T, p_S) = KL + H(p_T); H(p_T) is the student's constant
    z_s, z_t, bank = unit(5, 8, seed=4), unit(5, 8, seed=5), unit(12, 8, seed=6)
    kl, kl_grad = _value_and_grad(queue_kl, z_s, z_t, bank, 0.01, 0.2, True)
    ce, ce_grad = _value_and_grad(seed_loss, z_s, z_t, bank, 0.01, 0.2)
    torch.testing.assert_close(kl_grad, ce_grad, rtol=1e-9, atol=1e-12)
    p_t = (torch.cat([(z_t * z_t).sum(1, keepdim=True), z_t @ bank.T], 1) / 0.01).softmax(1)
    entropy = -(p_t * p_t.clamp_min(1e-300).log()).sum(1).mean()
    assert ce.item() == pytest.approx(kl.item() + entropy.item(), rel=1e-9, abs=1e-12)


def test_one_class_every_embedding_the_same():
    # one instance "class": teacher, bank and student all one vector -> p_T = p_S, KL = 0,
    # and with tau_T != tau_S both are uniform over equal logits: still 0
    z = unit(1, 6, seed=7).repeat(4, 1)
    for self_positive in (True, False):
        value, grad = _same(queue_kl, naive_queue_kl, z, z, z.clone(), 0.01, 0.2,
                            self_positive=self_positive)
        assert value.item() == pytest.approx(0.0, abs=1e-12)
    assert l2_loss(z, z).item() == 0.0 and simreg_loss(z, z).item() == pytest.approx(0.0)


def naive_l2(z_s, z_t):
    s, t = _scalars(z_s), _scalars(z_t)
    return sum(sum((a - b) ** 2 for a, b in zip(si, ti)) for si, ti in zip(s, t)) / len(s)


def naive_simreg(p, t):
    """mean_i (2 - 2 cos(p_i, t_i)), cos from the dot product and the two norms."""
    ps, ts = _scalars(p), _scalars(t)
    total = 0.0
    for a, b in zip(ps, ts):
        cos = _dot(a, b) / (torch.sqrt(_dot(a, a)) * torch.sqrt(_dot(b, b)))
        total = total + 2 - 2 * cos
    return total / len(ps)


@pytest.mark.parametrize("batch", [1, 5])
def test_l2_and_simreg_follow_their_formulas(batch):
    z_s, z_t = unit(batch, 7, seed=8), unit(batch, 7, seed=9)
    value, _ = _same(l2_loss, naive_l2, z_s, z_t)
    # SimReg normalises its prediction: an unnormalised one gives the same value
    raw = z_s * torch.linspace(0.5, 3.0, batch, dtype=torch.float64)[:, None]
    _same(simreg_loss, naive_simreg, raw, z_t * 2.0)
    # on unit vectors both are 2 - 2 cos
    assert value.item() == pytest.approx(simreg_loss(z_s, z_t).item(), rel=1e-12)


def naive_area(maps, h, w):
    """Average of the student locations each teacher location covers (integer ratios)."""
    b, c, hs, ws = maps.shape
    fh, fw = hs // h, ws // w
    out = torch.zeros(b, c, h, w, dtype=maps.dtype)
    for y in range(h):
        for x in range(w):
            out[:, :, y, x] = maps[:, :, y * fh:(y + 1) * fh, x * fw:(x + 1) * fw].mean((2, 3))
    return out


def naive_bilinear(maps, h, w):
    """Bilinear resize with half-pixel centres (align_corners=False), one location at a time."""
    b, c, hs, ws = maps.shape
    out = torch.zeros(b, c, h, w, dtype=maps.dtype)
    for y in range(h):
        for x in range(w):
            sy = max((y + 0.5) * hs / h - 0.5, 0.0)
            sx = max((x + 0.5) * ws / w - 0.5, 0.0)
            y0, x0 = min(int(math.floor(sy)), hs - 1), min(int(math.floor(sx)), ws - 1)
            y1, x1 = min(y0 + 1, hs - 1), min(x0 + 1, ws - 1)
            dy, dx = sy - y0, sx - x0
            out[:, :, y, x] = ((1 - dy) * (1 - dx) * maps[:, :, y0, x0]
                               + (1 - dy) * dx * maps[:, :, y0, x1]
                               + dy * (1 - dx) * maps[:, :, y1, x0] + dy * dx * maps[:, :, y1, x1])
    return out


@pytest.mark.parametrize("student, teacher, rule", [
    ((4, 4), (2, 2), "area"),      # the CPU demo: tiny_resnet10 4 x 4 vs Lite0 block 5 2 x 2
    ((8, 6), (2, 3), "area"),
    ((2, 2), (4, 4), "bilinear"),  # a stride-32 CNN under a finer ViT grid
    ((3, 5), (6, 10), "bilinear"),
    ((4, 4), (4, 4), "same"),
])
def test_the_student_map_is_brought_to_the_teacher_grid(student, teacher, rule):
    maps = torch.randn(2, 3, *student, dtype=torch.float64, generator=torch.Generator()
                       .manual_seed(0))
    got = to_grid(maps, teacher)
    want = {"area": naive_area, "bilinear": naive_bilinear,
            "same": lambda m, h, w: m}[rule](maps, *teacher)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_a_larger_student_grid_sends_every_location_a_gradient():
    maps = torch.randn(1, 2, 8, 8, dtype=torch.float64).requires_grad_()
    to_grid(maps, (2, 2)).sum().backward()
    assert (maps.grad != 0).all()  # bilinear at ratio 4 would reach only some of them


def naive_dense(p, t, normalize):
    """Normalised: mean over (b, location) of || p/|p| - t/|t| ||^2; else the plain MSE."""
    ps, ts = _scalars(p), _scalars(t)
    b, c, h, w = p.shape
    total = 0.0
    for i in range(b):
        for y in range(h):
            for x in range(w):
                a = [ps[i][k][y][x] for k in range(c)]
                e = [ts[i][k][y][x] for k in range(c)]
                if normalize:
                    na, ne = torch.sqrt(_dot(a, a)), torch.sqrt(_dot(e, e))
                    total = total + sum((u / na - v / ne) ** 2 for u, v in zip(a, e))
                else:
                    total = total + sum((u - v) ** 2 for u, v in zip(a, e)) / c
    return total / (b * h * w)


@pytest.mark.parametrize("normalize", [True, False])
def test_dense_regression_follows_its_formula(normalize):
    g = torch.Generator().manual_seed(1)
    p = torch.randn(2, 4, 3, 2, dtype=torch.float64, generator=g)
    t = torch.randn(2, 4, 3, 2, dtype=torch.float64, generator=g)
    _same(dense_loss, naive_dense, p, t, normalize)
    with pytest.raises(ConfigError, match="one shape"):
        dense_loss(p, t[:, :, :2])


def naive_token_kl(s, t, tau):
    """(1 / BN) sum_{b, m} KL(softmax_n(t_m . t_n / tau) || softmax_n(s_m . s_n / tau)) over
    each image's normalised tokens, the row's own token included."""
    b, _, h, w = s.shape
    total = 0.0

    def tokens(x, i):
        cols = [[x[i][k][y][xx] for k in range(len(x[i]))] for y in range(h) for xx in range(w)]
        return [[v / torch.sqrt(_dot(c, c)) for v in c] for c in cols]

    for i in range(b):
        ts, ss = tokens(_scalars(t), i), tokens(_scalars(s), i)
        for m in range(h * w):
            total = total + _kl_rows([_dot(ts[m], ts[n]) / tau for n in range(h * w)],
                                     [_dot(ss[m], ss[n]) / tau for n in range(h * w)])
    return total / (b * h * w)


@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_token_similarity_kl_follows_its_formula(tau):
    g = torch.Generator().manual_seed(2)
    s = torch.randn(2, 3, 2, 3, dtype=torch.float64, generator=g)
    t = torch.randn(2, 5, 2, 3, dtype=torch.float64, generator=g)  # channels may differ
    value, _ = _same(token_kl, naive_token_kl, s, t, tau)
    assert value.item() > 0
    assert token_kl(t, t, tau).item() == pytest.approx(0.0, abs=1e-12)


def test_mixup_is_the_convex_combination_with_a_permuted_batch():
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    lam, perm = draw_mixup(5, g)
    assert 0 <= lam <= 1 and sorted(perm.tolist()) == list(range(5))
    mixed = mixup(x, lam, perm)
    for i in range(5):
        torch.testing.assert_close(mixed[i], lam * x[i] + (1 - lam) * x[int(perm[i])])
    torch.testing.assert_close(mixup(x, 1.0, perm), x)  # off: lambda 1


def test_the_preview_bank_is_the_queue_after_the_enqueue():
    q = EmbeddingQueue(5, 4)
    for step in range(4):  # fills, then wraps: the oldest rows leave first
        rows = unit(2, 4, seed=10 + step, dtype=torch.float32)
        preview = q.preview(rows)
        q.enqueue(rows)
        assert sorted(map(tuple, preview.tolist())) == sorted(map(tuple, q.get().tolist()))
