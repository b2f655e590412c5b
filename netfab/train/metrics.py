"""Exact evaluation metrics on numpy arrays (Keras's streaming AUC is an approximation)."""
import numpy as np


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve by the rank-sum formula, ties counted half."""
    labels = np.asarray(labels, dtype=bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both classes among the labels")
    ranks = _midranks(np.asarray(scores, dtype="float64"))
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def auc_difference(labels, scores_a, scores_b) -> tuple[float, float]:
    """AUC(a) - AUC(b) of two models scoring the same rows, and its standard error by DeLong's
    method (DeLong, DeLong & Clarke-Pearson 1988; the midrank form of Sun & Xu 2014). Paired: the
    models' errors on the same rows are correlated, which a per-model error would ignore."""
    labels = np.asarray(labels, dtype=bool)
    m, n = int(labels.sum()), int((~labels).sum())
    if m < 2 or n < 2:
        raise ValueError("an AUC difference's error needs two rows of each class")
    aucs, per_positive, per_negative = [], [], []
    for scores in (scores_a, scores_b):
        scores = np.asarray(scores, dtype="float64")
        positives, negatives = scores[labels], scores[~labels]
        together = _midranks(np.concatenate([positives, negatives]))
        aucs.append((together[:m].sum() - m * (m + 1) / 2) / (m * n))
        # Each positive's share of negatives scored below it; each negative's of positives above it.
        per_positive.append((together[:m] - _midranks(positives)) / n)
        per_negative.append(1.0 - (together[m:] - _midranks(negatives)) / m)
    covariance = np.cov(per_positive) / m + np.cov(per_negative) / n
    variance = covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]
    return float(aucs[0] - aucs[1]), float(np.sqrt(max(variance, 0.0)))


def log_loss(labels, probabilities) -> float:
    p = np.clip(np.asarray(probabilities, dtype="float64"), 1e-7, 1 - 1e-7)
    y = np.asarray(labels, dtype="float64")
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`, tied values sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    return ranks
