"""Image targets: FID-vs-NFE tables (CIFAR-10, CelebA-64), sample grids and FID-vs-NFE curves.

Numbers from the test feature extractor (``idff-tiny-test``) or from a stand-in data set are not
comparable with published FIDs: a table holding any such number is marked "NOT COMPARABLE" as a
whole, and published (quoted) numbers are then never put into its tables, CSV or LaTeX (they
are listed in a separate section of the Markdown only, with that warning). NFE is always the
number of network forward passes; the paper's "NFE 10" were 10 SRK steps = 100 passes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatter

from ..io import atomic_path, write_text_atomic
from ..plan.core import exp_config, expected_floor_files, metric_jobs
from ..plan.images import image_experiments, sample_inputs, sample_jobs
from .collect import ReportInputError, floor_results, job_files, sweep_results
from .figures import FLOOR_STYLE, SOLVER_STYLES
from .render import md_table, save_png, stat_cell, table_paths, tex_escape
from .tables import aggregate, cost_cells, params_table
from .target import Target

METRICS = ("fid", "kid", "isc")
HIGHER_IS_BETTER = {"isc"}
METRIC_NAMES = {"fid": "FID", "kid": "KID", "isc": "IS"}
METRIC_SCALE = {"fid": 1.0, "kid": 1e3, "isc": 1.0}
METRIC_UNIT = {"kid": "×10⁻³"}
TINY = "idff-tiny-test"
STAND_IN_OF = {"offline_cifar": "cifar10", "offline_faces": "celeba"}
DATASET_NAMES = {"cifar10": "CIFAR-10 (32×32)", "celeba": "CelebA-64",
                 "offline_cifar": "offline_cifar (stand-in for CIFAR-10)",
                 "offline_faces": "offline_faces (stand-in for CelebA-64)"}
PAPER_NFE_NOTE = ("The paper's \"NFE 10\" is 10 solver steps of torchsde's SRK scheme, which calls "
                  "the network 10 times per step: 100 forward passes (30 distinct).")
QUOTED_MARKERS = ("*", "P", "X", "D", "^", "v", "s", "p")


@dataclass(frozen=True)
class Quoted:
    label: str
    fid: str  # as published (its own precision)
    nfe_reported: str
    passes: int | None  # network forward passes, None when unknown / adaptive
    source: str

    @property
    def value(self) -> float:
        return float(self.fid.split()[-1])


QUOTED: dict[str, list[Quoted]] = {
    "cifar10": [
        Quoted("IDFF, authors' README (v1 code)", "5.87", "NFE 10 = 10 SRK steps", 100,
               "IDFF GitHub README; docs/method.md §7"),
        Quoted("IDFF, paper v4 abstract", "2.78", "10 NFE (the paper counts solver steps)", None,
               "arXiv 2409.14599 v4; no code for this model: 100 passes if SRK as in the code"),
        Quoted("DPM-Solver-v3", "2.51", "NFE 10", 10, "docs/method.md §7 (anchor)"),
        Quoted("UniPC", "3.87", "NFE 10", 10, "docs/method.md §7 (anchor)"),
        Quoted("DPM-Solver", "4.70", "NFE 10", 10, "docs/method.md §7 (anchor)"),
        Quoted("EDM (Heun)", "1.97", "35 NFE", 35, "docs/method.md §7 (anchor)"),
        Quoted("OT-CFM (adaptive dopri5)", "about 3.5", "adaptive", None, "docs/method.md §7 (anchor)"),
    ],
    "celeba": [
        Quoted("IDFF, authors' README (v1 code)", "11.83", "NFE 10 = 10 SRK steps", 100,
               "IDFF GitHub README; docs/method.md §7"),
    ],
}


# ---------------------------------------------------------------------- config and inputs




def _data(e: dict) -> dict:
    return e.get("data") or {}


def not_comparable_reason(cfg: dict, exp: str) -> str | None:
    """Why the numbers of ``exp`` cannot be set beside published FIDs (None: they can)."""
    e = exp_config(cfg, exp)
    extractor = _data(e).get("feature_extractor", "inception-v3-compat")
    if extractor == TINY:
        return (f"test feature extractor ({TINY}, a fixed random conv net, not Inception-v3): "
                "these are not FIDs in the published sense")
    stand_ins = [d for d in e["datasets"] if d in STAND_IN_OF]
    if stand_ins:
        return (f"stand-in data set(s) {', '.join(stand_ins)} (offline photos/faces, not "
                f"{', '.join(DATASET_NAMES[STAND_IN_OF[d]] for d in stand_ins)})")
    return None


def table_inputs(cfg: dict, exp: str) -> list[str]:
    return [j["path"] for j in metric_jobs(cfg, exp)] + expected_floor_files(cfg, exp)


def nfe_figure_inputs(cfg: dict, exp: str) -> list[str]:
    return [p for x in image_experiments(cfg) for p in table_inputs(cfg, x)]










# ---------------------------------------------------------------------- loading


def load_image_metrics(cfg: dict, exp: str, results: str | Path,
                       target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sweep rows (one per file and NFE budget) and floor rows of an image experiment."""
    need = ("nfe_budget", "nfe", "vjp", "wall_s", "comparable") + METRICS
    records = []
    for job, path, obj, rows in sweep_results(cfg, exp, results, target, need):
        for nfe, row in rows.items():
            records.append({"dataset": job["dataset"], "variant": job["variant"],
                            "method": obj["method"], "sampler": obj["sampler"],
                            "solver": job["solver"], "seed": int(job["seed"]),
                            "nfe_budget": nfe, "nfe": float(row["nfe"]),
                            "vjp": float(row["vjp"]), "wall_s": float(row["wall_s"]),
                            "params": json.dumps(row.get("params") or {}, sort_keys=True),
                            "n_samples": _num(row.get("n_samples"), "n_samples", path),
                            "comparable": _num(row["comparable"], "comparable", path),
                            **{m: _num(row[m], m, path) for m in METRICS}})
    floors = [{"dataset": ds, "seed": seed,
               "n_samples": _num(obj.get("n_samples"), "n_samples", path),
               "comparable": _num(obj["comparable"], "comparable", path),
               **{m: _num(obj[m], m, path) for m in METRICS}}
              for ds, seed, path, obj in floor_results(cfg, exp, results, target,
                                                     ("comparable",) + METRICS)]
    return pd.DataFrame.from_records(records), pd.DataFrame.from_records(floors)


