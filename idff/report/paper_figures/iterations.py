"""Fig. 3A: the NFE a method needs to reach a fixed quality, as training goes on.

The job ``idff iter-eval`` (rule ``iter_eval``, ``idff.steps.iterations``) evaluates the EMA weights the trainer kept every ``train.keep_every`` steps (and the final
checkpoint) at every NFE budget of the figure; ``fig_nfe_vs_iterations`` applies the
threshold, so changing it redraws the figure without evaluating anything again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from ...plan.core import exp_config
from ...plan.figures import iteration_jobs, iterations_settings
from ..collect import ReportInputError, job_files, read_result
from ..render import fmt_sig, save_figure
from ..tables import metric_info

ROW_KEYS = ("step", "nfe_budget", "nfe")
THRESHOLD_STYLE = {"color": "black", "linestyle": ":", "linewidth": 1.6}


# ------------------------------------------------------------------------------ loading


def load_iterations(cfg: dict, exp: str, results: str | Path, target: str) -> pd.DataFrame:
    """One row per (file, kept step, NFE budget): dataset, variant, solver, seed, step,
    nfe_budget, nfe and the threshold metric (``value``). Stale files are errors."""
    s = iterations_settings(cfg, exp)
    metric = s["threshold_metric"]
    jobs = iteration_jobs(cfg, exp)
    paths = job_files(results, jobs, target)
    records = []
    for job, path in zip(jobs, paths, strict=True):
        obj = read_result(path)
        for key in ("dataset", "variant", "solver", "seed", "rows", "steps", "split"):
            if key not in obj:
                raise ReportInputError(f"result file {path} lacks key {key!r}; it was not written "
                                       f"by `idff iter-eval`: rerun")
        for key in ("dataset", "variant", "solver", "seed"):
            if obj[key] != job[key]:
                raise ReportInputError(f"result file {path} holds {key} {obj[key]!r}, but its path "
                                       f"says {job[key]!r}; delete it and rerun its job")
        budgets = s["budgets"][job["variant"]]
        if obj["steps"] != s["steps"] or obj["split"] != s["split"]:
            raise ReportInputError(f"result file {path} holds steps {obj['steps']} on the "
                                   f"{obj['split']} split; the config asks for {s['steps']} on "
                                   f"{s['split']}: it is stale, rerun `snakemake {target}`")
        seen = set()
        for row in obj["rows"]:
            missing = [k for k in (*ROW_KEYS, metric) if k not in row]
            if missing:
                raise ReportInputError(f"result file {path}: a row lacks {missing}; the "
                                       f"threshold metric must be one the family evaluates")
            if int(row["nfe_budget"]) not in budgets:
                continue
            seen.add((int(row["step"]), int(row["nfe_budget"])))
            value = row[metric]
            records.append({"dataset": job["dataset"], "variant": job["variant"],
                            "solver": job["solver"], "seed": int(job["seed"]),
                            "step": int(row["step"]), "nfe_budget": int(row["nfe_budget"]),
                            "nfe": float(row["nfe"]),
                            "value": float("nan") if value is None else float(value)})
        lacking = [(st, n) for st in s["steps"] for n in budgets if (st, n) not in seen]
        if lacking:
            raise ReportInputError(f"result file {path} has no rows for (step, NFE budget) "
                                   f"{lacking[:3]}; it is stale: rerun `snakemake {target}`")
    return pd.DataFrame.from_records(records)


def nfe_to_threshold(runs: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per (dataset, variant, solver, seed, step): the smallest measured NFE whose metric is at
    or below ``threshold`` (NaN when no budget reaches it; a NaN metric never does)."""
    out = []
    keys = ["dataset", "variant", "solver", "seed", "step"]
    for key, grp in runs.groupby(keys, sort=False):
        grp = grp.sort_values("nfe")
        ok = grp[grp["value"] <= threshold]
        out.append({**dict(zip(keys, key, strict=True)),
                    "nfe_to_threshold": float(ok["nfe"].iloc[0]) if len(ok) else float("nan"),
                    "max_nfe": float(grp["nfe"].max())})
    return pd.DataFrame.from_records(out)


# ------------------------------------------------------------------------------- figure


