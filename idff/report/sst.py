"""SST report targets: ``table_sst`` (the paper's Table 4, with per-lead columns) and ``fig_sst``.

Both read the generic sweep metric files (``results/metrics/<exp>/...``) and floor files
(persistence and climatology rows, ``results/floor/...``) of the ``sst`` experiment;
``fig_sst`` also reads one forecast file per figure variant
(``results/samples/<exp>/forecasts/<dataset>/<variant>/<solver>/nfe<nfe>_seed<seed>.npz``, written
by ``idff forecast``, rule ``sst_forecast``).

Figure settings, ``experiments.<exp>.figures.sst`` (all optional): ``variants`` (default: the
first variant), ``nfe`` (default: the largest budget of the sweep that the variant's solver
meets), ``solver`` (one name or a mapping variant -> solver; default: the variant's first
solver), ``window`` (index among the test windows, default 0), ``dataset`` (default: first).
"""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..io import atomic_path, write_text_atomic
from ..plan.core import exp_config, expected_floor_files, metric_jobs
from ..plan.sst import expected_forecast_files, figure_settings, forecast_jobs, horizon_of
from .collect import ReportInputError, floor_results, job_files, read_npz, sweep_results
from .target import Target

#: Paper Table 4 (IDFF v1, averaged over 1-7 day leads; its baseline rows are DYffusion's
#: numbers, Cachay et al. 2023): (label, CRPS, CRPS std, MSE, MSE std, NFE note).
QUOTED: tuple[tuple[str, float, float | None, float, float | None, str], ...] = (
    ("Perturbation", 0.281, None, 0.180, None, "–"),
    ("Dropout", 0.267, None, 0.164, None, "–"),
    ("DDPM", 0.246, None, 0.177, None, "–"),
    ("MCVD", 0.216, None, 0.161, None, "–"),
    ("DYffusion", 0.224, None, 0.173, None, "–"),
    ("IDFF (paper)", 0.180, 0.024, 0.105, 0.029, "5 SRK steps = 50 passes"),
)
QUOTED_SOURCE = ("IDFF paper Table 4 (daily NOAA OISST v2, 60x60 boxes, 1-7 day leads; the "
                 "baseline rows are DYffusion's numbers)")
REFERENCE_LABELS = {"persistence": "persistence (last observed field)",
                    "climatology": "climatology (training-year fields of the month/day)",
                    "climatology_mean": "climatology mean (0 anomaly)"}
RAW_UNITS = {"ostia": "K", "oisst": "°C"}
_KEY = re.compile(r"^(crps|mse|ssr|spread)(_raw)?(?:_(\d+))?$")
CSV_COLUMNS = ["dataset", "row", "kind", "variant", "method", "sampler", "solver", "nfe_budget",
               "nfe", "metric", "lead", "units", "mean", "std", "n_seeds", "source"]


# ---------------------------------------------------------------- settings and inputs












def table_inputs(cfg: dict, exp: str) -> list[str]:
    return [j["path"] for j in metric_jobs(cfg, exp)] + expected_floor_files(cfg, exp)


def figure_inputs(cfg: dict, exp: str) -> list[str]:
    return table_inputs(cfg, exp) + expected_forecast_files(cfg, exp)


# ---------------------------------------------------------------- loading


def _scores(obj: dict, path: Path, prefix: str = "") -> list[tuple[str, int, bool, float]]:
    """(metric, lead (0 = average), raw units?, value) of every score key in ``obj``."""
    out = []
    for key, value in obj.items():
        if not key.startswith(prefix):
            continue
        m = _KEY.match(key[len(prefix):])
        if m is None:
            continue
        try:
            v = float("nan") if value is None else float(value)
        except (TypeError, ValueError) as exc:
            raise ReportInputError(f"result file {path}: {key} = {value!r} is not a number") from exc
        out.append((m.group(1), int(m.group(3) or 0), bool(m.group(2)), v))
    return out


