"""Fréchet distance between two sets of embeddings (as in FID / FAD), for a generated-vs-reference report."""

from __future__ import annotations

import numpy as np
from scipy import linalg


def frechet_distance(a: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> float:
    """Distance between Gaussians fitted to embeddings `a` (n, d) and `b` (m, d); 0 for equal statistics.

    A small ridge `eps` keeps the covariances invertible when there are fewer sounds than dimensions.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError("need two (n, d) arrays with the same d and at least 2 rows each")
    ridge = eps * np.eye(a.shape[1])
    return gaussian_frechet(a.mean(axis=0), np.cov(a, rowvar=False) + ridge, b.mean(axis=0),
                            np.cov(b, rowvar=False) + ridge)


def gaussian_frechet(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Fréchet distance between two Gaussians given by mean and covariance."""
    root = linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2.0 * root))
