"""Rule times of a finished pipeline run, and the MD data generator's speed (issues 4 and 8).

Every rule with work to do has a ``benchmark:`` file under ``<run>/benchmarks/rules/<rule>/...tsv``
(Snakemake's own measurement of that job: wall seconds, max RSS). This script sums them per rule
(jobs, total, mean, max seconds) and reads the OpenMM speed (ns/day per trajectory, measured on
the production part by ``idff.data.md``) from every simulated MD data set under
``<run>/resources/data/md``.

Usage: python benchmarks/bench_run_times.py RUN_DIR [--name md_cpu] [--out results/benchmarks]
       [--wall SECONDS]   (the run's measured wall time, for the overhead line)
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path
from typing import Any

from common import write_result

from idff.data.md import MDDataError, load_md_dataset


def rule_jobs(run: Path) -> dict[str, list[float]]:
    """rule -> wall seconds of each of its jobs, from the rules' benchmark files."""
    root = run / "benchmarks" / "rules"
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist: pass the folder of a finished pipeline "
                                f"run (the one holding benchmarks/rules/, results/, ...)")
    jobs: dict[str, list[float]] = {}
    for tsv in sorted(root.rglob("*.tsv")):
        rule = tsv.relative_to(root).parts[0]
        with tsv.open() as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if not rows or "s" not in rows[0]:
            raise ValueError(f"{tsv} is not a Snakemake benchmark file (no 's' column); delete it "
                             f"and rerun its job")
        jobs.setdefault(rule, []).extend(float(r["s"]) for r in rows)
    if not jobs:
        raise FileNotFoundError(f"no benchmark files under {root}")
    return jobs


def md_speeds(run: Path) -> list[dict[str, Any]]:
    """One row per simulated MD data set: source, trajectories, ns each, ns/day (mean, range)."""
    out = []
    for path in sorted((run / "resources" / "data" / "md").glob("*/*.npz")):
        try:
            ds = load_md_dataset(path)
        except MDDataError:
            continue  # not a data set of ours (e.g. a raw download); the data rule checks them
        speeds = ds.meta.get("ns_per_day")
        if not speeds:
            continue  # downloaded, not simulated
        out.append({"data": str(path.relative_to(run)), "source": ds.source,
                    "trajectories": len(ds.trajectories),
                    "ns_per_trajectory": statistics.fmean(ds.n_frames) * ds.frame_ps / 1000,
                    "workers": ds.meta.get("workers"), "wall_s": ds.meta.get("wall_s"),
                    "ns_per_day": speeds, "ns_per_day_mean": statistics.fmean(speeds),
                    "ns_per_day_min": min(speeds), "ns_per_day_max": max(speeds)})
    return out


def markdown(run: Path, jobs: dict[str, list[float]], speeds: list[dict], wall: float | None) -> str:
    total = sum(sum(v) for v in jobs.values())
    lines = [f"Rule times of the run in `{run.name}` (Snakemake `benchmark:` files, wall seconds "
             f"per job).", "", "| rule | jobs | total (s) | mean (s) | max (s) |",
             "|---|---:|---:|---:|---:|"]
    for rule, secs in sorted(jobs.items(), key=lambda kv: -sum(kv[1])):
        lines.append(f"| {rule} | {len(secs)} | {sum(secs):.0f} | {statistics.fmean(secs):.1f} | "
                     f"{max(secs):.1f} |")
    lines.append(f"| **all jobs** | {sum(len(v) for v in jobs.values())} | {total:.0f} | | |")
    if wall:
        lines += ["", f"Run wall time {wall:.0f} s; job time / wall = {total / wall:.2f} "
                      f"(parallelism actually achieved)."]
    if speeds:
        lines += ["", "OpenMM data generation (production part, per trajectory):", "",
                  "| data | source | trajectories x ns | workers | ns/day mean (min-max) | wall (s) |",
                  "|---|---|---:|---:|---:|---:|"]
        for s in speeds:
            lines.append(f"| `{s['data']}` | {s['source']} | {s['trajectories']} x "
                         f"{s['ns_per_trajectory']:.3g} | {s['workers']} | "
                         f"{s['ns_per_day_mean']:,.0f} ({s['ns_per_day_min']:,.0f}-"
                         f"{s['ns_per_day_max']:,.0f}) | {s['wall_s']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="folder of a finished pipeline run")
    ap.add_argument("--name", default="run_times", help="output file stem")
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks"))
    ap.add_argument("--wall", type=float, help="measured wall seconds of the whole run")
    args = ap.parse_args(argv)
    run = args.run.resolve()
    jobs = rule_jobs(run)
    speeds = md_speeds(run)
    result = {"benchmark": "run_times", "run": str(run), "wall_s": args.wall,
              "rules": {r: {"jobs": len(s), "total_s": sum(s), "mean_s": statistics.fmean(s),
                            "max_s": max(s)} for r, s in jobs.items()},
              "md_data": speeds}
    md = markdown(run, jobs, speeds, args.wall)
    write_result(args.out, args.name, result, md)
    print(md)
    return result


if __name__ == "__main__":
    main()
