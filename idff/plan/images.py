"""Planning of the image figures: the sample grids fig_samples draws."""

from __future__ import annotations

from typing import Any

from .. import layout
from ..config import sweep_nfes, variant_solvers
from .core import exp_config


def sample_settings(cfg: dict, exp: str) -> dict[str, Any]:
    """``experiments.<exp>.figures.samples`` over defaults, checked against the sweep.

    The NFE must be one the sweep runs with the solver, so that a tuned variant is drawn with
    the parameters chosen on validation at that NFE (default: 10, else the largest below it).
    """
    e = exp_config(cfg, exp)
    key = f"experiments.{exp}.figures.samples"
    given = (e.get("figures") or {}).get("samples") or {}
    unknown = set(given) - set(SAMPLES_DEFAULTS)
    if unknown:
        raise ValueError(f"config key {key}: unknown settings {sorted(unknown)}; valid: "
                         f"{', '.join(SAMPLES_DEFAULTS)}")
    s = {**SAMPLES_DEFAULTS, **given}
    variants = list(s["variants"] or e["variants"])
    solver = s["solver"] or e["sweep"]["solvers"][0]
    for v in variants:
        if v not in e["variants"]:
            raise ValueError(f"config key {key}.variants: {v!r} is not a variant of "
                             f"experiments.{exp}.variants; valid: {', '.join(e['variants'])}")
        if solver not in variant_solvers(e, v):
            raise ValueError(f"config key {key}.solver: variant {v!r} is not run with solver "
                             f"{solver!r}; its solvers: {', '.join(variant_solvers(e, v))}")
    nfes = sweep_nfes(e, solver)
    nfe = s["nfe"] if "nfe" in given else max([n for n in nfes if n <= 10] or nfes)
    if nfe not in nfes:
        raise ValueError(f"config key {key}.nfe: {nfe!r} is not an NFE the sweep runs with "
                         f"solver {solver!r} ({nfes}); pick one of those")
    for k in ("n", "nrow"):
        if not isinstance(s[k], int) or s[k] < 1:
            raise ValueError(f"config key {key}.{k}: needs a positive integer, got {s[k]!r}")
    return {"variants": variants, "solver": solver, "nfe": int(nfe), "n": s["n"],
            "nrow": s["nrow"], "seed": e["seeds"][0]}


def sample_jobs(cfg: dict) -> list[dict]:
    """One entry per sample grid of ``fig_samples`` (every image experiment, data set, variant)."""
    jobs = []
    for exp in image_experiments(cfg):
        s = sample_settings(cfg, exp)
        for ds in exp_config(cfg, exp)["datasets"]:
            for v in s["variants"]:
                jobs.append({"experiment": exp, "dataset": ds, "variant": v, **s,
                             "path": layout.path("samples", exp=exp, dataset=ds, variant=v,
                                                 solver=s["solver"], nfe=s["nfe"], seed=s["seed"])})
    return jobs


def sample_inputs(cfg: dict, exp: str) -> list[str]:
    return [j["path"] for j in sample_jobs(cfg)]


SAMPLES_DEFAULTS: dict[str, Any] = {"variants": None, "nfe": 10, "solver": None, "n": 64,
                                    "nrow": 8}


def image_experiments(cfg: dict) -> list[str]:
    return [n for n, e in cfg.get("experiments", {}).items() if e.get("family") == "images"]
