"""Fig. 3B: sample quality over the sampler's parameters, from the tuning step's own grid.

The tune job (``results/tuned/...``) already scores every grid point on the validation split
at every NFE budget; this figure draws that grid at one budget: a heat map over two parameters
of one variant (gamma_1 x gamma_2 of order 2; any further parameter held at each seed's chosen
value) and a line over one parameter of another (sigma_s of order 1). The chosen point is
marked, and the test-split value at it (the sweep's row at that budget) is shown beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from ...plan.core import exp_config
from ...plan.figures import gamma_jobs, gamma_settings
from ..collect import ReportInputError, read_result, require, resolve
from ..render import fmt_sig, save_figure
from ..tables import metric_info

PARAM_NAMES = {"gamma1": "γ₁", "gamma2": "γ₂", "gamma3": "γ₃", "sigma_s": "σ_s"}


def param_label(name: str) -> str:
    return f"{PARAM_NAMES.get(name, name)} (sampler parameter, dimensionless)"


def load_gamma(cfg: dict, exp: str, results: str | Path,
               target: str) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Grid rows (panel, dataset, seed, params JSON, value, chosen) and chosen rows (panel,
    dataset, seed, params, val, test) at the figure's NFE; and the tune metric's name."""
    s = gamma_settings(cfg, exp)
    nfe = str(s["nfe"])
    jobs = gamma_jobs(cfg, exp)
    paths = [(resolve(results, j["tuned"]), resolve(results, j["metrics"])) for j in jobs]
    require([p for pair in paths for p in pair], target)
    grid, chosen, metrics = [], [], set()
    for job, (tpath, mpath) in zip(jobs, paths, strict=True):
        tuned = read_result(tpath)
        for key in ("dataset", "variant", "solver", "seed"):
            if key in tuned and tuned[key] != job[key]:
                raise ReportInputError(f"tuned file {tpath} holds {key} {tuned[key]!r}, but its "
                                       f"path says {job[key]!r}; delete it and rerun its job")
        per = (tuned.get("per_nfe") or {}).get(nfe)
        if not isinstance(per, dict) or "grid" not in per or "best" not in per:
            raise ReportInputError(f"tuned file {tpath} has no grid at NFE {nfe}; it is stale or "
                                   f"not an `idff tune` output: rerun `snakemake {target}`")
        metric = tuned.get("metric", "mmd")
        metrics.add(metric)
        for row in per["grid"]:
            value = row.get("value")
            grid.append({"panel": job["panel"], "dataset": job["dataset"], "seed": job["seed"],
                         "params": json.dumps(row["params"], sort_keys=True),
                         "value": float("inf") if value is None else float(value),
                         "chosen": row["params"] == per["best"]})
        sweep = read_result(mpath)
        rows = [r for r in sweep.get("rows", []) if int(r.get("nfe_budget", -1)) == int(nfe)]
        if not rows or metric not in rows[0]:
            raise ReportInputError(f"result file {mpath} has no {metric} at NFE budget {nfe}; it "
                                   f"is stale: rerun `snakemake {target}`")
        if (rows[0].get("params") or {}) != per["best"]:
            raise ReportInputError(f"result file {mpath} was sampled with {rows[0].get('params')} "
                                   f"at NFE {nfe}, but {tpath} chose {per['best']}: one of them "
                                   f"is stale; rerun `snakemake {target}`")
        test = rows[0][metric]
        chosen.append({"panel": job["panel"], "dataset": job["dataset"], "seed": job["seed"],
                       "variant": job["variant"], "solver": job["solver"],
                       "params": json.dumps(per["best"], sort_keys=True),
                       "val": float(per.get("best_value", float("nan"))),
                       "test": float("nan") if test is None else float(test),
                       "nfe": float(rows[0].get("nfe", nfe))})
    if len(metrics) > 1:
        raise ReportInputError(f"the tuned files of {target} use different metrics "
                               f"{sorted(metrics)}; rerun the tune jobs with one tune.metric")
    return pd.DataFrame.from_records(grid), pd.DataFrame.from_records(chosen), metrics.pop()


def _slice(grid: pd.DataFrame, chosen: dict, axes: tuple[str, ...]) -> pd.DataFrame:
    """Grid rows whose parameters other than ``axes`` equal the chosen ones."""
    keep = []
    for text in grid["params"]:
        p = json.loads(text)
        keep.append(all(p[k] == chosen[k] for k in p if k not in axes))
    out = grid[np.array(keep, bool)].copy()
    for a in axes:
        out[a] = [json.loads(t)[a] for t in out["params"]]
    return out


