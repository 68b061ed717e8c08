"""Figures as PNG: quality vs NFE (``fig_nfe``) and the toy orders figure (paper Fig. 2).

Figures are built on ``matplotlib.figure.Figure`` (Agg canvas, no pyplot state), so they can be
made from any thread or process without a display.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter

from ..data.toy import toy_split
from ..metrics.distribution import mmd2_rbf
from ..plan.core import exp_config, family_metrics, sample_jobs, toy_orders_settings
from .collect import job_files, load_floor, load_metrics, load_samples
from .render import fmt_sig, save_figure
from .tables import aggregate, metric_info

NFE_DEFAULTS: dict[str, Any] = {"metrics": ["w2", "mmd"], "yscale": {"w2": "log"}}
SOLVER_STYLES = {"euler": "-", "midpoint": "--", "heun": "-.", "rk4": ":", "ssprk3": (0, (3, 1)),
                 "euler_maruyama": (0, (5, 1, 1, 1))}
FLOOR_STYLE = {"color": "0.35", "linestyle": (0, (4, 3)), "linewidth": 1.2}








def _minor_label(v: float, _pos: object = None) -> str:
    mantissa = v / 10 ** np.floor(np.log10(v) + 1e-9)
    return f"{v:g}" if round(mantissa) in (2, 3, 5) and abs(mantissa - round(mantissa)) < 1e-6 else ""


def _label(exp: dict, variant: str) -> str:
    return exp["variants"][variant].get("label") or variant


def nfe_settings(cfg: dict, exp: str) -> dict[str, Any]:
    given = exp_config(cfg, exp).get("figures", {}).get("nfe", {})
    s = {**NFE_DEFAULTS, **given}
    valid = family_metrics(cfg, exp)
    for m in s["metrics"]:
        if m not in valid:
            raise ValueError(f"config key experiments.{exp}.figures.nfe.metrics: unknown metric "
                             f"{m!r}; valid: {', '.join(valid)}")
    return s


def fig_nfe(target: str, cfg: dict, exp: str, results: str | Path, out: str | Path) -> list[Path]:
    """Quality vs measured NFE: rows = metrics, columns = data sets, a curve per variant/solver.

    Mean over seeds with a ±1 std band; the target floor as a dashed line.
    """
    s = nfe_settings(cfg, exp)
    metrics = tuple(s["metrics"])
    e = exp_config(cfg, exp)
    runs = load_metrics(cfg, exp, results, target)
    floor = load_floor(cfg, exp, results, target)
    long = aggregate(runs, floor, metrics)
    datasets = list(runs["dataset"].unique())
    curves = long[long["variant"] != "floor"]
    keys = list(dict.fromkeys(zip(curves["variant"], curves["solver"], strict=True)))
    variants = list(dict.fromkeys(v for v, _ in keys))
    colors = {v: f"C{i % 10}" for i, v in enumerate(variants)}
    nrow, ncol = len(metrics), len(datasets)
    fig = Figure(figsize=(2.9 * ncol + 0.4, 2.5 * nrow + 0.3), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False)
    budgets = sorted({int(n) for n in curves["nfe_budget"].dropna()})
    for r, m in enumerate(metrics):
        info = metric_info(m)
        for c, ds in enumerate(datasets):
            ax = axes[r][c]
            sub = curves[(curves["dataset"] == ds) & (curves["metric"] == m)]
            for v, solver in keys:
                cur = sub[(sub["variant"] == v) & (sub["solver"] == solver)]
                # budgets that cost the same passes (heun 1 and 2) are the same run: plot once
                cur = cur.sort_values("nfe_budget").drop_duplicates("nfe").sort_values("nfe")
                if cur.empty:
                    continue
                x = cur["nfe"].to_numpy(float)
                y = cur["mean"].to_numpy(float) * info.scale
                sd = np.nan_to_num(cur["std"].to_numpy(float)) * info.scale
                style = SOLVER_STYLES.get(solver, "-")
                ax.plot(x, y, color=colors[v], linestyle=style, marker="o", markersize=3,
                        linewidth=1.4)
                ax.fill_between(x, y - sd, y + sd, color=colors[v], alpha=0.15, linewidth=0)
            fl = long[(long["variant"] == "floor") & (long["dataset"] == ds)
                      & (long["metric"] == m)]
            if not fl.empty:
                ax.axhline(float(fl["mean"].iloc[0]) * info.scale, **FLOOR_STYLE)
            ax.set_xscale("log", base=2)
            if budgets:
                ax.set_xticks(budgets, [str(b) for b in budgets])
                ax.minorticks_off()
            yscale = s["yscale"].get(m, "linear")
            if yscale == "log" and (sub["mean"] > 0).all() and (fl["mean"] > 0).all():
                # a band reaching <= 0 would stretch a log axis down without limit: clip it
                lows = list(sub["mean"] * info.scale) + list(fl["mean"] * info.scale)
                highs = (sub["mean"] + sub["std"].fillna(0)) * info.scale
                ax.set_yscale("log")
                lo, hi = min(lows) / 1.5, max(list(highs) + lows) * 1.3
                ax.set_ylim(lo, hi)
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                # label minor ticks 2, 3, 5 (x 10^k) only when few decade labels are visible
                ax.yaxis.set_minor_formatter(FuncFormatter(_minor_label)
                                             if np.log10(hi / lo) < 1.5 else NullFormatter())
            ax.grid(True, alpha=0.3, linewidth=0.6)
            ax.tick_params(which="both", labelsize=8)
            if r == 0:
                ax.set_title(ds, fontsize=10)
            if r == nrow - 1:
                ax.set_xlabel("NFE (network forward passes)", fontsize=9)
            if c == 0:
                unit = f" [{info.unit or 'data units'}]" if info.unit or m == "w2" else ""
                ax.set_ylabel(f"{info.name}{unit}", fontsize=9)
    handles = [Line2D([], [], color=colors[v], linestyle=SOLVER_STYLES.get(sv, "-"), marker="o",
                      markersize=3, label=f"{_label(e, v)} ({sv})") for v, sv in keys]
    if floor is not None:
        handles.append(Line2D([], [], label="target floor", **FLOOR_STYLE))
    n_seeds = len(e["seeds"])
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False,
               title=f"mean ± std, {n_seeds} seed(s)", title_fontsize=8)
    names = ", ".join(f"{metric_info(m).name} ({metric_info(m).short})" for m in metrics)
    caption = (f"**{target}** (experiment `{exp}`): sample quality against the number of network "
               f"forward passes (NFE, measured; log axis) on the test split, one panel per data "
               f"set (columns) and metric (rows: {names}). One curve per variant (colour) and "
               f"solver (line style): mean over seeds {', '.join(map(str, e['seeds']))} with a "
               f"±1 sample-std band, {e['sweep']['n_samples']} samples per seed"
               + ("; dashed: the target floor (a target draw against another of the same size)"
                  if floor is not None else "") + ". Numbers: the CSV beside this figure.")
    return save_figure(fig, out, long, caption)


# ---------------------------------------------------------------- toy orders (Fig. 2)


def plot_limits(truth: np.ndarray, pad: float = 0.12) -> tuple[tuple[float, float], tuple[float, float]]:
    lo, hi = np.percentile(truth, [0.5, 99.5], axis=0)
    span = float(max(hi - lo))
    mid = (lo + hi) / 2
    half = span / 2 * (1 + 2 * pad)
    return (mid[0] - half, mid[0] + half), (mid[1] - half, mid[1] + half)


def density_grid(truth: np.ndarray, lims, levels=(0.1, 0.4, 0.75), n_fit: int = 1500,
                 bw_scale: float = 0.7):
    """A Gaussian KDE of the truth on a grid, and contour levels at its density quantiles.

    The contour at quantile q encloses roughly a (1 - q) share of the target's mass. Scott's
    bandwidth is narrowed (``bw_scale``): at full width thin shapes (spirals) smear into rings.
    """
    # scipy.stats: slow to import, only the KDE contours need it
    from scipy.stats import gaussian_kde

    rng = np.random.default_rng(0)
    sub = truth[rng.permutation(len(truth))[:n_fit]]
    kde = gaussian_kde(sub.T)
    kde.set_bandwidth(kde.factor * bw_scale)
    xx, yy = np.meshgrid(np.linspace(*lims[0], 90), np.linspace(*lims[1], 90))
    dens = kde(np.vstack([xx.ravel(), yy.ravel()])).reshape(xx.shape)
    return xx, yy, dens, np.unique(np.quantile(kde(sub[:500].T), levels))


def mmd_of(samples: np.ndarray, truth: np.ndarray) -> float:
    """MMD² (RBF, bandwidth 1) as in the tables; NaN when the samples hold NaN or inf."""
    try:
        return mmd2_rbf(samples, truth)
    except ValueError:
        return float("nan")


def mmd_text(value: float) -> str:
    if not np.isfinite(value):
        return "MMD² n/a (non-finite samples)"
    return f"MMD² {fmt_sig(value * 1e3)} ×10⁻³"


def fig_toy_orders(target: str, cfg: dict, exp: str, results: str | Path,
                   out: str | Path) -> list[Path]:
    """Rows = data sets; columns = truth, then each variant: final samples, the truth's
    KDE contours and a dozen trajectories (first seed, one NFE)."""
    e = exp_config(cfg, exp)
    if e["family"] != "toy":
        raise ValueError(f"{target} draws 2D toy samples; experiment {exp!r} has family "
                         f"{e['family']!r}")
    s = toy_orders_settings(cfg, exp)
    jobs = sample_jobs(cfg, exp)
    paths = dict(zip([(j["dataset"], j["variant"]) for j in jobs], job_files(results, jobs, target),
                     strict=True))
    datasets, variants = e["datasets"], s["variants"]
    ncol = len(variants) + 1
    fig = Figure(figsize=(2.1 * ncol, 2.25 * len(datasets) + 0.3), layout="constrained")
    axes = fig.subplots(len(datasets), ncol, squeeze=False)
    n_traj = int(s["n_trajectories"])
    rows: list[dict] = []
    for r, ds in enumerate(datasets):
        loaded = {v: load_samples(paths[(ds, v)]) for v in variants}
        n = len(next(iter(loaded.values()))[0])
        truth = toy_split(ds, "test", n, s["seed"]).numpy()
        lims = plot_limits(truth)
        xx, yy, dens, levels = density_grid(truth, lims)
        panels = [("truth (test split)", f"n = {n}", truth, None)]
        for v in variants:
            samples, traj = loaded[v]
            mmd = mmd_of(samples, truth)
            rows.append({"dataset": ds, "variant": v, "label": _label(e, v),
                         "solver": s["solvers"][v], "nfe": s["nfe"], "seed": s["seed"],
                         "n_samples": len(samples), "steps": traj.shape[0] - 1, "mmd": mmd,
                         "n_nonfinite": int((~np.isfinite(samples).all(axis=1)).sum())})
            panels.append((f"{_label(e, v)}, NFE {s['nfe']}", mmd_text(mmd), samples, traj))
        for c, (title, sub, pts, traj) in enumerate(panels):
            ax = axes[r][c]
            finite = pts[np.isfinite(pts).all(axis=1)]
            # solid, non-antialiased dots: same look as faint alpha dots at a third of the bytes
            ax.scatter(finite[:, 0], finite[:, 1], s=1.0, color="0.45", linewidths=0,
                       antialiased=False, rasterized=True)
            ax.contour(xx, yy, dens, levels=levels, colors="tab:blue", linewidths=0.8, alpha=0.9)
            if traj is not None and n_traj > 0:
                idx = np.linspace(0, traj.shape[1] - 1, min(n_traj, traj.shape[1])).astype(int)
                for i in idx:
                    path = traj[:, i, :]
                    ax.plot(path[:, 0], path[:, 1], color="tab:red", linewidth=0.9, alpha=0.85)
                    ax.plot(path[0, 0], path[0, 1], "o", color="tab:red", markersize=2)
                    ax.plot(path[-1, 0], path[-1, 1], "^", color="k", markersize=3)
            ax.set_xlim(*lims[0])
            ax.set_ylim(*lims[1])
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{title}\n{sub}", fontsize=8.5)
            if c == 0:
                ax.set_ylabel(ds, fontsize=10)
    solvers = sorted(set(s["solvers"].values()))
    caption = (f"Final samples (grey), KDE contours of the test target (blue), {n_traj} "
               f"trajectories from noise (red dot) to sample (black triangle); seed {s['seed']}, "
               f"solver {', '.join(solvers)}, MMD² with RBF bandwidth 1")
    fig.suptitle(textwrap.fill(caption, width=int(28 * ncol)), fontsize=8.5)
    labels = ", ".join(_label(e, v) for v in variants)
    text = (f"**{target}** (experiment `{exp}`, the paper's Fig. 2): {labels} at NFE {s['nfe']} "
            f"(network forward passes) on each data set (rows), against the truth (first "
            f"column: the held-out test split). {caption}; the MMD² of each panel is computed "
            f"against the test draw of the same size shown in the first column. Numbers: the "
            f"CSV beside this figure.")
    return save_figure(fig, out, pd.DataFrame.from_records(rows), text, dpi=110, colors=64)
