"""Which result files a report needs, and loading them into DataFrames.

The ``expected_*`` functions are pure and fast (no file access): the Snakefile imports them to
list a report rule's inputs, so the rule and the report read exactly the same files. Paths are
relative and start with ``results/``; the loaders swap that prefix for their ``results`` dir.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import layout
from ..plan.core import exp_config, family_metrics, has_floor, metric_jobs
from .validate import ResultValueError, check_result

RESULTS_PREFIX = "results/"
METRIC_KEYS = ("dataset", "variant", "method", "sampler", "solver", "seed", "rows")
ROW_KEYS = ("nfe_budget", "nfe", "vjp", "wall_s")


class ReportInputError(ValueError):
    """A result file exists but does not hold what the report needs."""


def resolve(results: str | Path, rel: str) -> Path:
    """Map ``results/...`` onto the ``results`` directory actually used."""
    if not rel.startswith(RESULTS_PREFIX):
        raise ValueError(f"result path {rel!r} must start with {RESULTS_PREFIX!r}")
    return Path(results) / rel[len(RESULTS_PREFIX):]


def require(paths: list[Path], target: str) -> None:
    """Raise FileNotFoundError naming the first missing file and how to make it."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise FileNotFoundError(f"result file {missing[0]} is missing{more}; run `snakemake "
                                f"{target}` to produce the inputs of {target}")


def job_files(results: str | Path, jobs: list[dict], target: str) -> list[Path]:
    """The files of ``jobs`` (each job's ``path``) under ``results``; all must exist (else the
    error names the first missing one and the target to run)."""
    paths = [resolve(results, j["path"]) for j in jobs]
    require(paths, target)
    return paths


def read_result(path: Path) -> dict:
    """A result file's JSON object; a clear error when it is not valid JSON or not an object."""
    try:
        obj = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReportInputError(f"result file {path} is not valid JSON ({exc}); delete it "
                               f"and rerun the job that writes it") from exc
    except OSError as exc:
        raise ReportInputError(f"result file {path} could not be read ({exc.strerror}); check "
                               f"it is a readable file, or delete it and rerun its job") from exc
    if not isinstance(obj, dict):
        raise ReportInputError(f"result file {path} holds a {type(obj).__name__}, not an object")
    try:
        check_result(obj, path)
    except ResultValueError as exc:
        raise ReportInputError(str(exc)) from exc
    return obj


def need_keys(obj: dict, keys: tuple[str, ...], path: Path) -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ReportInputError(f"result file {path} lacks key(s) {missing}; it was written by "
                               f"another version of idff: delete it and rerun its job")


def sweep_results(cfg: dict, exp: str, results: str | Path, target: str,
                row_keys: tuple[str, ...] = ROW_KEYS) -> Iterator[tuple[dict, Path, dict, dict]]:
    """Every sweep metric file of ``exp``, checked: ``(job, path, object, rows)`` with ``rows``
    the file's row for each NFE budget the config sweeps (``{budget: row}``, in job order).

    A file whose ids disagree with its path, whose rows lack ``row_keys`` or a budget the config
    asks for (stale) is an error naming the file and the fix.
    """
    jobs = metric_jobs(cfg, exp)
    for job, path in zip(jobs, job_files(results, jobs, target), strict=True):
        obj = read_result(path)
        need_keys(obj, METRIC_KEYS, path)
        for key in ("dataset", "variant", "solver", "seed"):
            if obj[key] != job[key]:
                raise ReportInputError(f"result file {path} holds {key} {obj[key]!r}, but its path "
                                       f"says {job[key]!r}; delete it and rerun its job")
        by_nfe = {}
        for row in obj["rows"]:
            need_keys(row, row_keys, path)
            by_nfe[int(row["nfe_budget"])] = row
        lacking = [n for n in job["nfes"] if n not in by_nfe]
        if lacking:
            raise ReportInputError(f"result file {path} has no rows for NFE budget(s) {lacking} that "
                                   f"the config sweeps; it is stale: rerun `snakemake {target}`")
        yield job, path, obj, {n: by_nfe[n] for n in job["nfes"]}


