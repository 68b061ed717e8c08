"""Training step time of our trainer (OT-CFM, IDFF, I-CFM) against torchcfm's reference step.

Issue 8, item 1. Targets: our OT-CFM <= 1.05x torchcfm's OT-CFM step, our IDFF <= 1.15x.

- Ours: ``idff.train.train`` itself (data draw, coupling, loss, the finite-loss check,
  backward, clipping, AdamW, warm-up schedule, EMA, running loss); a step is the interval
  between two consecutive calls of its ``on_step`` hook.
- torchcfm: the training loop of torchcfm's ``examples/images/cifar10/train_cifar10.py``
  (zero_grad, x0 = randn_like(x1), ``FM.sample_location_and_conditional_flow``, MSE, backward,
  clip 1.0, Adam, LambdaLR, its ``utils_cifar.ema``) with torchcfm's
  ``ExactOptimalTransportConditionalFlowMatcher`` / ``ConditionalFlowMatcher`` from the PyPI
  package. The package is installed for the benchmark only, outside the project's venv:
  ``.venv/bin/pip install --no-deps --target /tmp/torchcfm_pkg torchcfm`` (it needs only torch
  and POT; ``torchcfm.utils`` needs torchdyn and is not imported). ``--torchcfm PATH`` or
  ``$TORCHCFM_PATH`` point at that folder. Without it a faithful re-statement of the same
  matchers is used, and the result says so.
- Same network object class and size, same batch, same data source, one process, one thread.
  Blocks of steps alternate between the contenders in rotating order for several rounds; a
  round's ratio compares adjacent blocks. The per-step time is process CPU time (with one
  thread it is the step's compute, and other jobs on the shared machine disturb it far less
  than wall time); wall time is recorded beside it.

Usage: python benchmarks/bench_vs_torchcfm.py [--out results/benchmarks] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from common import environment, fmt_ratio, spread, write_result

from idff.data.images import ImagePairs
from idff.data.toy import ToyPairs, toy_split
from idff.flows.methods import build_method
from idff.models.mlp import MLP
from idff.models.unet import UNet
from idff.train import TrainConfig, ema_update, train

DEFAULT_TORCHCFM = "/tmp/torchcfm_pkg"
UNET_CPU = {"model_channels": 32, "channel_mult": (1, 2), "num_res_blocks": 1,
            "attention_resolutions": (8,), "num_heads": 4, "num_head_channels": -1,
            "dropout": 0.1, "norm_groups": 8}
OURS = {"otcfm": {"sigma": 0.0}, "idff": {"sigma": 0.2}, "icfm": {"sigma": 0.0}}
TARGETS = {"otcfm_vs_torchcfm_otcfm": 1.05, "idff_vs_torchcfm_otcfm": 1.15}


# --------------------------------------------------------------------------- torchcfm


def load_torchcfm(path: str | None) -> tuple[type, type, str]:
    """torchcfm's (OT-CFM, I-CFM) matcher classes and where they came from."""
    path = path or os.environ.get("TORCHCFM_PATH") or DEFAULT_TORCHCFM
    if Path(path).is_dir() and path not in sys.path:
        sys.path.insert(0, path)
    try:
        mod = importlib.import_module("torchcfm.conditional_flow_matching")
        version = getattr(importlib.import_module("torchcfm"), "__version__", "?")
        return (mod.ExactOptimalTransportConditionalFlowMatcher, mod.ConditionalFlowMatcher,
                f"torchcfm {version} (PyPI) from {Path(mod.__file__).parent}")
    except ImportError as exc:
        print(f"torchcfm not importable ({exc}); install it for the benchmark with "
              f"`.venv/bin/pip install --no-deps --target {DEFAULT_TORCHCFM} torchcfm`. "
              f"Using the re-statement of its matchers.", flush=True)
        return RestatedOTCFM, RestatedCFM, "re-statement of torchcfm 1.0.7's matchers (not installed)"


