"""Where every file of the pipeline lives: one template per kind of file, nowhere else.

Templates use Snakemake's wildcard syntax. The rules take them as ``output:`` patterns
(``layout.TEMPLATES["metrics"]``); Python fills them to find a file
(``layout.path("metrics", exp="toy", ...)``). A log and a benchmark file follow their rule's
output: ``logs/<rule>/<the output's path below its kind folder>.log``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

RESULTS = "results/"  # every result path starts with it; report loaders swap it for --results
_RUN = "{dataset}/{variant}/{solver}"  # one sampler configuration of one data set

TEMPLATES: dict[str, str] = {
    "data": "resources/data/{exp}/{dataset}/{datafile}",
    "checkpoint": "results/checkpoints/{exp}/{dataset}/{method}/seed{seed}.pt",
    "tuned": f"results/tuned/{{exp}}/{_RUN}/seed{{seed}}.json",
    "metrics": f"results/metrics/{{exp}}/{_RUN}/seed{{seed}}.json",
    "floor": "results/floor/{exp}/{dataset}/seed{seed}.json",
    "sample": f"results/samples/{{exp}}/{_RUN}/nfe{{nfe}}_seed{{seed}}.npz",
    "rollout": f"results/samples/{{exp}}/rollouts/{_RUN}/nfe{{nfe}}_seed{{seed}}.npz",
    "forecast": f"results/samples/{{exp}}/forecasts/{_RUN}/nfe{{nfe}}_seed{{seed}}.npz",
    "samples": f"results/samples/{{exp}}/images/{_RUN}/nfe{{nfe}}_seed{{seed}}.npz",
    "iter_eval": f"results/samples/{{exp}}/iterations/{_RUN}/seed{{seed}}.json",
    "summary": "results/summary/{exp}",
    "plots": "results/plots/{exp}",
}
#: files a training job writes beside its checkpoint (same stem)
CHECKPOINT_SIDE_FILES = {"info": ".json", "curve": ".curve.csv"}


def path(kind: str, **wildcards: Any) -> str:
    """The file of ``kind`` for these wildcard values (a KeyError names a missing one)."""
    if kind not in TEMPLATES:
        raise ValueError(f"unknown kind of file {kind!r}; valid: {', '.join(TEMPLATES)}")
    return TEMPLATES[kind].format(**wildcards)


def side_file(ckpt: str | Path, which: str) -> Path:
    """The ``info`` JSON or the loss ``curve`` CSV written beside a checkpoint."""
    ckpt = Path(ckpt)
    return ckpt.with_name(ckpt.stem + CHECKPOINT_SIDE_FILES[which])


def side_template(which: str) -> str:
    """``side_file`` as a rule output pattern."""
    return TEMPLATES["checkpoint"].removesuffix(".pt") + CHECKPOINT_SIDE_FILES[which]


def snapshot_path(ckpt: str | Path, step: int) -> Path:
    """The EMA weights a training run kept at ``step`` (``train.keep_every``), beside ``ckpt``."""
    out = Path(ckpt)
    return out.with_name(f"{out.stem}.step{int(step)}{out.suffix}")


def kept_steps(steps: int, keep_every: int) -> list[int]:
    """The steps whose EMA weights a run keeps: multiples of ``keep_every`` below ``steps``,
    then ``steps`` itself (the final checkpoint, not a snapshot file)."""
    return [*range(keep_every, steps, keep_every), steps] if keep_every > 0 else [steps]


def _tail(kind: str) -> str:
    """The template below its kind folder (``resources/data/``, ``results/<kind>/``), without
    the file ending."""
    tail = TEMPLATES[kind].removeprefix("resources/data/").removeprefix(RESULTS)
    if kind != "data":
        tail = tail.split("/", 1)[1]
    return str(Path(tail).with_suffix("")) if Path(tail).suffix else tail


def log(rule: str, kind: str) -> str:
    """The log file of rule ``rule`` whose output is a file of ``kind``."""
    return f"logs/{rule}/{_tail(kind)}.log"


def benchmark(rule: str, kind: str) -> str:
    """The benchmark (time, memory) file of rule ``rule`` whose output is a file of ``kind``."""
    return f"benchmarks/rules/{rule}/{_tail(kind)}.tsv"


def data_file(exp: str, dataset: str, name: str) -> str:
    """A family's prepared data file ``name`` of (experiment, data set)."""
    return path("data", exp=exp, dataset=dataset, datafile=name)
