"""CPU throughput of `idff.train.train` (the pipeline's trainer): toy MLP and a tiny UNet, steps/s.

    python benchmarks/bench_trainer.py benchmarks/results/trainer_cpu_after.json --label after

Run it once on the code before a trainer change and once after (same machine, same load) and
compare the medians; docs/performance.md quotes the pair. Only the public trainer API is used
(``train(model, method, source, cfg, out, meta=..., device=..., progress=...)``), so the same
script measures older trees too (``PYTHONPATH=<old tree> python benchmarks/bench_trainer.py``).
Rounds alternate between the cases so that a load change on the shared machine hits both.
"""

from __future__ import annotations

import argparse
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
    model, method, source, cfg = CASES[name](steps)
    out = tmp / f"{name}.pt"
    t0 = time.perf_counter()
    summary = train(model, method, source, cfg, out, meta={"bench": name},
                    device=torch.device("cpu"), progress=False)
    total = time.perf_counter() - t0
    for f in tmp.glob(f"{name}*"):
        f.unlink()
    return steps / summary.get("wall_s", total)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="JSON output")
    p.add_argument("--label", default="", help="e.g. before / after")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--toy-steps", type=int, default=1500)
    p.add_argument("--unet-steps", type=int, default=60)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = {"toy_mlp": args.toy_steps, "tiny_unet": args.unet_steps}
    rates: dict[str, list[float]] = {k: [] for k in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name in CASES:
                rates[name].append(run_case(name, steps[name], Path(tmp)))
                print(f"round {r + 1}/{args.rounds} {name}: {rates[name][-1]:.1f} steps/s",
                      flush=True)
    result = {"benchmark": "trainer_cpu", "label": args.label, "environment": environment(),
              "steps": steps, "steps_per_s": {k: spread(v) for k, v in rates.items()},
              "raw": rates}
    write_json_atomic(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
