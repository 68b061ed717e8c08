"""Quality per cost: the NFE and wall time each variant needs to reach OT-CFM's quality at NFE 100.

Issue 8, item 3 (the paper's "ten times fewer NFE" claim, measured). Reads the sweep metric
files of a finished run, ``<results>/metrics/<experiment>/<dataset>/<variant>/<solver>/seed<k>.json``
(written by ``idff sweep``), averages each metric over seeds, and for every (experiment, data
set, metric, variant, solver) finds the smallest swept NFE budget whose mean metric is at most
the reference: OT-CFM (method otcfm, sampler native) at NFE 100 with the reference solver
(euler). When the run did not sweep NFE 100 (the smoke config stops at 10) the largest swept
budget is the reference, and the table says so. Only lower-is-better metrics are compared
(``LOWER_IS_BETTER``: W2, MMD, FID, KID, MAE, RMSE, MSE, CRPS, JS, basin population error);
correlations, spread/skill ratios, waiting times and populations have no "at most" and are
left out by default and refused when asked for.

Reported per cell: the budget reached, the measured forward passes (NFE) and autograd passes
(vjp) there, the sampling wall time of that sweep point (``wall_s`` of the metric file: the
test evaluation's sampler time, mean over seeds) and the savings against the reference
(reference NFE / NFE, reference wall / wall). No interpolation between budgets: a variant
that reaches the reference first at budget 20 is reported at 20 even if 15 might do.

Usage: python benchmarks/bench_quality_per_cost.py RESULTS_DIR [--out results/benchmarks]
       [--metrics w2,mmd] [--ref-nfe 100] [--ref-solver euler] [--tolerance 0.0]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import write_result

from idff.io import write_text_atomic

REFERENCE = {"method": "otcfm", "sampler": "native"}
NOT_METRICS = {"nfe_budget", "nfe", "vjp", "calls", "wall_s", "params", "seeds"}
# metric name = one of these, optionally followed by "_<suffix>" (per angle, lead, kind: mae_phi,
# crps_3, mmd_multi, mae_k10_psi)
LOWER_IS_BETTER = ("w2", "mmd", "fid", "kid", "mae", "rmse", "mse", "crps", "js", "pop_err")


def lower_is_better(name: str) -> bool:
    """True when smaller values of the metric ``name`` are better (see LOWER_IS_BETTER)."""
    return name != "kid_std" and any(name == p or name.startswith(p + "_")
                                     for p in LOWER_IS_BETTER)


def read_sweeps(results: Path) -> list[dict[str, Any]]:
    """Every sweep metric file under ``results/metrics``; bad files are named, not skipped."""
    root = Path(results) / "metrics"
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist: pass the results folder of a finished "
                                f"run (the one holding metrics/, tables/, ...)")
    out = []
    for path in sorted(root.rglob("seed*.json")):
        try:
            obj = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}); delete it and rerun its sweep "
                             f"job") from exc
        if not isinstance(obj, dict) or obj.get("job") != "sweep" or not isinstance(
                obj.get("rows"), list):
            raise ValueError(f"{path} is not a sweep metric file (no job: sweep / rows); "
                             f"remove it from {root}")
        obj["_path"] = str(path)
        out.append(obj)
    if not out:
        raise FileNotFoundError(f"no sweep metric files (seed*.json) under {root}")
    return out


def average(sweeps: list[dict]) -> dict[tuple, dict[int, dict[str, float]]]:
    """(experiment, dataset, variant, method, sampler, solver) -> budget -> mean over seeds of
    every metric and of nfe, vjp, wall_s (non-finite values make the mean non-finite)."""
    acc: dict[tuple, dict[int, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for s in sweeps:
        key = (s["experiment"], s["dataset"], s["variant"], s.get("method"), s.get("sampler"),
               s["solver"])
        for row in s["rows"]:
            row = {**row, "seeds": 1.0}  # summed below: the number of seeds behind each mean
            budget = row.get("nfe_budget")
            if not isinstance(budget, int):
                continue  # adaptive reference rows have no budget
            for k, v in row.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "nfe_budget":
                    acc[key][budget][k].append(float(v))
    return {key: {b: {k: (len(v) if k == "seeds" else statistics.fmean(v)) for k, v in vals.items()}
                  for b, vals in sorted(budgets.items())}
            for key, budgets in acc.items()}


def metrics_of(table: dict) -> list[str]:
    names: set[str] = set()
    for budgets in table.values():
        for vals in budgets.values():
            names |= {k for k in vals if k not in NOT_METRICS and lower_is_better(k)}
    return sorted(names)


def quality_per_cost(table: dict, metrics: list[str] | None = None, ref_nfe: int = 100,
                     ref_solver: str = "euler", tolerance: float = 0.0) -> list[dict[str, Any]]:
    """One row per (experiment, dataset, metric, variant, solver); see the module docstring.

    ``tolerance``: a variant reaches the reference when its mean metric is at most
    ``ref + tolerance * |ref|``.
    """
    rows = []
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for key in table:
        groups[key[:2]].append(key)
    for (exp, ds), keys in sorted(groups.items()):
        refs = [k for k in keys if k[3] == REFERENCE["method"] and k[4] == REFERENCE["sampler"]]
        ref_key = next((k for k in refs if k[5] == ref_solver), refs[0] if refs else None)
        if ref_key is None:
            print(f"{exp}/{ds}: no OT-CFM (method otcfm, sampler native) sweep; skipped",
                  file=sys.stderr)
            continue
        ref_budgets = table[ref_key]
        budget = ref_nfe if ref_nfe in ref_budgets else max(ref_budgets)
        ref = ref_budgets[budget]
        for metric in metrics or metrics_of({k: table[k] for k in keys}):
            if metric not in ref:
                continue
            target = ref[metric] + tolerance * abs(ref[metric])
            for key in sorted(keys, key=lambda k: (k[2], k[5])):
                hit = next(((b, v) for b, v in table[key].items()
                            if metric in v and math.isfinite(v[metric]) and v[metric] <= target),
                           None)
                best_b, best_v = min(((b, v) for b, v in table[key].items() if metric in v),
                                     key=lambda bv: bv[1][metric], default=(None, {}))
                row: dict[str, Any] = {
                    "experiment": exp, "dataset": ds, "metric": metric, "variant": key[2],
                    "method": key[3], "sampler": key[4], "solver": key[5], "reference": f"{ref_key[2]} ({ref_key[5]})",
                    "ref_budget": budget, "ref_budget_requested": ref_nfe,
                    "ref_value": ref[metric], "ref_nfe": ref.get("nfe"), "ref_wall_s": ref.get("wall_s"),
                    "seeds": int(max(v.get("seeds", 0) for v in table[key].values())),
                    "reached": hit is not None, "best_budget": best_b,
                    "best_value": best_v.get(metric)}
                if hit is not None:
                    b, v = hit
                    row.update({"budget": b, "value": v[metric], "nfe": v.get("nfe"),
                                "vjp": v.get("vjp", 0.0), "wall_s": v.get("wall_s"),
                                "nfe_saving": _ratio(ref.get("nfe"), v.get("nfe")),
                                "wall_saving": _ratio(ref.get("wall_s"), v.get("wall_s"))})
                rows.append(row)
    return rows


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def markdown(rows: list[dict], results: Path) -> str:
    lines = [f"Quality per cost from `{results}`: the smallest swept NFE budget at which each "
             f"variant's mean metric (over seeds) reaches OT-CFM's at the reference budget; NFE "
             f"= measured forward passes (+ vjp autograd passes), wall = sampling wall time of "
             f"that sweep point; savings = reference / variant.", ""]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["experiment"], r["dataset"], r["metric"])].append(r)
    for (exp, ds, metric), rs in groups.items():
        r0 = rs[0]
        note = "" if r0["ref_budget"] == r0["ref_budget_requested"] else (
            f" (NFE {r0['ref_budget_requested']} not swept: the largest budget is the reference)")
        lines += [f"### {exp} / {ds} / `{metric}`: reference {r0['reference']} at NFE "
                  f"{r0['ref_budget']} = {r0['ref_value']:.4g}{note}", "",
                  "| variant (solver) | seeds | reaches at budget | NFE (+vjp) | wall (s) | "
                  "NFE saving | wall saving | best (at budget) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rs:
            best = (f"{r['best_value']:.4g} ({r['best_budget']})" if r["best_value"] is not None
                    else "")
            if r["reached"]:
                vjp = f" + {r['vjp']:.0f}" if r.get("vjp") else ""
                lines.append(f"| {r['variant']} ({r['solver']}) | {r['seeds']} | {r['budget']} | "
                             f"{r['nfe']:.0f}{vjp} | {_num(r['wall_s'])} | "
                             f"{_x(r['nfe_saving'])} | {_x(r['wall_saving'])} | {best} |")
            else:
                lines.append(f"| {r['variant']} ({r['solver']}) | {r['seeds']} | not reached | | | | "
                             f"| {best} |")
        lines.append("")
    return "\n".join(lines)


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.3g}"


def _x(v: float | None) -> str:
    return "" if v is None else f"{v:.2g}x"


def to_csv(rows: list[dict]) -> str:
    cols = ["experiment", "dataset", "metric", "variant", "solver", "seeds", "reference",
            "ref_budget",
            "ref_value", "ref_nfe", "ref_wall_s", "reached", "budget", "value", "nfe", "vjp",
            "wall_s", "nfe_saving", "wall_saving", "best_budget", "best_value"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="results folder of a finished run")
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks"))
    ap.add_argument("--metrics", default="", help="comma-separated metric names (default: all)")
    ap.add_argument("--ref-nfe", type=int, default=100)
    ap.add_argument("--ref-solver", default="euler")
    ap.add_argument("--tolerance", type=float, default=0.0,
                    help="relative slack on the reference value (0: at most the reference)")
    ap.add_argument("--name", default="quality_per_cost", help="output file stem")
    args = ap.parse_args(argv)
    if args.tolerance < 0:
        raise SystemExit(f"--tolerance must be >= 0, got {args.tolerance}")
    table = average(read_sweeps(args.results))
    metrics = [m for m in args.metrics.split(",") if m] or None
    wrong = [m for m in metrics or [] if not lower_is_better(m)]
    if wrong:
        raise SystemExit(f"--metrics {','.join(wrong)}: not a lower-is-better metric; the "
                         f"comparison asks which budget reaches 'at most' the reference. Use "
                         f"metrics named in LOWER_IS_BETTER: {', '.join(LOWER_IS_BETTER)}")
    rows = quality_per_cost(table, metrics, args.ref_nfe, args.ref_solver, args.tolerance)
    result = {"benchmark": "quality_per_cost", "results": str(args.results),
              "ref_nfe": args.ref_nfe, "ref_solver": args.ref_solver,
              "tolerance": args.tolerance, "rows": rows}
    md = markdown(rows, args.results)
    write_result(args.out, args.name, result, md)
    write_text_atomic(args.out / f"{args.name}.csv", to_csv(rows))
    print(md)
    return result


if __name__ == "__main__":
    main()
