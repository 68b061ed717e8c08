"""Planning of the SST figure: the forecast fig_sst draws."""

from __future__ import annotations

from typing import Any

from .. import layout
from ..config import sweep_nfes, variant_solvers
from .core import exp_config

FIG_KEYS = ("variants", "nfe", "solver", "window", "dataset")


def horizon_of(cfg: dict, exp: str) -> int:
    return int(exp_config(cfg, exp)["data"].get("horizon", 7))


def figure_settings(cfg: dict, exp: str) -> dict[str, Any]:
    """Resolved ``figures.sst`` settings: variants, solvers (per variant), nfe, window, dataset,
    seed (the first seed of the experiment)."""
    e = exp_config(cfg, exp)
    given = dict(e.get("figures", {}).get("sst") or {})
    key = f"experiments.{exp}.figures.sst"
    unknown = sorted(set(given) - set(FIG_KEYS))
    if unknown:
        raise ValueError(f"config key {key}: unknown settings {unknown}; valid: {', '.join(FIG_KEYS)}")
    variants = list(given.get("variants") or [next(iter(e["variants"]))])
    solvers = {}
    for v in variants:
        if v not in e["variants"]:
            raise ValueError(f"config key {key}.variants: {v!r} is not a variant of experiments."
                             f"{exp}.variants; valid: {', '.join(e['variants'])}")
        s = given.get("solver")
        s = s.get(v) if isinstance(s, dict) else s
        s = s or variant_solvers(e, v)[0]
        if s not in variant_solvers(e, v):
            raise ValueError(f"config key {key}.solver: variant {v!r} is not run with solver "
                             f"{s!r}; its solvers: {', '.join(variant_solvers(e, v))}")
        solvers[v] = s
    nfe = given.get("nfe")
    for v, s in solvers.items():
        valid = sweep_nfes(e, s)
        if nfe is not None and nfe not in valid:
            raise ValueError(f"config key {key}.nfe: {nfe} is not a swept budget of solver {s!r} "
                             f"(variant {v}); valid: {valid}")
    if nfe is None:
        common = set.intersection(*(set(sweep_nfes(e, s)) for s in solvers.values()))
        if not common:
            raise ValueError(f"config key {key}.nfe: the figure variants share no NFE budget; set one")
        nfe = max(common)
    window = given.get("window", 0)
    if not isinstance(window, int) or window < 0:
        raise ValueError(f"config key {key}.window: needs an integer >= 0, got {window!r}")
    dataset = given.get("dataset", e["datasets"][0])
    if dataset not in e["datasets"]:
        raise ValueError(f"config key {key}.dataset: {dataset!r} is not in experiments.{exp}.datasets")
    return {"variants": variants, "solvers": solvers, "nfe": int(nfe), "window": window,
            "dataset": dataset, "seed": e["seeds"][0]}


def forecast_jobs(cfg: dict, exp: str) -> list[dict[str, Any]]:
    s = figure_settings(cfg, exp)
    return [{"dataset": s["dataset"], "variant": v, "solver": s["solvers"][v], "nfe": s["nfe"],
             "seed": s["seed"], "window": s["window"],
             "path": layout.path("forecast", exp=exp, dataset=s["dataset"], variant=v,
                                 solver=s["solvers"][v], nfe=s["nfe"], seed=s["seed"])}
            for v in s["variants"]]


def expected_forecast_files(cfg: dict, exp: str) -> list[str]:
    return [j["path"] for j in forecast_jobs(cfg, exp)]
