"""Core benchmark (issue 2): training step time per method and sampling cost per NFE.

Measures, on one MLP and one batch size, in one process (so the ratios compare like with like):
- training steps/s of IDFF, I-CFM, OT-CFM, SB-CFM (the full step: data, coupling, loss, backward, AdamW, EMA);
- sampling wall time per NFE for each sampler against the bare network forward time at the same
  batch (the floor), and the cost ratios of IDFF orders 2 and 3 (forward + autograd passes).
Writes JSON and a Markdown summary. Usage: python benchmarks/bench_core.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from idff.data.toy import ToyPairs, toy_split
from idff.flows.methods import build_method
from idff.flows.nfe import CountingNet
from idff.flows.sampling import generate
from idff.models.mlp import MLP
from idff.provenance import git_commit
from idff.train import ema_update


def time_training(method_name: str, params: dict, steps: int, batch: int, hidden: int) -> float:
    """Median seconds per full training step (after warm-up)."""
    torch.manual_seed(0)
    method = build_method(method_name, **params)
    model = MLP(2, n_heads=method.n_heads, hidden=hidden)
    ema = MLP(2, n_heads=method.n_heads, hidden=hidden)
    ema.load_state_dict(model.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    src = ToyPairs(toy_split("8gaussians", "train", 20000, 0))
    g = torch.Generator().manual_seed(0)
    times = []
    for i in range(steps + 10):
        t0 = time.perf_counter()
        _, x1, _ = src.sample_batch(batch, g)
        x0 = torch.randn(x1.shape, generator=g)
        loss = method.loss(model, x0, x1, None, generator=g).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema_update(ema, model, 0.999)
        if i >= 10:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_sampling(sampler: str, nfe: int, batch: int, hidden: int, repeats: int, params: dict) -> dict:
    torch.manual_seed(0)
    net = CountingNet(MLP(2, n_heads=2, hidden=hidden).eval())
    x0 = torch.randn(batch, 2)
    walls = []
    for _ in range(repeats):
        _, stats = generate(net, sampler, x0, sigma=0.2, solver="euler", nfe=nfe, params=params)
        walls.append(stats.wall_s)
    return {"wall_s": statistics.median(walls), "nfe": stats.nfe, "vjp": stats.vjp}


def time_bare_forward(batch: int, hidden: int, repeats: int) -> float:
    net = MLP(2, n_heads=2, hidden=hidden).eval()
    x, t = torch.randn(batch, 2), torch.full((batch,), 0.5)
    with torch.no_grad():
        for _ in range(5):
            net(x, t)
        walls = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            net(x, t)
            walls.append(time.perf_counter() - t0)
    return statistics.median(walls)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks"))
    ap.add_argument("--quick", action="store_true", help="fewer repeats (for a smoke check)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--sample-batch", type=int, default=2048)
    args = ap.parse_args()
    torch.set_num_threads(1)  # one core: the ratios are what matters, and they are steadier
    steps = 30 if args.quick else 200
    reps = 5 if args.quick else 30
    train = {}
    for name, params in [("icfm", {"sigma": 0.0}), ("idff", {"sigma": 0.2}),
                         ("otcfm", {"sigma": 0.0}), ("sbcfm", {"sigma": 0.2})]:
        s = time_training(name, params, steps, args.batch, args.hidden)
        train[name] = {"step_s": s, "steps_per_s": 1 / s}
    for name in train:
        train[name]["ratio_to_icfm"] = train[name]["step_s"] / train["icfm"]["step_s"]
    bare = time_bare_forward(args.sample_batch, args.hidden, reps * 4)
    sampling = {}
    for sampler, params in [("cfm", {}), ("idff1", {"sigma_s": 0.2}), ("pf", {}),
                            ("idff2", {"gamma1": 0.5, "gamma2": 0.5}),
                            ("idff3", {"gamma1": 0.5, "gamma2": 0.5, "gamma3": 0.5})]:
        for nfe in (1, 2, 5, 10, 20, 100):
            r = time_sampling(sampler, nfe, args.sample_batch, args.hidden, max(2, reps // 3), params)
            r["per_nfe_s"] = r["wall_s"] / r["nfe"]
            r["ratio_to_bare_forwards"] = r["wall_s"] / (r["nfe"] * bare)
            sampling[f"{sampler}@{nfe}"] = r
    result = {"benchmark": "core", "git_commit": git_commit(), "machine": platform.machine(),
              "threads": torch.get_num_threads(), "torch": torch.__version__, "hidden": args.hidden,
              "train_batch": args.batch, "sample_batch": args.sample_batch,
              "bare_forward_s": bare, "train": train, "sampling": sampling}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "core.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| method | step (ms) | steps/s | vs I-CFM |", "|---|---:|---:|---:|"]
    for k, v in train.items():
        lines.append(f"| {k} | {v['step_s'] * 1e3:.2f} | {v['steps_per_s']:.0f} | {v['ratio_to_icfm']:.2f}x |")
    lines += ["", f"Bare forward at batch {args.sample_batch}: {bare * 1e3:.3f} ms", "",
              "| sampler | NFE | vjp | wall (ms) | vs bare forwards |", "|---|---:|---:|---:|---:|"]
    for k, v in sampling.items():
        s, n = k.split("@")
        lines.append(f"| {s} | {v['nfe']} | {v['vjp']} | {v['wall_s'] * 1e3:.2f} | "
                     f"{v['ratio_to_bare_forwards']:.2f}x |")
    (args.out / "core.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