def load_runs(cfg: dict, exp: str, results: str | Path, target: str) -> pd.DataFrame:
    """One record per (metric file, NFE budget, metric, lead, units)."""
    records = []
    for job, path, obj, rows in sweep_results(cfg, exp, results, target, ("nfe_budget", "crps")):
        for nfe, row in rows.items():
            base = {"dataset": job["dataset"], "variant": job["variant"], "method": obj["method"],
                    "sampler": obj["sampler"], "solver": job["solver"], "seed": int(job["seed"]),
                    "nfe_budget": nfe, "nfe": float(row.get("nfe", math.nan))}
            records += [{**base, "metric": m, "lead": lead, "raw": raw, "value": v}
                        for m, lead, raw, v in _scores(row, path)]
    return pd.DataFrame.from_records(records)


def load_references(cfg: dict, exp: str, results: str | Path, target: str) -> pd.DataFrame:
    """Persistence and climatology scores from the floor files (one record per score)."""
    records = []
    for ds, seed, path, obj in floor_results(cfg, exp, results, target):
        for ref in REFERENCE_LABELS:
            scores = _scores(obj, path, prefix=f"{ref}.")
            if not scores:
                raise ReportInputError(f"result file {path} has no {ref} scores: it was not "
                                       f"written by the SST family's floor; delete it and rerun")
            records += [{"dataset": ds, "seed": seed, "reference": ref, "metric": m,
                         "lead": lead, "raw": raw, "value": v} for m, lead, raw, v in scores]
    return pd.DataFrame.from_records(records)


def _stats(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    g = df.groupby(keys, sort=False)["value"]
    return g.agg(mean="mean", std="std", n_seeds="count").reset_index()


# ---------------------------------------------------------------- formatting


def fmt(x: float, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.{digits}f}" if abs(x) >= 10 ** -digits or x == 0 else f"{x:.2e}"


def _cell(mean: float, std: float, n: int, n_total: int) -> str:
    text = fmt(mean)
    if n > 1 and math.isfinite(std):
        text += f" ± {fmt(std)}"
    if 0 < n < n_total:
        text += f" (n={n})"
    return text


def _md(header: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1))
             + "|"] + ["| " + " | ".join(r) + " |" for r in rows] + [""])


def _tex(text: str) -> str:
    table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
             "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "±": r"$\pm$",
             "²": r"$^2$", "°": r"$^\circ$", "–": "--"}
    return "".join(table.get(ch, ch) for ch in text)


def _label(e: dict, variant: str) -> str:
    return e["variants"][variant].get("label") or variant


# ---------------------------------------------------------------- the table


def table_rows(cfg: dict, exp: str, runs: pd.DataFrame, refs: pd.DataFrame
               ) -> list[dict[str, Any]]:
    """Rows of the table per data set (quoted, references, models), each with its cells:
    ``cells[(metric, lead, raw)] = (mean, std, n_seeds)``."""
    e = exp_config(cfg, exp)
    rows: list[dict[str, Any]] = []
    for ds in e["datasets"]:
        for label, crps, crps_sd, mse, mse_sd, note in QUOTED:
            rows.append({"dataset": ds, "row": f"{label} (quoted)", "kind": "quoted",
                         "nfe_text": note, "nfe": math.nan, "variant": "", "method": "",
                         "sampler": "", "solver": "", "nfe_budget": None,
                         "cells": {("crps", 0, False): (crps, crps_sd or math.nan, 1),
                                   ("mse", 0, False): (mse, mse_sd or math.nan, 1)}})
        sub = refs[refs["dataset"] == ds]
        for ref, label in REFERENCE_LABELS.items():
            st = _stats(sub[sub["reference"] == ref], ["metric", "lead", "raw"])
            rows.append({"dataset": ds, "row": label, "kind": "reference", "nfe_text": "0",
                         "nfe": 0.0, "variant": ref, "method": "", "sampler": "", "solver": "",
                         "nfe_budget": None,
                         "cells": {(r.metric, int(r.lead), bool(r.raw)): (r.mean, r.std,
                                                                          int(r.n_seeds))
                                   for r in st.itertuples()}})
        sub = runs[runs["dataset"] == ds]
        keys = ["variant", "solver", "nfe_budget"]
        for (variant, solver, nfe_budget), grp in sub.groupby(keys, sort=False):
            st = _stats(grp, ["metric", "lead", "raw"])
            rows.append({"dataset": ds, "row": f"{_label(e, variant)} ({solver})",
                         "kind": "ours", "nfe_text": str(int(nfe_budget)),
                         "nfe": float(grp["nfe"].mean()), "variant": variant,
                         "method": grp["method"].iloc[0], "sampler": grp["sampler"].iloc[0],
                         "solver": solver, "nfe_budget": int(nfe_budget),
                         "cells": {(r.metric, int(r.lead), bool(r.raw)): (r.mean, r.std,
                                                                          int(r.n_seeds))
                                   for r in st.itertuples()}})
    return rows


