"""Scores as the challenges compute them."""

from __future__ import annotations

import numpy as np

#: Keeps the global SDR finite for silent references or perfect estimates (MDX 2021).
SDR_EPSILON = 1e-7


def global_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """MDX "SDR" (also nSDR) of one stem, over all samples and channels:
    ``10 log10((Σ s² + ε) / (Σ (s − ŝ)² + ε))``."""
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.shape != estimate.shape:
        raise ValueError(f"reference shape {reference.shape} differs from estimate shape {estimate.shape}")
    signal = np.sum(reference**2) + SDR_EPSILON
    error = np.sum((reference - estimate) ** 2) + SDR_EPSILON
    return float(10 * np.log10(signal / error))
