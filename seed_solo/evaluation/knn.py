"""kNN classification of features: solo-learn's weighted kNN classifier (k, T, distance)."""

from __future__ import annotations

from typing import Optional, Tuple

from solo.utils.knn import WeightedKNNClassifier
from torch import Tensor


def knn_accuracy(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, k: int,
                 T: Optional[float], distance_fx: str) -> Tuple[float, float]:
    """(top-1, top-5) accuracy in % of ``test_x`` classified by its ``k`` nearest ``train_x``,
    votes weighted by ``exp(similarity / T)`` for cosine distance (T defaults to 0.07)."""
    knn = WeightedKNNClassifier(k=k, T=T if T is not None else 0.07, distance_fx=distance_fx)
    knn(train_features=train_x, train_targets=train_y, test_features=test_x, test_targets=test_y)
    acc1, acc5 = knn.compute()
    return float(acc1), float(acc5)