def _num(value: Any, key: str, path: Path) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ReportInputError(f"result file {path}: {key} = {value!r} is not a number") from exc


def comparability(cfg: dict, exp: str, runs: pd.DataFrame, floors: pd.DataFrame) -> str | None:
    """None when every number is comparable with published FIDs, else the reason."""
    reason = not_comparable_reason(cfg, exp)
    flags = pd.concat([runs["comparable"], floors["comparable"]])
    if reason is None and not (flags == 1).all():
        reason = "some result files were computed with a non-Inception feature extractor"
    return reason


# ---------------------------------------------------------------------- tables


def _pivot(long: pd.DataFrame, ds: str, metric: str) -> tuple[list[int], list[tuple]]:
    """Columns (NFE budgets) and rows (label, [(mean, std, n) | None per column])."""
    sub = long[(long["dataset"] == ds) & (long["metric"] == metric)
               & (long["source"] == "measured")]
    cols = sorted(int(n) for n in sub["nfe_budget"].unique())
    rows = []
    for (variant, solver), grp in sub.groupby(["variant", "solver"], sort=False):
        by = {int(r.nfe_budget): (r.mean, r.std, int(r.n_seeds)) for r in grp.itertuples()}
        rows.append((f"{variant} ({solver})", [by.get(c) for c in cols]))
    return cols, rows


