"""Fig. 5: sample paths from noise to data over the target density (first seed).

Reads the ``idff sample`` files of rule ``sample`` (samples and the whole solver trajectory);
every variant of a seed starts from the same prior draw, so the k-th path of each panel starts
at the same point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ...data.toy import toy_split
from ...plan.core import exp_config
from ...plan.figures import trajectory_jobs, trajectory_settings
from ..collect import job_files, load_samples
from ..figures import density_grid
from ..render import save_figure

#: Network forward passes of N steps (the last Heun / RK4 step skips t = 1, see solvers.py).
PASSES = {"euler": lambda n: n, "euler_maruyama": lambda n: n, "midpoint": lambda n: 2 * n,
          "heun": lambda n: 2 * n - 1, "rk4": lambda n: 4 * n - 1, "ssprk3": lambda n: 3 * n}


def passes(solver: str, steps: int) -> int:
    return PASSES[solver](steps) if solver in PASSES else steps


def square_limits(points: np.ndarray, truth: np.ndarray, pad: float = 0.06
                  ) -> tuple[tuple[float, float], tuple[float, float]]:
    """A square window holding the bulk of the truth and every drawn path point."""
    lo = np.minimum(np.percentile(truth, 0.5, axis=0), np.nanmin(points, axis=0))
    hi = np.maximum(np.percentile(truth, 99.5, axis=0), np.nanmax(points, axis=0))
    mid, half = (lo + hi) / 2, float(max(hi - lo)) / 2 * (1 + 2 * pad)
    return (mid[0] - half, mid[0] + half), (mid[1] - half, mid[1] + half)


def path_stats(traj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Length of each path (sum of its steps) and its start-to-end distance, data units."""
    length = np.linalg.norm(np.diff(traj, axis=0), axis=-1).sum(axis=0)
    return length, np.linalg.norm(traj[-1] - traj[0], axis=-1)


def fig_trajectories(target: str, cfg: dict, exp: str, results: str | Path,
                     out: str | Path) -> list[Path]:
    """Rows = data sets, columns = panels (variant at an NFE): the target's density (KDE of
    the test split) and a dozen paths coloured by the flow time t."""
    e = exp_config(cfg, exp)
    s = trajectory_settings(cfg, exp)
    jobs = trajectory_jobs(cfg, exp)
    paths = job_files(results, jobs, target)
    loaded = {(j["dataset"], j["panel"]): (j, load_samples(p))
              for j, p in zip(jobs, paths, strict=True)}
    nrow, ncol = len(s["datasets"]), len(s["panels"])
    fig = Figure(figsize=(2.75 * ncol + 1.0, 2.95 * nrow + 0.5), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False)
    norm = Normalize(0.0, 1.0)
    cmap = "plasma"
    rows: list[dict[str, Any]] = []
    lc = None
    for r, ds in enumerate(s["datasets"]):
        n = len(loaded[(ds, 0)][1][0])
        truth = toy_split(ds, "test", n, s["seed"]).numpy()
        n_traj = min(s["n_trajectories"], n)
        idx = np.linspace(0, n - 1, n_traj).astype(int)
        shown = np.concatenate([loaded[(ds, c)][1][1][:, idx].reshape(-1, 2) for c in range(ncol)])
        lims = square_limits(shown[np.isfinite(shown).all(axis=1)], truth)
        xx, yy, dens, _ = density_grid(truth, lims)
        for c in range(ncol):
            job, (samples, traj) = loaded[(ds, c)]
            ax = axes[r][c]
            ax.contourf(xx, yy, dens, levels=8, cmap="Greys", alpha=0.55)
            steps = traj.shape[0] - 1
            t = np.linspace(0.0, 1.0, steps + 1)
            for i in idx:
                p = traj[:, i, :]
                seg = np.stack([p[:-1], p[1:]], axis=1)
                lc = LineCollection(seg, cmap=cmap, norm=norm, linewidths=1.3)
                lc.set_array(t[:-1])
                ax.add_collection(lc)
                if steps <= 20:  # show where the solver evaluated
                    ax.scatter(p[1:-1, 0], p[1:-1, 1], s=5, c=t[1:-1], cmap=cmap, norm=norm,
                               linewidths=0, zorder=3)
                ax.plot(p[0, 0], p[0, 1], "o", color="k", markersize=3, zorder=4)
                ax.plot(p[-1, 0], p[-1, 1], "^", color="white", markeredgecolor="k",
                        markersize=4.5, markeredgewidth=0.7, zorder=4)
            length, straight = path_stats(traj[:, idx, :])
            all_len, all_straight = path_stats(traj)
            label = e["variants"][job["variant"]].get("label") or job["variant"]
            nfe = passes(job["solver"], steps)
            ax.set_title(f"{label}\nNFE {nfe} ({job['solver']}), path/straight "
                         f"{np.nanmean(all_len / np.maximum(all_straight, 1e-12)):.2f}",
                         fontsize=8.5)
            ax.set_xlim(*lims[0])
            ax.set_ylim(*lims[1])
            ax.set_aspect("equal")
            ax.tick_params(labelsize=7)
            if r == nrow - 1:
                ax.set_xlabel("x₁ [data units]", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{ds}\nx₂ [data units]", fontsize=9)
            rows += [{"dataset": ds, "variant": job["variant"], "solver": job["solver"],
                      "nfe_budget": job["nfe"], "nfe": nfe, "seed": s["seed"], "path": int(i),
                      "x0_1": float(traj[0, i, 0]), "x0_2": float(traj[0, i, 1]),
                      "x1_1": float(traj[-1, i, 0]), "x1_2": float(traj[-1, i, 1]),
                      "length": float(length[k]), "straight": float(straight[k])}
                     for k, i in enumerate(idx)]
            rows.append({"dataset": ds, "variant": job["variant"], "solver": job["solver"],
                         "nfe_budget": job["nfe"], "nfe": nfe, "seed": s["seed"], "path": "all",
                         "length": float(np.nanmean(all_len)),
                         "straight": float(np.nanmean(all_straight)), "n_paths": n})
    if lc is not None:
        cb = fig.colorbar(lc, ax=axes.ravel().tolist(), shrink=0.6, pad=0.02)
        cb.set_label("flow time t (0 = noise, 1 = data)", fontsize=8)
        cb.ax.tick_params(labelsize=7)
    labels = "; ".join(f"{e['variants'][p['variant']].get('label') or p['variant']} at an NFE "
                       f"budget of {p['nfe']} ({p['solver']})" for p in s["panels"])
    caption = (
        f"**{target}** (experiment `{exp}`, the paper's Fig. 5): {s['n_trajectories']} sample "
        f"paths from the prior noise (black dot, t = 0) to the generated sample (white "
        f"triangle, t = 1), coloured by the flow time, over the density of the test split "
        f"(grey, a Gaussian KDE of {n} points); {labels}; training seed {s['seed']}. The k-th "
        f"path of every panel in a row starts from the same noise (paired comparison); "
        f"dots mark where the solver evaluated the network (for 20 steps or fewer). Titles: "
        f"NFE as network forward passes, and the mean ratio of path length to the start-to-end "
        f"distance over all {n} samples (1 = straight). Tuned samplers use the parameters "
        f"chosen on validation at that NFE. Numbers: the CSV beside this figure.")
    return save_figure(fig, out, pd.DataFrame.from_records(rows), caption, colors=None)
