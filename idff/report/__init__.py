"""Named paper targets (tables and figures) made from the pipeline's result files.

``make_target(name, cfg, results, out)`` is what ``idff report`` and the Snakemake report rules
call; ``target_inputs(name, cfg)`` lists the result files a target reads (for the rule's inputs).
A new data family adds a module with its ``TARGETS`` and one entry in the loop below.
"""

from __future__ import annotations

from pathlib import Path

from . import claims, images, md, paper_figures, sst, toy, training
from .target import Target

# Each module holds the tables and figures of one data family (or one kind of job) and its
# TARGETS; the registry is their union.
TARGETS: dict[str, Target] = {}
for _module in (toy, md, sst, images, paper_figures, training, claims):
    TARGETS.update(_module.TARGETS)


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


__all__ = ["TARGETS", "Target", "experiment_inputs", "experiment_targets", "make_target",
           "target_inputs"]