def _best(rows: list[tuple], j: int, metric: str) -> float | None:
    vals = [r[1][j][0] for r in rows if r[1][j] is not None and math.isfinite(r[1][j][0])]
    if not vals:
        return None
    return max(vals) if metric in HIGHER_IS_BETTER else min(vals)


def _floor_stat(long: pd.DataFrame, ds: str, metric: str) -> tuple | None:
    fl = long[(long["variant"] == "floor") & (long["dataset"] == ds) & (long["metric"] == metric)]
    if fl.empty:
        return None
    return fl["mean"].iloc[0], fl["std"].iloc[0], int(fl["n_seeds"].iloc[0])


def quoted_for(dataset: str) -> list[Quoted]:
    return QUOTED.get(dataset, [])


def describe(cfg: dict, exp: str, target: str, runs: pd.DataFrame, floors: pd.DataFrame,
             reason: str | None) -> list[str]:
    e = exp_config(cfg, exp)
    d = _data(e)
    seeds = e["seeds"]
    n_test = sorted({int(x) for x in runs["n_samples"].dropna()})
    n_floor = sorted({int(x) for x in floors["n_samples"].dropna()})
    extractor = d.get("feature_extractor", "inception-v3-compat")
    variants = "; ".join(f"`{v}` = method {x['method']}, sampler {x['sampler']}"
                         + (f" ({x['label']})" if x.get("label") else "")
                         + (f", tuned {sorted(x['tune'])}" if x.get("tune") else "")
                         for v, x in e["variants"].items())
    lines = [f"# {target}: image generation, experiment `{exp}`", ""]
    if reason:
        lines += [f"> **NOT COMPARABLE: {reason}.** Every number in this table is only a "
                  f"plumbing check; none may be set beside a published FID, and the published "
                  f"numbers are kept out of it (listed apart at the end).", ""]
    lines += [
        f"Data sets: {', '.join(DATASET_NAMES.get(x, x) for x in e['datasets'])}. "
        f"Variants: {variants}. Seeds: {', '.join(map(str, seeds))}: cells are mean ± sample "
        f"standard deviation (ddof 1) over seeds, each seed with its own trained network. "
        f"Each cell draws {', '.join(map(str, n_test)) or '?'} samples from N(0, I) prior noise "
        f"(the same noise for every variant and solver of a seed) and scores them with "
        f"torch-fidelity (feature extractor `{extractor}`) against the training split "
        f"(at most {d.get('n_fid_reference', 50000)} images), as in the paper's protocol. "
        f"NFE = network forward passes per sample, counted, never inferred from steps. "
        f"{PAPER_NFE_NOTE} Sampler parameters with a grid (sigma_s) were chosen per NFE on a "
        f"small validation FID ({e.get('tune', {}).get('n_samples', '?')} "
        f"samples from other noise).",
        "",
        "Metrics: FID (lower is better), KID (×10⁻³, lower is better; polynomial kernel, mean "
        "over subsets), IS (higher is better). The best mean per column is in bold. "
        f"`floor`: a held-out real set ({', '.join(map(str, n_floor)) or '?'} images: the test "
        f"split, or for stand-ins other crops / faces kept out of training) against the same "
        f"reference: what a perfect generator scores at that sample size (FID is biased "
        f"upwards at small sample counts).",
        "",
    ]
    return lines


def cost_table(runs: pd.DataFrame) -> list[str]:
    """Measured forward passes per sample and the wall time of sampling all of a cell's images."""
    cols, body = cost_cells(runs)
    n = sorted({int(x) for x in runs["n_samples"].dropna()})
    return ([f"Cost: network forward passes per sample (measured) and the wall time of sampling "
             f"all {', '.join(map(str, n)) or '?'} images (mean over seeds; metrics excluded).",
             ""] + md_table(["variant (solver)"] + [f"NFE {c}" for c in cols], body) + [""])


