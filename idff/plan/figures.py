"""Settings and jobs of the paper's remaining figures (Fig. 2, 3A, 3B, 5 and the sample panels):
what each figure reads, checked before any job runs.

Every figure reads ``experiments.<exp>.figures.<name>`` over its defaults; an unknown key or a
value the pipeline cannot produce is a ValueError naming the key.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import layout
from ..config import eval_spec, sweep_nfes, variant_solvers
from ..flows.solvers import budget_is_valid
from .core import (
    FAMILY_METRICS,
    exp_config,
    sample_jobs,
    toy_orders_settings,
)

ITERATIONS_DEFAULTS: dict[str, Any] = {
    "threshold_metric": "w2", "threshold": None, "variants": ["idff1", "otcfm", "icfm"],
    "solver": "euler", "split": "test", "nfe": None, "n_samples": None, "datasets": None}
GAMMA_DEFAULTS: dict[str, Any] = {
    "nfe": None, "solver": "euler", "datasets": None,
    "heatmap": {"variant": "idff2", "x": "gamma1", "y": "gamma2"},
    "line": {"variant": "idff1", "x": "sigma_s"}}
TRAJECTORY_DEFAULTS: dict[str, Any] = {
    "datasets": None, "solver": "euler", "n_trajectories": 12,
    "panels": [{"variant": "otcfm", "nfe": 100}, {"variant": "idff1", "nfe": 5},
               {"variant": "pf", "nfe": 5}]}
TOY_SAMPLES_DEFAULTS: dict[str, Any] = {"variants": None, "nfe": None, "solver": "euler",
                                        "datasets": None}
SPLITS = ("test", "val")


# ------------------------------------------------------------------------------ helpers


def _given(cfg: dict, exp: str, name: str, defaults: dict[str, Any]) -> dict[str, Any] | None:
    """``figures.<name>`` of ``exp`` over ``defaults`` (None when the block is absent)."""
    given = (exp_config(cfg, exp).get("figures") or {}).get(name)
    if given is None:
        return None
    key = f"experiments.{exp}.figures.{name}"
    if not isinstance(given, dict):
        raise ValueError(f"config key {key}: needs a mapping of settings, got {given!r}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"config key {key}: unknown settings {unknown}; valid: "
                         f"{', '.join(defaults)}")
    return {**copy.deepcopy(defaults), **copy.deepcopy(given)}


def _datasets(e: dict, given: list[str] | None, key: str, default: list[str]) -> list[str]:
    if given is None:
        return default
    if not isinstance(given, list) or not given:
        raise ValueError(f"config key {key}.datasets: needs a non-empty list, got {given!r}")
    for ds in given:
        if ds not in e["datasets"]:
            raise ValueError(f"config key {key}.datasets: {ds!r} is not in the experiment's "
                             f"datasets ({', '.join(e['datasets'])})")
    return list(given)


def _variant(e: dict, v: Any, key: str) -> str:
    if v not in e["variants"]:
        raise ValueError(f"config key {key}: {v!r} is not a variant of the experiment; valid: "
                         f"{', '.join(e['variants'])}")
    return v


def _solver(e: dict, variant: str, solver: Any, key: str) -> str:
    """One solver name, or a mapping variant -> solver (default euler)."""
    s = solver.get(variant, "euler") if isinstance(solver, dict) else solver
    if s not in variant_solvers(e, variant):
        raise ValueError(f"config key {key}: variant {variant!r} is not run with solver {s!r}; "
                         f"its solvers: {', '.join(variant_solvers(e, variant))}")
    return s


def _positive_int(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"config key {key}: needs a positive integer, got {value!r}")
    return value


def _tuned_budget(e: dict, variant: str, solver: str, nfe: int, key: str) -> None:
    """A tuned variant is drawn with the parameters chosen on validation at ``nfe``: the sweep
    must tune at that budget."""
    if not budget_is_valid(solver, nfe):
        raise ValueError(f"config key {key}: solver {solver!r} cannot meet NFE {nfe}")
    if e["variants"][variant].get("tune") and nfe not in sweep_nfes(e, solver):
        raise ValueError(f"config key {key}: variant {variant!r} is tuned per NFE budget, and "
                         f"{nfe} is not a budget of the sweep with solver {solver!r} "
                         f"({sweep_nfes(e, solver)}); pick one of those")


# ------------------------------------------------------------- Fig. 3A: NFE vs iterations


def iterations_settings(cfg: dict, exp: str) -> dict[str, Any]:
    """``figures.nfe_vs_iterations``: the threshold, variants, solver(s), split, NFE budgets,
    evaluation size and the kept training steps (from ``train.steps`` and ``train.keep_every``).
    """

    e = exp_config(cfg, exp)
    key = f"experiments.{exp}.figures.nfe_vs_iterations"
    s = _given(cfg, exp, "nfe_vs_iterations", ITERATIONS_DEFAULTS)
    if s is None:
        raise ValueError(f"config key {key}: fig_nfe_vs_iterations needs this block "
                         f"(threshold_metric, threshold, variants, solver, split)")
    datasets = _datasets(e, s["datasets"], key, list(e["datasets"]))
    thr = s["threshold"]
    thresholds = {ds: thr.get(ds) for ds in datasets} if isinstance(thr, dict) else \
        dict.fromkeys(datasets, thr)
    for ds, value in thresholds.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"config key {key}.threshold: needs the quality threshold of "
                             f"{ds} (a number in the units of {s['threshold_metric']}, or a "
                             f"mapping data set -> number), got {thr!r}")
    known = FAMILY_METRICS.get(e["family"])
    if not isinstance(s["threshold_metric"], str) or (known and s["threshold_metric"] not in known):
        raise ValueError(f"config key {key}.threshold_metric: {s['threshold_metric']!r} is not a "
                         f"metric of family {e['family']!r}" + (f"; valid: {', '.join(known)}"
                                                                 if known else ""))
    if s["split"] not in SPLITS:
        raise ValueError(f"config key {key}.split: {s['split']!r}; valid: {', '.join(SPLITS)}")
    keep = e["train"].get("keep_every", 0)
    if not keep:
        raise ValueError(f"config key experiments.{exp}.train.keep_every: fig_nfe_vs_iterations "
                         f"evaluates the EMA weights kept during training; set keep_every to a "
                         f"step interval (e.g. train.steps / 10; this retrains the experiment)")
    variants = [_variant(e, v, f"{key}.variants") for v in s["variants"]]
    solvers = {v: _solver(e, v, s["solver"], f"{key}.solver") for v in variants}
    budgets: dict[str, list[int]] = {}
    for v, solver in solvers.items():
        swept = sweep_nfes(e, solver)
        nfe = swept if s["nfe"] is None else s["nfe"]
        if not isinstance(nfe, list) or not nfe or any(n not in swept for n in nfe):
            raise ValueError(f"config key {key}.nfe: needs a list of budgets the sweep runs with "
                             f"solver {solver!r} ({swept}), got {s['nfe']!r}")
        budgets[v] = sorted(nfe)
    n = s["n_samples"]
    if n is not None:
        _positive_int(n, f"{key}.n_samples")
    return {**s, "thresholds": thresholds, "variants": variants, "solvers": solvers,
            "budgets": budgets, "n_samples": n,
            "datasets": datasets, "steps": layout.kept_steps(int(e["train"]["steps"]), int(keep)),
            "keep_every": int(keep), "seeds": list(e["seeds"])}


def iteration_jobs(cfg: dict, exp: str) -> list[dict[str, Any]]:
    s = iterations_settings(cfg, exp)
    return [{"dataset": ds, "variant": v, "solver": s["solvers"][v], "seed": seed,
             "path": layout.path("iter_eval", exp=exp, dataset=ds, variant=v,
                                 solver=s["solvers"][v], seed=seed)}
            for ds in s["datasets"] for v in s["variants"] for seed in s["seeds"]]


def iteration_inputs(cfg: dict, exp: str) -> list[str]:
    return [j["path"] for j in iteration_jobs(cfg, exp)]


def iteration_spec(cfg: dict, exp: str, dataset: str, variant: str, solver: str,
                   seed: int) -> dict[str, Any]:
    """The job spec of one ``iter-eval`` job: the evaluation spec of the sweep with the figure's
    NFE budgets, evaluation size and the kept steps (everything the job's numbers depend on)."""
    s = iterations_settings(cfg, exp)
    if variant not in s["variants"] or s["solvers"][variant] != solver:
        raise ValueError(f"fig_nfe_vs_iterations does not evaluate variant {variant!r} with "
                         f"solver {solver!r} (experiments.{exp}.figures.nfe_vs_iterations)")
    spec = eval_spec(cfg, exp, dataset, variant, solver, seed)
    spec["nfe"] = s["budgets"][variant]
    if s["n_samples"] is not None:
        spec["sweep"]["n_samples"] = s["n_samples"]
        if s["split"] == "val":
            spec.setdefault("tune", {})["n_samples"] = s["n_samples"]
    spec["iterations"] = {"steps": s["steps"], "split": s["split"]}
    return spec


# ------------------------------------------------------------- Fig. 3B: sampler parameters


def gamma_settings(cfg: dict, exp: str) -> dict[str, Any]:
    """``figures.gamma``: NFE, solver, data sets, the heat-map variant and its two axes, the
    line variant and its axis (either may be null to leave it out)."""
    e = exp_config(cfg, exp)
    key = f"experiments.{exp}.figures.gamma"
    s = _given(cfg, exp, "gamma", GAMMA_DEFAULTS) or copy.deepcopy(GAMMA_DEFAULTS)
    panels = {}
    for kind, axes in (("heatmap", ("x", "y")), ("line", ("x",))):
        p = s[kind]
        if p is None:
            continue
        if not isinstance(p, dict) or set(p) - {"variant", *axes}:
            raise ValueError(f"config key {key}.{kind}: needs a mapping with keys variant, "
                             f"{', '.join(axes)} (or null), got {p!r}")
        p = {**GAMMA_DEFAULTS[kind], **p}
        v = _variant(e, p["variant"], f"{key}.{kind}.variant")
        grid = e["variants"][v].get("tune") or {}
        for a in axes:
            if p[a] not in grid:
                raise ValueError(f"config key {key}.{kind}.{a}: {p[a]!r} is not tuned for "
                                 f"variant {v!r} (experiments.{exp}.variants.{v}.tune has "
                                 f"{', '.join(grid) or 'nothing'})")
        if kind == "heatmap" and p["x"] == p["y"]:
            raise ValueError(f"config key {key}.heatmap: x and y must differ, both are {p['x']!r}")
        panels[kind] = {**p, "solver": _solver(e, v, s["solver"], f"{key}.solver")}
    if not panels:
        raise ValueError(f"config key {key}: heatmap and line are both null: nothing to draw")
    solvers = {p["solver"] for p in panels.values()}
    common = sorted(set.intersection(*(set(sweep_nfes(e, sv)) for sv in solvers)))
    nfe = s["nfe"]
    if nfe is None:
        nfe = next((n for n in common if n >= 5), common[-1] if common else None)
    if nfe not in common:
        raise ValueError(f"config key {key}.nfe: needs a budget the sweep tunes with solver(s) "
                         f"{sorted(solvers)} ({common}), got {s['nfe']!r}")
    datasets = _datasets(e, s["datasets"], key, list(e["datasets"]))
    return {"nfe": int(nfe), "datasets": datasets, "panels": panels, "seeds": list(e["seeds"])}


def gamma_jobs(cfg: dict, exp: str) -> list[dict[str, Any]]:
    """One entry per (panel, data set, seed): its tuned file and its sweep metric file."""
    s = gamma_settings(cfg, exp)
    return [{"panel": kind, "dataset": ds, "variant": p["variant"], "solver": p["solver"],
             "seed": seed, "tuned": layout.path("tuned", exp=exp, dataset=ds,
                                                variant=p["variant"], solver=p["solver"],
                                                seed=seed),
             "metrics": layout.path("metrics", exp=exp, dataset=ds, variant=p["variant"],
                                    solver=p["solver"], seed=seed)}
            for kind, p in s["panels"].items() for ds in s["datasets"] for seed in s["seeds"]]


def gamma_inputs(cfg: dict, exp: str) -> list[str]:
    return [p for j in gamma_jobs(cfg, exp) for p in (j["tuned"], j["metrics"])]


# ------------------------------------------------------------------ Fig. 5: trajectories


def trajectory_settings(cfg: dict, exp: str) -> dict[str, Any]:
    """``figures.trajectories``: data sets (default: the first four), panels (variant, NFE,
    optional solver), the number of paths drawn and the seed (the experiment's first)."""
    e = exp_config(cfg, exp)
    if e["family"] != "toy":
        raise ValueError(f"fig_trajectories draws 2D toy paths; experiment {exp!r} has family "
                         f"{e['family']!r}")
    key = f"experiments.{exp}.figures.trajectories"
    s = _given(cfg, exp, "trajectories", TRAJECTORY_DEFAULTS) or copy.deepcopy(TRAJECTORY_DEFAULTS)
    if not isinstance(s["panels"], list) or not s["panels"]:
        raise ValueError(f"config key {key}.panels: needs a non-empty list of "
                         f"{{variant, nfe[, solver]}}, got {s['panels']!r}")
    panels = []
    for i, p in enumerate(s["panels"]):
        k = f"{key}.panels.{i}"
        if not isinstance(p, dict) or set(p) - {"variant", "nfe", "solver"} or "nfe" not in p:
            raise ValueError(f"config key {k}: needs a mapping {{variant, nfe[, solver]}}, "
                             f"got {p!r}")
        v = _variant(e, p.get("variant"), f"{k}.variant")
        solver = _solver(e, v, p.get("solver", s["solver"]), f"{k}.solver")
        nfe = _positive_int(p["nfe"], f"{k}.nfe")
        _tuned_budget(e, v, solver, nfe, f"{k}.nfe")
        panels.append({"variant": v, "solver": solver, "nfe": nfe})
    n_traj = _positive_int(s["n_trajectories"], f"{key}.n_trajectories")
    datasets = _datasets(e, s["datasets"], key, list(e["datasets"])[:4])
    return {"datasets": datasets, "panels": panels, "n_trajectories": n_traj,
            "seed": e["seeds"][0]}


def trajectory_jobs(cfg: dict, exp: str) -> list[dict[str, Any]]:
    s = trajectory_settings(cfg, exp)
    return [{"dataset": ds, "panel": k, **p, "seed": s["seed"],
             "path": layout.path("sample", exp=exp, dataset=ds, variant=p["variant"],
                                 solver=p["solver"], nfe=p["nfe"], seed=s["seed"])}
            for ds in s["datasets"] for k, p in enumerate(s["panels"])]


def trajectory_inputs(cfg: dict, exp: str) -> list[str]:
    return [j["path"] for j in trajectory_jobs(cfg, exp)]


# ---------------------------------------------------------------- Fig. 1: toy sample grids


def toy_sample_jobs(cfg: dict, exp: str) -> list[dict[str, Any]]:
    """Sample files of ``fig_samples_toy``: ``figures.samples`` (variants, nfe, solver,
    datasets) or, without that block, exactly the files of ``fig_toy_orders``."""
    e = exp_config(cfg, exp)
    if e["family"] != "toy":
        raise ValueError(f"fig_samples_toy draws 2D toy samples; experiment {exp!r} has family "
                         f"{e['family']!r}")
    key = f"experiments.{exp}.figures.samples"
    s = _given(cfg, exp, "samples", TOY_SAMPLES_DEFAULTS)
    if s is None:
        orders = toy_orders_settings(cfg, exp)
        return [{**j, "nfe": orders["nfe"]} for j in sample_jobs(cfg, exp)]
    seed = e["seeds"][0]
    variants = s["variants"] or ["otcfm", "idff1"]
    if not isinstance(variants, list):
        raise ValueError(f"config key {key}.variants: needs a list, got {variants!r}")
    jobs = []
    datasets = _datasets(e, s["datasets"], key, list(e["datasets"]))
    for v in variants:
        _variant(e, v, f"{key}.variants")
        solver = _solver(e, v, s["solver"], f"{key}.solver")
        nfe = s["nfe"] if s["nfe"] is not None else max(sweep_nfes(e, solver))
        _positive_int(nfe, f"{key}.nfe")
        _tuned_budget(e, v, solver, nfe, f"{key}.nfe")
        jobs += [{"dataset": ds, "variant": v, "solver": solver, "nfe": nfe, "seed": seed,
                  "path": layout.path("sample", exp=exp, dataset=ds, variant=v, solver=solver,
                                      nfe=nfe, seed=seed)} for ds in datasets]
    order = {ds: i for i, ds in enumerate(datasets)}
    return sorted(jobs, key=lambda j: order[j["dataset"]])  # stable: variants keep their order


def toy_sample_inputs(cfg: dict, exp: str) -> list[str]:
    return list(dict.fromkeys(j["path"] for j in toy_sample_jobs(cfg, exp)))
