"""The SST forecasting family: probabilistic 1..H-step forecasts of sea-surface temperature boxes.

Data (``spec["data"]``, see :class:`SSTSettings` and :data:`PREP_KEYS`): the ``ostia`` data set
is the offline monthly OSTIA field of iris-sample-data (monthly steps, so a "lead" is a month),
``oisst`` the daily NOAA OISST v2 files, downloaded per year (DYffusion's boxes and years).
Both are boxed and standardised by :func:`idff.data.sst.prepare_sst_dataset`.

Pairing (``pairing``), a DECISION:

* ``"direct"`` (default): DYffusion's setting. Training pairs are ``x0`` = field at step k,
  ``x1`` = field at k + h with h = 1..horizon, ``cond = h - 1``; a forecast of lead h starts
  from the last observed field with label h - 1. The lead label tells the network how far to
  go, so it carries information, and errors do not compound over the leads.
* ``"step"``: the IDFF code's setting. One-step pairs (k - 1, k) and autoregressive roll-outs,
  each generated field being the next start. ``cond="lead"`` passes the roll-out position
  (uninformative: every lead sees the same pairs in training), ``cond="season"`` the target's
  month or day of year.

Ensembles: ``n_members`` forecasts per window, all members of all windows in one batch
(``eval_batch`` fields per generator call), so they differ through the sampler's noise (``noise: true`` for idff1, i.e. the diffusion
``sigma_s^2 sqrt(t (1 - t))`` of METHOD.md section 3, or ``bridge_sde``), drawn with a
different ``seed`` for every generator call. A deterministic sampler (an ODE, e.g. OT-CFM's
native field, idff1 without noise, pf) gives identical members from one x0 unless
``x0_noise`` perturbs the initial field (Gaussian, std in standardised units, per member;
a number for every variant or a mapping variant -> std); such a sampler without x0_noise is
run once per window and its field repeated, so its spread and SSR are 0 and its CRPS is the
mean absolute error.

Metrics (lower is better for crps and mse; ssr is best at 1): ensemble CRPS, MSE of the
ensemble mean and the spread-skill ratio, over ocean points, per lead (``crps_1`` ..) and
averaged over the leads (``crps``), in standardised units (units of the training-year standard
deviation of the period, as DYffusion); ``*_raw`` are the same in the source's raw units (K for
OSTIA, degC for OISST; differences in K and degC are equal).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import layout
from ..data.sst import (
    OISST_BASE_URL,
    SOURCE_DEFAULTS,
    SPLITS,
    ForecastWindows,
    SSTDataset,
    SSTLeadPairs,
    SSTPairs,
    fetch_oisst_years,
    forecast_windows,
    load_sst_dataset,
    parse_years,
    prepare_sst_dataset,
    select_windows,
)
from ..flows.fields import STOCHASTIC
from ..flows.generator import Generator
from ..metrics.probabilistic import LeadScoreAccumulator, climatology_forecast
from .base import FamilyBase

DATA_NAME = "sst.nc"
#: Keys of ``spec["data"]`` that shape the prepared file (the rest shape training/evaluation).
PREP_KEYS = ("box", "boxes", "lat_range", "min_ocean", "train_years", "val_years", "test_years",
             "std_mode", "min_std", "raw_dir", "base_url", "retries", "timeout")
REFERENCES = ("persistence", "climatology", "climatology_mean")
RAW_UNITS = {"ostia": "K", "oisst": "degC"}


class SSTConfigError(ValueError):
    """A value under ``experiments.<exp>.data`` is wrong; the message names the key."""


@dataclass(frozen=True)
class SSTSettings:
    """Training and evaluation settings of the family (``spec["data"]`` minus PREP_KEYS)."""

    horizon: int = 7
    pairing: str = "direct"
    cond: str = "lead"
    n_members: int = 20
    n_windows: int | None = None
    n_windows_val: int | None = None
    stride: int = 1
    eval_batch: int = 512
    x0_noise: float | dict = 0.0
    where: str = field(default="data", compare=False)

    @classmethod
    def from_spec(cls, spec: dict) -> SSTSettings:
        data = dict(spec.get("data") or {})
        where = f"experiments.{spec.get('experiment', '?')}.data"
        known = set(cls.__dataclass_fields__) - {"where"}
        unknown = sorted(set(data) - known - set(PREP_KEYS))
        if unknown:
            raise SSTConfigError(f"config key {where}: unknown SST setting(s) {unknown}; valid: "
                                 f"{', '.join(sorted(known | set(PREP_KEYS)))}")
        s = cls(**{k: data[k] for k in known if k in data}, where=where)
        s.check()
        return s

    def check(self) -> None:
        w = self.where
        for key in ("horizon", "n_members", "stride", "eval_batch"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise SSTConfigError(f"config key {w}.{key}: needs a positive integer, got {v!r}")
        for key in ("n_windows", "n_windows_val"):
            v = getattr(self, key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise SSTConfigError(f"config key {w}.{key}: needs a positive integer or null "
                                     f"(all windows), got {v!r}")
        if self.pairing not in ("direct", "step"):
            raise SSTConfigError(f"config key {w}.pairing: 'direct' (x0 = last observed field, "
                                 f"cond = lead) or 'step' (autoregressive), got {self.pairing!r}")
        if self.cond not in ("lead", "season"):
            raise SSTConfigError(f"config key {w}.cond: 'lead' or 'season', got {self.cond!r}")
        if self.pairing == "direct" and self.cond != "lead":
            raise SSTConfigError(f"config key {w}.cond: direct pairing is conditioned on the lead "
                                 f"time; use cond: lead (or pairing: step for cond: season)")
        noise = self.x0_noise if isinstance(self.x0_noise, dict) else {"*": self.x0_noise}
        for k, v in noise.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise SSTConfigError(f"config key {w}.x0_noise{'' if k == '*' else '.' + k}: "
                                     f"needs a number >= 0, got {v!r}")

    def x0_noise_for(self, variant: str | None) -> float:
        if isinstance(self.x0_noise, dict):
            return float(self.x0_noise.get(variant, 0.0)) if variant else 0.0
        return float(self.x0_noise)

    def n_windows_for(self, split: str) -> int | None:
        return self.n_windows_val if split == "val" else self.n_windows


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

_CACHE: dict[tuple[str, int], SSTDataset] = {}


def load_data(path: str | Path) -> SSTDataset:
    """``load_sst_dataset`` with a per-process cache (tuning evaluates many times)."""
    path = Path(path)
    key = (str(path.resolve()), path.stat().st_mtime_ns if path.exists() else -1)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = load_sst_dataset(path)
    return _CACHE[key]


def prepare_kwargs(spec: dict) -> dict[str, Any]:
    """``prepare_sst_dataset`` keyword arguments from ``spec["data"]`` (unset -> the source's
    default in :data:`idff.data.sst.SOURCE_DEFAULTS`)."""
    data = spec.get("data") or {}
    kw: dict[str, Any] = {}
    for key in ("box", "min_ocean", "train_years", "val_years", "test_years", "std_mode",
                "min_std"):
        if data.get(key) is not None:
            kw[key] = data[key]
    if "boxes" in data:
        kw["boxes"] = [tuple(b) if isinstance(b, list) else b for b in data["boxes"]] \
            if data["boxes"] is not None else None
    if "lat_range" in data:
        kw["lat_range"] = tuple(data["lat_range"]) if data["lat_range"] is not None else None
    return kw


def split_years(spec: dict) -> tuple[int, ...]:
    data, d = spec.get("data") or {}, SOURCE_DEFAULTS[spec["dataset"]]
    years: set[int] = set()
    for s in SPLITS:
        years |= set(parse_years(data.get(f"{s}_years") or getattr(d, f"{s}_years")))
    return tuple(sorted(years))


# --------------------------------------------------------------------------------------------
# Forecasting
# --------------------------------------------------------------------------------------------

def _call_seed(seed: int, split: str, chunk: int, lead: int) -> int:
    return ((int(seed) * 4 + SPLITS.index(split)) * 100_000 + chunk) * 64 + lead


def forecast_chunk(gen: Any, context: torch.Tensor, labels: torch.Tensor, ocean: torch.Tensor,
                   n_members: int, pairing: str, seeds: list[int], x0_noise: float = 0.0
                   ) -> np.ndarray:
    """Ensemble forecasts of ``b`` windows: ``[b, L, M, 1, H, W]`` (float32, land 0).

    ``context [b, 1, H, W]`` is the last observed field, ``labels [b, L]`` the condition of each
    lead, ``ocean [b, 1, H, W]`` bool. The ``b * M`` member starts go through ``gen`` in one
    batch per lead (``seeds[l]`` seeds the sampler noise of lead l; ``seeds[-1]`` the x0
    perturbation). ``direct``: every lead from the context; ``step``: lead l from lead l - 1.
    """
    b, m, n_leads = context.shape[0], int(n_members), labels.shape[1]
    oc = ocean.repeat_interleave(m, 0)
    x0 = context.float().repeat_interleave(m, 0)
    lab = labels.long().repeat_interleave(m, 0)
    if x0_noise > 0:
        g = torch.Generator().manual_seed(int(seeds[-1]))
        x0 = (x0 + x0_noise * torch.randn(x0.shape, generator=g)) * oc
    out, x = [], x0
    for lead in range(n_leads):
        start = x0 if pairing == "direct" else x
        y = gen(start, lab[:, lead].contiguous(), seed=int(seeds[lead]))
        x = y.detach().float().cpu() * oc
        out.append(x)
    ens = torch.stack(out, 1)  # [b*M, L, 1, H, W]
    return ens.reshape(b, m, n_leads, *ens.shape[2:]).transpose(1, 2).numpy()


def is_deterministic(gen: Any) -> bool:
    """True for a Generator whose sampler is an ODE (no diffusion): its members from one x0
    are identical. Anything else (e.g. a test stub) counts as stochastic."""
    sampler = getattr(gen, "sampler", None)
    if sampler is None:
        return False
    return sampler not in STOCHASTIC and not (getattr(gen, "params", None) or {}).get("noise")


def iter_forecasts(gen: Any, windows: ForecastWindows, s: SSTSettings, *, seed: int, split: str,
                   x0_noise: float = 0.0):
    """Yield ``(slice of windows, ensemble [b, L, M, 1, H, W])`` chunk by chunk.

    A deterministic sampler without an x0 perturbation is run once per window and its field
    repeated ``n_members`` times (the members would be identical anyway).
    """
    m = 1 if x0_noise == 0 and is_deterministic(gen) else s.n_members
    per_chunk = max(1, s.eval_batch // m)
    for i, a in enumerate(range(0, len(windows), per_chunk)):
        sl = slice(a, min(a + per_chunk, len(windows)))
        seeds = [_call_seed(seed, split, i, lead) for lead in range(windows.horizon + 1)]
        ens = forecast_chunk(gen, torch.from_numpy(windows.context[sl]),
                             torch.from_numpy(windows.cond[sl]),
                             torch.from_numpy(~windows.land[sl]), m, s.pairing, seeds, x0_noise)
        yield sl, ens if m == s.n_members else np.repeat(ens, s.n_members, axis=2)


def raw_fields(data: SSTDataset, z: np.ndarray, box: np.ndarray, period: np.ndarray,
               member_axis: bool) -> np.ndarray:
    """Standardised ``z [N, L, (M,) 1, H, W]`` -> raw units ``[N, L, (M,) H, W]``, land 0."""
    if member_axis:
        raw = data.destandardise(z[:, :, :, 0], box[:, None, None], period[:, :, None])
    else:
        raw = data.destandardise(z[:, :, 0], box[:, None], period)
    return np.nan_to_num(raw, nan=0.0)


def flat_scores(z: dict, raw: dict | None = None, prefix: str = "") -> dict[str, float]:
    """Flatten per-lead score dicts: ``crps``, ``crps_1`` .., ``mse``, ``ssr``, ``spread``,
    ``crps_raw`` ..; spread and ssr only for ensembles of >= 2 members."""
    out: dict[str, float] = {}
    keys = ("crps", "mse", "ssr", "spread") if z["n_members"] >= 2 else ("crps", "mse")
    for name, res, suffix in ((None, z, ""), ("raw", raw, "_raw")):
        if res is None:
            continue
        for k in keys if name is None else ("crps", "mse"):
            values = np.asarray(res[k], dtype=np.float64)
            out[f"{prefix}{k}{suffix}"] = float(values.mean())
            for lead, v in enumerate(values, start=1):
                out[f"{prefix}{k}{suffix}_{lead}"] = float(v)
    out[f"{prefix}n_members"] = float(z["n_members"])
    return out


class SSTFamily(FamilyBase):
    default_metric = "crps"
    datasets = ("ostia", "oisst")
    prep_data_keys = PREP_KEYS
    eval_only_data_keys = ("n_members", "n_windows", "n_windows_val", "eval_batch")

    def data_file(self, spec: dict) -> str:
        return layout.data_file(spec["experiment"], spec["dataset"], DATA_NAME)

    def prepare(self, spec: dict, out: str) -> None:
        SSTSettings.from_spec(spec)  # reject a bad config before any download
        data = spec.get("data") or {}
        source = spec["dataset"]
        if source not in RAW_UNITS:
            raise SSTConfigError(f"unknown SST data set {source!r}; valid: {', '.join(RAW_UNITS)}")
        inputs = None
        if source == "oisst":
            inputs = fetch_oisst_years(split_years(spec),
                                       data.get("raw_dir", "resources/raw/oisst"),
                                       base_url=data.get("base_url", OISST_BASE_URL),
                                       retries=int(data.get("retries", 3)),
                                       timeout=float(data.get("timeout", 600.0)))
        path = prepare_sst_dataset(source, out, inputs=inputs, **prepare_kwargs(spec))
        print(json.dumps(load_sst_dataset(path).summary()))

    def dataset(self, spec: dict) -> SSTDataset:
        return load_data(self.data_file(spec))

    def train_source(self, spec: dict) -> SSTPairs | SSTLeadPairs:
        s = SSTSettings.from_spec(spec)
        data = self.dataset(spec)
        if s.pairing == "direct":
            return SSTLeadPairs(data, "train", horizon=s.horizon)
        return SSTPairs(data, "train", cond=s.cond, horizon=s.horizon)

    def windows(self, spec: dict, split: str) -> ForecastWindows:
        """The forecast windows of ``split`` that every method and seed is scored on."""
        s = SSTSettings.from_spec(spec)
        w = forecast_windows(self.dataset(spec), split, s.horizon, s.stride, cond=s.cond)
        return select_windows(w, s.n_windows_for(split))

    def evaluate(self, spec: dict, gen: Generator, split: str) -> dict[str, float]:
        s = SSTSettings.from_spec(spec)
        data, win = self.dataset(spec), self.windows(spec, split)
        acc_z, acc_raw = LeadScoreAccumulator(), LeadScoreAccumulator()
        noise = s.x0_noise_for((spec.get("variant") or {}).get("name"))
        for sl, ens in iter_forecasts(gen, win, s, seed=spec["seed"], split=split,
                                      x0_noise=noise):
            ocean = ~win.land[sl]
            acc_z.add(win.truth[sl], ens, member_axis=2, lead_axis=1, weights=ocean[:, None])
            box, period = win.box[sl], win.target_period[sl]
            acc_raw.add(raw_fields(data, win.truth[sl], box, period, False),
                        raw_fields(data, ens, box, period, True), member_axis=2, lead_axis=1,
                        weights=ocean)
        out = flat_scores(acc_z.result(), acc_raw.result())
        out.update(n_windows=float(len(win)), x0_noise=noise)
        return out

    def forecast(self, spec: dict, gen: Generator, nfe: int, window: int = 0) -> tuple[dict, dict]:
        """Hook of ``idff forecast``: the ensemble forecast of one test window."""
        return forecast(self, spec, gen, nfe, window)

    def floor(self, spec: dict) -> dict[str, float]:
        """Reference forecasts on the test windows, keys ``<reference>.<metric>``.

        ``persistence``: the last observed field for every lead (1 member: CRPS = MAE).
        ``climatology``: the training-year fields of the target's period in the same box, as an
        ensemble of ``min(n_members, years available)`` members (drawn with the job's seed).
        ``climatology_mean``: the training mean, i.e. 0 in standardised units.
        """
        s = SSTSettings.from_spec(spec)
        data, win = self.dataset(spec), self.windows(spec, "test")
        train = data.split_index("train")
        avail = min(int(np.sum(data.period[train] == p)) for p in np.unique(win.target_period))
        m_clim = min(s.n_members, avail)
        ocean = ~win.land
        forecasts = {
            "persistence": np.broadcast_to(win.context[:, None, None], (*win.truth.shape[:2], 1,
                                                                         *win.truth.shape[2:])),
            "climatology": climatology_forecast(data.sst[:, train], data.period[train], win.box,
                                                win.target_period, m_clim,
                                                seed=spec["seed"])[:, :, :, None],
            "climatology_mean": np.zeros((*win.truth.shape[:2], 1, *win.truth.shape[2:]),
                                         np.float32),
        }
        out: dict[str, float] = {"n_windows": float(len(win))}
        for name, ens in forecasts.items():
            ens = np.where(ocean[:, None, None], ens, 0.0)
            z, raw = LeadScoreAccumulator(), LeadScoreAccumulator()
            z.add(win.truth, ens, member_axis=2, lead_axis=1, weights=ocean[:, None])
            raw.add(raw_fields(data, win.truth, win.box, win.target_period, False),
                    raw_fields(data, ens, win.box, win.target_period, True), member_axis=2,
                    lead_axis=1, weights=ocean)
            out.update(flat_scores(z.result(), raw.result(), prefix=f"{name}."))
        return out


# --------------------------------------------------------------------------------------------
# Forecast files for figures: idff forecast ...
# --------------------------------------------------------------------------------------------

def forecast(family: SSTFamily, spec: dict, gen: Generator, nfe: int,
             window: int = 0) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Forecast one test window with the job's generator: the arrays of a forecast file.

    Arrays (standardised units; ``*_raw`` in the source's raw units, land NaN): ``context
    [H, W]``, ``truth [L, H, W]``, ``members [M, L, H, W]``, ``mean``, ``spread`` (std over
    members, ddof 1; 0 for one member) ``[L, H, W]``, the same ``*_raw``, ``land [H, W]``,
    ``lat [H]``, ``lon [W]``; and ``info`` (box id, dates, units, NFE, parameters).
    """
    s = SSTSettings.from_spec(spec)
    data, win = family.dataset(spec), family.windows(spec, "test")
    if not 0 <= window < len(win):
        raise ValueError(f"window {window} does not exist: the test split has {len(win)} "
                         f"forecast windows (0..{len(win) - 1}) with these settings")
    one = select_one(win, window)
    noise = s.x0_noise_for(spec["variant"]["name"])
    (_, ens), = iter_forecasts(gen, one, s, seed=spec["seed"], split="test", x0_noise=noise)
    members = ens[0, :, :, 0].transpose(1, 0, 2, 3)  # [M, L, H, W]
    box, period = one.box, one.target_period
    raw_members = raw_fields(data, ens, box, period, True)[0].transpose(1, 0, 2, 3)
    truth_raw = raw_fields(data, one.truth, box, period, False)[0]
    land = one.land[0, 0]
    m = members.shape[0]

    def spread(x: np.ndarray) -> np.ndarray:
        return x.std(axis=0, ddof=1) if m > 1 else np.zeros(x.shape[1:], x.dtype)

    def mask(x: np.ndarray) -> np.ndarray:
        return np.where(land, np.nan, x).astype(np.float32)

    b, k = int(box[0]), int(one.start[0])
    times = [str(np.datetime_as_string(t, unit="D")) for t in data.time[k:k + s.horizon + 1]]
    info = {"experiment": spec["experiment"], "dataset": spec["dataset"],
            "variant": spec["variant"]["name"], "sampler": spec["variant"]["sampler"],
            "solver": spec["solver"], "seed": spec["seed"], "nfe_budget": nfe,
            "nfe": gen.nfe_per_call, "params": gen.params, "window": window,
            "box_id": int(data.box_ids[b]), "context_time": times[0], "target_times": times[1:],
            "step": data.step, "units": "standardised anomaly (training-year std)",
            "raw_units": RAW_UNITS.get(spec["dataset"], "raw"), "n_members": m,
            "pairing": s.pairing, "x0_noise": noise}
    arrays = {"context": one.context[0, 0], "truth": one.truth[0, :, 0], "members": members,
              "mean": members.mean(axis=0), "spread": spread(members),
              "truth_raw": mask(truth_raw), "mean_raw": mask(raw_members.mean(axis=0)),
              "spread_raw": mask(spread(raw_members)), "land": land,
              "lat": data.lat[b], "lon": data.lon[b]}
    return arrays, info


def select_one(win: ForecastWindows, i: int) -> ForecastWindows:
    return ForecastWindows(**{f: getattr(win, f)[i:i + 1] for f in (
        "context", "truth", "cond", "box", "start", "target_period", "land")})