def render_markdown(cfg: dict, exp: str, target: str, long: pd.DataFrame, runs: pd.DataFrame,
                    floors: pd.DataFrame, reason: str | None) -> str:
    n_total = len(exp_config(cfg, exp)["seeds"])
    lines = describe(cfg, exp, target, runs, floors, reason)
    for ds in runs["dataset"].unique():
        lines += [f"## {DATASET_NAMES.get(ds, ds)}", ""]
        lines += cost_table(runs[runs["dataset"] == ds])
        lines += params_table(runs[runs["dataset"] == ds])
        for m in METRICS:
            cols, rows = _pivot(long, ds, m)
            scale = METRIC_SCALE[m]
            unit = f" ({METRIC_UNIT[m]})" if m in METRIC_UNIT else ""
            flag = " — NOT COMPARABLE" if reason else ""
            lines += [f"### {ds}: {METRIC_NAMES[m]}{unit}{flag}", ""]
            body = []
            for label, stats in rows:
                cells = []
                for j, st in enumerate(stats):
                    text = "–" if st is None else stat_cell(st, n_total, scale)
                    best = _best(rows, j, m)
                    if st is not None and best is not None and math.isfinite(st[0]) \
                            and math.isclose(st[0], best, rel_tol=1e-12):
                        text = f"**{text}**"
                    cells.append(text)
                body.append([label] + cells)
            fl = _floor_stat(long, ds, m)
            if fl is not None:
                body.append(["floor (held-out real)"] + [stat_cell(fl, n_total, scale)]
                            * len(cols))
            if m == "fid" and reason is None:
                for q in quoted_for(STAND_IN_OF.get(ds, ds)):
                    if q.passes in cols:
                        body.append([f"{q.label} (quoted)"]
                                    + [q.fid if c == q.passes else "" for c in cols])
            lines += md_table(["variant (solver)"] + [f"NFE {c}" for c in cols], body)
            lines.append("")
    lines += render_quoted(runs["dataset"].unique(), reason)
    return "\n".join(lines)


def render_quoted(datasets, reason: str | None) -> list[str]:
    seen, lines = set(), []
    for ds in datasets:
        real = STAND_IN_OF.get(ds, ds)
        if real in seen or not quoted_for(real):
            continue
        seen.add(real)
        lines += [f"## Published numbers (quoted): {DATASET_NAMES[real]}", ""]
        if reason:
            lines += ["These are Inception FIDs (50k samples) on the real data set. The tables "
                      "above are NOT comparable with them and they are not part of those "
                      "tables.", ""]
        body = [[f"{q.label} (quoted)", q.fid, q.nfe_reported,
                 str(q.passes) if q.passes else "not stated", q.source]
                for q in quoted_for(real)]
        lines += md_table(["method", "FID", "NFE as reported", "forward passes", "source"],
                           body)
        lines += ["", PAPER_NFE_NOTE, ""]
    return lines