def _get(row: dict, metric: str, lead: int = 0, raw: bool = False, n_total: int = 1) -> str:
    c = row["cells"].get((metric, lead, raw))
    if c is None:
        return "–"
    if row["kind"] == "quoted":  # the paper's ± (over its runs) where it gives one
        return fmt(c[0]) + (f" ± {fmt(c[1])}" if math.isfinite(c[1]) else "")
    return _cell(c[0], c[1], c[2], n_total)


def describe(cfg: dict, exp: str, target: str) -> list[str]:
    e = exp_config(cfg, exp)
    d = e["data"]
    horizon = horizon_of(cfg, exp)
    pairing = d.get("pairing", "direct")
    how = ("direct: every lead h is generated from the last observed field with the lead label "
           "h - 1 (DYffusion's setting)" if pairing == "direct" else
           f"autoregressive: each lead from the previous generated field (label: {d.get('cond', 'lead')})")
    noise = d.get("x0_noise", 0.0)
    lines = [
        f"# {target}: SST forecasting, experiment `{exp}` (family sst)",
        "",
        f"Probabilistic forecasts of 1 to {horizon} steps ahead, {d.get('n_members', 20)} "
        f"ensemble members per forecast window, on the test years "
        f"({d.get('test_years', 'the source default')}; "
        f"{d.get('n_windows') or 'all'} windows). Forecasts: {how}. Members differ through the "
        f"sampler's noise (stochastic samplers) and, where set, a Gaussian perturbation of the "
        f"initial field (x0_noise: {noise}). Seeds: {', '.join(map(str, e['seeds']))}; cells are "
        f"mean ± sample std (ddof 1) over seeds. NFE = network forward passes per generated "
        f"field, i.e. per lead step (a {horizon}-step forecast costs {horizon}× that); the "
        f"measured count is in the CSV. Sampler parameters with a grid were chosen per NFE on "
        f"the validation years by CRPS.",
        "",
        "Metrics over ocean points (lower is better for CRPS and MSE; SSR is best near 1): "
        "`crps` = CRPS of the empirical ensemble distribution; `mse` = squared error of the "
        "ensemble mean; `ssr` = spread (sqrt of the mean member variance, ddof 1) / RMSE of the "
        "ensemble mean. Averages are the plain means of the per-lead values. Units: "
        "**standardised anomalies** (units of the training-year standard deviation of the month "
        "or day of year, as DYffusion); the [K]/[°C] columns are the same scores in raw units.",
        "",
    ]
    for ds in e["datasets"]:
        if ds == "ostia":
            lines += [f"**{ds}: not comparable with the quoted rows.** Our numbers here are on the "
                      f"offline monthly OSTIA field (iris-sample-data, 16×16 boxes of an equatorial "
                      f"band, monthly steps, so a lead is one month, and a per-month box-pooled "
                      f"standard deviation from 2-3 training years), not the paper's daily NOAA "
                      f"OISST 60×60 boxes; the quoted rows are shown only to place the format.", ""]
        else:
            lines += [f"**{ds}**: daily NOAA OISST boxes as configured (DYffusion's setting: 11 "
                      f"eastern tropical Pacific 60×60 boxes, train 1982-2018, test 2020); the "
                      f"quoted rows are in the same units but from other code and data handling.",
                      ""]
    lines += [f"Quoted rows: {QUOTED_SOURCE}. The IDFF code counted 5 SRK steps (50 network passes "
              f"per generated field) as its budget. Persistence and climatology are run here on "
              f"the same windows.", ""]
    return lines


