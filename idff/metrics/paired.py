"""Seed-paired differences between two methods, judged against seed noise and the metric floor.

Within one seed both methods start from the same prior noise and are scored against the same
test draw, so the per-seed difference d_i = a_i - b_i cancels most of the sampling noise of the
metric. A difference counts only when its mean is outside both

- the seed noise: the half-width of the two-sided 95% Student-t interval of the mean of d
  (t_{0.975, n-1} * std(d) / sqrt(n)), and
- the metric floor: the spread (std over seeds) of the metric between two draws of the target
  itself, i.e. the smallest change the metric can resolve at this sample size;

otherwise it is "no difference", never a win or a loss. Lower is better for every metric here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

OUTCOMES = ("a better", "b better", "no difference")


@dataclass(frozen=True)
class PairedDifference:
    n: int            # seeds with a finite value for both
    mean: float       # mean of a_i - b_i
    std: float        # sample std (ddof 1) of a_i - b_i; 0 for one seed
    ci: float         # half-width of the 95% t interval of the mean (inf for one seed)
    floor: float      # the metric's floor tolerance
    n_agree: int      # seeds whose difference has the sign of the mean
    outcome: str      # one of OUTCOMES (lower is better)

    def as_dict(self) -> dict:
        return asdict(self)


def paired_difference(a: Sequence[float], b: Sequence[float], floor: float = 0.0,
                      level: float = 0.95) -> PairedDifference:
    """Compare per-seed values ``a`` and ``b`` (same seed order; lower is better).

    Seeds where either value is not finite (a diverged run) are left out; with no seed left the
    outcome is "no difference" with n = 0.
    """
    if len(a) != len(b):
        raise ValueError(f"paired values need one a and one b per seed, got {len(a)} and {len(b)}")
    if not floor >= 0:
        raise ValueError(f"the floor tolerance must be >= 0, got {floor}")
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    n = int(d.size)
    if n == 0:
        return PairedDifference(0, math.nan, math.nan, math.inf, float(floor), 0, "no difference")
    mean = float(d.mean())
    std = float(d.std(ddof=1)) if n > 1 else 0.0
    ci = float(stats.t.ppf(0.5 + level / 2, n - 1) * std / math.sqrt(n)) if n > 1 else math.inf
    n_agree = int(np.sum(np.sign(d) == np.sign(mean))) if mean != 0 else 0
    if abs(mean) > max(ci, floor):
        outcome = "a better" if mean < 0 else "b better"
    else:
        outcome = "no difference"
    return PairedDifference(n, mean, std, ci, float(floor), n_agree, outcome)
