"""Grid search of sampler hyper-parameters (sigma_s, gamma_k) on the validation split."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from torch import Tensor


def grid_points(grid: dict[str, list[float]]) -> list[dict[str, float]]:
    """Cartesian product of a {name: values} grid, in a stable order."""
    if not grid:
        return [{}]
    names = sorted(grid)
    return [dict(zip(names, vals, strict=True)) for vals in itertools.product(*(grid[n] for n in names))]


def grid_search(grid: dict[str, list[float]], run: Callable[[dict[str, float]], Tensor],
                score: Callable[[Tensor], float],
                on_point: Callable[[dict[str, float], float], None] | None = None) -> dict[str, Any]:
    """Evaluate ``score(run(params))`` over the grid; lower is better; non-finite loses.

    ``on_point(params, value)`` is called after each point (progress lines)."""
    rows = []
    for params in grid_points(grid):
        try:
            value = float(score(run(params)))
        except ValueError:  # samples with NaN/inf from a diverging setting
            value = float("inf")
        rows.append({"params": params, "value": value if value == value else float("inf")})
        if on_point is not None:
            on_point(params, rows[-1]["value"])
    best = min(rows, key=lambda r: r["value"])
    return {"best": best["params"], "best_value": best["value"], "grid": rows}