def render_latex(cfg: dict, exp: str, target: str, long: pd.DataFrame, runs: pd.DataFrame,
                 reason: str | None) -> str:
    n_total = len(exp_config(cfg, exp)["seeds"])
    lines = [f"% {target}: experiment {exp}, written by idff.report.images; needs booktabs",
             "% NFE = network forward passes; the paper's NFE 10 (10 SRK steps) = 100 passes"]
    if reason:
        lines.append(f"% NOT COMPARABLE: {reason}; published numbers left out")
    lines.append("")
    for ds in runs["dataset"].unique():
        for m in METRICS:
            cols, rows = _pivot(long, ds, m)
            k = len(cols)
            scale = METRIC_SCALE[m]
            unit = r" ($\times 10^{-3}$)" if m in METRIC_UNIT else ""
            better = "higher" if m in HIGHER_IS_BETTER else "lower"
            warn = (r"\textbf{Not comparable with published numbers: "
                    + tex_escape(reason.split(" (")[0]) + "}. ") if reason else ""
            caption = (f"{warn}{tex_escape(DATASET_NAMES.get(ds, ds))}: "
                       f"{METRIC_NAMES[m]}{unit} vs NFE, mean $\\pm$ std over {n_total} "
                       f"seed(s), {better} is better.")
            lines += [r"\begin{table}[ht]", r"\centering", rf"\caption{{{caption}}}",
                      rf"\begin{{tabular}}{{l{'r' * k}}}", r"\toprule",
                      rf" & \multicolumn{{{k}}}{{c}}{{NFE (network forward passes)}} \\",
                      rf"\cmidrule(lr){{2-{k + 1}}}",
                      "Variant (solver) & " + " & ".join(map(str, cols)) + r" \\", r"\midrule"]
            for label, stats in rows:
                cells = []
                for j, st in enumerate(stats):
                    text = "--" if st is None else stat_cell(st, n_total, scale)
                    text = text.replace("±", r"$\pm$").replace("–", "--")
                    best = _best(rows, j, m)
                    if st is not None and best is not None and math.isfinite(st[0]) \
                            and math.isclose(st[0], best, rel_tol=1e-12):
                        text = rf"\textbf{{{text}}}"
                    cells.append(text)
                lines.append(" & ".join([tex_escape(label)] + cells) + r" \\")
            fl = _floor_stat(long, ds, m)
            if fl is not None:
                cell = stat_cell(fl, n_total, scale).replace("±", r"$\pm$")
                lines += [r"\midrule", " & ".join(["Floor (held-out real)"] + [cell] * k) + r" \\"]
            quoted = [q for q in quoted_for(STAND_IN_OF.get(ds, ds)) if q.passes in cols]
            if m == "fid" and reason is None and quoted:
                lines.append(r"\midrule")
                for q in quoted:
                    cells = [q.fid if c == q.passes else "" for c in cols]
                    lines.append(" & ".join([tex_escape(q.label) + " (quoted)"] + cells) + r" \\")
            lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def long_table(runs: pd.DataFrame, floors: pd.DataFrame, reason: str | None) -> pd.DataFrame:
    """The CSV: aggregate() rows plus ``source`` and ``comparable``; quoted rows only when the
    measured numbers are comparable."""
    long = aggregate(runs, floors, METRICS)
    long["source"] = np.where(long["variant"] == "floor", "floor", "measured")
    long["comparable"] = 0 if reason else 1
    if reason is None:
        extra = []
        for ds in runs["dataset"].unique():
            for q in quoted_for(STAND_IN_OF.get(ds, ds)):
                extra.append({"dataset": ds, "variant": f"{q.label} (quoted)", "method": "quoted",
                              "sampler": q.nfe_reported, "solver": "quoted",
                              "nfe_budget": q.passes, "nfe": q.passes, "metric": "fid",
                              "mean": q.value, "n_seeds": 1, "source": "quoted",
                              "comparable": 1})
        if extra:
            long = pd.concat([long, pd.DataFrame.from_records(extra)], ignore_index=True)
    for col in ("nfe_budget", "n_seeds"):
        long[col] = long[col].astype("Int64")
    return long


def write_image_table(target: str, cfg: dict, exp: str, results: str | Path,
                      out: str | Path) -> list[Path]:
    paths = table_paths(out)
    if exp_config(cfg, exp)["family"] != "images":
        raise ValueError(f"{target} needs an images experiment; {exp!r} has family "
                         f"{exp_config(cfg, exp)['family']!r}")
    runs, floors = load_image_metrics(cfg, exp, results, target)
    reason = comparability(cfg, exp, runs, floors)
    long = long_table(runs, floors, reason)
    with atomic_path(paths[".csv"], suffix=".csv") as tmp:
        long.to_csv(tmp, index=False, float_format="%.8g")
    write_text_atomic(paths[".md"],
                      render_markdown(cfg, exp, target, long, runs, floors, reason) + "\n")
    write_text_atomic(paths[".tex"], render_latex(cfg, exp, target, long, runs, reason))
    return [paths[".md"], paths[".csv"], paths[".tex"]]


