"""Training curves: ``fig_training`` (loss against step for every trained network).

The trainer writes the curve of a checkpoint ``X.pt`` to ``X.curve.csv`` beside it (columns
``step,loss,lr,steps_per_s,wall_s``). A checkpoint from a trainer that predates that file still
holds its smoothed loss history; it is used then, and the figure's data says which source each
curve came from. The checkpoints are the target's inputs: Snakemake reruns the figure when a
network is retrained, and the curve file is written together with its checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ..io import load_checkpoint
from ..plan.core import training_jobs
from .collect import ReportInputError, resolve
from .render import save_figure
from .target import Target

CURVE_COLUMNS = ("step", "loss", "lr", "steps_per_s", "wall_s")




def curve_path(ckpt: str | Path) -> Path:
    """``X.pt`` -> ``X.curve.csv`` (the file the trainer writes beside each checkpoint)."""
    ckpt = Path(ckpt)
    return ckpt.with_name(ckpt.stem + ".curve.csv")




def read_curve(ckpt: Path) -> tuple[pd.DataFrame, str]:
    """The training curve of checkpoint ``ckpt`` and its source (``curve.csv`` or ``checkpoint``).

    A curve file without the ``step`` and ``loss`` columns, or with no rows, is an error naming
    the file; a missing curve file falls back to the history stored in the checkpoint.
    """
    csv = curve_path(ckpt)
    if csv.is_file():
        try:
            df = pd.read_csv(csv)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ReportInputError(f"training curve {csv} is not a readable CSV ({exc}); delete "
                                   f"it and its checkpoint {ckpt.name}, then retrain") from exc
        missing = [c for c in ("step", "loss") if c not in df.columns]
        if missing or df.empty:
            what = f"lacks the column(s) {missing}" if missing else "has no rows"
            raise ReportInputError(f"training curve {csv} {what} (expected {','.join(CURVE_COLUMNS)}); "
                                   f"delete it and its checkpoint {ckpt.name}, then retrain")
        return df, "curve.csv"

    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint {ckpt} is missing; run `snakemake fig_training` to "
                                f"train it")
    history = load_checkpoint(ckpt).get("history") or []
    if not history:
        raise ReportInputError(f"checkpoint {ckpt} has neither a curve file ({csv.name}) nor a loss "
                               f"history; retrain it")
    return pd.DataFrame(history, columns=["step", "loss"]), "checkpoint"


def load_curves(cfg: dict, exps: list[str], results: str | Path) -> pd.DataFrame:
    """Every curve of ``exps`` in long form: exp, dataset, method, seed, source, step, loss."""
    frames = []
    for job in training_jobs(cfg, exps):
        df, source = read_curve(resolve(results, job["path"]))
        frames.append(df[["step", "loss"]].assign(
            exp=job["exp"], dataset=job["dataset"], method=job["method"], seed=job["seed"],
            source=source))
    cols = ["exp", "dataset", "method", "seed", "source", "step", "loss"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def fig_training(target: str, cfg: dict, exp: str, results: Path, out: Path) -> list[Path]:
    """One panel per (experiment, data set): training loss against step, one line per method
    (seeds in the same colour)."""
    exps = list(cfg["experiments"])
    data = load_curves(cfg, exps, results)
    panels = list(dict.fromkeys(zip(data["exp"], data["dataset"], strict=True)))
    ncol = min(4, max(1, len(panels)))
    nrow = -(-len(panels) // ncol)
    fig = Figure(figsize=(3.4 * ncol, 2.7 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    colors = {}
    for ax, (e, ds) in zip(axes.flat, panels, strict=False):
        sub = data[(data["exp"] == e) & (data["dataset"] == ds)]
        for (method, seed), line in sub.groupby(["method", "seed"], sort=False):
            color = colors.setdefault(method, f"C{len(colors) % 10}")
            ax.plot(line["step"], line["loss"], color=color, linewidth=1.0,
                    label=method if seed == sub[sub["method"] == method]["seed"].iloc[0] else None)
        ax.set_title(f"{e} / {ds}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("training loss", fontsize=8)
        ax.tick_params(labelsize=7)
        if (sub["loss"] > 0).all():
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    sources = sorted(set(data["source"]))
    caption = (f"**{target}**: training loss against optimiser step for every trained network "
               f"(experiments {', '.join(exps)}), one colour per method, one line per seed; "
               f"the loss is each method's own objective, so compare shapes, not levels across "
               f"methods. Source: {' and '.join(sources)}"
               + (" (checkpoint: the smoothed history stored in the checkpoint, a run without a "
                  "curve file)." if "checkpoint" in sources else "."))
    return save_figure(fig, out, data, caption)


def _inputs(cfg: dict, exp: str) -> list[str]:
    return [j["path"] for j in training_jobs(cfg, list(cfg["experiments"]))]


def _all_experiments(cfg: dict) -> list[str]:
    return list(cfg["experiments"])


# imported by idff.report after Target exists

TARGETS: dict[str, Target] = {
    "fig_training": Target("toy", fig_training, _inputs,
                           "Training loss against step for every trained network (all "
                           "experiments), one colour per method, one line per seed; read from "
                           "the curve file the trainer writes beside each checkpoint.",
                           reads=_all_experiments),
}
