"""Run the benchmark suite (issue 8) with one command and write a summary table.

    python benchmarks/run_all.py                 # CPU suite, ~15 min on 2 busy cores
    python benchmarks/run_all.py --quick         # every script once, few repeats (~2 min)
    python benchmarks/run_all.py --pipeline      # also the smoke pipeline timing (~15 min more)
    python benchmarks/run_all.py --results /tmp/toycpu/repo/results   # quality per cost of a run

Each benchmark runs in its own process (its own thread settings, no shared state) and writes
``<out>/<name>.json`` and ``<name>.md``; a failing benchmark is recorded and the others still run.
Then ``<out>/summary.md`` gathers every target (met, or the measured gap) and ``<out>/run_all.json``
what ran, for how long, and what was skipped and why (GPU parts need ``torch.cuda.is_available()``;
the quality table needs a results folder with sweep metric files).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import REPO, environment, fmt_ratio, load_json  # noqa: E402

from idff.io import write_json_atomic, write_text_atomic  # noqa: E402


def run(name: str, cmd: list[str], log_dir: Path) -> dict[str, Any]:
    """Run one benchmark script; its output goes to ``<log_dir>/<name>.log``."""
    log = log_dir / f"{name}.log"
    print(f"[run_all] {name}: {' '.join(cmd[1:])}  (log: {log})", flush=True)
    t0 = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    print(f"[run_all] {name}: {status} in {wall:.0f} s", flush=True)
    return {"name": name, "status": status, "wall_s": round(wall, 1), "log": str(log)}


def has_metrics(results: Path) -> bool:
    return (results / "metrics").is_dir() and any((results / "metrics").rglob("seed*.json"))


# --------------------------------------------------------------------------- summary


def _ok(met: bool) -> str:
    return "met" if met else "**not met**"


def training_rows(r: dict) -> list[str]:
    rows = []
    for net, c in r["comparisons"].items():
        q = c["ratios"]
        for key, label, target in [
                ("otcfm_vs_torchcfm_otcfm", "our OT-CFM / torchcfm OT-CFM", 1.05),
                ("idff_vs_torchcfm_otcfm", "our IDFF / torchcfm OT-CFM", 1.15),
                ("idff_vs_torchcfm_icfm", "our IDFF / torchcfm I-CFM (same coupling)", None)]:
            verdict = _ok(q[key]["median"] <= target) if target else "(context)"
            rows.append(f"| training step, {net} | {label} | "
                        f"{'<= ' + format(target, '.2f') + 'x' if target else ''} | "
                        f"{fmt_ratio(q[key])} | {verdict} |")
    return rows


def sampling_rows(r: dict) -> list[str]:
    """Per (batch, path): the worst first-order sampler over NFE 2-100 and at NFE 1, as the
    median of per-repetition ratios and as the ratio of the fastest repetitions."""
    rows = []
    by_batch: dict[tuple, list[dict]] = {}
    for v in r["verdicts"].values():
        by_batch.setdefault((v["batch"], v["path"]), []).append(v)
    for (batch, path), vs in sorted(by_batch.items()):
        worst = max(vs, key=lambda v: v["worst_nfe_ge2"])
        worst1 = max((v for v in vs if v["nfe1"] is not None), key=lambda v: v["nfe1"],
                     default=None)
        best = max(vs, key=lambda v: v.get("worst_best_nfe_ge2", 0.0))
        nfe1 = f"; NFE 1: {worst1['nfe1']:.2f}x ({worst1['sampler']})" if worst1 else ""
        if all(v["met"] for v in vs):
            verdict = "met"
        elif all(v.get("met_best") for v in vs):
            verdict = "met on the fastest repetitions (medians within the noise)"
        else:
            verdict = "**not met**"
        rows.append(f"| sampling, order 1, batch {batch} | {path} path: worst sampler, NFE "
                    f"2-100{' and NFE 1' if worst1 else ''} | <= {r['target']:.2f}x | median "
                    f"{worst['worst_nfe_ge2']:.2f}x ({worst['sampler']}){nfe1}; fastest reps "
                    f"{best.get('worst_best_nfe_ge2', float('nan')):.2f}x | {verdict} |")
    return rows


def quality_rows(r: dict) -> list[str]:
    """Per (experiment, dataset, metric): the IDFF sampler that reaches OT-CFM's reference
    quality with the fewest forward passes."""
    rows = []
    groups: dict[tuple, list[dict]] = {}
    for row in r["rows"]:
        groups.setdefault((row["experiment"], row["dataset"], row["metric"]), []).append(row)
    for (exp, ds, metric), rs in sorted(groups.items()):
        ref = rs[0]
        idff = [x for x in rs if x.get("method") == "idff"]
        hits = [x for x in idff if x["reached"]]
        ref_txt = f"OT-CFM at NFE {ref['ref_budget']}" + (
            "" if ref["ref_budget"] == ref["ref_budget_requested"] else " (largest swept)")
        if hits:
            best = min(hits, key=lambda x: (x["nfe"] + (x.get("vjp") or 0), x["wall_s"] or 0))
            vjp = f" + {best['vjp']:.0f} vjp" if best.get("vjp") else ""
            measured = (f"{best['variant']} ({best['solver']}): NFE {best['nfe']:.0f}{vjp}; "
                        f"reference / this: {_x(best['nfe_saving'])} in forward passes, "
                        f"{_x(best['wall_saving'])} in wall time")
        else:
            measured = "no IDFF sampler reaches it within the swept budgets"
        rows.append(f"| quality per cost, {exp}/{ds} `{metric}` | fewest NFE of an IDFF sampler "
                    f"to reach {ref_txt} | paper: ~10x fewer | {measured} | "
                    f"{'measured' if hits else '**not reached**'} |")
    return rows


def _x(v: float | None) -> str:
    return "?" if v is None else f"{v:.2g}x"


def pipeline_rows(r: dict) -> list[str]:
    rows = [f"| pipeline | smoke run from nothing, wall (2 cores) | | {r['smoke_wall_s']:.0f} s | |",
            f"| pipeline | `snakemake -n all` on the finished smoke run | | "
            f"{r['dry_run_finished_smoke_s']:.1f} s | |",
            f"| pipeline | paper config DAG build (`snakemake -n all`) | | "
            f"{r['dag_build_paper_config_s']:.1f} s | |"]
    return rows + [f"| pipeline | OpenMM data generation, {s['source']} (smoke data) | | "
                   f"{s['ns_per_day_mean']:,.0f} ns/day | |" for s in r.get("md_data", [])]


def gpu_rows(r: dict) -> list[str]:
    ok = [x for x in r.get("train_throughput", []) if "error" not in x]
    rows = []
    if ok:
        best = max(ok, key=lambda x: x["images_per_s"])
        rows.append(f"| GPU, {r.get('device')} | CIFAR-10 UNet training images/s (best: bf16="
                    f"{best['bf16']}, channels_last={best['channels_last']}, compile="
                    f"{best['compile']}) | | {best['images_per_s']:.0f} | |")
    for s in r.get("sampling", []):
        rows.append(f"| GPU, {r.get('device')} | sampling images/s at NFE {s['nfe']} "
                    f"(bf16={s['bf16']}) | | {s['images_per_s']:.0f} | |")
    return rows


def summary(out: Path, steps: list[dict], skipped: dict[str, str], env: dict) -> str:
    lines = ["# Benchmark summary (issue 8)", "",
             f"Commit {env['git_commit']}, torch {env['torch']}, {env['cpu_count']} CPU cores "
             f"({env['processor'] or env['machine']}), load average {env['load_avg_1min']}, "
             f"CUDA: {env['cuda']}. Written by `python benchmarks/run_all.py`; details in the "
             f"per-benchmark files beside this one.", "",
             "| benchmark | measure | target | measured | verdict |", "|---|---|---|---|---|"]
    sections = [("vs_torchcfm", training_rows), ("sampling", sampling_rows),
                ("quality_per_cost", quality_rows), ("pipeline", pipeline_rows),
                ("gpu_images", gpu_rows)]
    for name, fn in sections:
        path = out / f"{name}.json"
        ran = next((s for s in steps if s["name"] == name), None)
        if ran is not None and ran["status"] != "ok":
            lines.append(f"| {name} | | | {ran['status']}, see {ran['log']} | |")
        elif path.is_file():  # this run's, or an earlier run's (said so, with its commit)
            try:
                obj = load_json(path)
                rows = fn(obj)
            except (KeyError, TypeError, ValueError) as exc:
                rows = [f"| {name} | | | unreadable {path.name}: {exc!r} | |"]
            if ran is None:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
                env = obj.get("env", {}) if isinstance(obj, dict) else {}
                tag = f"earlier run: {when}" + (f", {env['git_commit'][:7]}"
                                                if env.get("git_commit") else "")
                rows = [r.replace(f"| {r.split('|')[1].strip()} |",
                                  f"| {r.split('|')[1].strip()} ({tag}) |", 1) for r in rows]
            lines += rows
        elif name in skipped:
            lines.append(f"| {name} | skipped | | {skipped[name]} | |")
    lines += ["", "| step | status | wall (s) |", "|---|---|---:|"]
    lines += [f"| {s['name']} | {s['status']} | {s['wall_s']:.0f} |" for s in steps]
    for name, why in skipped.items():
        lines.append(f"| {name} | skipped: {why} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks")
    ap.add_argument("--quick", action="store_true", help="few repeats: checks that all scripts run")
    ap.add_argument("--pipeline", action="store_true",
                    help="also run benchmarks/bench_pipeline.py (the whole smoke pipeline)")
    ap.add_argument("--results", type=Path, default=REPO / "results",
                    help="results folder for the quality-per-cost table")
    ap.add_argument("--skip", default="", help="comma-separated benchmark names to skip")
    ap.add_argument("--torchcfm", default=None, help="folder holding torchcfm (see bench_vs_torchcfm)")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    py, quick = sys.executable, ["--quick"] if args.quick else []
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    plan: list[tuple[str, list[str]]] = [
        ("core", [py, str(HERE / "bench_core.py"), "--out", str(out), *quick]),
        ("vs_torchcfm", [py, str(HERE / "bench_vs_torchcfm.py"), "--out", str(out), *quick,
                         *(["--torchcfm", args.torchcfm] if args.torchcfm else [])]),
        ("sampling", [py, str(HERE / "bench_sampling.py"), "--out", str(out), *quick])]
    skipped: dict[str, str] = {}
    if has_metrics(args.results):
        plan.append(("quality_per_cost", [py, str(HERE / "bench_quality_per_cost.py"),
                                          str(args.results), "--out", str(out)]))
    else:
        skipped["quality_per_cost"] = (f"no sweep metric files under {args.results}/metrics "
                                       f"(run the pipeline first, or pass --results)")
    if args.pipeline:
        plan.append(("pipeline", [py, str(HERE / "bench_pipeline.py"), "--out", str(out)]))
    else:
        skipped["pipeline"] = "not requested (--pipeline runs the whole smoke pipeline)"
    import torch

    if torch.cuda.is_available():
        plan.append(("gpu_images", [py, str(HERE / "gpu_images.py"),
                                    str(out / "gpu_images.json")]))
    else:
        skipped["gpu_images"] = "no CUDA device (torch.cuda.is_available() is False)"
    steps = []
    for name, cmd in plan:
        if name in skip:
            skipped[name] = "--skip"
            continue
        steps.append(run(name, cmd, logs))
    env = environment()
    md = summary(out, steps, skipped, env)
    write_json_atomic(out / "run_all.json", {"benchmark": "run_all", "env": env,
                                             "quick": args.quick, "steps": steps,
                                             "skipped": skipped})
    write_text_atomic(out / "summary.md", md + "\n")
    print(md)
    return 0 if all(s["status"] == "ok" for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
