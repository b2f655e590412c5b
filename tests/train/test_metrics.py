"""The exact metrics: AUC by ranks, and the DeLong error of a paired AUC difference against a bootstrap."""
import numpy as np
import pytest

from netfab.train.metrics import auc_difference, roc_auc


def test_auc_counts_ties_half():
    assert roc_auc([0, 1], [0.2, 0.8]) == 1.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_delong_error_of_a_paired_difference_matches_a_bootstrap():
    rng = np.random.default_rng(3)
    labels = rng.random(1500) < 0.3
    signal = labels + rng.normal(0, 1.2, len(labels))
    better, worse = signal + rng.normal(0, 0.3, len(labels)), signal + rng.normal(0, 1.0, len(labels))
    difference, error = auc_difference(labels, better, worse)
    assert difference == pytest.approx(roc_auc(labels, better) - roc_auc(labels, worse))
    resampled = []
    for _ in range(400):  # the paired bootstrap: the same resampled rows for both models
        rows = rng.integers(0, len(labels), len(labels))
        resampled.append(roc_auc(labels[rows], better[rows]) - roc_auc(labels[rows], worse[rows]))
    assert error == pytest.approx(np.std(resampled), rel=0.15)
    assert auc_difference(labels, better, better) == (0.0, 0.0)  # a model against itself: no doubt
