"""Helpers shared by the issue-8 benchmarks: robust statistics, environment record, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from idff.io import write_json_atomic, write_text_atomic  # noqa: E402
from idff.provenance import git_commit  # noqa: E402


def spread(values: list[float]) -> dict[str, float]:
    """Median, quartiles and range of repeated measurements (the machine is shared and busy)."""
    if not values:
        raise ValueError("spread() needs at least one measurement")
    v = sorted(values)
    q = statistics.quantiles(v, n=4, method="inclusive") if len(v) > 1 else [v[0]] * 3
    return {"median": statistics.median(v), "q1": q[0], "q3": q[2], "min": v[0], "max": v[-1],
            "n": len(v)}


def environment() -> dict[str, Any]:
    """What the numbers depend on: code version, torch, threads, machine, load."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {"git_commit": git_commit(), "torch": torch.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(), "load_avg_1min": load,
            "cuda": torch.cuda.is_available()}


def write_result(out_dir: Path, name: str, result: dict, markdown: str) -> tuple[Path, Path]:
    """``<out_dir>/<name>.json`` and ``<name>.md``, written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    j = write_json_atomic(out_dir / f"{name}.json", result)
    m = write_text_atomic(out_dir / f"{name}.md", markdown if markdown.endswith("\n")
                          else markdown + "\n")
    return j, m


def fmt_ratio(s: dict[str, float]) -> str:
    """``1.03x (0.98-1.10)``: median and range over rounds."""
    return f"{s['median']:.2f}x ({s['min']:.2f}-{s['max']:.2f})"


def load_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
