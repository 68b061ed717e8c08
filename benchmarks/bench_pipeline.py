"""Pipeline overhead benchmark (issue 3): dry-run time on a finished run and the smoke run's wall time
split into Snakemake, data, training, tuning, sampling/sweeps and reports (from the rules' benchmark: files).

Usage: python benchmarks/bench_pipeline.py [--out results/benchmarks] [--keep DIR]
Runs the smoke pipeline from nothing in a temporary copy of the repository (2 cores), then times
`snakemake -n all` on the finished run and DAG building for the paper config.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from bench_run_times import md_speeds, rule_jobs  # noqa: E402
from workflow_helpers import copy_repo, env  # noqa: E402

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
CATEGORY = {"data": "data", "train": "training", "tune": "tuning (validation)",
            "sweep": "sampling + metrics (test sweeps)", "sample": "sampling (figure samples)",
            "floor": "metrics (floor)"}


def timed(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def rule_seconds(run: Path) -> dict[str, float]:
    """Job seconds summed per category of rule (see CATEGORY)."""
    totals: dict[str, float] = defaultdict(float)
    for rule, secs in rule_jobs(run).items():
        totals[CATEGORY.get(rule, rule)] += sum(secs)
    return dict(totals)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks")
    ap.add_argument("--keep", type=Path, help="run in this folder and keep it")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="idff-bench-"))
    smoke = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    run = copy_repo(base / "repo", smoke)
    wall = timed([SNAKEMAKE, "all", "--cores", "2", "--resources", "gpu=1", "--quiet", "all"], run)
    dry = [timed([SNAKEMAKE, "-n", "all", "--quiet", "all"], run) for _ in range(3)]
    paper = copy_repo(base / "paper")
    dag = [timed([SNAKEMAKE, "-n", "all", "--quiet", "all"], paper) for _ in range(2)]
    per_rule = rule_seconds(run)
    job_seconds = sum(per_rule.values())
    n_jobs = sum(1 for _ in (run / "benchmarks" / "rules").rglob("*.tsv"))
    result = {"benchmark": "pipeline", "smoke_wall_s": wall, "cores": 2, "jobs_with_benchmark": n_jobs,
              "job_seconds_by_category": per_rule, "job_seconds_total": job_seconds,
              "snakemake_overhead_s": max(wall - job_seconds / 2, 0.0),
              "dry_run_finished_smoke_s": statistics.median(dry),
              "dag_build_paper_config_s": statistics.median(dag),
              "md_data": md_speeds(run)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pipeline.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| measure | seconds |", "|---|---:|",
             f"| smoke run from nothing, wall (2 cores) | {wall:.0f} |",
             f"| `snakemake -n all` on the finished smoke run | {result['dry_run_finished_smoke_s']:.1f} |",
             f"| `snakemake -n all`, paper config (DAG build) | {result['dag_build_paper_config_s']:.1f} |"]
    lines += [f"| job time: {k} (sum over jobs) | {v:.0f} |" for k, v in sorted(per_rule.items())]
    lines.append(f"| Snakemake overhead (wall - job time / 2 cores) | {result['snakemake_overhead_s']:.0f} |")
    lines += [f"| OpenMM data generation ({s['source']}, {s['trajectories']} x "
              f"{s['ns_per_trajectory']:.3g} ns, {s['workers']} worker(s)): ns/day, mean | "
              f"{s['ns_per_day_mean']:,.0f} |" for s in result["md_data"]]
    (args.out / "pipeline.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