def floor_results(cfg: dict, exp: str, results: str | Path, target: str,
                keys: tuple[str, ...] = ()) -> Iterator[tuple[str, int, Path, dict]]:
    """Every floor file of ``exp`` (one per data set and seed), checked:
    ``(dataset, seed, path, object)``; ``keys``: what each must hold besides dataset and seed."""
    e = exp_config(cfg, exp)
    ids = [(ds, seed) for ds in e["datasets"] for seed in e["seeds"]]
    paths = [resolve(results, layout.path("floor", exp=exp, dataset=ds, seed=seed)) for ds,
                                          seed in ids]
    require(paths, target)
    for (ds, seed), path in zip(ids, paths, strict=True):
        obj = read_result(path)
        need_keys(obj, ("dataset", "seed") + tuple(keys), path)
        if obj["dataset"] != ds or obj["seed"] != seed:
            raise ReportInputError(f"result file {path} holds data set {obj['dataset']!r} seed "
                                   f"{obj['seed']!r}, but its path says {ds!r} seed {seed}")
        yield ds, int(seed), path, obj


def load_metrics(cfg: dict, exp: str, results: str | Path, target: str) -> pd.DataFrame:
    """All sweep rows of an experiment, one DataFrame row per (file, NFE budget).

    Columns: dataset, variant, method, sampler, solver, seed, nfe_budget, nfe, vjp, wall_s,
    params (JSON text) and one column per metric of the family. Only the NFE budgets of the
    config are kept; a budget the config asks for but the file lacks is an error (stale file).
    """
    metrics = family_metrics(cfg, exp)
    records = []
    for job, path, obj, rows in sweep_results(cfg, exp, results, target, ROW_KEYS + metrics):
        for nfe, row in rows.items():
            records.append({"dataset": job["dataset"], "variant": job["variant"],
                            "method": obj["method"], "sampler": obj["sampler"],
                            "solver": job["solver"], "seed": int(job["seed"]), "nfe_budget": nfe,
                            "nfe": float(row["nfe"]), "vjp": float(row["vjp"]),
                            "wall_s": float(row["wall_s"]),
                            "params": json.dumps(row.get("params") or {}, sort_keys=True),
                            **{m: to_float(row[m], m, path) for m in metrics}})
    return pd.DataFrame.from_records(records)


def load_floor(cfg: dict, exp: str, results: str | Path, target: str) -> pd.DataFrame | None:
    """Metric floor per data set and seed (columns dataset, seed, metrics); None if no floor."""
    if not has_floor(cfg, exp):
        return None
    metrics = family_metrics(cfg, exp)
    records = [{"dataset": ds, "seed": seed, **{m: to_float(obj[m], m, path) for m in metrics}}
               for ds, seed, path, obj in floor_results(cfg, exp, results, target, metrics)]
    return pd.DataFrame.from_records(records)


def to_float(value: Any, key: str, path: Path) -> float:
    if value is None:  # JSON has no NaN; a diverged run may store null
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ReportInputError(f"result file {path}: {key} = {value!r} is not a number") from exc


def read_npz(path: Path, need: tuple[str, ...], what: str, step: str,
             every: bool = False) -> dict[str, np.ndarray]:
    """The arrays ``need`` (``every``: all arrays, ``need`` among them) of an ``.npz`` that
    ``idff <step>`` wrote; a file that cannot be read or lacks one is a ReportInputError naming
    the file and the fix."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files if every or k in need}
    except (OSError, ValueError, EOFError) as exc:
        raise ReportInputError(f"{what} file {path} could not be read ({exc}); delete it and "
                               f"rerun `idff {step}`") from exc
    lacking = [k for k in need if k not in arrays]
    if lacking:
        raise ReportInputError(f"{what} file {path} lacks array(s) {lacking}; it was not written "
                               f"by `idff {step}`: delete it and rerun")
    return arrays


def load_samples(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``samples [N, 2]`` and ``trajectory [steps + 1, N, 2]`` of an ``idff sample`` file."""
    arrays = read_npz(path, ("samples", "trajectory"), "sample", "sample")
    samples, traj = arrays["samples"], arrays["trajectory"]
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise ReportInputError(f"sample file {path}: samples has shape {samples.shape}, need (N, 2)")
    if traj.ndim != 3 or traj.shape[1:] != samples.shape:
        raise ReportInputError(f"sample file {path}: trajectory has shape {traj.shape}, need "
                               f"(steps + 1, {samples.shape[0]}, 2)")
    return samples, traj
