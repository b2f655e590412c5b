"""The population stability index (PSI) between a reference histogram and an observed one.

    psi = population_stability(reference_fractions, observed_counts)     # 0 when they match
    level(psi)                                                           # "stable" | "watch" | "act"

PSI = sum over bins of (observed - reference) * ln(observed / reference), on fractions. It is the
symmetric (Jeffreys) form of the KL divergence, read by the industry's rule of thumb: below 0.1
nothing moved, 0.1 to 0.25 a shift worth watching, 0.25 and above act (retrain or find the cause).
An empty bin counts as EMPTY_FRACTION, so that a value never seen does not make it infinite.
A sample of n rows over B bins reads about (B - 1) / n above 0 by chance alone: compare windows of
a few thousand rows, not of a hundred.
"""
import numpy as np

WATCH = 0.1  # PSI from which a feature is worth watching
ACT = 0.25  # PSI from which the shift is large enough to act on
EMPTY_FRACTION = 1e-4  # an empty bin's fraction: bounds a single bin's contribution


def population_stability(reference_fractions, observed_counts) -> float:
    """PSI of `observed_counts` (a histogram, any total) against `reference_fractions` (summing to 1).

    NaN when nothing was observed: no rows, no evidence either way.
    """
    observed_counts = np.asarray(observed_counts, dtype=np.float64)
    total = observed_counts.sum()
    if total <= 0:
        return float("nan")
    expected = np.maximum(np.asarray(reference_fractions, dtype=np.float64), EMPTY_FRACTION)
    observed = np.maximum(observed_counts / total, EMPTY_FRACTION)
    return float(np.sum((observed - expected) * np.log(observed / expected)))


def level(psi: float) -> str:
    """stable (< WATCH), watch (< ACT), act; "no rows" for NaN."""
    if np.isnan(psi):
        return "no rows"
    return "stable" if psi < WATCH else "watch" if psi < ACT else "act"
