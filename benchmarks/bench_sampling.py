"""Sampling cost per sample at NFE 1..100 for each sampler against the bare network forward.

Issue 8, item 2. Target: first-order samplers within 1.15x of the floor, the floor being NFE
bare forward passes of the same network at the same batch (``net(x, t)`` under no_grad, no
wrapper, time tensors made beforehand). Measured for the plain path (``idff.flows.sampling.generate``)
and the fused loop (``idff.flows.fused.fused_generate``, config ``sweep.fused``), on the toy
network (MLP 2 -> 3 x 256 SELU), one thread, process CPU time (robust to the other jobs on a
shared machine), floor and sampler runs interleaved, median over repetitions.

Also measured: the higher-order terms (idff2, idff3) through nested autograd (what the library
does: one batched vector-Jacobian pass per order) against a torch.func formulation
(``grad`` of nested ``jvp``s along the all-ones direction), and ``torch.compile`` of the network
for sampling (``model.compile``), with its compile time.

Usage: python benchmarks/bench_sampling.py [--out results/benchmarks] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from common import environment, spread, write_result
from torch.func import grad, jvp

from idff.flows.fused import can_fuse, fused_generate
from idff.flows.nfe import CountingNet
from idff.flows.sampling import generate
from idff.models.mlp import MLP

ORDER1 = {"idff1": ("euler", {"sigma_s": 0.3}), "cfm": ("euler", {}), "pf": ("euler", {}),
          "bridge_sde": ("euler_maruyama", {"g_scale": 1.0}), "native": ("euler", {})}
HIGHER = {"idff2": ("euler", {"gamma1": 0.5, "gamma2": 0.5}),
          "idff3": ("euler", {"gamma1": 0.5, "gamma2": 0.5, "gamma3": 0.5})}
TARGET = 1.15
clock = time.process_time


def make_net(heads: int, hidden: int = 256) -> MLP:
    torch.manual_seed(0)
    return MLP(2, n_heads=heads, hidden=hidden).eval().requires_grad_(False)


def floor_s(model: torch.nn.Module, x: torch.Tensor, nfe: int) -> float:
    """CPU seconds of ``nfe`` bare forward passes at this batch."""
    ts = [torch.full((x.shape[0],), i / nfe) for i in range(nfe)]
    with torch.no_grad():
        t0 = clock()
        for t in ts:
            model(x, t)
        return clock() - t0


def sampler_s(fn: Callable, net: CountingNet, sampler: str, x: torch.Tensor, nfe: int,
              solver: str, params: dict) -> tuple[float, int, int]:
    g = torch.Generator().manual_seed(0)
    t0 = clock()
    _, stats = fn(net, sampler, x, sigma=0.2, solver=solver, nfe=nfe, params=params, generator=g)
    return clock() - t0, stats.nfe, stats.vjp


def repetitions(batch: int, nfe: int, quick: bool) -> int:
    """Enough repeats for a stable median, bounded work: ~ 4e5 sample-forwards per point."""
    budget = 1e5 if quick else 4e5
    return int(min(25 if not quick else 7, max(3, budget // (batch * nfe))))


def measure(batches: list[int], nfes: list[int], quick: bool) -> dict:
    rows = {}
    nets = {1: make_net(1), 2: make_net(2)}
    for batch in batches:
        x0 = torch.randn(batch, 2, generator=torch.Generator().manual_seed(1))
        samplers = dict(ORDER1)
        if batch <= 256:
            samplers.update(HIGHER)
        for name, (solver, params) in samplers.items():
            model = nets[1 if name == "native" else 2]
            net = CountingNet(model)
            paths = {"plain": generate}
            if can_fuse(name, solver):
                paths["fused"] = fused_generate
            for nfe in nfes:
                if name in HIGHER and nfe > 20:
                    continue
                reps = repetitions(batch, nfe * (4 if name in HIGHER else 1), quick)
                ratios: dict[str, list[float]] = {p: [] for p in paths}
                per_sample: dict[str, list[float]] = {p: [] for p in paths}
                raw: dict[str, list[float]] = {p: [] for p in paths}
                floors, counts = [], {}
                for _ in range(reps):
                    f = floor_s(model, x0, nfe)
                    floors.append(f)
                    for p, fn in paths.items():
                        s, n, v = sampler_s(fn, net, name, x0, nfe, solver, params)
                        ratios[p].append(s / f)
                        raw[p].append(s)
                        per_sample[p].append(s / batch)
                        counts[p] = (n, v)
                for p in paths:
                    rows[f"{name}|{p}|{batch}|{nfe}"] = {
                        "sampler": name, "path": p, "batch": batch, "nfe_budget": nfe,
                        "nfe": counts[p][0], "vjp": counts[p][1], "order": 1 if name in ORDER1
                        else int(name[-1]), "ratio_to_floor": spread(ratios[p]),
                        "ratio_of_best": min(raw[p]) / min(floors),
                        "s_per_sample": statistics.median(per_sample[p]),
                        "floor_s_per_sample": statistics.median(floors) / batch}
            print(f"  batch {batch} {name}: " + ", ".join(
                f"{p}@{n} {rows[f'{name}|{p}|{batch}|{n}']['ratio_to_floor']['median']:.2f}x"
                for p in paths for n in nfes if f"{name}|{p}|{batch}|{n}" in rows), flush=True)
    return rows


# --------------------------------------------------------------------------- higher orders


def terms_autograd(model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, order: int):
    """D_1..D_K as the library computes them (idff.flows.fields._higher_order)."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        d, out = model(xg, t).chunk(2, dim=1)[0], []
        for k in range(1, order + 1):
            (d,) = torch.autograd.grad(d.sum(), xg, create_graph=k < order)
            out.append(d.detach())
    return out