def fig_nfe_vs_iterations(target: str, cfg: dict, exp: str, results: str | Path,
                          out: str | Path) -> list[Path]:
    """Top: smallest NFE reaching the threshold vs training step (median and range over
    seeds, single seeds as dots). Bottom: the threshold metric vs step at the smallest and the
    largest budget (mean ± std over seeds), the threshold dotted."""
    e = exp_config(cfg, exp)
    s = iterations_settings(cfg, exp)
    runs = load_iterations(cfg, exp, results, target)
    reach = pd.concat([nfe_to_threshold(runs[runs["dataset"] == ds], float(thr))
                       for ds, thr in s["thresholds"].items()])
    info = metric_info(s["threshold_metric"])
    unit = info.unit or ("data units" if s["threshold_metric"] == "w2" else "")

    def thr_text(ds: str) -> str:
        return (f"{info.name} ≤ {fmt_sig(s['thresholds'][ds] * info.scale)}"
                + (f" {unit}" if unit else ""))

    budgets = sorted({b for v in s["variants"] for b in s["budgets"][v]})
    all_nfe = sorted({int(n) for n in runs["nfe"]})
    none_level = 2.0 ** (np.log2(max(all_nfe)) + 1)
    colors = {v: f"C{i % 10}" for i, v in enumerate(s["variants"])}
    ncol = len(s["datasets"])
    fig = Figure(figsize=(3.3 * ncol + 2.2, 6.2), layout="constrained")
    axes = fig.subplots(2, ncol, squeeze=False, sharex="col")
    csv: list[dict[str, Any]] = []
    steps = np.array(s["steps"], float)
    jitter = {v: (i - (len(s["variants"]) - 1) / 2) * 0.012 * steps.max()
              for i, v in enumerate(s["variants"])}
    for c, ds in enumerate(s["datasets"]):
        top, bottom = axes[0][c], axes[1][c]
        for v in s["variants"]:
            sub = reach[(reach["dataset"] == ds) & (reach["variant"] == v)]
            med, lo, hi, n_ok = [], [], [], []
            for st in s["steps"]:
                vals = sub[sub["step"] == st]["nfe_to_threshold"].to_numpy(float)
                plot_vals = np.where(np.isfinite(vals), vals, none_level)
                # the upper median: an observed budget (or 'none'), also for an even seed count
                med.append(float(np.quantile(plot_vals, 0.5, method="higher")))
                lo.append(float(plot_vals.min()))
                hi.append(float(plot_vals.max()))
                n_ok.append(int(np.isfinite(vals).sum()))
                top.scatter(np.full(len(vals), st + jitter[v]), plot_vals, s=9,
                            color=colors[v], alpha=0.45, linewidths=0, zorder=2)
                finite = vals[np.isfinite(vals)]
                csv.append({"panel": "nfe_to_threshold", "dataset": ds, "variant": v,
                            "solver": s["solvers"][v], "step": st, "nfe_budget": "",
                            "median": med[-1] if med[-1] < none_level else float("nan"),
                            "mean": float(finite.mean()) if len(finite) else float("nan"),
                            "std": float(finite.std(ddof=1)) if len(finite) > 1 else float("nan"),
                            "min": float(finite.min()) if len(finite) else float("nan"),
                            "max": float(finite.max()) if len(finite) else float("nan"),
                            "n_seeds": len(vals), "n_reached": n_ok[-1],
                            "threshold": s["thresholds"][ds]})
            top.plot(steps + jitter[v], med, color=colors[v], marker="o", markersize=3.5,
                     linewidth=1.5, zorder=3)
            top.fill_between(steps + jitter[v], lo, hi, color=colors[v], alpha=0.15, linewidth=0)
            grid = runs[(runs["dataset"] == ds) & (runs["variant"] == v)]
            for budget, style in ((min(s["budgets"][v]), "--"), (max(s["budgets"][v]), "-")):
                cur = grid[grid["nfe_budget"] == budget].groupby("step")["value"]
                mean, std = cur.mean(), cur.std(ddof=1).fillna(0.0)
                x = mean.index.to_numpy(float)
                y = mean.to_numpy(float) * info.scale
                sd = std.to_numpy(float) * info.scale
                bottom.plot(x, y, color=colors[v], linestyle=style, marker="o", markersize=2.5,
                            linewidth=1.3)
                bottom.fill_between(x, y - sd, y + sd, color=colors[v], alpha=0.12, linewidth=0)
                nfe = float(grid[grid["nfe_budget"] == budget]["nfe"].mean())
                csv += [{"panel": "metric", "dataset": ds, "variant": v, "solver": s["solvers"][v],
                         "step": int(st), "nfe_budget": budget, "nfe": nfe, "mean": m,
                         "std": float(sdv) if cur.count()[st] > 1 else float("nan"),
                         "n_seeds": int(cur.count()[st]), "threshold": s["thresholds"][ds]}
                        for st, m, sdv in zip(x, mean.to_numpy(float), std.to_numpy(float),
                                              strict=True)]
        bottom.axhline(s["thresholds"][ds] * info.scale, **THRESHOLD_STYLE)
        top.set_yscale("log", base=2)
        ticks = [*all_nfe, none_level]
        top.set_yticks(ticks, [str(n) for n in all_nfe] + [f"none ≤ {max(all_nfe)}"])
        top.minorticks_off()
        top.set_ylim(min(all_nfe) / 1.4, none_level * 1.4)
        top.set_title(f"{ds}: reach {thr_text(ds)}", fontsize=9.5)
        for ax in (top, bottom):
            ax.grid(True, alpha=0.3, linewidth=0.6)
            ax.tick_params(labelsize=8)
        bottom.set_xlabel("training step (optimiser steps)", fontsize=9)
        shown = runs[runs["dataset"] == ds]["value"]
        if (shown > 0).all() and s["thresholds"][ds] > 0 and shown.max() / shown.min() > 20:
            bottom.set_yscale("log")  # early snapshots are orders of magnitude worse
            bottom.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        if c == 0:
            top.set_ylabel("NFE to reach the threshold\n(network forward passes)", fontsize=9)
            bottom.set_ylabel(f"{info.name}" + (f" [{unit}]" if unit else "") + f" ({s['split']})",
                              fontsize=9)
    handles = [Line2D([], [], color=colors[v], marker="o", markersize=3.5,
                      label=f"{e['variants'][v].get('label') or v} ({s['solvers'][v]})")
               for v in s["variants"]]
    handles += [Line2D([], [], color="0.3", linestyle="--", label="smallest budget (bottom)"),
                Line2D([], [], color="0.3", linestyle="-", label="largest budget (bottom)"),
                Line2D([], [], label="threshold (bottom)", **THRESHOLD_STYLE)]
    n_seeds = len(s["seeds"])
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False,
               title=f"{n_seeds} seed(s)", title_fontsize=8)
    train = e["train"]
    n_eval = s["n_samples"] or (e.get("tune", {}).get("n_samples") if s["split"] == "val"
                                else None) or e["sweep"]["n_samples"]
    labels = ", ".join(f"{e['variants'][v].get('label') or v} (`{v}`)" for v in s["variants"])
    caption = (
        f"**{target}** (experiment `{exp}`, the paper's Fig. 3A): the number of network forward "
        f"passes (NFE, measured) a sampler needs to reach "
        f"{'; '.join(f'{thr_text(ds)} on {ds}' for ds in s['datasets'])} "
        f"on the {s['split']} split, "
        f"against the training step, for {labels}. Each network was trained for "
        f"{train['steps']} steps (batch {train['batch_size']}, EMA decay "
        f"{train.get('ema_decay', 0.999)}); its EMA weights kept every {s['keep_every']} steps "
        f"were evaluated at the NFE budgets {budgets} with {n_eval} samples per evaluation; "
        f"tuned samplers use the parameters chosen on validation for the final network. Top: "
        f"median over seeds {', '.join(map(str, s['seeds']))} (line; the upper one for an "
        f"even number of seeds), range over seeds (band), "
        f"single seeds (dots, slightly shifted sideways per method); a seed whose samples "
        f"never reach the threshold within the largest budget sits on the 'none' row. Bottom: "
        f"{info.name} against the step at each method's smallest (dashed) and largest (solid) "
        f"budget, mean ± std over seeds, the threshold dotted black. Numbers: the CSV beside "
        f"this figure.")
    return save_figure(fig, out, pd.DataFrame.from_records(csv), caption)
