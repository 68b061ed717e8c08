"""CPU throughput of `idff.train.train` (the pipeline's trainer): toy MLP and a tiny UNet, steps/s.

    python benchmarks/bench_trainer.py docs/results/trainer_cpu.json \
        --tree before=/path/to/old/checkout --tree after=.

The clock is process CPU time between two ``on_step`` hooks (so the rates hold the trainer's
loop, not its setup or checkpoint writes), one thread. Each tree runs in its own subprocess
(that tree first on PYTHONPATH), in alternating blocks of rounds, so that load changes on a
shared machine hit both sides alike; the JSON holds every rate and the median ratio per case
(round i of one tree against round i of the other). Only the public trainer API is used
(``train(model, method, source, cfg, out, meta=..., device=..., progress=...)``), so older trees
can be measured too. ``--one`` (internal) runs the rounds of a block and prints the rates.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import environment, spread, write_json_atomic  # noqa: E402
from idff.data.images import ImagePairs, offline_cifar_like  # noqa: E402
from idff.data.toy import ToyPairs, toy_split  # noqa: E402
from idff.flows.methods import build_method  # noqa: E402
from idff.models.mlp import MLP  # noqa: E402
from idff.models.unet import UNet  # noqa: E402
from idff.train import TrainConfig, train  # noqa: E402

TINY_UNET = {"model_channels": 16, "channel_mult": (1, 2), "num_res_blocks": 1,
             "attention_resolutions": (), "num_heads": 4, "num_head_channels": -1,
             "dropout": 0.1, "norm_groups": 8}


def case_toy(steps: int) -> tuple:
    """The paper's toy network (MLP 256 x 3, SELU, IDFF's two heads), batch 256."""
    torch.manual_seed(0)
    return (MLP(2, n_heads=2, hidden=256, depth=3), build_method("idff"),
            ToyPairs(toy_split("8gaussians", "train", 20_000, 0)),
            TrainConfig(steps=steps, batch_size=256, lr=5e-4, warmup=10, ema_decay=0.999,
                        ckpt_every=10**9))


def case_unet(steps: int) -> tuple:
    """The smoke config's tiny UNet (16 channels, [1, 2]) on 16 x 16 stand-in images, batch 32."""
    torch.manual_seed(0)
    return (UNet(3, 6, 16, **TINY_UNET), build_method("idff"),
            ImagePairs(offline_cifar_like(512, seed=0, size=16), hflip=True),
            TrainConfig(steps=steps, batch_size=32, lr=2e-3, warmup=10, ema_decay=0.9,
                        ckpt_every=10**9))


CASES = {"toy_mlp": case_toy, "tiny_unet": case_unet}


def run_case(name: str, steps: int, tmp: Path) -> float:
    """Steps per second of process CPU time between the ``on_step`` hooks of the first tenth and
    of the last step (the machine is shared: CPU time is disturbed far less than wall time, and
    with one thread it is the trainer's own work)."""
    model, method, source, cfg = CASES[name](steps)
    start = max(1, steps // 10)
    marks: dict[int, float] = {}

    def hook(step, loss):
        if step in (start, steps - 1):
            marks[step] = time.process_time()
        return loss

    train(model, method, source, cfg, tmp / f"{name}.pt", meta={"bench": name},
          device=torch.device("cpu"), progress=False, on_step=hook)
    return (steps - 1 - start) / (marks[steps - 1] - marks[start])


def run_in_tree(tree: Path, rounds: int, steps: dict[str, int], threads: int
                ) -> dict[str, list[float]]:
    """``rounds`` rounds of every case in one subprocess that imports ``idff`` from ``tree``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(ROOT)])}
    proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(steps), "--rounds",
                           str(rounds), "--threads", str(threads)], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, nargs="?", help="JSON output")
    p.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH",
                   help="a checkout to measure (repeat: before=..., after=.)")
    p.add_argument("--blocks", type=int, default=2, help="alternating blocks per tree")
    p.add_argument("--rounds", type=int, default=3, help="rounds of every case per block")
    p.add_argument("--toy-steps", type=int, default=1000)
    p.add_argument("--unet-steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.one:
        steps = json.loads(args.one)
        rates: dict[str, list[float]] = {k: [] for k in steps}
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.rounds):
                for name, n in steps.items():
                    rates[name].append(run_case(name, n, Path(tmp)))
        print(json.dumps(rates))
        return 0
    if args.out is None:
        p.error("give the JSON output path")
    trees = dict(t.split("=", 1) for t in args.tree) or {"this": str(ROOT)}
    steps = {"toy_mlp": args.toy_steps, "tiny_unet": args.unet_steps}
    rates = {label: {k: [] for k in CASES} for label in trees}
    for b in range(args.blocks):
        for label, tree in trees.items():
            got = run_in_tree(Path(tree).resolve(), args.rounds, steps, args.threads)
            for k, v in got.items():
                rates[label][k] += v
            print(f"block {b + 1}/{args.blocks} {label}: "
                  + ", ".join(f"{k} {sum(v) / len(v):.1f} steps/s" for k, v in got.items()),
                  flush=True)
    result = {"benchmark": "trainer_cpu", "environment": environment(), "trees": trees,
              "steps": steps, "threads": args.threads, "blocks": args.blocks,
              "rounds_per_block": args.rounds, "clock": "process CPU time",
              "steps_per_s": {lb: {k: spread(v) for k, v in per.items()}
                              for lb, per in rates.items()}, "raw": rates}
    labels = list(trees)
    if len(labels) == 2:  # paired per round
        a, b = labels
        result["ratio"] = {f"{b}/{a}": {k: spread([y / x for x, y in zip(rates[a][k], rates[b][k],
                                                                         strict=True)])
                                       for k in CASES}}
    write_json_atomic(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
