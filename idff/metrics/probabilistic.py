"""Probabilistic forecast scores (CRPS, ensemble-mean MSE, spread-skill) and reference forecasts.

Conventions: ``obs`` is an array of observations; ``ens`` has the same shape with one extra axis,
``member_axis`` (its position in ``ens``), holding the ensemble members. Scores are in the units
of the inputs: the SST pipeline passes standardised anomalies (units of the training-years
standard deviation), as DYffusion does, whose numbers the paper's Table 4 quotes.

* CRPS of the empirical ensemble distribution (what properscoring and xskillscore compute):
  ``mean_i |x_i - y| - 1 / (2 M^2) sum_ij |x_i - x_j|``; ``fair=True`` divides the second sum by
  ``2 M (M - 1)`` instead (unbiased for the distribution the members are drawn from).
* Spread-skill ratio: spread = ``sqrt(mean of the ensemble variance with ddof 1)``, skill = RMSE of
  the ensemble mean. For a perfectly reliable M-member ensemble its expectation is
  ``sqrt(M / (M + 1))``, not 1; ``finite_correction=True`` multiplies the spread by
  ``sqrt((M + 1) / M)`` (Fortin et al. 2014) so that it is 1. Off by default.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, on any device
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _members_last(obs: Any, ens: Any, member_axis: int) -> tuple[np.ndarray, np.ndarray]:
    obs, ens = _np(obs), _np(ens)
    if ens.ndim != obs.ndim + 1:
        raise ValueError(f"ens must have one axis more than obs (the members); got shapes "
                         f"{ens.shape} and {obs.shape}")
    ens = np.moveaxis(ens, member_axis, -1)
    if ens.shape[:-1] != obs.shape:
        raise ValueError(f"ens without its member axis {member_axis} has shape {ens.shape[:-1]}, "
                         f"obs has {obs.shape}")
    if ens.shape[-1] < 1:
        raise ValueError("the ensemble has no member")
    return obs, ens


def crps_ensemble(obs: Any, ens: Any, member_axis: int = 0, *, fair: bool = False,
                  backend: Literal["formula", "properscoring"] = "formula") -> np.ndarray:
    """Pointwise ensemble CRPS, shape of ``obs``.

    ``backend="formula"`` uses sorted members, O(M log M) time and O(M) memory per point;
    ``"properscoring"`` calls ``properscoring.crps_ensemble``, which without numba needs
    O(M^2) memory per point (use it for cross-checks on small arrays). A single member gives
    the absolute error.
    """
    obs, ens = _members_last(obs, ens, member_axis)
    m = ens.shape[-1]
    if backend == "properscoring":
        if fair:
            raise ValueError("properscoring has no fair CRPS; use backend='formula'")
        import properscoring  # optional, only the cross-check against properscoring needs it

        return np.asarray(properscoring.crps_ensemble(obs, ens, axis=-1), dtype=np.float64)
    if backend != "formula":
        raise ValueError(f"backend must be 'formula' or 'properscoring', got {backend!r}")
    skill = np.abs(ens - obs[..., None]).mean(axis=-1)
    if m == 1:
        return skill
    x = np.sort(ens, axis=-1)
    rank = 2.0 * np.arange(1, m + 1) - m - 1  # sum_ij |x_i - x_j| = 2 sum_i (2i - M - 1) x_(i)
    pair_sum = 2.0 * (x * rank).sum(axis=-1)
    denom = 2.0 * m * (m - 1) if fair else 2.0 * m * m
    return skill - pair_sum / denom


def _weighted_mean(v: np.ndarray, weights: np.ndarray | None, axis: Any) -> np.ndarray:
    if weights is None:
        return v.mean(axis=axis)
    w = np.broadcast_to(_np(weights), v.shape)
    total = w.sum(axis=axis)
    if np.any(total <= 0):
        raise ValueError("the weights (mask) select no point to average over")
    return (v * w).sum(axis=axis) / total


def ensemble_mean_mse(obs: Any, ens: Any, member_axis: int = 0, axis: Any = None,
                      weights: Any = None) -> np.ndarray:
    """Mean over ``axis`` (None: all) of the squared error of the ensemble mean."""
    obs, ens = _members_last(obs, ens, member_axis)
    se = (ens.mean(axis=-1) - obs) ** 2
    return _weighted_mean(se, weights, axis)


class SpreadSkill(NamedTuple):
    spread: np.ndarray
    skill: np.ndarray
    ratio: np.ndarray


def spread_skill_ratio(obs: Any, ens: Any, member_axis: int = 0, axis: Any = None,
                       weights: Any = None, finite_correction: bool = False) -> SpreadSkill:
    """Spread (sqrt of the mean ensemble variance, ddof 1), skill (RMSE of the ensemble mean) and
    their ratio, averaged over ``axis`` (None: all). Needs >= 2 members."""
    obs, ens = _members_last(obs, ens, member_axis)
    m = ens.shape[-1]
    if m < 2:
        raise ValueError("the spread of a 1-member ensemble is undefined; spread-skill needs >= 2")
    var = ens.var(axis=-1, ddof=1)
    spread = np.sqrt(_weighted_mean(var, weights, axis))
    if finite_correction:
        spread = spread * np.sqrt((m + 1) / m)
    skill = np.sqrt(_weighted_mean((ens.mean(axis=-1) - obs) ** 2, weights, axis))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = spread / skill
    return SpreadSkill(spread, skill, ratio)


def per_lead_scores(obs: Any, ens: Any, *, member_axis: int, lead_axis: int,
                    weights: Any = None, fair: bool = False,
                    finite_correction: bool = False) -> dict[str, Any]:
    """CRPS, ensemble-mean MSE, spread, skill and spread-skill ratio per lead time.

    ``lead_axis`` is the lead-time axis of ``obs``; every other axis is averaged (weighted by
    ``weights``, broadcast to ``obs``, e.g. an ocean mask). ``*_avg`` are the plain means of the
    per-lead values over the leads (the paper averages over lead times 1..7). A 1-member
    ensemble (e.g. persistence) gets NaN spread and ratio.
    """
    obs, ens = _members_last(obs, ens, member_axis)
    lead = lead_axis % obs.ndim
    others = tuple(a for a in range(obs.ndim) if a != lead)
    w = None if weights is None else np.broadcast_to(_np(weights), obs.shape)
    crps = _weighted_mean(crps_ensemble(obs, ens, -1, fair=fair), w, others)
    mse = ensemble_mean_mse(obs, ens, -1, axis=others, weights=w)
    if ens.shape[-1] >= 2:
        ss = spread_skill_ratio(obs, ens, -1, axis=others, weights=w,
                                finite_correction=finite_correction)
        spread, ratio = ss.spread, ss.ratio
    else:
        spread = ratio = np.full(obs.shape[lead], np.nan)
    return {"crps": crps, "mse": mse, "rmse": np.sqrt(mse), "spread": spread, "ssr": ratio,
            "crps_avg": float(crps.mean()), "mse_avg": float(mse.mean()),
            "ssr_avg": float(np.mean(ratio)), "n_members": int(ens.shape[-1])}


class LeadScoreAccumulator:
    """:func:`per_lead_scores` over data that arrive in chunks (e.g. batches of windows).

    Keeps per-lead weighted sums of the pointwise CRPS, the squared error of the ensemble mean
    and the ensemble variance, so that ``result()`` equals ``per_lead_scores`` on the
    concatenated chunks without holding them (a 20-member, 7-lead forecast of thousands of
    60 x 60 fields does not fit in memory at once). Every chunk needs the same number of leads
    and members.
    """

    def __init__(self, *, fair: bool = False, finite_correction: bool = False) -> None:
        self.fair, self.finite_correction = fair, finite_correction
        self._sums: dict[str, np.ndarray] = {}
        self.n_members: int | None = None

    def add(self, obs: Any, ens: Any, *, member_axis: int, lead_axis: int,
            weights: Any = None) -> None:
        obs, ens = _members_last(obs, ens, member_axis)
        lead = lead_axis % obs.ndim
        others = tuple(a for a in range(obs.ndim) if a != lead)
        m = ens.shape[-1]
        if self.n_members is not None and m != self.n_members:
            raise ValueError(f"this chunk has {m} members, earlier chunks {self.n_members}")
        self.n_members = m
        w = np.ones(obs.shape) if weights is None else np.broadcast_to(_np(weights), obs.shape)
        parts = {"w": w, "crps": crps_ensemble(obs, ens, -1, fair=self.fair) * w,
                 "se": (ens.mean(axis=-1) - obs) ** 2 * w}
        if m >= 2:
            parts["var"] = ens.var(axis=-1, ddof=1) * w
        for key, v in parts.items():
            total = v.sum(axis=others)
            if key in self._sums and self._sums[key].shape != total.shape:
                raise ValueError(f"this chunk has {total.shape[0]} leads, earlier chunks "
                                 f"{self._sums[key].shape[0]}")
            self._sums[key] = self._sums.get(key, 0.0) + total

    def result(self) -> dict[str, Any]:
        """The dict of :func:`per_lead_scores` for everything added so far."""
        if not self._sums:
            raise ValueError("no forecast was added to the accumulator")
        w = self._sums["w"]
        if np.any(w <= 0):
            raise ValueError("the weights (mask) select no point to average over")
        crps, mse = self._sums["crps"] / w, self._sums["se"] / w
        if "var" in self._sums:
            spread = np.sqrt(self._sums["var"] / w)
            if self.finite_correction:
                spread = spread * np.sqrt((self.n_members + 1) / self.n_members)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = spread / np.sqrt(mse)
        else:
            spread = ratio = np.full(w.shape, np.nan)
        return {"crps": crps, "mse": mse, "rmse": np.sqrt(mse), "spread": spread, "ssr": ratio,
                "crps_avg": float(crps.mean()), "mse_avg": float(mse.mean()),
                "ssr_avg": float(np.mean(ratio)), "n_members": int(self.n_members)}


# --------------------------------------------------------------------------------------------
# Reference forecasts
# --------------------------------------------------------------------------------------------

def climatology_forecast(history: Any, history_period: Any, box_index: Any,
                         target_period: Any, n_members: int | None = None,
                         seed: int = 0) -> np.ndarray:
    """Climatological ensemble: the training-year fields of the target's period (same day of year
    or month) in the same box. Returns ``[N, L, M, *field]``.

    ``history[B, T, *field]``: training fields; ``history_period[T]``: their period;
    ``box_index[N]`` and ``target_period[N, L]``: the windows. ``n_members=None`` takes the
    smallest number of training years any needed period has; members are drawn without
    replacement with ``seed`` (the same years for every window of a period). In standardised
    units the deterministic climatology (the training mean) is 0 everywhere.
    """
    history = _np(history)
    hp = np.asarray(history_period)
    box_index, target_period = np.asarray(box_index), np.asarray(target_period)
    periods = np.unique(target_period)
    pools = {int(p): np.flatnonzero(hp == p) for p in periods}
    empty = [p for p, ix in pools.items() if ix.size == 0]
    if empty:
        raise ValueError(f"periods {empty} have no training field; climatology needs them")
    m = min(ix.size for ix in pools.values()) if n_members is None else int(n_members)
    short = {p: ix.size for p, ix in pools.items() if ix.size < m}
    if m < 1 or short:
        raise ValueError(f"n_members={m} but these periods have fewer training fields: {short}")
    rng = np.random.default_rng(seed)
    chosen = {p: rng.choice(ix, size=m, replace=False) for p, ix in sorted(pools.items())}
    t_idx = np.stack([chosen[int(p)] for p in target_period.ravel()])
    t_idx = t_idx.reshape(*target_period.shape, m)
    return history[box_index[:, None, None], t_idx]
