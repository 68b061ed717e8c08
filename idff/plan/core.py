"""Planning shared by every family: sweep metric files, floors, toy sample files and checkpoints."""

from __future__ import annotations

from typing import Any

from .. import layout
from ..config import sweep_nfes, variant_solvers
from ..families import FamilyBase, get_family
from ..flows.solvers import budget_is_valid

FAMILY_METRICS: dict[str, tuple[str, ...]] = {"toy": ("w2", "mmd", "mmd_biased", "mmd_multi")}


TOY_ORDERS_DEFAULTS: dict[str, Any] = {"variants": ["otcfm", "idff1", "idff2", "idff3"], "nfe": 2,
                                       "solver": "euler", "n_samples": 2048, "n_trajectories": 12}


def exp_config(cfg: dict, exp: str) -> dict:
    if exp not in cfg.get("experiments", {}):
        raise ValueError(f"the report needs experiment {exp!r} in the config (experiments.{exp}); "
                         f"the config has: {', '.join(cfg.get('experiments', {})) or 'none'}")
    return cfg["experiments"][exp]


def family_metrics(cfg: dict, exp: str) -> tuple[str, ...]:
    family = exp_config(cfg, exp)["family"]
    if family not in FAMILY_METRICS:
        raise ValueError(f"no report metrics are defined for data family {family!r} "
                         f"(experiments.{exp}.family); known: {', '.join(FAMILY_METRICS)}")
    return FAMILY_METRICS[family]


def has_floor(cfg: dict, exp: str) -> bool:
    """Whether ``idff floor`` scores this experiment's family (it implements the ``floor`` hook)."""
    family = get_family(exp_config(cfg, exp)["family"])
    return type(family).floor is not FamilyBase.floor


def metric_jobs(cfg: dict, exp: str) -> list[dict]:
    """One entry per expected metric file: dataset, variant, solver, seed, nfes, path."""
    e = exp_config(cfg, exp)
    jobs = []
    for ds in e["datasets"]:
        for variant in e["variants"]:
            for solver in variant_solvers(e, variant):
                nfes = sweep_nfes(e, solver)
                if not nfes:
                    continue
                for seed in e["seeds"]:
                    jobs.append({"dataset": ds, "variant": variant, "solver": solver, "seed": seed,
                                 "nfes": nfes, "path": layout.path("metrics", exp=exp, dataset=ds,
                                                                   variant=variant, solver=solver,
                                                                   seed=seed)})
    return jobs


def expected_metric_files(cfg: dict, exp: str) -> list[str]:
    return [j["path"] for j in metric_jobs(cfg, exp)]


def expected_floor_files(cfg: dict, exp: str) -> list[str]:
    """Floor files of ``exp`` (none for a family without a floor)."""
    e = exp_config(cfg, exp)
    if not has_floor(cfg, exp):
        return []
    return [layout.path("floor", exp=exp, dataset=ds,
                        seed=seed) for ds in e["datasets"] for seed in e["seeds"]]


def toy_orders_settings(cfg: dict, exp: str) -> dict[str, Any] | None:
    """Settings of the orders figure (``experiments.<exp>.figures.toy_orders`` over defaults).

    ``solver`` is one solver name or a mapping variant -> solver (a stochastic variant needs
    euler_maruyama). Returns None for a non-toy experiment that does not ask for the figure.
    """
    e = exp_config(cfg, exp)
    given = e.get("figures", {}).get("toy_orders")
    if given is None and e["family"] != "toy":
        return None
    s = {**TOY_ORDERS_DEFAULTS, **(given or {})}
    key = f"experiments.{exp}.figures.toy_orders"
    unknown = set(s) - set(TOY_ORDERS_DEFAULTS)
    if unknown:
        raise ValueError(f"config key {key}: unknown settings {sorted(unknown)}; "
                         f"valid: {', '.join(TOY_ORDERS_DEFAULTS)}")
    if not isinstance(s["nfe"], int) or s["nfe"] < 1:
        raise ValueError(f"config key {key}.nfe: needs a positive integer, got {s['nfe']!r}")
    for v in s["variants"]:
        if v not in e["variants"]:
            raise ValueError(f"config key {key}.variants: {v!r} is not a variant of experiments."
                             f"{exp}.variants; valid: {', '.join(e['variants'])}")
    solvers = figure_solvers(e, s["variants"], s["solver"], s["nfe"], key, default="euler")
    return {**s, "solvers": solvers, "seed": e["seeds"][0]}


def figure_solvers(e: dict, variants: list[str], setting: str | dict | None, nfe: int, key: str,
                   default: str | None = None) -> dict[str, str]:
    """The solver of each variant of a figure: ``setting`` (a solver, or a mapping variant ->
    solver, else ``default``), else the variant's first solver. Each must be one the variant
    runs with and must meet the figure's NFE budget; errors name the config key ``key``."""
    solvers = {}
    for v in variants:
        given = setting.get(v, default) if isinstance(setting, dict) else setting
        solver = given or variant_solvers(e, v)[0]
        if solver not in variant_solvers(e, v):
            raise ValueError(f"config key {key}.solver: variant {v!r} is not run with solver "
                             f"{solver!r}; its solvers: {', '.join(variant_solvers(e, v))}")
        if not budget_is_valid(solver, nfe):
            raise ValueError(f"config key {key}.nfe: solver {solver!r} cannot meet NFE {nfe}")
        solvers[v] = solver
    return solvers


def sample_jobs(cfg: dict, exp: str) -> list[dict]:
    """One entry per sample file the orders figure needs (first seed of the experiment)."""
    s = toy_orders_settings(cfg, exp)
    if s is None:
        return []
    return [{"dataset": ds, "variant": v, "solver": s["solvers"][v], "nfe": s["nfe"],
             "seed": s["seed"], "n": s["n_samples"],
             "path": layout.path("sample", exp=exp, dataset=ds, variant=v, solver=s["solvers"][v],
                                 nfe=s["nfe"], seed=s["seed"])}
            for ds in exp_config(cfg, exp)["datasets"] for v in s["variants"]]


def expected_sample_files(cfg: dict, exp: str) -> list[str]:
    return [j["path"] for j in sample_jobs(cfg, exp)]


def training_jobs(cfg: dict, exps: list[str]) -> list[dict]:
    """One entry per trained network of ``exps``: exp, dataset, method, seed, path (the .pt)."""
    jobs = []
    for exp in exps:
        e = exp_config(cfg, exp)
        for ds in e["datasets"]:
            for method in e["methods"]:
                for seed in e["seeds"]:
                    jobs.append({"exp": exp, "dataset": ds, "method": method, "seed": int(seed),
                                 "path": layout.path("checkpoint", exp=exp, dataset=ds,
                                                     method=method, seed=seed)})
    return jobs