def render_markdown(cfg: dict, exp: str, target: str, rows: list[dict]) -> str:
    e = exp_config(cfg, exp)
    n_total, horizon = len(e["seeds"]), horizon_of(cfg, exp)
    lines = describe(cfg, exp, target)
    for ds in e["datasets"]:
        unit = RAW_UNITS.get(ds, "raw")
        mine = [r for r in rows if r["dataset"] == ds]
        lines += [f"## {ds}: averaged over leads 1-{horizon}", ""]
        body = [[r["row"], r["nfe_text"], _get(r, "crps", n_total=n_total),
                 _get(r, "mse", n_total=n_total), _get(r, "ssr", n_total=n_total),
                 _get(r, "crps", 0, True, n_total), _get(r, "mse", 0, True, n_total)] for r in mine]
        lines += _md(["method", "NFE per lead", "CRPS", "MSE", "SSR", f"CRPS [{unit}]",
                      f"MSE [{unit}²]"], body)
        for metric, name in (("crps", "CRPS"), ("mse", "MSE"), ("ssr", "SSR")):
            lines += [f"### {ds}: {name} per lead (standardised units)", ""]
            body = [[r["row"], r["nfe_text"]] + [_get(r, metric, lead, n_total=n_total)
                                                 for lead in range(1, horizon + 1)]
                    for r in mine if r["kind"] != "quoted"]
            lines += _md(["method", "NFE"] + [f"lead {h}" for h in range(1, horizon + 1)], body)
    return "\n".join(lines)


def render_latex(cfg: dict, exp: str, target: str, rows: list[dict]) -> str:
    e = exp_config(cfg, exp)
    n_total, horizon = len(e["seeds"]), horizon_of(cfg, exp)
    out = [f"% {target}: experiment {exp}, written by idff.report.sst; needs booktabs",
           "% standardised units; mean $\\pm$ std over seeds; NFE per lead step", ""]
    for ds in e["datasets"]:
        mine = [r for r in rows if r["dataset"] == ds]
        note = (" Ours: offline monthly OSTIA field, not comparable with the quoted rows."
                if ds == "ostia" else "")
        out += [r"\begin{table}[ht]", r"\centering",
                rf"\caption{{SST forecasting ({_tex(ds)}): CRPS, MSE and SSR averaged over leads "
                rf"1--{horizon}, standardised units, mean $\pm$ std over {n_total} seed(s); "
                rf"quoted rows from the IDFF paper (Table 4).{note}}}",
                rf"\label{{tab:{target.replace('_', '-')}-{ds}}}",
                r"\begin{tabular}{lrrrr}", r"\toprule",
                r"Method & NFE & CRPS & MSE & SSR \\", r"\midrule"]
        for r in mine:
            cells = [_get(r, m, n_total=n_total) for m in ("crps", "mse", "ssr")]
            out.append(" & ".join(_tex(x) for x in [r["row"], r["nfe_text"], *cells]) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table}", "",
                r"\begin{table}[ht]", r"\centering",
                rf"\caption{{SST forecasting ({_tex(ds)}): CRPS per lead (standardised units).}}",
                rf"\label{{tab:{target.replace('_', '-')}-{ds}-lead}}",
                rf"\begin{{tabular}}{{ll{'r' * horizon}}}", r"\toprule",
                "Method & NFE & " + " & ".join(str(h) for h in range(1, horizon + 1)) + r" \\",
                r"\midrule"]
        for r in (r for r in mine if r["kind"] != "quoted"):
            cells = [_get(r, "crps", h, n_total=n_total) for h in range(1, horizon + 1)]
            out.append(" & ".join(_tex(x) for x in [r["row"], r["nfe_text"], *cells]) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)


