"""Fig. 1 for the non-image families: one sample grid per data set, from files other targets
already need (no job of their own).

- ``fig_samples_toy``: generated 2D points per variant beside the test split (``idff sample``
  files: those of ``figures.samples``, or without that block the files of ``fig_toy_orders``).
- ``fig_samples_md``: Ramachandran scatter of freely generated frames per variant beside the
  test trajectories (the roll-out files of ``fig_md``).
- ``fig_samples_sst``: single ensemble members of one test window at every lead beside the
  truth (the forecast files of ``fig_sst``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...data.toy import toy_split
from ...families.md import data_label
from ...metrics.md import js_divergence
from ...plan.core import exp_config
from ...plan.figures import toy_sample_jobs
from ..collect import ReportInputError, job_files, load_samples
from ..figures import density_grid, mmd_of, mmd_text, plot_limits
from ..md import load_rollouts
from ..render import save_figure
from ..sst import load_forecasts
from .trajectories import passes


def _variant_label(e: dict, variant: str) -> str:
    return e["variants"][variant].get("label") or variant


# ----------------------------------------------------------------------------------- toy


def fig_samples_toy(target: str, cfg: dict, exp: str, results: str | Path,
                    out: str | Path) -> list[Path]:
    """Rows = data sets; columns = the test split, then each variant's samples (first seed)."""
    e = exp_config(cfg, exp)
    jobs = toy_sample_jobs(cfg, exp)
    paths = job_files(results, jobs, target)
    datasets = list(dict.fromkeys(j["dataset"] for j in jobs))
    ncol = 1 + max(sum(j["dataset"] == ds for j in jobs) for ds in datasets)
    fig = Figure(figsize=(2.3 * ncol + 0.3, 2.45 * len(datasets) + 0.2), layout="constrained")
    axes = fig.subplots(len(datasets), ncol, squeeze=False)
    rows: list[dict[str, Any]] = []
    seed = jobs[0]["seed"]
    for r, ds in enumerate(datasets):
        mine = [(j, p) for j, p in zip(jobs, paths, strict=True) if j["dataset"] == ds]
        loaded = [(j, *load_samples(p)) for j, p in mine]
        n = len(loaded[0][1])
        truth = toy_split(ds, "test", n, seed).numpy()
        lims = plot_limits(truth)
        xx, yy, dens, levels = density_grid(truth, lims)
        panels = [("test split", f"n = {n}", truth)]
        for j, samples, traj in loaded:
            mmd = mmd_of(samples, truth)
            nfe = passes(j["solver"], traj.shape[0] - 1)
            panels.append((f"{_variant_label(e, j['variant'])}\nNFE {nfe} ({j['solver']})",
                           mmd_text(mmd), samples))
            rows.append({"dataset": ds, "variant": j["variant"], "solver": j["solver"],
                         "nfe_budget": j["nfe"], "nfe": nfe, "seed": seed,
                         "n_samples": len(samples), "mmd": mmd,
                         "n_nonfinite": int((~np.isfinite(samples).all(axis=1)).sum()),
                         "file": j["path"]})
        for c in range(ncol):
            ax = axes[r][c]
            if c >= len(panels):
                ax.set_axis_off()
                continue
            title, sub, pts = panels[c]
            finite = pts[np.isfinite(pts).all(axis=1)]
            ax.scatter(finite[:, 0], finite[:, 1], s=1.0, color="0.35", linewidths=0,
                       antialiased=False, rasterized=True)
            ax.contour(xx, yy, dens, levels=levels, colors="tab:blue", linewidths=0.7, alpha=0.8)
            ax.set_xlim(*lims[0])
            ax.set_ylim(*lims[1])
            ax.set_aspect("equal")
            ax.tick_params(labelsize=7)
            ax.set_title(f"{title}\n{sub}", fontsize=8)
            if r == len(datasets) - 1:
                ax.set_xlabel("x₁ [data units]", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{ds}\nx₂ [data units]", fontsize=9)
    caption = (
        f"**{target}** (experiment `{exp}`, the paper's Fig. 1 for the 2D toys): generated "
        f"samples (grey) per data set (rows) and variant (columns), beside a test-split draw of "
        f"the same size (first column); blue: KDE contours of the test split. Training seed "
        f"{seed}, {e['train']['steps']} training steps, EMA weights; every variant starts from "
        f"the same prior noise; NFE counts network forward passes; tuned samplers use the "
        f"parameters chosen on validation at that NFE. MMD² with an RBF kernel of bandwidth 1 "
        f"against the test draw shown. Numbers: the CSV beside this figure.")
    return save_figure(fig, out, pd.DataFrame.from_records(rows), caption, dpi=110, colors=64)


# ------------------------------------------------------------------------------------ md


def fig_samples_md(target: str, cfg: dict, exp: str, results: str | Path,
                   out: str | Path) -> list[Path]:
    """Ramachandran scatter: the test trajectories, then each variant's generated frames."""
    e = exp_config(cfg, exp)
    s, jobs, _, loaded = load_rollouts(cfg, exp, results, target)
    pool = loaded[0][2]
    bins = int(s["bins"])
    panels = [("test trajectories", pool, None, None)]
    rows: list[dict[str, Any]] = []
    for job, (gen, _, _, frame_ps, meta) in zip(jobs, loaded, strict=True):
        if meta.get("variant") != job["variant"]:
            raise ReportInputError(f"roll-out file {job['path']} holds variant "
                                   f"{meta.get('variant')!r}, not {job['variant']!r}: rerun it")
        flat = gen.reshape(-1, 2)
        js = js_divergence(flat, pool, bins=bins)
        panels.append((f"{_variant_label(e, job['variant'])}\nNFE {meta.get('nfe', job['nfe'])} "
                       f"({job['solver']}) per frame", flat, js, meta))
        rows.append({"dataset": s["dataset"], "variant": job["variant"], "solver": job["solver"],
                     "nfe_budget": job["nfe"], "nfe": meta.get("nfe"), "seed": job["seed"],
                     "n_chains": gen.shape[0], "frames_per_chain": gen.shape[1],
                     "frame_ps": frame_ps, "js_nats": js,
                     "params": json.dumps(meta.get("params") or {}), "file": job["path"]})
    rng = np.random.default_rng(0)
    fig = Figure(figsize=(2.9 * len(panels) + 0.3, 3.3), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for c, (title, pts, js, _) in enumerate(panels):
        ax = axes[c]
        shown = pts[rng.permutation(len(pts))[:20000]] if len(pts) > 20000 else pts
        ax.scatter(shown[:, 0], shown[:, 1], s=1.2, color="tab:blue" if js is None else "0.3",
                   linewidths=0, alpha=0.6, rasterized=True)
        ax.set_xlim(-180, 180)
        ax.set_ylim(-180, 180)
        ax.set_xticks([-180, -90, 0, 90, 180])
        ax.set_yticks([-180, -90, 0, 90, 180])
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3, linewidth=0.5)
        ax.set_xlabel("φ [degrees]", fontsize=8)
        if c == 0:
            ax.set_ylabel("ψ [degrees]", fontsize=8)
        sub = f"{len(pts)} frames" + ("" if js is None else f", JS {js:.3f} nats")
        ax.set_title(f"{title}\n{sub}", fontsize=8)
    fig.suptitle(f"Alanine dipeptide, {s['dataset']}: {data_label(s['dataset'])}", fontsize=9)
    caption = (
        f"**{target}** (experiment `{exp}`, the paper's Fig. 1 / Fig. 4A-B for MD): backbone "
        f"dihedral pairs (φ, ψ) of the test trajectories (first panel) and of trajectories each "
        f"variant generated freely from the first test frames (each frame from the previous "
        f"generated one) at an NFE budget of {s['nfe']} network forward passes per frame, "
        f"training seed {s['seed']}; at most 20000 points drawn per panel. JS: Jensen-Shannon "
        f"divergence (nats) of the {bins}x{bins}-bin histograms against the test trajectories. "
        f"Data: {data_label(s['dataset'])}. Numbers: the CSV beside this figure.")
    return save_figure(fig, out, pd.DataFrame.from_records(rows), caption, dpi=110, colors=64)


# ----------------------------------------------------------------------------------- sst


def fig_samples_sst(target: str, cfg: dict, exp: str, results: str | Path,
                    out: str | Path, n_members: int = 3) -> list[Path]:
    """Rows = truth, then ``n_members`` single ensemble members per variant; columns = the
    observed field and each lead of one test window (standardised anomalies)."""
    e = exp_config(cfg, exp)
    s, jobs, paths, fc = load_forecasts(cfg, exp, results, target)
    for f, p in zip(fc, paths, strict=True):
        if "members" not in f or f["members"].ndim != 4:
            raise ReportInputError(f"forecast file {p} lacks the ensemble members [M, L, H, W]; "
                                   f"it was written by an older idff: delete it and rerun")
    land = fc[0]["land"].astype(bool)
    truth = np.where(land, np.nan, fc[0]["truth"])
    ctx = np.where(land, np.nan, fc[0]["context"])
    horizon = truth.shape[0]
    info = fc[0]["info"]
    unit = "month" if info.get("step") == "month" else "day"
    grid_rows = [("truth", None, truth)]
    for f, job in zip(fc, jobs, strict=True):
        m = f["members"].shape[0]
        for k in range(min(n_members, m)):
            grid_rows.append((f"{_variant_label(e, job['variant'])}\nmember {k + 1} of {m}", job,
                              np.where(land, np.nan, f["members"][k])))
    vmax = float(np.nanmax(np.abs(np.concatenate([truth.ravel(), ctx.ravel()])))) or 1.0
    lat, lon = fc[0].get("lat"), fc[0].get("lon")
    geo = lat is not None and lon is not None and lat.ndim == 1 and lon.ndim == 1
    extent = ([float(lon.min()), float(lon.max()), float(lat.min()), float(lat.max())]
              if geo else None)
    nrow, ncol = len(grid_rows), horizon + 1
    fig = Figure(figsize=(1.45 * ncol + 2.2, 1.2 * nrow + 0.6), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False, sharex=True, sharey=True)
    im = None
    rows: list[dict[str, Any]] = []
    for r, (name, job, arr) in enumerate(grid_rows):
        for c in range(ncol):
            ax = axes[r][c]
            field = ctx if c == 0 else arr[c - 1]  # every row starts from the observed field
            im = ax.imshow(field, cmap="RdBu_r", vmin=-vmax, vmax=vmax, origin="lower",
                           extent=extent, aspect="equal", interpolation="nearest")
            if c > 0 or r == 0:
                rows.append({"row": name.replace("\n", ", "), "variant": job["variant"] if job
                             else "truth", "lead": c, "field_mean": float(np.nanmean(field)),
                             "field_std": float(np.nanstd(field))})
            if r == 0:
                ax.set_title(f"observed (start)\n{info['context_time']}" if c == 0 else
                             f"+{c} {unit}{'s' if c > 1 else ''}\n{info['target_times'][c - 1]}",
                             fontsize=7)
            ax.tick_params(labelsize=6)
            if c == 0:
                ax.set_ylabel(f"{name}\n" + ("lat [°N]" if geo else "row [grid cells]"),
                              fontsize=7)
            if r == nrow - 1:
                ax.set_xlabel("lon [°E]" if geo else "column [grid cells]", fontsize=7)
    if im is not None:
        cb = fig.colorbar(im, ax=axes[:, -1].tolist(), shrink=0.6)
        cb.set_label("SST anomaly [training-year std units]", fontsize=7)
        cb.ax.tick_params(labelsize=6)
    nfe = sorted({f["info"].get("nfe", s["nfe"]) for f in fc})
    caption = (
        f"**{target}** (experiment `{exp}`, data set {s['dataset']}, the paper's Fig. 1 for "
        f"SST): single ensemble members (rows, {n_members} per variant) of one test window (box "
        f"{info.get('box_id')}, window {s['window']}) at every lead, beside the truth; the first "
        f"column is the last observed field (the start of every row). Standardised anomalies "
        f"(training-year std units, one colour scale), land blank. Sampled at an NFE budget "
        f"of {s['nfe']} per lead step "
        f"(measured: {', '.join(map(str, nfe))} network forward passes), training seed "
        f"{s['seed']}; "
        + ("each lead is drawn from the last observed field, the lead given as a label "
           "(pairing direct)." if info.get("pairing", "direct") == "direct" else
           "each lead is drawn from the previous generated field (pairing step).")
        + (" Monthly OSTIA steps: a lead is one month." if unit == "month" else "")
        + " Numbers: the CSV beside this figure.")
    return save_figure(fig, out, pd.DataFrame.from_records(rows), caption, colors=None)
