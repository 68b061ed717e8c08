"""Molecular dynamics: alanine-dipeptide backbone dihedrals (phi, psi) and the time-series bridge.

x0 = frame k-1, x1 = frame k, condition = frame index of x1 (or lead time), as in METHOD.md.
Train, validation and test are different trajectories (or, for the 3 long mdshare
trajectories, different segments cut by ``chunk_ns``). Every error is a wrapped angular
difference in degrees, so the seam at +-180 never counts as a 360 degree error.

Settings, all under the experiment's ``data`` section (a section named after a data set,
e.g. ``data.mdshare: {...}``, overrides the shared keys for that data set):

- simulation (``openmm_vacuum``, ``openmm_obc``): ``n_trajectories``, ``ns_per_trajectory``,
  ``seeds`` (one per trajectory, >= 1), ``frame_ps``, ``workers`` (processes), ``simulation``
  ({timestep_fs, temperature_k, friction_per_ps, equilibration_ps, platform});
  download (``mdshare``): ``url``, ``allow_http``, ``timeout``;
- ``split`` {train, val, test} (trajectory or segment counts, taken in file order unless
  ``split_seed``), ``chunk_ns`` / ``chunk_gap_ns`` (cut trajectories into segments),
  ``stride`` (keep every n-th frame);
- ``representation`` wrapped | sincos, ``condition`` frame | lead, ``n_cond``;
- ``eval`` (see ``EvalSettings``): k-step horizon, free-generation length and chain count,
  histogram bins, basin definitions.

``idff rollout --spec ... --ckpt ... --nfe N --out F.npz`` writes a long generated trajectory
for the figure (the ``rollout`` hook).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import layout
from ..data.md import (
    MDPairs,
    chunk_trajectories,
    fetch_mdshare,
    load_md_dataset,
    simulate_parallel,
    split_trajectories,
)
from ..errors import ConfigError
from ..flows.generator import Generator
from ..metrics.md import (
    DEFAULT_BASINS,
    OTHER,
    Basin,
    basin_kinetics,
    basin_populations,
    js_divergence,
    prediction_metrics,
)
from .base import FamilyBase

DATASET_SOURCES = {"openmm_vacuum": "vacuum", "openmm_obc": "obc", "mdshare": "mdshare"}
DATA_NAME = "dihedrals.npz"
SPLITS = ("train", "val", "test")
SIM_KEYS = ("timestep_fs", "temperature_k", "friction_per_ps", "equilibration_ps", "platform")
DATA_KEYS = {"n_trajectories", "ns_per_trajectory", "seeds", "frame_ps", "workers", "simulation",
             "url", "allow_http", "timeout", "split", "split_seed", "chunk_ns", "chunk_gap_ns",
             "stride", "representation", "condition", "n_cond", "eval"}
#: ``predict(x_deg [B, 2], cond [B], seed) -> next frame in degrees [B, 2]``
Predictor = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class EvalSettings:
    """How a generator is scored (``data.eval``).

    k_steps: horizon of the autoregressive k-step-ahead errors; n_kstep: number of start
    frames (default: the one-step count); free_frames: length of each freely generated
    trajectory (frames, the start frame included); n_free: number of such chains (chain c
    starts at the first frame of split trajectory c mod n); bins: Ramachandran histogram bins
    per angle for the JS divergence; basin_margin: core-set margin (degrees) for basin
    changes; free_on_val: also run free generation when tuning (off: tuning minimises a
    one-step metric, free generation is the slow part); basins: list of {name, phi: [a, b],
    psi: [a, b]} (circular intervals, degrees) replacing ``idff.metrics.md.DEFAULT_BASINS``.
    """

    k_steps: int = 10
    n_kstep: int | None = None
    free_frames: int = 1000
    n_free: int = 2
    bins: int = 36
    basin_margin: float = 20.0
    free_on_val: bool = False
    basins: tuple[Basin, ...] = DEFAULT_BASINS


@dataclass(frozen=True)
class MDSettings:
    dataset: str
    solvent: str  # vacuum | obc | mdshare
    n_trajectories: int = 0
    ns_per_trajectory: float = 0.0
    seeds: tuple[int, ...] = ()
    frame_ps: float = 1.0
    workers: int = 1
    simulation: dict = field(default_factory=dict)
    url: str | None = None
    allow_http: bool = False
    timeout: float = 60.0
    split: tuple[int, int, int] = (1, 0, 1)
    split_seed: int | None = None
    chunk_ns: float | None = None
    chunk_gap_ns: float = 0.0
    stride: int = 1
    representation: str = "wrapped"
    condition: str = "frame"
    n_cond: int = 200
    eval: EvalSettings = field(default_factory=EvalSettings)


def _where(spec: dict, key: str = "") -> str:
    return f"experiments.{spec.get('experiment', '?')}.data" + (f".{key}" if key else "")


def data_settings(spec: dict) -> MDSettings:
    """Parse and check ``spec["data"]`` for ``spec["dataset"]``; errors name the config key."""
    ds = spec["dataset"]
    if ds not in DATASET_SOURCES:
        raise ConfigError(f"config key experiments.{spec.get('experiment', '?')}.datasets: unknown "
                          f"MD data set {ds!r}; valid: {', '.join(DATASET_SOURCES)}")
    raw = dict(spec.get("data") or {})
    merged = {k: v for k, v in raw.items() if k not in DATASET_SOURCES}
    override = raw.get(ds) or {}
    if not isinstance(override, dict):
        raise ConfigError(f"config key {_where(spec, ds)}: must be a mapping of data settings")
    merged.update(override)
    unknown = set(merged) - DATA_KEYS
    if unknown:
        raise ConfigError(f"config key {_where(spec)}: unknown MD setting(s) {sorted(unknown)}; "
                          f"valid: {', '.join(sorted(DATA_KEYS))}")
    kw: dict[str, Any] = {"dataset": ds, "solvent": DATASET_SOURCES[ds]}
    for key in ("n_trajectories", "workers", "stride", "n_cond"):
        if key in merged:
            kw[key] = _pos_int(merged[key], _where(spec, key))
    for key in ("ns_per_trajectory", "frame_ps", "timeout"):
        if key in merged:
            kw[key] = _pos_num(merged[key], _where(spec, key))
    if merged.get("chunk_ns") is not None:
        kw["chunk_ns"] = _pos_num(merged["chunk_ns"], _where(spec, "chunk_ns"))
    if "chunk_gap_ns" in merged:
        kw["chunk_gap_ns"] = _nonneg_num(merged["chunk_gap_ns"], _where(spec, "chunk_gap_ns"))
    if "seeds" in merged:
        kw["seeds"] = tuple(int(s) for s in merged["seeds"])
    for key, options in (("representation", ("wrapped", "sincos")), ("condition", ("frame", "lead"))):
        if key in merged:
            if merged[key] not in options:
                raise ConfigError(f"config key {_where(spec, key)}: {merged[key]!r} is not one of "
                                  f"{', '.join(options)}")
            kw[key] = merged[key]
    sim = merged.get("simulation") or {}
    bad = set(sim) - set(SIM_KEYS)
    if bad:
        raise ConfigError(f"config key {_where(spec, 'simulation')}: unknown key(s) {sorted(bad)}; "
                          f"valid: {', '.join(SIM_KEYS)}")
    kw["simulation"] = dict(sim)
    if "url" in merged:
        kw["url"] = str(merged["url"])
    kw["allow_http"] = bool(merged.get("allow_http", False))
    split = merged.get("split")
    if split is not None:
        if not isinstance(split, dict) or set(split) - set(SPLITS):
            raise ConfigError(f"config key {_where(spec, 'split')}: needs a mapping with keys "
                              f"train, val, test (counts), got {split!r}")
        kw["split"] = tuple(int(split.get(k, 0)) for k in SPLITS)
    if merged.get("split_seed") is not None:
        kw["split_seed"] = int(merged["split_seed"])
    kw["eval"] = _eval_settings(merged.get("eval") or {}, spec)
    s = MDSettings(**kw)
    if s.solvent != "mdshare":
        if s.n_trajectories < 1 or s.ns_per_trajectory <= 0:
            raise ConfigError(f"config key {_where(spec)}: simulated data ({ds}) needs "
                              f"n_trajectories and ns_per_trajectory")
        if len(s.seeds) != s.n_trajectories:
            raise ConfigError(f"config key {_where(spec, 'seeds')}: {s.n_trajectories} trajectories "
                              f"need {s.n_trajectories} simulation seeds, got {len(s.seeds)}")
    if s.split[0] < 1 or min(s.split) < 0:
        raise ConfigError(f"config key {_where(spec, 'split')}: need train >= 1, val >= 0, "
                          f"test >= 0; got {dict(zip(SPLITS, s.split, strict=True))}")
    return s


def _eval_settings(raw: dict, spec: dict) -> EvalSettings:
    where = _where(spec, "eval")
    known = set(EvalSettings.__dataclass_fields__)
    if not isinstance(raw, dict) or set(raw) - known:
        raise ConfigError(f"config key {where}: unknown key(s) {sorted(set(raw) - known)}; valid: "
                          f"{', '.join(sorted(known))}")
    kw: dict[str, Any] = {}
    for key in ("k_steps", "free_frames", "n_free", "bins"):
        if key in raw:
            kw[key] = _pos_int(raw[key], f"{where}.{key}")
    if raw.get("n_kstep") is not None:
        kw["n_kstep"] = _pos_int(raw["n_kstep"], f"{where}.n_kstep")
    if "basin_margin" in raw:
        kw["basin_margin"] = _nonneg_num(raw["basin_margin"], f"{where}.basin_margin")
    if "free_on_val" in raw:
        kw["free_on_val"] = bool(raw["free_on_val"])
    if "free_frames" in kw and kw["free_frames"] < 2:
        raise ConfigError(f"config key {where}.free_frames: needs >= 2 frames")
    if raw.get("basins") is not None:
        try:
            kw["basins"] = tuple(Basin(str(b["name"]), (float(b["phi"][0]), float(b["phi"][1])),
                                       (float(b["psi"][0]), float(b["psi"][1])))
                                 for b in raw["basins"])
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise ConfigError(f"config key {where}.basins: each basin needs name, phi: [start, "
                              f"end], psi: [start, end] in degrees ({exc})") from exc
        if not kw["basins"]:
            raise ConfigError(f"config key {where}.basins: give at least one basin")
    return EvalSettings(**kw)


def _pos_int(v: Any, key: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ConfigError(f"config key {key}: needs a positive integer, got {v!r}")
    return v


def _pos_num(v: Any, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
        raise ConfigError(f"config key {key}: needs a positive number, got {v!r}")
    return float(v)


def _nonneg_num(v: Any, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise ConfigError(f"config key {key}: needs a number >= 0, got {v!r}")
    return float(v)


def data_label(dataset: str) -> str:
    """What the data are, in words (tables and figures must not call them the paper's data)."""
    return {"openmm_vacuum": "own OpenMM simulation in vacuum (amber99sbildn, Langevin 300 K)",
            "openmm_obc": "own OpenMM simulation in OBC implicit solvent (amber99sbildn + "
                          "amber99_obc, Langevin 300 K)",
            "mdshare": "mdshare explicit-water (TIP3P) 3 x 250 ns benchmark (Nueske et al. 2017)",
            }.get(dataset, dataset)


# --------------------------------------------------------------------------- evaluation pieces


def cond_for(frame_index: np.ndarray | int, s: MDSettings) -> np.ndarray:
    """Condition label for predicting frame ``frame_index`` from its predecessor (h = 1)."""
    k = np.asarray(frame_index, dtype=np.int64)
    if s.condition == "lead":
        return np.zeros_like(k)
    return np.minimum(k, s.n_cond - 1)


def _even(total: int, n: int) -> np.ndarray:
    """``n`` evenly spaced indices in [0, total) (all of them when n >= total)."""
    if n >= total:
        return np.arange(total)
    return np.unique(np.linspace(0, total - 1, n).round().astype(np.int64))


def _positions(trajs: Sequence[np.ndarray], first: int, last_margin: int,
               n: int) -> tuple[np.ndarray, np.ndarray]:
    """(trajectory, frame) pairs with frame in [first, len - last_margin), evenly subsampled."""
    counts = np.array([max(0, t.shape[0] - last_margin - first) for t in trajs])
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    j = _even(total, n)
    cum = np.cumsum(counts)
    traj = np.searchsorted(cum, j, side="right")
    before = np.where(traj > 0, cum[np.maximum(traj - 1, 0)], 0)
    return traj, j - before + first


def _flat(m: dict[str, dict[str, float]], suffix: str = "") -> dict[str, float]:
    """Flat keys: mae, mae_phi, mae_psi, rmse..., cc..., circ_cc (with ``suffix`` after the name)."""
    out = {}
    for key in ("mae", "rmse", "cc"):
        out[f"{key}{suffix}"] = m["mean"][key]
        for angle in ("phi", "psi"):
            out[f"{key}{suffix}_{angle}"] = m[angle][key]
    out[f"circ_cc{suffix}"] = m["mean"]["circ_cc"]
    return out


def one_step_metrics(trajs: Sequence[np.ndarray], predict: Predictor, n: int, s: MDSettings,
                     seed: int) -> dict[str, float]:
    """x0 = true frame k-1 -> predicted frame k, at ``n`` evenly spread frames of ``trajs``."""
    ti, k = _positions(trajs, 1, 0, n)
    if k.size == 0:
        raise ValueError("one-step evaluation needs trajectories with at least 2 frames")
    x0 = np.stack([trajs[a][b - 1] for a, b in zip(ti, k, strict=True)])
    true = np.stack([trajs[a][b] for a, b in zip(ti, k, strict=True)])
    pred = predict(x0.astype(np.float64), cond_for(k, s), seed)
    return _flat(prediction_metrics(pred, true))


def k_step_metrics(trajs: Sequence[np.ndarray], predict: Predictor, k_steps: int, n: int,
                   s: MDSettings, seed: int) -> dict[str, float]:
    """Autoregressive from true frame j for ``k_steps`` steps, compared with true frame j + k."""
    ti, j = _positions(trajs, 0, k_steps, n)
    if j.size == 0:
        raise ValueError(f"k-step evaluation with k_steps={k_steps} needs trajectories longer "
                         f"than {k_steps} frames; lower data.eval.k_steps")
    x = np.stack([trajs[a][b] for a, b in zip(ti, j, strict=True)]).astype(np.float64)
    for step in range(1, k_steps + 1):
        x = predict(x, cond_for(j + step, s), seed + 7919 * step)
    true = np.stack([trajs[a][b + k_steps] for a, b in zip(ti, j, strict=True)])
    return _flat(prediction_metrics(x, true), suffix=f"_k{k_steps}")


def free_generation(starts: np.ndarray, predict: Predictor, length: int, s: MDSettings,
                    seed: int) -> np.ndarray:
    """Chains [C, length, 2] (degrees) generated autoregressively from ``starts`` [C, 2]."""
    out = np.empty((starts.shape[0], length, 2), dtype=np.float64)
    out[:, 0] = starts
    for step in range(1, length):
        out[:, step] = predict(out[:, step - 1], cond_for(np.full(starts.shape[0], step), s),
                               seed + 104_729 * step)
    return out


def free_metrics(chains: Sequence[np.ndarray], truth: Sequence[np.ndarray], frame_ps: float,
                 ev: EvalSettings) -> dict[str, float]:
    """Distribution and kinetics of generated chains against the true trajectories.

    js: Jensen-Shannon divergence (nats) of the Ramachandran histograms; pop_err: total
    variation between basin populations (half the sum of absolute differences, in [0, 1]);
    wait_ps: mean waiting time between basin changes (core-set rule), total time divided by
    max(1, number of changes), so with no change it is the duration (a lower bound);
    wait_ratio: generated / true wait_ps (1 is right). Also the generated populations.
    """
    chains, truth = list(chains), list(truth)
    pg = basin_populations(chains, ev.basins)
    pt = basin_populations(truth, ev.basins)
    out = {"js": js_divergence(chains, truth, bins=ev.bins),
           "pop_err": 0.5 * float(sum(abs(pg[b] - pt[b]) for b in pt))}
    wg, ng = _wait(chains, frame_ps, ev)
    wt, _ = _wait(truth, frame_ps, ev)
    out.update({"wait_ratio": wg / wt, "wait_ps": wg, "wait_true_ps": wt, "transitions": ng})
    out.update({f"pop_{b}": pg[b] for b in [b.name for b in ev.basins] + [OTHER]})
    return out


def _wait(trajs: list[np.ndarray], frame_ps: float, ev: EvalSettings) -> tuple[float, float]:
    kin = basin_kinetics(trajs, frame_ps, ev.basins, ev.basin_margin)
    duration = sum((t.shape[0] - 1) * frame_ps for t in trajs)
    return duration / max(1, kin["n_transitions"]), float(kin["n_transitions"])


def persistence(x: np.ndarray, cond: np.ndarray, seed: int) -> np.ndarray:
    """The reference forecast: the next frame equals the current one."""
    return np.asarray(x, dtype=np.float64)


def generator_predictor(gen: Generator, conv: MDPairs, batch_size: int | None = None) -> Predictor:
    """Wrap a Generator (model space) as a degree-space predictor of the next frame."""

    def predict(x_deg: np.ndarray, cond: np.ndarray, seed: int) -> np.ndarray:
        x0 = conv.to_model(x_deg)
        c = torch.as_tensor(np.asarray(cond), dtype=torch.long)
        step = batch_size or x0.shape[0]
        outs = [conv.from_model(gen(x0[i:i + step], c[i:i + step], seed=seed + 31 * (i // step)))
                for i in range(0, x0.shape[0], step)]
        return np.concatenate(outs)

    return predict


# --------------------------------------------------------------------------- the family


class MDFamily(FamilyBase):
    """Alanine-dipeptide dihedrals; one-step, k-step and free-generation evaluation."""

    default_metric = "mae"
    datasets = tuple(DATASET_SOURCES)
    prep_data_keys = ("n_trajectories", "ns_per_trajectory", "seeds", "frame_ps", "workers",
                      "simulation", "url", "allow_http", "timeout")
    eval_only_data_keys = ("eval",)

    def check_experiment(self, name: str, exp: dict) -> None:
        """Every data set's ``data`` settings parse (errors name the config key)."""
        for ds in exp["datasets"]:
            data_settings({"experiment": name, "dataset": ds, "data": exp.get("data") or {}})

    def __init__(self) -> None:
        self._cache: dict[tuple, dict[str, list[np.ndarray]]] = {}

    # --- data ----------------------------------------------------------------------------
    def data_file(self, spec: dict) -> str:
        return layout.data_file(spec["experiment"], spec["dataset"], DATA_NAME)

    def prepare(self, spec: dict, out: str) -> None:
        """Simulate (OpenMM) or download (mdshare) the data set into ``out``."""
        s = data_settings(spec)
        out_path = Path(out)
        start = time.perf_counter()
        if s.solvent == "mdshare":
            kw: dict[str, Any] = {"allow_http": s.allow_http, "timeout": s.timeout}
            if s.url:
                kw["url"] = s.url
            path = fetch_mdshare(out_path.parent, name=out_path.name, **kw)
        else:
            path = simulate_parallel(out_path.parent, s.n_trajectories, s.ns_per_trajectory,
                                     list(s.seeds), workers=s.workers, name=out_path.name,
                                     solvent=s.solvent, frame_ps=s.frame_ps, progress=False,
                                     **s.simulation)
        ds = load_md_dataset(path)
        info = {"data": str(path), "source": ds.source, "n_frames": ds.n_frames,
                "frame_ps": ds.frame_ps, "wall_s": round(time.perf_counter() - start, 2),
                "ns_per_day": ds.meta.get("ns_per_day"),
                "ns_per_day_mean": ds.meta.get("ns_per_day_mean")}
        print(json.dumps(info), flush=True)

    def trajectories(self, spec: dict) -> tuple[dict[str, list[np.ndarray]], float, str]:
        """Split trajectories (after stride and chunking), frame spacing in ps, source label."""
        s = data_settings(spec)
        path = Path(self.data_file(spec))
        ds = load_md_dataset(path)
        if s.solvent != "mdshare" and abs(ds.frame_ps - s.frame_ps) > 1e-9:
            raise ValueError(f"{path} was made with frame_ps={ds.frame_ps} but {_where(spec)} says "
                             f"{s.frame_ps}; delete the file and rerun the data rule")
        frame_ps = ds.frame_ps * s.stride
        key = (str(path), path.stat().st_mtime_ns, s.stride, s.chunk_ns, s.chunk_gap_ns, s.split,
               s.split_seed)
        if key not in self._cache:
            trajs = [t[::s.stride] for t in ds.trajectories]
            if s.chunk_ns is not None:
                n_chunk = round(s.chunk_ns * 1000.0 / frame_ps)
                gap = round(s.chunk_gap_ns * 1000.0 / frame_ps)
                trajs = chunk_trajectories(trajs, n_chunk, gap)
            try:
                idx = split_trajectories(len(trajs), *s.split, seed=s.split_seed)
            except ValueError as exc:
                raise ConfigError(f"config key {_where(spec, 'split')}: {exc}") from exc
            self._cache = {key: {k: [trajs[i] for i in v] for k, v in idx.items()}}
        return self._cache[key], frame_ps, ds.source

    def converter(self, spec: dict) -> MDPairs:
        """The representation (to_model / from_model / wrap_model) used in training."""
        s = data_settings(spec)
        dummy = [np.zeros((2, 2), np.float32)]
        return MDPairs(dummy, n_cond=s.n_cond, representation=s.representation)

    def train_source(self, spec: dict) -> MDPairs:
        s = data_settings(spec)
        split, _, _ = self.trajectories(spec)
        longest = max(t.shape[0] for t in split["train"])
        if s.condition == "frame" and s.n_cond > longest:
            # labels are clamped to n_cond - 1; labels >= longest would never be trained, yet
            # evaluation (long free runs) would use them
            raise ConfigError(f"config key {_where(spec, 'n_cond')}: {s.n_cond} frame labels but "
                              f"the longest training trajectory has {longest} frames; labels "
                              f">= {longest} would never be trained: set n_cond <= {longest}")
        return MDPairs(split["train"], n_cond=s.n_cond, representation=s.representation,
                       condition=s.condition)

    # --- evaluation ----------------------------------------------------------------------
    def n_eval(self, spec: dict, split: str) -> int:
        if split == "val":
            return int(spec.get("tune", {}).get("n_samples", spec["sweep"]["n_samples"]))
        return int(spec["sweep"]["n_samples"])

    def eval_split(self, spec: dict, split: str) -> list[np.ndarray]:
        if split not in ("val", "test"):
            raise ValueError(f"MD evaluation runs on 'val' or 'test', not {split!r}")
        trajs = self.trajectories(spec)[0][split]
        if not trajs:
            raise ConfigError(f"config key {_where(spec, 'split')}.{split}: the {split} split is "
                              f"empty; give it at least one trajectory")
        return trajs

    def score(self, spec: dict, predict: Predictor, split: str, *,
              free: bool = True) -> dict[str, float]:
        """One-step, k-step and (if ``free``) free-generation metrics of ``predict``."""
        s = data_settings(spec)
        ev = s.eval
        trajs = self.eval_split(spec, split)
        _, frame_ps, _ = self.trajectories(spec)
        n = self.n_eval(spec, split)
        seed = 1_000_003 * int(spec["seed"]) + (1 if split == "val" else 2)
        out = one_step_metrics(trajs, predict, n, s, seed)
        out.update(k_step_metrics(trajs, predict, ev.k_steps, ev.n_kstep or n, s, seed + 1))
        if free:
            starts = np.stack([trajs[c % len(trajs)][0] for c in range(ev.n_free)])
            chains = free_generation(starts.astype(np.float64), predict, ev.free_frames, s,
                                     seed + 2)
            out.update(free_metrics(list(chains), trajs, frame_ps, ev))
        return {k: float(v) for k, v in out.items()}

    def evaluate(self, spec: dict, gen: Generator, split: str) -> dict[str, float]:
        s = data_settings(spec)
        predict = generator_predictor(gen, self.converter(spec), spec["sweep"].get("batch_size"))
        return self.score(spec, predict, split, free=split == "test" or s.eval.free_on_val)

    def rollout(self, spec: dict, gen: Generator, nfe: int) -> tuple[dict, dict]:
        """Hook of ``idff rollout``: free generation from the test split's first frames."""
        return rollout(self, spec, gen, nfe)

    def floor(self, spec: dict) -> dict[str, float]:
        """Persistence (x_k = x_{k-1}) for the one-/k-step errors; for free generation a true
        trajectory of the generated size from the training split against the test truth."""
        s = data_settings(spec)
        ev = s.eval
        out = self.score(spec, persistence, "test", free=False)
        split, frame_ps, _ = self.trajectories(spec)
        other = reference_chains(split["train"], ev.n_free, ev.free_frames)
        out.update(free_metrics(other, split["test"], frame_ps, ev))
        return {k: float(v) for k, v in out.items()}


def reference_chains(trajs: Sequence[np.ndarray], n: int, length: int) -> list[np.ndarray]:
    """``n`` true segments of up to ``length`` frames: chain c from trajectory c mod len, the
    (c // len)-th segment, so chains do not repeat while the trajectories are long enough."""
    out = []
    for c in range(n):
        t = trajs[c % len(trajs)]
        start = (c // len(trajs)) * length
        seg = t[start:start + length] if start + 2 <= t.shape[0] else t[:length]
        out.append(np.asarray(seg, dtype=np.float64))
    return out


# --------------------------------------------------------------------------- roll-outs


def rollout(family: MDFamily, spec: dict, gen: Generator, nfe: int,
            max_pool: int = 200_000) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Long trajectories from the test split's first frames: the arrays of a roll-out file.

    ``generated`` [C, L, 2] and ``truth`` [C, L', 2] (the true continuation of the same start
    frames, L' = min(L, shortest test trajectory)), ``truth_pool`` [N, 2] (test frames, evenly
    thinned to at most ``max_pool``, for histograms), ``frame_ps``; and what made them (variant,
    sampler, solver, NFE, parameters, metrics).
    """
    s = data_settings(spec)
    ev = s.eval
    trajs = family.eval_split(spec, "test")
    _, frame_ps, source = family.trajectories(spec)
    predict = generator_predictor(gen, family.converter(spec), spec["sweep"].get("batch_size"))
    starts = np.stack([trajs[c % len(trajs)][0] for c in range(ev.n_free)]).astype(np.float64)
    chains = free_generation(starts, predict, ev.free_frames, s, 1_000_003 * int(spec["seed"]) + 5)
    n_true = min(ev.free_frames, min(t.shape[0] for t in trajs))
    truth = np.stack([trajs[c % len(trajs)][:n_true] for c in range(ev.n_free)])
    pool = np.concatenate(trajs)
    pool = pool[_even(pool.shape[0], max_pool)]
    metrics = free_metrics(list(chains), trajs, frame_ps, ev)
    info = {"experiment": spec["experiment"], "dataset": spec["dataset"], "source": source,
            "variant": spec["variant"]["name"], "sampler": spec["variant"]["sampler"],
            "method": spec["method"]["name"], "solver": spec["solver"], "nfe_budget": nfe,
            "nfe": gen.nfe_per_call, "vjp": gen.vjp_per_call, "params": gen.params,
            "seed": spec["seed"], "frame_ps": frame_ps, "metrics": metrics}
    arrays = {"generated": chains.astype(np.float32), "truth": truth.astype(np.float32),
              "truth_pool": pool.astype(np.float32), "frame_ps": np.float64(frame_ps)}
    return arrays, info
