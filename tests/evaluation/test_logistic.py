"""The transfer protocol's logistic regression: scikit-learn's solution on the same features,
Kornblith et al.'s grid, and a choice of the regularisation that never looks at the test split."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from seed_solo.evaluation import logistic


def features(n=240, d=12, k=4, seed=0, shift=1.2):
    """Overlapping Gaussian classes (not separable: every lambda has a finite optimum)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.normal(size=(n, d)) + shift * np.eye(k, d)[y]
    return x, y


def test_the_grid_is_kornbliths():
    assert len(logistic.GRID) == 45
    assert logistic.GRID[0] == pytest.approx(1e-6) and logistic.GRID[-1] == pytest.approx(1e5)
    assert np.allclose(np.diff(np.log10(logistic.GRID)), 11 / 44)


@pytest.mark.parametrize("lam", [1e-4, 1e-2, 1.0])
def test_fit_reaches_scikit_learns_solution(lam):
    """The torch L-BFGS minimum equals scikit-learn's LogisticRegression(C = 1 / (lambda N))
    (its lbfgs, multinomial, intercept unpenalised) on the same features, in float64."""
    x, y = features()
    sk = LogisticRegression(C=1 / (lam * len(y)), tol=1e-12, max_iter=100_000).fit(x, y)
    ours = logistic.fit(torch.tensor(x), torch.tensor(y), 4, lam, tol=1e-12, max_iter=10_000)
    assert np.abs(ours.weight.numpy().T - sk.coef_).max() < 1e-4
    assert np.abs(ours.bias.numpy() - sk.intercept_).max() < 1e-4
    probs = torch.softmax(ours.logits(torch.tensor(x)), dim=1).numpy()
    assert np.abs(probs - sk.predict_proba(x)).max() < 1e-5


def test_lambda_is_the_best_on_validation_and_never_looks_at_the_test_split():
    x, y = features(n=400, d=40, k=5, shift=0.8)
    train, val, test = slice(0, 200), slice(200, 300), slice(300, 400)
    grid = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    # the rule, computed independently with scikit-learn: best validation top-1, ties -> larger
    val_acc = {lam: 100 * (LogisticRegression(C=1 / (lam * 200), tol=1e-10, max_iter=10_000)
                           .fit(x[train], y[train]).predict(x[val]) == y[val]).mean()
               for lam in grid}
    expected = max(grid, key=lambda lam: (round(val_acc[lam], 6), lam))

    pairs = {"train": (x[train], y[train]), "val": (x[val], y[val])}
    cpu = torch.device("cpu")
    result = logistic.transfer_logistic(pairs["train"], pairs["val"], (x[test], y[test]), 5, cpu,
                                        grid)
    assert result["lambda"] == expected == 0.1  # 4 points ahead of the next: no float tie
    assert [r["val_acc1"] for r in result["curve"]] == pytest.approx(
        [val_acc[lam] for lam in grid], abs=1.0)  # float32 against float64: one image at most
    # the same training and validation data with a garbled test split: the same choice
    scrambled = (np.random.default_rng(1).normal(size=x[test].shape), np.roll(y[test], 1))
    again = logistic.transfer_logistic(pairs["train"], pairs["val"], scrambled, 5, cpu, grid)
    assert again["lambda"] == result["lambda"] and again["curve"] == result["curve"]
    assert again["test_acc1"] != result["test_acc1"]
    # and the final model is the refit on train + validation, scored on test
    final = LogisticRegression(C=1 / (expected * 300), tol=1e-10, max_iter=10_000).fit(
        x[:300], y[:300])
    assert result["test_acc1"] == pytest.approx(100 * (final.predict(x[test]) == y[test]).mean(),
                                                abs=1.01)  # at most one image of 100 differs


def test_holdout_is_stratified_seeded_and_disjoint():
    y = np.repeat(np.arange(3), [10, 25, 2])
    train, val = logistic.holdout(y, 0.2, seed=4)
    assert np.bincount(y[val]).tolist() == [2, 5, 1]
    assert not set(train) & set(val) and len(train) + len(val) == len(y)
    assert [a.tolist() for a in logistic.holdout(y, 0.2, seed=4)] == [train.tolist(),
                                                                       val.tolist()]
    assert logistic.holdout(y, 0.2, seed=5)[1].tolist() != val.tolist()
