"""Planning of the MD figure: the roll-outs fig_md draws."""

from __future__ import annotations

from typing import Any

from .. import layout
from .core import exp_config, figure_solvers

FIG_DEFAULTS: dict[str, Any] = {"variants": ["idff1", "otcfm"], "nfe": 5, "solver": None,
                                "dataset": None, "seed": None, "window_ps": 400.0, "bins": 60}


def fig_settings(cfg: dict, exp: str) -> dict[str, Any]:
    """``experiments.<exp>.figures.md`` over ``FIG_DEFAULTS``, checked; solvers per variant."""
    e = exp_config(cfg, exp)
    given = dict(e.get("figures", {}).get("md") or {})
    key = f"experiments.{exp}.figures.md"
    unknown = set(given) - set(FIG_DEFAULTS)
    if unknown:
        raise ValueError(f"config key {key}: unknown settings {sorted(unknown)}; valid: "
                         f"{', '.join(FIG_DEFAULTS)}")
    s = {**FIG_DEFAULTS, **given}
    if "variants" in given:
        missing = [v for v in s["variants"] if v not in e["variants"]]
        if missing:
            raise ValueError(f"config key {key}.variants: {missing} are not variants of "
                             f"experiments.{exp}.variants; valid: {', '.join(e['variants'])}")
    else:
        s["variants"] = [v for v in s["variants"] if v in e["variants"]] or [next(iter(e["variants"]))]
    if "nfe" not in given and s["nfe"] not in e["sweep"]["nfe"]:
        s["nfe"] = e["sweep"]["nfe"][0]
    if not isinstance(s["nfe"], int) or s["nfe"] < 1:
        raise ValueError(f"config key {key}.nfe: needs a positive integer, got {s['nfe']!r}")
    s["dataset"] = s["dataset"] or e["datasets"][0]
    if s["dataset"] not in e["datasets"]:
        raise ValueError(f"config key {key}.dataset: {s['dataset']!r} is not in experiments."
                         f"{exp}.datasets")
    s["seed"] = e["seeds"][0] if s["seed"] is None else s["seed"]
    if s["seed"] not in e["seeds"]:
        raise ValueError(f"config key {key}.seed: {s['seed']} is not in experiments.{exp}.seeds")
    s["solvers"] = figure_solvers(e, s["variants"], s["solver"], s["nfe"], key)
    return s


def rollout_jobs(cfg: dict, exp: str) -> list[dict[str, Any]]:
    """The roll-outs ``fig_md`` needs: one per figure variant (its solver, the figure's NFE)."""
    s = fig_settings(cfg, exp)
    return [{"dataset": s["dataset"], "variant": v, "solver": s["solvers"][v], "nfe": s["nfe"],
             "seed": s["seed"],
             "path": layout.path("rollout", exp=exp, dataset=s["dataset"], variant=v,
                                 solver=s["solvers"][v], nfe=s["nfe"], seed=s["seed"])}
            for v in s["variants"]]


def expected_rollout_files(cfg: dict, exp: str) -> list[str]:
    return [j["path"] for j in rollout_jobs(cfg, exp)]