class RestatedCFM:
    """torchcfm's ConditionalFlowMatcher, re-stated: x_t = t x1 + (1 - t) x0 + sigma eps, u = x1 - x0."""

    def __init__(self, sigma: float = 0.0) -> None:
        self.sigma = sigma

    def sample_location_and_conditional_flow(self, x0, x1):
        t = torch.rand(x0.shape[0]).type_as(x0)
        eps = torch.randn_like(x0)
        te = t.reshape(-1, *([1] * (x0.dim() - 1)))
        xt = te * x1 + (1 - te) * x0 + self.sigma * eps
        return t, xt, x1 - x0


class RestatedOTCFM(RestatedCFM):
    """torchcfm's exact-OT matcher: POT emd on float32 squared distances, pairs drawn with
    ``np.random.choice`` from the plan, then the I-CFM path."""

    def sample_location_and_conditional_flow(self, x0, x1):
        import ot

        a, b = ot.unif(x0.shape[0]), ot.unif(x1.shape[0])
        m = torch.cdist(x0.reshape(x0.shape[0], -1), x1.reshape(x1.shape[0], -1)) ** 2
        pi = ot.emd(a, b, m.detach().cpu().numpy(), numThreads=1)
        p = pi.flatten() / pi.sum()
        i, j = np.divmod(np.random.choice(pi.size, p=p, size=x0.shape[0]), pi.shape[1])
        return super().sample_location_and_conditional_flow(x0[i], x1[j])


def torchcfm_ema(source: torch.nn.Module, target: torch.nn.Module, decay: float) -> None:
    """torchcfm's examples/images/cifar10/utils_cifar.py ``ema`` (not part of the package)."""
    source_dict, target_dict = source.state_dict(), target.state_dict()
    for key in source_dict:
        target_dict[key].data.copy_(target_dict[key].data * decay
                                    + source_dict[key].data * (1 - decay))


# --------------------------------------------------------------------------- the contenders


class Clock:
    """Per-step (wall, cpu) intervals between consecutive ``tick`` calls."""

    def __init__(self) -> None:
        self.stamps: list[tuple[float, float]] = []

    def tick(self) -> None:
        self.stamps.append((time.perf_counter(), time.process_time()))

    def steps(self, skip: int) -> tuple[list[float], list[float]]:
        s = self.stamps[skip:]
        return ([b[0] - a[0] for a, b in zip(s, s[1:], strict=False)],
                [b[1] - a[1] for a, b in zip(s, s[1:], strict=False)])


def ours_block(method: str, make_model: Callable[[int], torch.nn.Module], source, batch: int,
               steps: int, warm: int, lr: float) -> tuple[list[float], list[float]]:
    """Run our trainer for warm + steps steps; per-step (wall, cpu) times after the warm-up."""
    m = build_method(method, **OURS[method])
    model = make_model(m.n_heads)
    clock = Clock()

    def hook(step: int, loss: torch.Tensor) -> torch.Tensor:
        clock.tick()
        return loss

    cfg = TrainConfig(steps=warm + steps + 1, batch_size=batch, lr=lr, warmup=10,
                      ema_decay=0.999, grad_clip=1.0, ckpt_every=10**9)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        train(model, m, source, cfg, Path(tmp) / "bench.pt", meta={"benchmark": method},
              device=torch.device("cpu"), progress=False, on_step=hook)
    return clock.steps(warm)


def reference_block(fm, make_model: Callable[[int], torch.nn.Module], source, batch: int,
                    steps: int, warm: int, lr: float) -> tuple[list[float], list[float]]:
    """torchcfm's CIFAR-10 training loop on the same network, data and batch."""
    model = make_model(1)
    ema_model = copy.deepcopy(model)
    optim = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda=lambda s: min(s, 10) / 10)
    gen = torch.Generator().manual_seed(0)
    clock = Clock()
    model.train()
    for _ in range(warm + steps + 1):
        clock.tick()
        optim.zero_grad()
        _, x1, _ = source.sample_batch(batch, gen)
        x0 = torch.randn_like(x1)
        t, xt, ut = fm.sample_location_and_conditional_flow(x0, x1)
        vt = model(xt, t)
        loss = torch.mean((vt - ut) ** 2)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        sched.step()
        torchcfm_ema(model, ema_model, 0.999)
    clock.tick()
    return clock.steps(warm)