# ---------------------------------------------------------------------- figures


def _figure_paths(out: str | Path) -> tuple[Path, Path, Path]:
    out = Path(out)
    if out.suffix != ".png":
        raise ValueError(f"figure output {out} must be a .png file")
    return out, out.with_suffix(".csv"), out.with_name(out.stem + ".caption.md")


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.8g")


def fig_nfe_images(target: str, cfg: dict, exp: str, results: str | Path,
                   out: str | Path) -> list[Path]:
    """FID vs measured forward passes: a panel per (experiment, data set), a curve per variant
    and solver (mean ± std over seeds), the held-out floor dashed, quoted points as stars
    (only on panels whose numbers are comparable)."""
    png, csv, cap = _figure_paths(out)
    panels, plotted, warned = [], [], []
    for x in image_experiments(cfg):
        runs, floors = load_image_metrics(cfg, x, results, target)
        reason = comparability(cfg, x, runs, floors)
        long = aggregate(runs, floors, ("fid",))
        for ds in runs["dataset"].unique():
            panels.append((x, ds, long[long["dataset"] == ds], reason))
        if reason:
            warned.append(f"`{x}`: {reason}")
    if not panels:
        raise ValueError(f"{target} needs at least one experiment of family images")
    keys = list(dict.fromkeys((v, s) for _, _, lg, _ in panels
                              for v, s in zip(lg["variant"], lg["solver"], strict=True)
                              if v != "floor"))
    colors = {v: f"C{i % 10}" for i, v in enumerate(dict.fromkeys(v for v, _ in keys))}
    fig = Figure(figsize=(3.6 * len(panels) + 2.2, 3.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    quoted_shown: dict[str, str] = {}
    for ax, (x, ds, lg, reason) in zip(axes, panels, strict=True):
        for v, solver in keys:
            cur = lg[(lg["variant"] == v) & (lg["solver"] == solver)]
            cur = cur.sort_values("nfe_budget").drop_duplicates("nfe").sort_values("nfe")
            if cur.empty:
                continue
            xs, ys = cur["nfe"].to_numpy(float), cur["mean"].to_numpy(float)
            sd = np.nan_to_num(cur["std"].to_numpy(float))
            ax.plot(xs, ys, color=colors[v], linestyle=SOLVER_STYLES.get(solver, "-"),
                    marker="o", markersize=3, linewidth=1.4)
            ax.fill_between(xs, ys - sd, ys + sd, color=colors[v], alpha=0.15, linewidth=0)
            for r in cur.itertuples():
                plotted.append({"experiment": x, "dataset": ds, "series": f"{v} ({solver})",
                                "source": "measured", "nfe_budget": int(r.nfe_budget),
                                "nfe": r.nfe, "fid_mean": r.mean, "fid_std": r.std,
                                "n_seeds": int(r.n_seeds), "comparable": int(reason is None)})
        fl = lg[lg["variant"] == "floor"]
        if not fl.empty:
            ax.axhline(float(fl["mean"].iloc[0]), **FLOOR_STYLE)
            plotted.append({"experiment": x, "dataset": ds, "series": "floor (held-out real)",
                            "source": "floor", "fid_mean": float(fl["mean"].iloc[0]),
                            "fid_std": float(fl["std"].iloc[0]),
                            "n_seeds": int(fl["n_seeds"].iloc[0]),
                            "comparable": int(reason is None)})
        if reason is None:
            for q in quoted_for(STAND_IN_OF.get(ds, ds)):
                if q.passes:
                    marker = QUOTED_MARKERS[len(quoted_shown) % len(QUOTED_MARKERS)]
                    marker = quoted_shown.setdefault(q.label, marker)
                    ax.plot([q.passes], [q.value], marker=marker, color="k", markersize=7,
                            linestyle="none", markerfacecolor="none")
                    plotted.append({"experiment": x, "dataset": ds, "series": q.label,
                                    "source": "quoted", "nfe": q.passes, "fid_mean": q.value,
                                    "comparable": 1})
        finite = lg["mean"][lg["mean"] > 0]
        if len(finite) == lg["mean"].notna().sum() and len(finite):
            ax.set_yscale("log")  # FID spans orders of magnitude across NFE
            ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
            ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False,
                                                      minor_thresholds=(1, 0.4)))
        ax.set_xscale("log", base=2)
        budgets = sorted({int(n) for n in lg["nfe"].dropna()})
        if budgets:
            ax.set_xticks(budgets, [str(b) for b in budgets])
            ax.minorticks_off()
        ax.grid(True, alpha=0.3, linewidth=0.6)
        ax.tick_params(labelsize=8)
        ax.set_xlabel("NFE (network forward passes)", fontsize=9)
        title = f"{x}: {DATASET_NAMES.get(ds, ds)}"
        if reason:
            title += "\nNOT COMPARABLE: " + ("test feature extractor" if TINY in reason
                                             else "stand-in data")
        ax.set_title(title, fontsize=9, color="firebrick" if reason else "black")
    axes[0].set_ylabel("FID" + (" (test extractor)" if warned else ""), fontsize=9)
    handles = [Line2D([], [], color=colors[v], linestyle=SOLVER_STYLES.get(s, "-"), marker="o",
                      markersize=3, label=f"{v} ({s})") for v, s in keys]
    handles.append(Line2D([], [], label="floor (held-out real)", **FLOOR_STYLE))
    handles += [Line2D([], [], marker=m, color="k", markerfacecolor="none", linestyle="none",
                       label=f"{label} (quoted)") for label, m in quoted_shown.items()]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    save_png(fig, png)
    _write_csv(pd.DataFrame.from_records(plotted), csv)
    caption = (TARGETS[target].caption if target in TARGETS else "FID vs NFE.") + " " + \
        PAPER_NFE_NOTE
    if warned:
        caption += " NOT COMPARABLE with published FIDs: " + "; ".join(warned) + \
            ". Published numbers are therefore not drawn on those panels."
    write_text_atomic(cap, caption + "\n")
    return [png, csv, cap]


