"""Metric tables: a long CSV, Markdown pivots and booktabs LaTeX, all from the same numbers.

Per data set and metric one pivot: rows "variant (solver)", columns NFE budgets, cells
mean ± sample std (ddof 1) over seeds, a "target floor" row, the lowest mean per column in bold.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path, write_text_atomic
from ..plan.core import exp_config, family_metrics, has_floor
from .collect import load_floor, load_metrics
from .render import fmt_sig, md_table, stat_cell, table_paths, tex_escape

CSV_COLUMNS = ["dataset", "variant", "method", "sampler", "solver", "nfe_budget", "nfe", "vjp",
               "metric", "mean", "std", "n_seeds", "wall_s"]
FLOOR_LABEL = "target floor"


@dataclass(frozen=True)
class MetricInfo:
    name: str        # plain-text / Markdown name
    latex: str
    scale: float     # displayed value = value * scale
    unit: str        # Markdown unit note, "" for none
    unit_latex: str
    about: str       # what the implementation is, for the header
    short: str = ""  # a few words for figure captions


METRIC_INFO: dict[str, MetricInfo] = {
    "w2": MetricInfo("W2", "$W_2$", 1.0, "", "",
                     "exact 2-Wasserstein distance between the two empirical measures "
                     "(POT `ot.emd2` on squared Euclidean costs, then the square root)",
                     "exact W2, POT"),
    "mmd": MetricInfo("MMD²", "MMD$^2$", 1e3, "×10⁻³", r"$\times 10^{-3}$",
                      "unbiased MMD² with one RBF kernel of bandwidth 1 (the paper's setting); "
                      "it can dip slightly below 0 when both sets share a distribution",
                      "unbiased, RBF bandwidth 1"),
    "mmd_biased": MetricInfo("MMD² biased", "MMD$^2_{\\mathrm{b}}$", 1e3, "×10⁻³",
                             r"$\times 10^{-3}$",
                             "biased MMD² (V-statistic, kernel diagonals included) with one RBF "
                             "kernel of bandwidth 1, the estimator of the authors' toy code; "
                             "its floor is positive (about (2 - mean kernel) / n)",
                             "biased, RBF bandwidth 1"),
    "mmd_multi": MetricInfo("MMD² multi-bandwidth", "MMD$^2_{\\mathrm{multi}}$", 1e3, "×10⁻³",
                            r"$\times 10^{-3}$",
                            "unbiased MMD² with RBF kernels averaged over bandwidths "
                            "0.25, 0.5, 1, 2, 4 × the target's median pairwise distance "
                            "(median heuristic)",
                            "unbiased, RBF at 0.25-4 x median distance"),
}


def metric_info(metric: str) -> MetricInfo:
    return METRIC_INFO.get(metric, MetricInfo(metric, tex_escape(metric), 1.0, "", "", metric,
                                              metric))




# ---------------------------------------------------------------- aggregation


def aggregate(runs: pd.DataFrame, floor: pd.DataFrame | None,
              metrics: tuple[str, ...]) -> pd.DataFrame:
    """The long table (CSV_COLUMNS): mean, std (ddof 1) and seed count per cell, floor rows last.

    ``n_seeds`` counts finite values; a diverged seed (NaN) is left out of the mean and shows
    as a lower ``n_seeds``.
    """
    keys = ["dataset", "variant", "method", "sampler", "solver", "nfe_budget"]
    grouped = runs.groupby(keys, sort=False)
    cost = grouped[["nfe", "vjp", "wall_s"]].mean()
    parts = []
    for m in metrics:
        stats = grouped[m].agg(["mean", "std", "count"]).rename(columns={"count": "n_seeds"})
        parts.append(cost.join(stats).reset_index().assign(metric=m))
    long = pd.concat(parts, ignore_index=True)
    order = {m: i for i, m in enumerate(metrics)}
    long["_ds"] = long["dataset"].map({d: i for i, d in enumerate(runs["dataset"].unique())})
    long["_m"] = long["metric"].map(order)
    long = long.sort_values(["_ds", "_m"], kind="stable").drop(columns=["_ds", "_m"])
    floors = []
    for m in metrics if floor is not None else ():
        st = floor.groupby("dataset", sort=False)[m].agg(["mean", "std", "count"])
        for ds, row in st.iterrows():
            floors.append({"dataset": ds, "variant": "floor", "method": "target",
                           "sampler": "target", "solver": "none", "metric": m,
                           "mean": row["mean"], "std": row["std"], "n_seeds": int(row["count"])})
    if floors:
        long = pd.concat([long, pd.DataFrame.from_records(floors)], ignore_index=True)
    for col in ("nfe_budget", "n_seeds"):
        long[col] = long[col].astype("Int64")
    return long[CSV_COLUMNS].reset_index(drop=True)


@dataclass
class Pivot:
    dataset: str
    metric: str
    columns: list[int]
    rows: list[tuple[str, list[tuple[float, float, int] | None]]]
    floor: tuple[float, float, int] | None
    best: set[tuple[int, int]] = field(default_factory=set)


def pivots(long: pd.DataFrame, metrics: tuple[str, ...]) -> list[Pivot]:
    """One Pivot per (data set, metric), rows in config order, best = lowest mean per column."""
    out = []
    runs = long[long["variant"] != "floor"]
    for ds in runs["dataset"].unique():
        sub = runs[runs["dataset"] == ds]
        cols = sorted(int(n) for n in sub["nfe_budget"].unique())
        for m in metrics:
            cell = sub[sub["metric"] == m]
            rows = []
            for (variant, solver), grp in cell.groupby(["variant", "solver"], sort=False):
                by_nfe = {int(r.nfe_budget): (r.mean, r.std, int(r.n_seeds))
                          for r in grp.itertuples()}
                rows.append((f"{variant} ({solver})", [by_nfe.get(c) for c in cols]))
            fl = long[(long["variant"] == "floor") & (long["dataset"] == ds) & (long["metric"] == m)]
            floor = None if fl.empty else (fl["mean"].iloc[0], fl["std"].iloc[0],
                                           int(fl["n_seeds"].iloc[0]))
            p = Pivot(ds, m, cols, rows, floor)
            for j in range(len(cols)):
                means = [r[1][j][0] if r[1][j] is not None else np.nan for r in rows]
                finite = [v for v in means if math.isfinite(v)]
                if finite:
                    best = min(finite)
                    p.best |= {(i, j) for i, v in enumerate(means)
                               if math.isfinite(v) and math.isclose(v, best, rel_tol=1e-12)}
            out.append(p)
    return out


# ---------------------------------------------------------------- Markdown




def describe_run(cfg: dict, exp: str, target: str, metrics: tuple[str, ...]) -> list[str]:
    """The header paragraph: what was run and how it was scored."""
    e = exp_config(cfg, exp)
    seeds = e["seeds"]
    n = e["sweep"]["n_samples"]
    tune = e.get("tune", {})
    variants = "; ".join(
        f"`{v}` = method {d['method']}, sampler {d['sampler']}"
        + (f" ({d['label']})" if d.get("label") else "")
        + (f", tuned {sorted(d['tune'])}" if d.get("tune") else "")
        for v, d in e["variants"].items())
    lines = [
        f"# {target}: experiment `{exp}` (family {e['family']})",
        "",
        f"Data sets: {', '.join(e['datasets'])}. Variants: {variants}. "
        f"Seeds: {', '.join(map(str, seeds))}: every cell is the mean ± sample standard deviation "
        f"(ddof 1) over the {len(seeds)} seed(s), each seed with its own trained network "
        f"(n=k marks cells where only k seeds gave a finite value). "
        f"Each seed draws {n} samples on the test split and scores them against {n} held-out "
        f"test points. NFE budgets swept: {', '.join(map(str, e['sweep']['nfe']))}. "
        f"NFE = network forward passes on the batch, measured by counting calls (the columns are "
        f"the budgets; the measured count is in the cost table and the CSV). The higher-order IDFF "
        f"samplers (idff2, idff3) also take autograd vector-Jacobian passes, which are not forward "
        f"passes and are listed separately (vjp). Sampler hyper-parameters with a grid were chosen "
        f"per NFE on the validation split by {tune.get('metric', 'mmd')}"
        + (f" ({tune['n_samples']} samples)" if tune.get("n_samples") else "") + ".",
        "",
        "Metrics (lower is better; the best mean per column is in bold):",
        "",
    ]
    for m in metrics:
        info = metric_info(m)
        unit = (f"; tables show it in units of {info.unit.lstrip('×')} (a cell of 1.5 means "
                f"1.5 {info.unit})") if info.unit else ""
        lines.append(f"- `{m}` ({info.name}): {info.about}{unit}.")
    lines.append("")
    if has_floor(cfg, exp):
        lines += [f"`{FLOOR_LABEL}`: a test draw against another independent target draw of the "
                  f"same size ({n}); what a perfect sampler scores at this sample size.", ""]
    return lines


def render_markdown(long: pd.DataFrame, runs: pd.DataFrame, cfg: dict, exp: str, target: str,
                    metrics: tuple[str, ...]) -> str:
    n_total = len(exp_config(cfg, exp)["seeds"])
    lines = describe_run(cfg, exp, target, metrics)
    piv = pivots(long, metrics)
    for ds in runs["dataset"].unique():
        lines += [f"## {ds}", ""]
        lines += _cost_table(runs[runs["dataset"] == ds])
        lines += params_table(runs[runs["dataset"] == ds])
        for p in (p for p in piv if p.dataset == ds):
            info = metric_info(p.metric)
            unit = f" ({info.unit})" if info.unit else ""
            lines += [f"### {ds}: {info.name}{unit}, `{p.metric}`", ""]
            body = []
            for i, (label, stats) in enumerate(p.rows):
                cells = [stat_cell(s, n_total, info.scale) for s in stats]
                cells = [f"**{c}**" if (i, j) in p.best else c for j, c in enumerate(cells)]
                body.append([label] + cells)
            if p.floor is not None:
                body.append([FLOOR_LABEL] + [stat_cell(p.floor, n_total, info.scale)] * len(p.columns))
            lines += md_table(["variant (solver)"] + [f"NFE {c}" for c in p.columns], body)
            lines.append("")
    return "\n".join(lines)


def _num(x: float) -> str:
    return str(int(round(x))) if math.isfinite(x) and abs(x - round(x)) < 1e-9 else fmt_sig(x)


def cost_cells(runs: pd.DataFrame) -> tuple[list[int], list[list[str]]]:
    """NFE budgets and, per (variant, solver), one cell per budget: measured forward passes
    (+ autograd VJP passes) and sampling wall time, mean over seeds (shared by every family's
    cost table)."""
    cols = sorted(int(n) for n in runs["nfe_budget"].unique())
    body = []
    for (variant, solver), grp in runs.groupby(["variant", "solver"], sort=False):
        cost = grp.groupby("nfe_budget")[["nfe", "vjp", "wall_s"]].mean()
        cells = []
        for c in cols:
            if c not in cost.index:
                cells.append("–")
                continue
            r = cost.loc[c]
            vjp = f" + {_num(r['vjp'])} vjp" if r["vjp"] > 0 else ""
            cells.append(f"{_num(r['nfe'])}{vjp}, {fmt_sig(r['wall_s'], 2)} s")
        body.append([f"{variant} ({solver})"] + cells)
    return cols, body


def _cost_table(runs: pd.DataFrame) -> list[str]:
    cols, body = cost_cells(runs)
    return (["Cost per batch: measured NFE (+ autograd VJP passes), sampling wall time "
             "(mean over seeds).", ""]
            + md_table(["variant (solver)"] + [f"NFE {c}" for c in cols], body) + [""])


def params_table(runs: pd.DataFrame) -> list[str]:
    if (runs["params"] == "{}").all():
        return []
    cols = sorted(int(n) for n in runs["nfe_budget"].unique())
    body = []
    for (variant, solver), grp in runs.groupby(["variant", "solver"], sort=False):
        if (grp["params"] == "{}").all():
            continue
        cells = []
        for c in cols:
            at = grp[grp["nfe_budget"] == c].sort_values("seed")
            seen = []
            for text in at["params"]:
                p = json.loads(text)
                s = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in p.items()) or "default"
                if s not in seen:
                    seen.append(s)
            cells.append("; ".join(seen) or "–")
        body.append([f"{variant} ({solver})"] + cells)
    return (["Sampler parameters used (chosen on the validation split; distinct values over "
             "seeds, in seed order).", ""]
            + md_table(["variant (solver)"] + [f"NFE {c}" for c in cols], body) + [""])


# ---------------------------------------------------------------- LaTeX




def render_latex(long: pd.DataFrame, cfg: dict, exp: str, target: str,
                 metrics: tuple[str, ...]) -> str:
    e = exp_config(cfg, exp)
    n_total = len(e["seeds"])
    lines = [f"% {target}: experiment {exp}, written by idff.report; needs \\usepackage{{booktabs}}",
             f"% mean $\\pm$ sample std over {n_total} seed(s); {e['sweep']['n_samples']} samples "
             "per seed; NFE = network forward passes; best mean per column in bold", ""]
    for p in pivots(long, metrics):
        info = metric_info(p.metric)
        unit = f" ({info.unit_latex})" if info.unit_latex else ""
        k = len(p.columns)
        caption = (f"{tex_escape(p.dataset)}: {info.latex}{unit}, mean $\\pm$ std over "
                   f"{n_total} seed(s), lower is better"
                   + ("; target floor: target vs.\\ an independent target draw."
                      if p.floor is not None else "."))
        lines += [r"\begin{table}[ht]", r"\centering", rf"\caption{{{caption}}}",
                  rf"\label{{tab:{tex_escape(target)}-{tex_escape(p.dataset)}-"
                  rf"{tex_escape(p.metric)}}}".replace(r"\_", "-"),
                  rf"\begin{{tabular}}{{l{'r' * k}}}", r"\toprule",
                  rf" & \multicolumn{{{k}}}{{c}}{{NFE (network forward passes)}} \\",
                  rf"\cmidrule(lr){{2-{k + 1}}}",
                  "Variant (solver) & " + " & ".join(map(str, p.columns)) + r" \\", r"\midrule"]
        for i, (label, stats) in enumerate(p.rows):
            cells = [stat_cell(s, n_total, info.scale, tex=True) for s in stats]
            cells = [rf"\textbf{{{c}}}" if (i, j) in p.best else c for j, c in enumerate(cells)]
            lines.append(" & ".join([tex_escape(label)] + cells) + r" \\")
        if p.floor is not None:
            lines += [r"\midrule", " & ".join([FLOOR_LABEL.capitalize()]
                                              + [stat_cell(p.floor, n_total, info.scale, tex=True)] * k)
                      + r" \\"]
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- target




def write_metric_table(target: str, cfg: dict, exp: str, results: str | Path,
                       out: str | Path) -> list[Path]:
    """Load the metric and floor files of ``exp`` and write ``out`` as .md, .csv and .tex."""
    paths = table_paths(out)
    metrics = family_metrics(cfg, exp)
    runs = load_metrics(cfg, exp, results, target)
    floor = load_floor(cfg, exp, results, target)
    long = aggregate(runs, floor, metrics)
    with atomic_path(paths[".csv"], suffix=".csv") as tmp:
        long.to_csv(tmp, index=False, float_format="%.8g")
    write_text_atomic(paths[".md"], render_markdown(long, runs, cfg, exp, target, metrics) + "\n")
    write_text_atomic(paths[".tex"], render_latex(long, cfg, exp, target, metrics))
    return [paths[".md"], paths[".csv"], paths[".tex"]]