def terms_func(model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, order: int):
    """The same terms with torch.func: D_k = grad of the (k-1)-fold directional derivative of
    sum(x1_hat) along the all-ones vector (D_2 = H 1, D_3 = grad(1' H 1))."""
    ones = torch.ones_like(x)

    def s(z):
        return model(z, t).chunk(2, dim=1)[0].sum()

    fs = [s]
    for _ in range(1, order):
        fs.append(lambda z, f=fs[-1]: jvp(f, (z,), (ones,))[1])
    return [grad(f)(x) for f in fs]


def higher_order_formulations(quick: bool) -> dict:
    model = make_net(2)
    out = {}
    for batch in ((16,) if quick else (16, 512)):
        x = torch.randn(batch, 2, generator=torch.Generator().manual_seed(2))
        t = torch.full((batch,), 0.3)
        for order in (2, 3):
            a, b = terms_autograd(model, x, t, order), terms_func(model, x, t, order)
            err = max(float((u - v).abs().max() / (u.abs().max() + 1e-12)) for u, v in zip(a, b, strict=True))
            times: dict[str, list[float]] = {"forward": [], "autograd": [], "func": []}
            fns = {"forward": lambda x=x, t=t: model(x, t),
                   "autograd": lambda x=x, t=t, o=order: terms_autograd(model, x, t, o),
                   "func": lambda x=x, t=t, o=order: terms_func(model, x, t, o)}
            for _ in range(3 if quick else 10):
                for k, fn in fns.items():
                    t0 = clock()
                    if k == "forward":
                        with torch.no_grad():
                            fn()
                    else:
                        fn()
                    times[k].append(clock() - t0)
            med = {k: statistics.median(v) for k, v in times.items()}
            out[f"order{order}@{batch}"] = {
                "batch": batch, "order": order, "forward_ms": med["forward"] * 1e3,
                "autograd_ms": med["autograd"] * 1e3, "func_ms": med["func"] * 1e3,
                "func_vs_autograd": med["func"] / med["autograd"], "max_rel_diff": err}
    return out


def compile_sampling(quick: bool) -> dict:
    """Bare forward of the eager and the compiled (inductor) network, and the compile time."""
    out = {}
    for batch in (2, 256):
        model = make_net(2)
        x, t = torch.randn(batch, 2), torch.rand(batch)
        compiled = torch.compile(model)
        t0 = time.perf_counter()
        with torch.no_grad():
            compiled(x, t)
        compile_s = time.perf_counter() - t0
        times: dict[str, list[float]] = {"eager": [], "compiled": []}
        with torch.no_grad():
            for _ in range(5):
                for k, m in (("eager", model), ("compiled", compiled)):
                    t0 = clock()
                    for _ in range(50):
                        m(x, t)
                    times[k].append((clock() - t0) / 50)
        out[str(batch)] = {"batch": batch, "compile_s": compile_s,
                           "eager_us": statistics.median(times["eager"]) * 1e6,
                           "compiled_us": statistics.median(times["compiled"]) * 1e6}
    return out


# --------------------------------------------------------------------------- report