def long_table(rows: list[dict]) -> pd.DataFrame:
    records = []
    for r in rows:
        for (metric, lead, raw), (mean, std, n) in r["cells"].items():
            records.append({
                "dataset": r["dataset"], "row": r["row"], "kind": r["kind"],
                "variant": r["variant"], "method": r["method"], "sampler": r["sampler"],
                "solver": r["solver"], "nfe_budget": r["nfe_budget"], "nfe": r["nfe"],
                "metric": metric, "lead": "avg" if lead == 0 else str(lead),
                "units": RAW_UNITS.get(r["dataset"], "raw") if raw else "standardised",
                "mean": mean, "std": std, "n_seeds": n,
                "source": QUOTED_SOURCE if r["kind"] == "quoted" else "this run"})
    df = pd.DataFrame.from_records(records, columns=CSV_COLUMNS)
    df["nfe_budget"] = df["nfe_budget"].astype("Int64")
    return df


def table_sst(target: str, cfg: dict, exp: str, results: str | Path,
              out: str | Path) -> list[Path]:
    """Write ``out`` (.md) with .csv and .tex beside it."""
    out = Path(out)
    if out.suffix not in (".md", ".csv", ".tex"):
        raise ValueError(f"table output {out} must end in .md, .csv or .tex")
    paths = {s: out.with_suffix(s) for s in (".md", ".csv", ".tex")}
    rows = table_rows(cfg, exp, load_runs(cfg, exp, results, target),
                      load_references(cfg, exp, results, target))
    with atomic_path(paths[".csv"], suffix=".csv") as tmp:
        long_table(rows).to_csv(tmp, index=False, float_format="%.8g")
    write_text_atomic(paths[".md"], render_markdown(cfg, exp, target, rows) + "\n")
    write_text_atomic(paths[".tex"], render_latex(cfg, exp, target, rows))
    return [paths[".md"], paths[".csv"], paths[".tex"]]


# ---------------------------------------------------------------- the figure


def load_forecast(path: Path) -> dict[str, Any]:
    arrays = read_npz(path, ("context", "truth", "mean", "spread", "land", "info"), "forecast",
                      "forecast", every=True)
    if arrays["truth"].shape != arrays["mean"].shape or arrays["truth"].ndim != 3:
        raise ReportInputError(f"forecast file {path}: truth {arrays['truth'].shape} and mean "
                               f"{arrays['mean'].shape} must both be [leads, H, W]")
    arrays["info"] = json.loads(str(arrays["info"]))
    return arrays


def _save_png(fig: Any, out: Path) -> Path:
    """Atomic RGB PNG (not palette-quantised: two colour maps share the figure)."""
    if out.suffix.lower() != ".png":
        raise ValueError(f"figure output {out} must be a .png file")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight", facecolor="white")
    with atomic_path(out, suffix=".png") as tmp:
        tmp.write_bytes(buf.getvalue())
    return out


def load_forecasts(cfg: dict, exp: str, results: str | Path, target: str
                   ) -> tuple[dict[str, Any], list[dict[str, Any]], list[Path], list[dict[str, Any]]]:
    """The SST figure's settings, its forecast jobs, their files and what each file holds."""
    jobs = forecast_jobs(cfg, exp)
    paths = job_files(results, jobs, target)
    return figure_settings(cfg, exp), jobs, paths, [load_forecast(p) for p in paths]