def load_sample_grid(path: Path) -> tuple[np.ndarray, dict]:
    """``images`` (uint8 [n, H, W, 3]) and ``info`` of a sample file from the images family."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z.files or "info" not in z.files:
                raise ReportInputError(f"sample file {path} lacks 'images'/'info' (has "
                                       f"{z.files}); rerun `idff "
                                       f"samples`")
            images, info = z["images"], json.loads(str(z["info"]))
    except ReportInputError:
        raise
    except Exception as exc:
        raise ReportInputError(f"sample file {path} could not be read ({exc}); delete it and "
                               f"rerun its job") from exc
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ReportInputError(f"sample file {path}: images are {images.dtype} "
                               f"{images.shape}, need uint8 [n, H, W, 3]")
    return images, info


def tile(images: np.ndarray, nrow: int, pad: int = 1) -> np.ndarray:
    """A grid image (uint8 [H', W', 3]) of ``images`` with ``nrow`` per row and white padding."""
    n, h, w, _ = images.shape
    ncol = min(nrow, n)
    rows = math.ceil(n / ncol)
    out = np.full((rows * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, ncol)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad):
            pad + c * (w + pad) + w] = img
    return out


def fig_samples(target: str, cfg: dict, exp: str, results: str | Path,
                out: str | Path) -> list[Path]:
    """A grid of generated images per (experiment, data set) row and variant column."""
    png, csv, cap = _figure_paths(out)
    jobs = sample_jobs(cfg)
    if not jobs:
        raise ValueError(f"{target} needs at least one experiment of family images")
    paths = job_files(results, jobs, target)
    rows = list(dict.fromkeys((j["experiment"], j["dataset"]) for j in jobs))
    ncol = max(sum(1 for j in jobs if (j["experiment"], j["dataset"]) == r) for r in rows)
    fig = Figure(figsize=(2.6 * ncol, 2.9 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), ncol, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    records = []
    col_of: dict[tuple, int] = {}
    for job, path in zip(jobs, paths, strict=True):
        images, info = load_sample_grid(path)
        key = (job["experiment"], job["dataset"])
        r = rows.index(key)
        c = col_of.get(key, 0)
        col_of[key] = c + 1
        shown = images[: job["n"]]
        ax = axes[r][c]
        ax.imshow(tile(shown, job["nrow"]), interpolation="nearest")
        params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in (info.get("params") or {}).items())
        label = exp_config(cfg, job["experiment"])["variants"][job["variant"]].get("label")
        ax.set_title(f"{label or job['variant']} ({job['solver']})\nNFE {info.get('nfe')}"
                     + (f", {params}" if params else ""), fontsize=8)
        if c == 0:
            ax.text(-0.04, 0.5, DATASET_NAMES.get(job["dataset"], job["dataset"]), fontsize=9,
                    rotation=90, ha="right", va="center", transform=ax.transAxes)
        records.append({"experiment": job["experiment"], "dataset": job["dataset"],
                        "variant": job["variant"], "solver": job["solver"],
                        "nfe_budget": job["nfe"], "nfe": info.get("nfe"), "seed": job["seed"],
                        "n_images": len(shown), "params": json.dumps(info.get("params") or {}),
                        "nonfinite": info.get("nonfinite", 0),
                        "pixel_mean": float(shown.mean()), "pixel_std": float(shown.std()),
                        "file": job["path"]})
    save_png(fig, png, dpi=130)
    _write_csv(pd.DataFrame.from_records(records), csv)
    stand = sorted({j["dataset"] for j in jobs if j["dataset"] in STAND_IN_OF})
    caption = TARGETS[target].caption if target in TARGETS else "Generated samples."
    caption += (f" Seed {jobs[0]['seed']}; the same prior noise for every variant of a data set; "
                f"NFE = network forward passes.")
    if stand:
        caption += (f" Stand-in data sets ({', '.join(stand)}): smoke-run plumbing check, not "
                    f"CIFAR-10 / CelebA samples.")
    write_text_atomic(cap, caption + "\n")
    return [png, csv, cap]


# ---------------------------------------------------------------------- registry


def _table(target: str, cfg: dict, exp: str, results: Path, out: Path) -> list[Path]:
    return write_image_table(target, cfg, exp, results, out)


TARGETS: dict[str, Target] = {
    "table_cifar10": Target("cifar10", _table, table_inputs,
                            "CIFAR-10: FID (KID, IS) vs NFE per variant and solver, mean ± std "
                            "over seeds, the held-out floor, and published numbers (quoted)."),
    "table_celeba": Target("celeba", _table, table_inputs,
                           "CelebA-64: FID (KID, IS) vs NFE per variant and solver, mean ± std "
                           "over seeds, the held-out floor, and published numbers (quoted)."),
    "fig_samples": Target("cifar10", fig_samples, sample_inputs,
                          "Generated images per data set (rows) and variant (columns) at one "
                          "NFE, EMA weights, sampler parameters as tuned on validation.",
                          reads=image_experiments),
    "fig_nfe_images": Target("cifar10", fig_nfe_images, nfe_figure_inputs,
                             "FID vs NFE (network forward passes) per data set, one curve per "
                             "variant and solver (±1 std over seeds), dashed: held-out real "
                             "floor; open black markers: published numbers (quoted).",
                             reads=image_experiments),
}
