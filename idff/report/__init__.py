"""Named paper targets (tables and figures) made from the pipeline's result files.

``make_target(name, cfg, results, out)`` is what ``idff report`` and the Snakemake report rules
call; ``target_inputs(name, cfg)`` lists the result files a target reads (for the rule's inputs).
A new experiment adds its targets to ``TARGETS``. Matplotlib and the table code are imported
only when a target is built, so the Snakefile can import this package cheaply.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .collect import expected_floor_files, expected_metric_files, expected_sample_files

Builder = Callable[[str, dict, str, Path, Path], list[Path]]


def _table(target: str, cfg: dict, exp: str, results: Path, out: Path) -> list[Path]:
    from .tables import write_metric_table

    return write_metric_table(target, cfg, exp, results, out)


def _fig_nfe(target: str, cfg: dict, exp: str, results: Path, out: Path) -> list[Path]:
    from .figures import fig_nfe

    return fig_nfe(target, cfg, exp, results, out)


def _fig_toy_orders(target: str, cfg: dict, exp: str, results: Path, out: Path) -> list[Path]:
    from .figures import fig_toy_orders

    return fig_toy_orders(target, cfg, exp, results, out)


def _metrics_and_floor(cfg: dict, exp: str) -> list[str]:
    return expected_metric_files(cfg, exp) + expected_floor_files(cfg, exp)


@dataclass(frozen=True)
class Target:
    experiment: str
    build: Builder
    inputs: Callable[[dict, str], list[str]]
    caption: str
    #: every experiment the target reads, when more than its own (e.g. one image figure over
    #: all image experiments); the report rule passes exactly these config slices
    reads: Callable[[dict], list[str]] | None = None

    def experiments(self, cfg: dict) -> list[str]:
        return self.reads(cfg) if self.reads is not None else [self.experiment]


TARGETS: dict[str, Target] = {
    "table_toy": Target("toy", _table, _metrics_and_floor,
                        "2D toys: W2 and MMD² per NFE budget, mean ± std over seeds, with the "
                        "target-vs-target floor (CSV, Markdown, LaTeX)."),
    "fig_nfe": Target("toy", _fig_nfe, _metrics_and_floor,
                      "2D toys: sample quality vs NFE per data set, one curve per variant and "
                      "solver, ±1 std band over seeds, dashed floor."),
    "fig_toy_orders": Target("toy", _fig_toy_orders,
                             lambda cfg, exp: expected_sample_files(cfg, exp),
                             "OT-CFM and IDFF orders 1-3 at NFE 2 (paper Fig. 2): final samples, "
                             "KDE contours of the truth, a dozen trajectories, MMD² per panel."),
    "table_toy_ablation": Target("toy_ablation", _table, _metrics_and_floor,
                                 "2D toy ablation (experiment toy_ablation): the x1-loss time "
                                 "weighting of IDFF, W2 and MMD² per NFE budget over seeds."),
}


# Each data family's tables and figures live in its own module and join the registry here
# (after Target exists: those modules import it).
_FAMILY_REPORTS = ("md", "sst", "images", "paper_figures", "training", "claims")
for _module in _FAMILY_REPORTS:
    TARGETS.update(importlib.import_module(f"{__name__}.{_module}").TARGETS)


def experiment_targets(cfg: dict, exp: str) -> list[str]:
    """The configured paper targets that read experiment ``exp``'s results."""
    return [t for t in cfg.get("paper_targets", {}) if t in TARGETS and TARGETS[t].experiment == exp]


def experiment_inputs(cfg: dict, exp: str) -> list[str]:
    """The files under ``results/<kind>/<exp>/`` that any configured target reads: what
    ``snakemake sweep_<exp>`` (DVC stage ``sweep@<exp>``) makes. A target over several
    experiments gets each one's files from that experiment's sweep, never another's jobs."""
    files = []
    for t in cfg.get("paper_targets", {}):
        if t in TARGETS and exp in TARGETS[t].experiments(cfg):
            files += [f for f in target_inputs(t, cfg) if f.split("/")[2:3] == [exp]]
    return list(dict.fromkeys(files))


def _get(target: str) -> Target:
    if target not in TARGETS:
        raise ValueError(f"unknown report target {target!r}; valid: {', '.join(TARGETS)}")
    return TARGETS[target]


def target_inputs(target: str, cfg: dict) -> list[str]:
    """Result files (``results/...``) that ``target`` reads; pure, for Snakemake rule inputs."""
    t = _get(target)
    return t.inputs(cfg, t.experiment)


def make_target(target: str, cfg: dict, results: Path, out: Path) -> list[Path]:
    """Build the named table or figure from the files under ``results``; returns the written files.

    A table writes ``out`` plus the other two of .md/.csv/.tex beside it.
    """
    t = _get(target)
    if t.experiment not in cfg.get("experiments", {}):
        raise ValueError(f"target {target} needs experiment {t.experiment!r} in the config "
                         f"(experiments.{t.experiment})")
    return t.build(target, cfg, t.experiment, Path(results), Path(out))


__all__ = ["TARGETS", "Target", "experiment_inputs", "experiment_targets", "expected_floor_files", "expected_metric_files",
           "expected_sample_files", "make_target", "target_inputs"]