def fig_sst(target: str, cfg: dict, exp: str, results: str | Path,
            out: str | Path) -> list[Path]:
    """Maps (truth, then ensemble mean and spread per variant) over the leads of one test
    window, and CRPS / MSE against the lead per method (mean ± std over seeds)."""
    out = Path(out)
    e = exp_config(cfg, exp)
    s, jobs, _, fc = load_forecasts(cfg, exp, results, target)
    runs = load_runs(cfg, exp, results, target)
    refs = load_references(cfg, exp, results, target)
    horizon = fc[0]["truth"].shape[0]
    ds = s["dataset"]

    nrow_map = 1 + 2 * len(fc)
    fig = Figure(figsize=(1.55 * (horizon + 1) + 1.2, 1.45 * nrow_map + 3.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.45 * nrow_map, 3.0])
    axes = top.subplots(nrow_map, horizon + 1, squeeze=False)
    land = fc[0]["land"].astype(bool)
    truth = np.where(land, np.nan, fc[0]["truth"])
    ctx = np.where(land, np.nan, fc[0]["context"])
    vmax = float(np.nanmax(np.abs(np.concatenate([truth.ravel(), ctx.ravel()])))) or 1.0
    smax = max(float(np.nanmax(np.where(land, np.nan, f["spread"]))) for f in fc) or 1.0
    map_rows = [("truth", None, truth, "RdBu_r", (-vmax, vmax))]
    for f, j in zip(fc, jobs, strict=True):
        lab = _label(e, j["variant"])
        map_rows.append((f"{lab}: mean", j, np.where(land, np.nan, f["mean"]), "RdBu_r",
                         (-vmax, vmax)))
        map_rows.append((f"{lab}: spread", j, np.where(land, np.nan, f["spread"]), "viridis",
                         (0.0, smax)))
    csv: list[dict[str, Any]] = []
    info = fc[0]["info"]
    unit = "month" if info.get("step") == "month" else "day"
    ims = {}
    for r, (name, job, arr, cmap, lim) in enumerate(map_rows):
        ax0 = axes[r][0]
        if r == 0:
            ims["div"] = ax0.imshow(ctx, cmap=cmap, vmin=lim[0], vmax=lim[1], origin="lower")
            ax0.set_title(f"observed\n{info['context_time']}", fontsize=7)
        ax0.axis("off")
        ax0.text(-0.08, 0.5, name, transform=ax0.transAxes, ha="right", va="center",
                 fontsize=7, wrap=True)
        for h in range(horizon):
            ax = axes[r][h + 1]
            im = ax.imshow(arr[h], cmap=cmap, vmin=lim[0], vmax=lim[1], origin="lower")
            ims["seq" if cmap == "viridis" else "div"] = im
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"+{h + 1} {unit}{'s' if h else ''}\n{info['target_times'][h]}", fontsize=7)
            csv.append({"panel": "map", "row": name, "variant": job["variant"] if job else "truth",
                        "solver": job["solver"] if job else "", "nfe": s["nfe"] if job else "",
                        "lead": h + 1, "metric": "field_mean_abs" if cmap != "viridis"
                        else "spread_mean", "mean": float(np.nanmean(np.abs(arr[h]))),
                        "std": float(np.nanstd(arr[h])), "n_seeds": 1})
    top.colorbar(ims["div"], ax=axes[:, -1].tolist(), shrink=0.5, label="anomaly [std units]")
    top.colorbar(ims["seq"], ax=axes[-1, 1:].tolist(), location="bottom", shrink=0.4,
                 aspect=40, label="ensemble spread [std units]")

    lax = bottom.subplots(1, 2)
    leads = np.arange(1, horizon + 1)
    sub = runs[(runs["dataset"] == ds) & (~runs["raw"]) & (runs["lead"] > 0)
               & (runs["nfe_budget"] == s["nfe"])]
    for ax, metric, name in ((lax[0], "crps", "CRPS"), (lax[1], "mse", "MSE of ensemble mean")):
        m = sub[sub["metric"] == metric]
        for i, ((variant, solver), grp) in enumerate(m.groupby(["variant", "solver"], sort=False)):
            st = _stats(grp, ["lead"]).sort_values("lead")
            y, sd = st["mean"].to_numpy(float), np.nan_to_num(st["std"].to_numpy(float))
            ax.plot(st["lead"], y, marker="o", markersize=3, color=f"C{i % 10}",
                    label=f"{_label(e, variant)} ({solver}, NFE {s['nfe']})")
            ax.fill_between(st["lead"], y - sd, y + sd, color=f"C{i % 10}", alpha=0.15, lw=0)
            csv += [{"panel": "lead", "row": f"{variant} ({solver})", "variant": variant,
                     "solver": solver, "nfe": s["nfe"], "lead": int(r.lead), "metric": metric,
                     "mean": r.mean, "std": r.std, "n_seeds": int(r.n_seeds)}
                    for r in st.itertuples()]
        rsub = refs[(refs["dataset"] == ds) & (~refs["raw"]) & (refs["lead"] > 0)
                    & (refs["metric"] == metric)]
        for ref, style in (("persistence", "--"), ("climatology", ":"),
                           ("climatology_mean", "-.")):
            st = _stats(rsub[rsub["reference"] == ref], ["lead"]).sort_values("lead")
            ax.plot(st["lead"], st["mean"], color="0.35", linestyle=style, label=ref)
            csv += [{"panel": "lead", "row": ref, "variant": ref, "solver": "", "nfe": 0,
                     "lead": int(r.lead), "metric": metric, "mean": r.mean, "std": r.std,
                     "n_seeds": int(r.n_seeds)} for r in st.itertuples()]
        ax.set_xticks(leads)
        ax.set_xlabel(f"lead time [{unit}s]", fontsize=8)
        ax.set_ylabel(f"{name} [std units]", fontsize=8)
        ax.grid(True, alpha=0.3, linewidth=0.6)
        ax.tick_params(labelsize=7)
    lax[1].legend(fontsize=6, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))

    members = info.get("n_members")
    caption = (
        f"**{target}** (experiment `{exp}`, data set {ds}). Top: one test window (box "
        f"{info['box_id']}, last observed {unit} {info['context_time']}, window {s['window']}): "
        f"the observed field, the truth at leads 1-{horizon}, and for each variant the ensemble "
        f"mean and spread (std over {members} members, ddof 1) at NFE {s['nfe']} per lead step, "
        f"seed {s['seed']}; standardised anomalies (training-year std units), land blank. "
        f"Bottom: CRPS and MSE of the ensemble mean against the lead time on the test windows, "
        f"mean ± std over seeds {', '.join(map(str, e['seeds']))}, with persistence and "
        f"climatology (same windows) in grey."
        + (" Monthly OSTIA steps: a lead is one month; not comparable with the paper's daily "
           "OISST." if ds == "ostia" else "")
        + " Numbers: the CSV beside this figure.")
    png = _save_png(fig, out)
    csv_path, cap_path = out.with_suffix(".csv"), out.with_name(out.stem + ".caption.md")
    with atomic_path(csv_path, suffix=".csv") as tmp:
        pd.DataFrame.from_records(csv).to_csv(tmp, index=False, float_format="%.8g")
    write_text_atomic(cap_path, caption + "\n")
    return [png, csv_path, cap_path]


TARGETS: dict[str, Target] = {
    "table_sst": Target("sst", table_sst, table_inputs,
                        "SST forecasting (paper Table 4 analogue): CRPS, MSE and SSR averaged over "
                        "leads 1-7 and per lead, persistence and climatology rows, the paper's "
                        "rows quoted and marked (CSV, Markdown, LaTeX)."),
    "fig_sst": Target("sst", fig_sst, figure_inputs,
                      "SST forecasting: truth vs ensemble mean vs spread over the leads of one "
                      "test window, and CRPS / MSE against the lead per method."),
}