def settings(name: str, quick: bool) -> dict:
    """Network, data and step counts of one comparison ('mlp' or 'unet')."""
    if name == "mlp":
        data = toy_split("8gaussians", "train", 20000, 0)

        def make(heads: int) -> torch.nn.Module:
            torch.manual_seed(0)
            return MLP(2, n_heads=heads, hidden=256)
        return {"make": make, "source": ToyPairs(data), "batch": 256, "lr": 1e-3,
                "steps": 12 if quick else 40, "warm": 3 if quick else 8,
                "rounds": 2 if quick else 7,
                "describe": "MLP(2 -> 3 x 256 SELU -> heads x 2), 8gaussians, batch 256"}
    if name == "unet":
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (512, 16, 16, 3), dtype=np.uint8)

        def make_u(heads: int) -> torch.nn.Module:
            torch.manual_seed(0)
            return UNet(3, 3 * heads, 16, **UNET_CPU)
        return {"make": make_u, "source": ImagePairs(images), "batch": 16, "lr": 2e-4,
                "steps": 4 if quick else 10, "warm": 1 if quick else 2,
                "rounds": 2 if quick else 5,
                "describe": "UNet 3x16x16, 32 ch, mult (1, 2), 1 res block, attention at 8, "
                            "batch 16"}
    raise ValueError(f"unknown comparison {name!r}; valid: mlp, unet")


def compare(name: str, fms: dict, quick: bool) -> dict:
    s = settings(name, quick)
    contenders: dict[str, Callable[[], tuple[list[float], list[float]]]] = {
        f"ours_{m}": (lambda m=m: ours_block(m, s["make"], s["source"], s["batch"], s["steps"],
                                             s["warm"], s["lr"])) for m in OURS}
    for key, fm in fms.items():
        contenders[f"torchcfm_{key}"] = (lambda fm=fm: reference_block(
            fm, s["make"], s["source"], s["batch"], s["steps"], s["warm"], s["lr"]))
    names = list(contenders)
    per_round: dict[str, list[dict[str, float]]] = {k: [] for k in names}
    for r in range(s["rounds"]):
        order = names[r % len(names):] + names[:r % len(names)]  # rotate: no fixed position bias
        for k in order:
            wall, cpu = contenders[k]()
            per_round[k].append({"cpu": statistics.median(cpu), "wall": statistics.median(wall)})
        print(f"  {name} round {r + 1}/{s['rounds']}: " + ", ".join(
            f"{k} {per_round[k][-1]['cpu'] * 1e3:.2f} ms" for k in names), flush=True)
    ratios = {}
    for ours, ref in [("otcfm", "otcfm"), ("idff", "otcfm"), ("icfm", "icfm"), ("idff", "icfm")]:
        for clock in ("cpu", "wall"):
            vals = [a[clock] / b[clock] for a, b in zip(per_round[f"ours_{ours}"],
                                                        per_round[f"torchcfm_{ref}"], strict=True)]
            ratios[f"{ours}_vs_torchcfm_{ref}" + ("" if clock == "cpu" else "_wall")] = spread(vals)
    steps_ms = {k: {c: spread([v[c] * 1e3 for v in per_round[k]]) for c in ("cpu", "wall")}
                for k in names}
    return {"setup": s["describe"], "batch": s["batch"], "rounds": s["rounds"],
            "steps_per_block": s["steps"], "step_ms": steps_ms, "ratios": ratios,
            "targets": {k: {"target": v, "met": ratios[k]["median"] <= v}
                        for k, v in TARGETS.items()}}


def loop_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """The per-tensor loop of ``lerp_`` that ``idff.train.ema_update`` used before issue 8."""
    with torch.no_grad():
        for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
            pe.lerp_(pm.detach(), 1 - decay)


