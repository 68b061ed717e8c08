"""What `dvc metrics` and `dvc plots` show for one experiment, made from its result files.

- ``results/summary/<exp>/<variant>_nfe<N>.json``: one metrics file per variant and NFE budget
  (the variant's first solver), ``{dataset: {metric: mean over seeds}}``: `dvc metrics show`
  prints one row per experiment / variant / NFE, `dvc metrics diff` compares them.
- ``results/plots/<exp>/nfe/<dataset>.<metric>.csv``: ``nfe,series,value``, one series per
  variant (and solver), drawn one line each by the template ``.dvc/plots/nfe.json``.
- ``results/plots/<exp>/training/<dataset>.csv``: ``step,series,loss``, one series per
  method and seed (template ``.dvc/plots/curve.json``).

Both folders are rewritten whole (into a temporary folder, then renamed), so a killed job never
leaves a half-written set. ``idff dvc-files`` runs it (what rule ``dvc_files`` calls).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd

from ..config import variant_solvers
from ..plan.core import exp_config
from .collect import ROW_KEYS, sweep_results
from .training import load_curves

SKIP_KEYS = set(ROW_KEYS) | {"nfe_budget", "calls", "params"}


def _scalar_metrics(row: dict) -> dict[str, float]:
    """The finite numeric metrics of one sweep row (bookkeeping keys and nested values left out)."""
    out = {}
    for key, value in row.items():
        if key in SKIP_KEYS or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(float(value)):
            out[key] = float(value)
    return out


def sweep_long(cfg: dict, exp: str, results: str | Path) -> pd.DataFrame:
    """Every metric of every sweep row: dataset, variant, solver, seed, nfe, metric, value."""
    records = []
    for job, _path, _obj, rows in sweep_results(cfg, exp, results, f"sweep_{exp}"):
        for nfe, row in rows.items():
            for metric, value in _scalar_metrics(row).items():
                records.append({"dataset": job["dataset"], "variant": job["variant"],
                                "solver": job["solver"], "seed": int(job["seed"]), "nfe": nfe,
                                "metric": metric, "value": value})
    return pd.DataFrame.from_records(
        records, columns=["dataset", "variant", "solver", "seed", "nfe", "metric", "value"])


def summary_files(cfg: dict, exp: str, long: pd.DataFrame) -> dict[str, dict]:
    """``{file name: {dataset: {metric: mean}}}`` for each variant (first solver) and NFE."""
    e = exp_config(cfg, exp)
    files: dict[str, dict] = {}
    mean = long.groupby(["variant", "solver", "nfe", "dataset", "metric"], sort=False)["value"].mean()
    for variant in e["variants"]:
        solver = variant_solvers(e, variant)[0]
        for (v, s, nfe, ds, metric), value in mean.items():
            if v == variant and s == solver:
                files.setdefault(f"{variant}_nfe{nfe}.json", {}).setdefault(ds, {})[metric] = \
                    round(float(value), 6)
    return files


def plot_tables(cfg: dict, exp: str, long: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``{file name: nfe,series,value}`` per data set and metric, mean over seeds."""
    e = exp_config(cfg, exp)
    several = {v: len(variant_solvers(e, v)) > 1 for v in e["variants"]}
    mean = long.groupby(["dataset", "metric", "variant", "solver", "nfe"], sort=False)["value"].mean()
    df = mean.reset_index()
    df["series"] = [f"{v} ({s})" if several.get(v) else v for v, s in zip(df["variant"], df["solver"],
                                                                          strict=True)]
    return {f"{ds}.{metric}.csv": sub[["nfe", "series", "value"]].sort_values(["series", "nfe"])
            for (ds, metric), sub in df.groupby(["dataset", "metric"], sort=False)}


def curve_tables(cfg: dict, exp: str, results: str | Path) -> dict[str, pd.DataFrame]:
    """``{file name: step,series,loss}`` per data set: one series per method and seed."""
    data = load_curves(cfg, [exp], results)
    data["series"] = [f"{m} seed{s}" for m, s in zip(data["method"], data["seed"], strict=True)]
    return {f"{ds}.csv": sub[["step", "series", "loss"]]
            for ds, sub in data.groupby("dataset", sort=False)}


def _replace_dir(out: Path, write: dict[str, object]) -> None:
    """Write ``{relative name: dict (JSON) or DataFrame (CSV)}`` into a fresh ``out`` folder."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, obj in write.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(obj, pd.DataFrame):
            obj.to_csv(path, index=False, float_format="%.8g")
        else:
            path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def write_dvc_files(cfg: dict, exp: str, results: str | Path, summary: Path, plots: Path) -> None:
    long = sweep_long(cfg, exp, results)
    _replace_dir(Path(summary), dict(summary_files(cfg, exp, long)))
    tables = {f"nfe/{k}": v for k, v in plot_tables(cfg, exp, long).items()}
    tables |= {f"training/{k}": v for k, v in curve_tables(cfg, exp, results).items()}
    _replace_dir(Path(plots), tables)
