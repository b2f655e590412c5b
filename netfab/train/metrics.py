"""Exact evaluation metrics on numpy arrays (Keras's streaming AUC is an approximation)."""
import numpy as np


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve by the rank-sum formula, ties counted half."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype="float64")
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both classes among the labels")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average rank for tied scores.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def log_loss(labels, probabilities) -> float:
    p = np.clip(np.asarray(probabilities, dtype="float64"), 1e-7, 1 - 1e-7)
    y = np.asarray(labels, dtype="float64")
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