def _stat_text(values: np.ndarray, scale: float) -> str:
    v = values[np.isfinite(values)] * scale
    if not len(v):
        return "n/a"
    return fmt_sig(float(v.mean())) + (f" ± {fmt_sig(float(v.std(ddof=1)))}" if len(v) > 1 else "")


def fig_gamma(target: str, cfg: dict, exp: str, results: str | Path,
              out: str | Path) -> list[Path]:
    """Rows = data sets; columns = the heat map (validation value over two parameters, mean
    over seeds, chosen points starred) and the line (validation value over one parameter)."""
    e = exp_config(cfg, exp)
    s = gamma_settings(cfg, exp)
    grid, chosen, metric = load_gamma(cfg, exp, results, target)
    info = metric_info(metric)
    unit = info.unit or ("data units" if metric == "w2" else "")
    mlabel = f"{info.name}" + (f" [{unit}]" if unit else "")
    panels = s["panels"]
    kinds = list(panels)
    nrow = len(s["datasets"])
    fig = Figure(figsize=(4.9 * len(kinds) + 1.6, 3.7 * nrow + 0.4), layout="constrained")
    axes = fig.subplots(nrow, len(kinds), squeeze=False)
    csv: list[dict[str, Any]] = []
    for r, ds in enumerate(s["datasets"]):
        for c, kind in enumerate(kinds):
            ax = axes[r][c]
            p = panels[kind]
            label = e["variants"][p["variant"]].get("label") or p["variant"]
            g = grid[(grid["dataset"] == ds) & (grid["panel"] == kind)]
            ch = chosen[(chosen["dataset"] == ds) & (chosen["panel"] == kind)]
            axes_names = (p["x"], p["y"]) if kind == "heatmap" else (p["x"],)
            parts = []
            for seed in s["seeds"]:
                best = json.loads(ch[ch["seed"] == seed]["params"].iloc[0])
                part = _slice(g[g["seed"] == seed], best, axes_names)
                parts.append(part)
            sl = pd.concat(parts)
            sl["value"] = sl["value"].where(np.isfinite(sl["value"]), np.nan)  # diverged: NaN
            nfe = float(ch["nfe"].mean())
            test_text = _stat_text(ch["test"].to_numpy(float), info.scale)
            if kind == "heatmap":
                xs = sorted(sl[p["x"]].unique())
                ys = sorted(sl[p["y"]].unique())
                mean = sl.groupby([p["y"], p["x"]])["value"].mean()
                z = np.full((len(ys), len(xs)), np.nan)
                for (yv, xv), val in mean.items():
                    z[ys.index(yv), xs.index(xv)] = val * info.scale
                finite = z[np.isfinite(z)]
                lo = float(finite.min()) if len(finite) else 0.0
                hi = float(finite.max()) if len(finite) else 1.0
                q = float(np.quantile(finite, 0.9)) if len(finite) > 4 else hi
                clip = hi - lo > 3 * (q - lo) > 0  # a few bad points would wash out the rest
                norm = Normalize(lo, q if clip else max(hi, lo + 1e-12))
                cmap = colormaps["viridis_r"].with_extremes(bad="0.8")
                im = ax.imshow(np.ma.masked_invalid(z), origin="lower", cmap=cmap, norm=norm,
                               aspect="auto", interpolation="nearest")
                ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs])
                ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys])
                small = len(xs) * len(ys) <= 100
                for i in range(len(ys)):
                    for j in range(len(xs)):
                        val = z[i, j]
                        if not small:
                            continue
                        text = "div." if not np.isfinite(val) else fmt_sig(val, 3)
                        dark = np.isfinite(val) and norm(val) > 0.55
                        ax.text(j, i, text, ha="center", va="center", fontsize=6.5,
                                color="white" if dark else "black")
                counts: dict[tuple, int] = {}
                for text in ch["params"]:
                    b = json.loads(text)
                    k = (xs.index(b[p["x"]]), ys.index(b[p["y"]]))
                    counts[k] = counts.get(k, 0) + 1
                for (j, i), n in counts.items():  # frame the cell: its value stays readable
                    ax.add_patch(Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False,
                                           edgecolor="red", linewidth=2.0))
                    ax.plot(j - 0.36, i + 0.33, marker="*", markersize=9, color="red")
                    if len(s["seeds"]) > 1:
                        ax.text(j - 0.28, i + 0.33, f"×{n}", color="red", fontsize=7,
                                ha="left", va="center")
                ax.set_xlabel(param_label(p["x"]), fontsize=9)
                ax.set_ylabel(param_label(p["y"]), fontsize=9)
                cb = fig.colorbar(im, ax=ax, shrink=0.9, extend="max" if clip else "neither")
                cb.set_label(f"validation {mlabel}", fontsize=8)
                cb.ax.tick_params(labelsize=7)
                for (yv, xv), val in mean.items():
                    csv.append({"dataset": ds, "panel": kind, "variant": p["variant"],
                                "solver": p["solver"], "nfe_budget": s["nfe"], "nfe": nfe,
                                p["x"]: xv, p["y"]: yv, "split": "val", "metric": metric,
                                "mean": val, "n_seeds": int(sl[(sl[p["x"]] == xv)
                                                               & (sl[p["y"]] == yv)]["value"]
                                                            .notna().sum())})
            else:
                x = p["x"]
                for part in parts:
                    part = part.sort_values(x)
                    vals = part["value"].where(np.isfinite(part["value"]), np.nan)
                    ax.plot(part[x], vals * info.scale, color="C0", alpha=0.35, linewidth=0.9)
                mean = sl.groupby(x)["value"].mean().sort_index()
                ax.plot(mean.index, mean.to_numpy(float) * info.scale, color="C0", marker="o",
                        markersize=3.5, linewidth=1.8)
                for row in ch.itertuples():
                    b = json.loads(row.params)
                    ax.plot(b[x], row.val * info.scale, marker="*", markersize=14,
                            markerfacecolor="none", markeredgecolor="red", markeredgewidth=1.6)
                    ax.plot(b[x], row.test * info.scale, marker="D", markersize=6, color="C3")
                ax.set_xlabel(param_label(x), fontsize=9)
                ax.set_ylabel(f"{mlabel}", fontsize=9)
                ax.grid(True, alpha=0.3, linewidth=0.6)
                for xv, val in mean.items():
                    csv.append({"dataset": ds, "panel": kind, "variant": p["variant"],
                                "solver": p["solver"], "nfe_budget": s["nfe"], "nfe": nfe,
                                x: xv, "split": "val", "metric": metric, "mean": val,
                                "n_seeds": int(sl[sl[x] == xv]["value"].notna().sum())})
            for row in ch.itertuples():
                csv.append({"dataset": ds, "panel": kind, "variant": p["variant"],
                            "solver": p["solver"], "nfe_budget": s["nfe"], "nfe": row.nfe,
                            "split": "test (at chosen)", "metric": metric, "mean": row.test,
                            "seed": row.seed, "chosen": row.params, "val_at_chosen": row.val})
            ax.tick_params(labelsize=8)
            ax.set_title(f"{ds}: {label} ({p['solver']}, NFE {nfe:g})\n"
                         f"test {info.name} at ★: {test_text}" + (f" {unit}" if unit else ""),
                         fontsize=9)
    handles = [Line2D([], [], marker="*", markersize=12, markerfacecolor="none",
                      markeredgecolor="red", linestyle="none",
                      label="chosen on validation (per seed; heat map: framed cell)"),
               Line2D([], [], color="C0", marker="o", markersize=3.5,
                      label="validation, mean over seeds"),
               Line2D([], [], color="C0", alpha=0.35, label="validation, single seeds"),
               Line2D([], [], color="C3", marker="D", markersize=6, linestyle="none",
                      label="test split at the chosen value")]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    seeds = ", ".join(map(str, s["seeds"]))
    n_val = e.get("tune", {}).get("n_samples", e["sweep"]["n_samples"])
    desc = "; ".join(
        f"{kind}: {e['variants'][p['variant']].get('label') or p['variant']} (`{p['variant']}`) "
        f"over {' x '.join(PARAM_NAMES.get(p[a], p[a]) for a in ('x', 'y') if a in p)}"
        for kind, p in panels.items())
    scaled = ", ×10⁻³" if info.scale == 1e3 else ""
    caption = (
        f"**{target}** (experiment `{exp}`, the paper's Fig. 3B): {info.name} ({info.short}) of "
        f"the samples on the validation split ({n_val} samples) over the sampler's parameters, "
        f"at a budget of {s['nfe']} network forward passes (NFE), as scored by the tuning step "
        f"(grid from the config: `experiments.{exp}.variants.<variant>.tune`). {desc}. Heat "
        f"maps show the mean over seeds {seeds} (cell labels: the values{scaled}; grey: "
        f"diverged), further parameters held at each seed's chosen value; lines show single "
        f"seeds and their mean. Red stars (framed cells in the heat maps): the values chosen "
        f"on validation (one per seed; ×n when n seeds chose the same); red diamonds and the "
        f"panel titles: the test-split value of the sweep at the chosen point "
        f"({e['sweep']['n_samples']} samples), mean ± std over seeds. Lower is better. "
        f"Numbers: the CSV beside this figure.")
    return save_figure(fig, out, pd.DataFrame.from_records(csv), caption, colors=None)
