"""l2-regularised multinomial logistic regression on frozen features: the transfer protocol of
Kornblith et al. (2019, "Do Better ImageNet Models Transfer Better?"), as SimCLR and BYOL
report it.

The objective, for features x_i (F,), labels y_i, weights W (F, C) and biases b (C,)::

    L(W, b) = 1/N sum_i -log softmax(x_i W + b)_{y_i}  +  lambda / 2 ||W||^2     (b not penalised)

which is scikit-learn's ``LogisticRegression(C=1 / (lambda N))`` objective (scikit-learn >= 1.2
minimises exactly this mean form). It is minimised by torch's L-BFGS with a strong-Wolfe line
search, in float32, on the GPU when there is one: on 2 CPU cores it fits a 50,000 x 512,
100-class problem 3.4x faster than scikit-learn's L-BFGS (10 classes: 6.5x) (docs/performance.md,
``benchmarks/bench_transfer.py``), and ``tests/evaluation/test_logistic.py`` checks it reaches
scikit-learn's solution.

The protocol (:func:`transfer_logistic`):

1. lambda is chosen from :data:`GRID`, 45 log-spaced values from 1e-6 to 1e5: a model is fitted
   on the training split for each (warm-started from the previous, strongest first) and scored
   on the validation split; the best top-1 wins (a tie: the stronger regularisation).
2. The model is refitted with that lambda on training + validation and scored on the test
   split, which step 1 never receives.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: Kornblith et al.'s grid of the l2 regularisation: 45 log-spaced values from 1e-6 to 1e5
GRID = tuple(float(v) for v in np.logspace(-6, 5, 45))
MAX_ITER = 1000
ONE_THREAD_BELOW = 1 << 24
#: the share of each class of the training split held out to choose lambda, where the data set
#: publishes no validation split
VAL_FRACTION = 0.2


@dataclass
class Fit:
    """A fitted model: ``weight`` (F, C), ``bias`` (C,), and the L-BFGS iterations it took."""

    weight: Tensor
    bias: Tensor
    iterations: int

    def logits(self, x: Tensor) -> Tensor:
        return x.to(self.weight) @ self.weight + self.bias


def fit(x: Tensor, y: Tensor, num_classes: int, lam: float, init: Optional[Fit] = None,
        max_iter: int = MAX_ITER, tol: float = 1e-6) -> Fit:
    """Minimise the module's objective for ``x`` (N, F), ``y`` (N,) on ``x``'s device and dtype.

    L-BFGS stops when every gradient component is below ``tol`` or after ``max_iter``
    iterations; ``init`` warm-starts it."""
    weight = (init.weight.clone() if init is not None
              else x.new_zeros(x.shape[1], num_classes)).requires_grad_(True)
    bias = (init.bias.clone() if init is not None
            else x.new_zeros(num_classes)).requires_grad_(True)
    opt = torch.optim.LBFGS([weight, bias], lr=1, max_iter=max_iter, history_size=10,
                            tolerance_grad=tol, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, y) + 0.5 * lam * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    iterations = int(opt.state[opt._params[0]].get("n_iter", 0))
    return Fit(weight.detach(), bias.detach(), iterations)


def top_k(logits: Tensor, y: Tensor, k: int = 1) -> float:
    """Top-``k`` accuracy in %."""
    k = min(k, logits.shape[1])
    hits = int((logits.topk(k, dim=1).indices == y[:, None]).any(dim=1).sum())
    return 100.0 * hits / len(y)  # from a count: equal scores compare equal


def choose_lambda(train_x: Tensor, train_y: Tensor, val_x: Tensor, val_y: Tensor,
                  num_classes: int, grid: Sequence[float] = GRID,
                  max_iter: int = MAX_ITER) -> Tuple[float, List[Dict[str, float]]]:
    """(chosen lambda, the validation top-1 of every lambda of ``grid``): step 1 above."""
    curve, previous = [], None
    for lam in sorted(grid, reverse=True):
        previous = fit(train_x, train_y, num_classes, lam, previous, max_iter)
        curve.append({"lambda": lam, "val_acc1": top_k(previous.logits(val_x), val_y),
                      "iterations": previous.iterations})
    best = max(curve, key=lambda r: (r["val_acc1"], r["lambda"]))
    return best["lambda"], sorted(curve, key=lambda r: r["lambda"])


def holdout(labels: np.ndarray, fraction: float = VAL_FRACTION,
            seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """(train, val) indices: ``round(fraction * n_c)`` of each class's n_c indices (at least one
    where n_c > 1) held out by a generator seeded with ``(seed, class)``; both sorted."""
    train, val = [], []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = min(len(members) - 1, max(1, round(fraction * len(members))))
        order = np.random.default_rng([seed, int(c)]).permutation(members)
        val.append(order[:k])
        train.append(order[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


@contextlib.contextmanager
def threads_for(multiply_adds: int, device: torch.device) -> Iterator[None]:
    """One CPU thread for a problem below :data:`ONE_THREAD_BELOW` multiply-adds per product:
    there the threads' synchronisation costs more than they save (the demo's digits, 958 x 128
    x 10: 7 s in one thread against 66 s in two on a busy 2-core machine)."""
    before = torch.get_num_threads()
    if device.type == "cpu" and multiply_adds < ONE_THREAD_BELOW:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def transfer_logistic(train: Tuple[np.ndarray, np.ndarray], val: Tuple[np.ndarray, np.ndarray],
                      test: Tuple[np.ndarray, np.ndarray], num_classes: int,
                      device: torch.device, grid: Sequence[float] = GRID,
                      max_iter: int = MAX_ITER) -> Dict[str, object]:
    """The protocol above on (features, labels) pairs; accuracies in %."""
    def tensors(pair):
        return (torch.as_tensor(pair[0], dtype=torch.float32, device=device),
                torch.as_tensor(pair[1], dtype=torch.long, device=device))

    (tx, ty), (vx, vy), (sx, sy) = tensors(train), tensors(val), tensors(test)
    with threads_for((len(tx) + len(vx)) * tx.shape[1] * num_classes, device):
        lam, curve = choose_lambda(tx, ty, vx, vy, num_classes, grid, max_iter)
        final = fit(torch.cat([tx, vx]), torch.cat([ty, vy]), num_classes, lam,
                    max_iter=max_iter)
        logits = final.logits(sx)
    return {"lambda": lam, "val_acc1": max(r["val_acc1"] for r in curve),
            "test_acc1": top_k(logits, sy, 1), "test_acc5": top_k(logits, sy, 5),
            "iterations": final.iterations, "curve": curve}