def verdicts(rows: dict) -> dict:
    """Per (sampler, path, batch) of the first-order samplers: the worst ratio over NFE >= 2 and
    at NFE 1 (which adds the per-call overhead once), and whether the target holds: ``met``
    on the medians of the per-repetition ratios, ``met_best`` on the ratio of the fastest
    repetitions (what other jobs on a shared machine disturb least: they only add time)."""
    out: dict[str, dict] = {}
    for r in rows.values():
        if r["order"] != 1:
            continue
        key = f"{r['sampler']}|{r['path']}|{r['batch']}"
        v = out.setdefault(key, {"sampler": r["sampler"], "path": r["path"], "batch": r["batch"],
                                 "worst_nfe_ge2": 0.0, "nfe1": None,
                                 "worst_best_nfe_ge2": 0.0, "best_nfe1": None})
        m, b = r["ratio_to_floor"]["median"], r["ratio_of_best"]
        if r["nfe_budget"] == 1:
            v["nfe1"], v["best_nfe1"] = m, b
        else:
            v["worst_nfe_ge2"] = max(v["worst_nfe_ge2"], m)
            v["worst_best_nfe_ge2"] = max(v["worst_best_nfe_ge2"], b)
    for v in out.values():
        v["met"] = v["worst_nfe_ge2"] <= TARGET and (v["nfe1"] is None or v["nfe1"] <= TARGET)
        v["met_best"] = v["worst_best_nfe_ge2"] <= TARGET and (
            v["best_nfe1"] is None or v["best_nfe1"] <= TARGET)
    return out


def markdown(result: dict) -> str:
    rows, nfes = result["rows"], result["nfes"]
    lines = [f"Ratio of the sampler's CPU time to NFE bare forwards at the same batch (median over "
             f"repetitions; target <= {TARGET} for first-order samplers). One thread.", ""]
    for batch in result["batches"]:
        lines += [f"Batch {batch} (bare forward "
                  f"{_floor_us(rows, batch):.0f} us):", "",
                  "| sampler | path | " + " | ".join(f"NFE {n}" for n in nfes) + " |",
                  "|---|---|" + "---:|" * len(nfes)]
        keys = sorted({(r["sampler"], r["path"]) for r in rows.values() if r["batch"] == batch},
                      key=lambda k: (list(ORDER1) + list(HIGHER)).index(k[0]) * 2
                      + (k[1] == "fused"))
        for sampler, path in keys:
            cells = []
            for n in nfes:
                r = rows.get(f"{sampler}|{path}|{batch}|{n}")
                if r is None:
                    cells.append("")
                else:
                    extra = f" (+{r['vjp']} vjp)" if r["vjp"] else ""
                    cells.append(f"{r['ratio_to_floor']['median']:.2f}x{extra}")
            lines.append(f"| {sampler} | {path} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Higher-order terms: nested autograd (the library) vs torch.func:", "",
              "| order | batch | forward (ms) | autograd (ms) | torch.func (ms) | func / autograd "
              "| max rel. diff |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for h in result["higher_order"].values():
        lines.append(f"| {h['order']} | {h['batch']} | {h['forward_ms']:.3f} | "
                     f"{h['autograd_ms']:.3f} | {h['func_ms']:.3f} | {h['func_vs_autograd']:.2f}x | "
                     f"{h['max_rel_diff']:.1e} |")
    if result.get("compile"):
        lines += ["", "torch.compile (inductor) of the network, CPU:", "",
                  "| batch | eager forward (us) | compiled forward (us) | compile time (s) |",
                  "|---:|---:|---:|---:|"]
        for c in result["compile"].values():
            lines.append(f"| {c['batch']} | {c['eager_us']:.0f} | {c['compiled_us']:.0f} | "
                         f"{c['compile_s']:.1f} |")
    return "\n".join(lines)


def _floor_us(rows: dict, batch: int) -> float:
    vals = [r["floor_s_per_sample"] * batch / max(r["nfe_budget"], 1) * 1e6
            for r in rows.values() if r["batch"] == batch]
    return statistics.median(vals)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks"))
    ap.add_argument("--quick", action="store_true", help="fewer batches, NFEs and repeats")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile section")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    batches = [1, 256] if args.quick else [1, 16, 256, 2048]
    nfes = [1, 10, 100] if args.quick else [1, 2, 5, 10, 20, 50, 100]
    t0 = time.perf_counter()
    rows = measure(batches, nfes, args.quick)
    result = {"benchmark": "sampling", "env": environment(), "clock": "process CPU time, 1 thread",
              "network": "MLP(2 -> 3 x 256 SELU)", "target": TARGET, "batches": batches,
              "nfes": nfes, "rows": rows, "verdicts": verdicts(rows),
              "higher_order": higher_order_formulations(args.quick)}
    if not (args.quick or args.no_compile):
        result["compile"] = compile_sampling(args.quick)
    result["wall_s"] = time.perf_counter() - t0
    md = markdown(result)
    write_result(args.out, "sampling", result, md)
    print(md)
    return result


if __name__ == "__main__":
    main()
