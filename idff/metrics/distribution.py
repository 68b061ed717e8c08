"""Distances between two sample sets: exact W2 (POT) and RBF-kernel MMD (unbiased and biased)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import ot
import torch
from torch import Tensor


def _flat(x: Tensor | np.ndarray) -> Tensor:
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"need at least 2 samples of shape (N, ...), got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("samples contain NaN or inf")
    return x.reshape(x.shape[0], -1)


def wasserstein2(x: Tensor | np.ndarray, y: Tensor | np.ndarray) -> float:
    """Exact 2-Wasserstein distance between the empirical measures (POT's network simplex)."""
    a, b = _flat(x), _flat(y)
    cost = (torch.cdist(a, b) ** 2).numpy()
    w2sq = ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost,
                   numItermax=10_000_000)
    return float(np.sqrt(max(w2sq, 0.0)))


def _mmd2_from_sq(daa: Tensor, dbb: Tensor, dab: Tensor, bandwidths: Sequence[float],
                  biased: bool = False) -> float:
    def k(d: Tensor) -> Tensor:
        return sum(torch.exp(-d / (2 * h**2)) for h in bandwidths) / len(bandwidths)

    n, m = daa.shape[0], dbb.shape[0]
    if biased:  # V-statistic: the diagonal (k = 1) included
        return float(k(daa).mean() + k(dbb).mean() - 2 * k(dab).mean())
    kaa = (k(daa).sum() - n) / (n * (n - 1))  # the diagonal of k is exactly 1
    kbb = (k(dbb).sum() - m) / (m * (m - 1))
    return float(kaa + kbb - 2 * k(dab).mean())


def _sq_dists(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    return torch.cdist(a, a) ** 2, torch.cdist(b, b) ** 2, torch.cdist(a, b) ** 2


def mmd2_rbf(x: Tensor | np.ndarray, y: Tensor | np.ndarray,
             bandwidths: Sequence[float] = (1.0,)) -> float:
    """Unbiased MMD^2 with k(a, b) = mean_h exp(-|a - b|^2 / (2 h^2)).

    Bandwidth 1 is the paper's setting. The unbiased estimate can be slightly negative when the
    two sets come from the same distribution.
    """
    return _mmd2_from_sq(*_sq_dists(_flat(x), _flat(y)), bandwidths)


def mmd2_rbf_biased(x: Tensor | np.ndarray, y: Tensor | np.ndarray,
                    bandwidths: Sequence[float] = (1.0,)) -> float:
    """Biased MMD^2 (the V-statistic, kernel diagonals included), as the authors' toy code
    computed it: always >= 0, and above the unbiased value by about (2 - mean off-diagonal
    kernel terms) / n for n samples per set, so it has a positive floor even for equal laws."""
    return _mmd2_from_sq(*_sq_dists(_flat(x), _flat(y)), bandwidths, biased=True)


def median_bandwidth(z: Tensor | np.ndarray) -> float:
    """Median pairwise distance within one sample set (the median heuristic, on <= 1000 points)."""
    z = _flat(z)[:1000]
    d = torch.pdist(z)
    return float(d[d > 0].median())


MULTI_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


def distribution_metrics(samples: Tensor, target: Tensor,
                         only: Sequence[str] | None = None) -> dict[str, float]:
    """Every distribution metric the toy tables report (pairwise distances computed once).

    ``only`` restricts the output to those metrics (tuning needs one; W2 is the dear one)."""
    a, b = _flat(samples), _flat(target)
    want = set(only) if only is not None else {"w2", "mmd", "mmd_biased", "mmd_multi"}
    out: dict[str, float] = {}
    if "w2" in want:
        out["w2"] = wasserstein2(a, b)
    if want - {"w2"}:
        sq = _sq_dists(a, b)
        if "mmd" in want:
            out["mmd"] = _mmd2_from_sq(*sq, (1.0,))
        if "mmd_biased" in want:
            out["mmd_biased"] = _mmd2_from_sq(*sq, (1.0,), biased=True)
        if "mmd_multi" in want:
            h = median_bandwidth(b)
            out["mmd_multi"] = _mmd2_from_sq(*sq, [s * h for s in MULTI_SCALES])
    return out
