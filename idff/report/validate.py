"""Every result file a report reads is checked here: types, finiteness and each metric's range.

A value that cannot be right (a negative distance, a probability above 1, a number written as
text) is an error naming the file, the key and the value, never a table cell. ``null`` stands
for a diverged run's NaN and is allowed for metrics (tables show it as missing), not for counts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

INF = math.inf
#: metric -> (lowest, highest) allowed value
METRIC_RANGES: dict[str, tuple[float, float]] = {
    # distances, errors, scores that cannot be negative
    **{k: (0.0, INF) for k in ("w2", "fid", "mae", "rmse", "mse", "crps", "spread", "ssr",
                               "kid_std", "isc_std", "mean_waiting_ps",
                               "mean_complete_dwell_ps", "assigned_ps")},
    "isc": (1.0, INF),  # an Inception score is >= 1 by construction
    # unbiased MMD^2 of kernels with values in [0, 1]: slightly negative is possible, |.| <= 2
    "mmd": (-2.0, 2.0), "mmd_multi": (-2.0, 2.0),
    "kid": (-INF, INF),  # unbiased, unbounded kernel: any finite value
    # correlations and probabilities
    "js": (0.0, 1.0),  # Jensen-Shannon divergence (base 2)
    "cc": (-1.0, 1.0), "circ_cc": (-1.0, 1.0), "comparable": (0.0, 1.0),
}
#: counts: finite integers >= 0, never null
COUNT_KEYS = ("nfe_budget", "nfe", "vjp", "calls", "n_samples", "n_heldout", "nonfinite",
              "n_transitions")
FINITE_NONNEG = ("wall_s",)
SKIP = ("provenance", "params", "best", "grid")  # sampler settings and metadata, not results


class ResultValueError(ValueError):
    """A result file holds a value that no correct job writes."""


def check_result(obj: Any, path: Path, where: str = "") -> None:
    """Raise ResultValueError naming ``path``, the dotted key and the value of the first bad one."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        dotted = f"{where}.{key}" if where else str(key)
        if isinstance(key, str) and key in SKIP:
            continue
        if isinstance(value, (dict, list)):
            check_result(value, path, dotted)
        elif isinstance(key, str):
            _check_value(key, value, path, dotted)


def _bad(path: Path, dotted: str, value: Any, why: str) -> ResultValueError:
    return ResultValueError(f"result file {path}: {dotted} = {value!r} {why}; no correct job "
                            f"writes that: delete the file and rerun the job that writes it")


def _check_value(key: str, value: Any, path: Path, dotted: str) -> None:
    rule = METRIC_RANGES.get(key)
    counted = key in COUNT_KEYS or key in FINITE_NONNEG
    if rule is None and not counted:
        return
    if value is None and rule is not None:
        return  # a diverged run's NaN
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(path, dotted, value, "is not a number")
    if not math.isfinite(value):
        if counted:
            raise _bad(path, dotted, value, "is not finite")
        return
    if key in COUNT_KEYS and (value < 0 or value != int(value)):
        raise _bad(path, dotted, value, "is not a count (an integer >= 0)")
    if key in FINITE_NONNEG and value < 0:
        raise _bad(path, dotted, value, "is negative")
    if rule is not None and not rule[0] <= value <= rule[1]:
        raise _bad(path, dotted, value, f"is outside [{rule[0]}, {rule[1]}]")