def ema_costs(quick: bool) -> dict:
    """EMA update cost per step (ms, CPU): ``idff.train.ema_update`` (torch._foreach_lerp_), the
    former loop of lerp_ and torchcfm's state-dict EMA, on the benchmark networks and the paper's
    CIFAR-10 UNet (128 ch, [1, 2, 2, 4])."""
    nets = {"mlp": lambda: MLP(2, n_heads=2, hidden=256),
            "unet_cpu": lambda: UNet(3, 6, 16, **UNET_CPU)}
    if not quick:
        nets["unet_paper_cifar10"] = lambda: UNet(3, 6, 32)
    out = {}
    for name, make in nets.items():
        model, ema = make(), make().requires_grad_(False)
        fns: dict[str, Callable[[], None]] = {
            "ours": lambda m=model, e=ema: ema_update(e, m, 0.999),
            "loop": lambda m=model, e=ema: loop_ema(e, m, 0.999),
            "torchcfm": lambda m=model, e=ema: torchcfm_ema(m, e, 0.999)}
        res: dict[str, float] = {}
        reps = 5 if quick else 20
        for k, fn in fns.items():
            fn()
            ts = []
            for _ in range(reps):
                t0 = time.process_time()
                fn()
                ts.append((time.process_time() - t0) * 1e3)
            res[k] = statistics.median(ts)
        res["tensors"] = len(list(model.parameters()))
        res["parameters"] = sum(p.numel() for p in model.parameters())
        out[name] = res
    return out


def markdown(result: dict) -> str:
    lines = [f"Reference: {result['reference']}. One thread, process CPU time per step; median "
             f"over rounds (range in brackets).", "",
             "| network | ours OT-CFM / torchcfm OT-CFM (target <= 1.05) | ours IDFF / torchcfm "
             "OT-CFM (target <= 1.15) | ours I-CFM / torchcfm I-CFM | ours IDFF / torchcfm I-CFM |",
             "|---|---|---|---|---|"]
    for name, r in result["comparisons"].items():
        q = r["ratios"]
        lines.append(f"| {name} ({r['setup']}) | {fmt_ratio(q['otcfm_vs_torchcfm_otcfm'])} | "
                     f"{fmt_ratio(q['idff_vs_torchcfm_otcfm'])} | "
                     f"{fmt_ratio(q['icfm_vs_torchcfm_icfm'])} | "
                     f"{fmt_ratio(q['idff_vs_torchcfm_icfm'])} |")
    lines += ["", "| network | contender | ms per step (CPU) | ms per step (wall) |", "|---|---|---:|---:|"]
    for name, r in result["comparisons"].items():
        for k, v in r["step_ms"].items():
            lines.append(f"| {name} | {k} | {v['cpu']['median']:.2f} | {v['wall']['median']:.2f} |")
    lines += ["", "EMA update per step (ms, CPU):", "",
              "| network | tensors | ours (torch._foreach_lerp_) | former loop of lerp_ | "
              "torchcfm state-dict EMA |",
              "|---|---:|---:|---:|---:|"]
    for name, e in result["ema_ms"].items():
        lines.append(f"| {name} | {e['tensors']} | {e['ours']:.3f} | {e['loop']:.3f} | "
                     f"{e['torchcfm']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks"))
    ap.add_argument("--quick", action="store_true", help="few rounds (a smoke check of the script)")
    ap.add_argument("--torchcfm", default=None, help=f"folder holding torchcfm "
                                                     f"(default $TORCHCFM_PATH or {DEFAULT_TORCHCFM})")
    ap.add_argument("--networks", default="mlp,unet", help="comma-separated: mlp, unet")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    np.random.seed(0)
    torch.manual_seed(0)
    otcfm_cls, icfm_cls, origin = load_torchcfm(args.torchcfm)
    fms = {"otcfm": otcfm_cls(sigma=0.0), "icfm": icfm_cls(sigma=0.0)}
    result = {"benchmark": "vs_torchcfm", "reference": origin, "env": environment(),
              "clock": "process CPU time, 1 thread", "comparisons": {}}
    t0 = time.perf_counter()
    for name in args.networks.split(","):
        result["comparisons"][name] = compare(name.strip(), fms, args.quick)
    result["ema_ms"] = ema_costs(args.quick)
    result["wall_s"] = time.perf_counter() - t0
    md = markdown(result)
    write_result(args.out, "vs_torchcfm", result, md)
    print(md)
    return result


if __name__ == "__main__":
    main()
