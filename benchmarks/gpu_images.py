"""GPU benchmark of the image family: CIFAR-10 UNet training and sampling throughput, and a short
training run on the offline stand-in that shows the loss falling.

    python benchmarks/gpu_images.py results/benchmarks/gpu_images.json            # a lent H200
    python benchmarks/gpu_images.py /tmp/b.json --tiny --steps 2 --train-steps 5   # CPU check

Self-contained for a machine without network and without this project's environment: it needs
torch, numpy, pillow and scikit-image (the stand-in photos) and imports only the UNet, the
sampler and the image data helpers of this repository (not POT / torch-fidelity). The IDFF loss
is written out here (the library's lives beside the OT couplings, which need POT); a test checks
that both give the same loss. Measures, at the paper's CIFAR-10 size (UNet 128 ch, [1, 2, 2, 4],
2 res blocks, attention at 16, batch 128):
  1. training images/s with bf16 autocast, channels_last on/off, torch.compile on/off;
  2. sampling images/s at NFE 10 (IDFF order 1, Euler, EMA net, fp32 and bf16 autocast);
  3. a timed training run (AdamW 2e-4, warm-up, EMA 0.9999, clip 1) printing the loss.
Writes JSON to the path given (results/benchmarks/gpu_images.json by convention).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import sys
import time
import traceback
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from idff.data.images import ImagePairs, offline_cifar_like  # noqa: E402
from idff.flows.nfe import CountingNet  # noqa: E402
from idff.flows.sampling import generate  # noqa: E402
from idff.models.unet import UNet, count_parameters  # noqa: E402

PAPER = {"model_channels": 128, "channel_mult": (1, 2, 2, 4), "num_res_blocks": 2,
         "attention_resolutions": (16,), "num_heads": 4, "num_head_channels": 64, "dropout": 0.1}
TINY = {"model_channels": 16, "channel_mult": (1, 2), "num_res_blocks": 1,
        "attention_resolutions": (), "num_heads": 4, "num_head_channels": -1, "dropout": 0.1,
        "norm_groups": 8}


def idff_loss(model: nn.Module, x1: torch.Tensor, generator: torch.Generator,
              sigma: float = 0.2, w_flow: float = 2.0) -> torch.Tensor:
    """IDFF's loss (METHOD.md section 2) with x0 ~ N(0, I), drawn in the library's order
    (x0, then t, then eps), so that it equals ``idff.flows.methods.IDFF().loss`` for the same
    generator state."""
    x0 = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
    t = torch.rand(x1.shape[0], generator=generator, device=x1.device, dtype=x1.dtype)
    eps = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
    te = t.view(-1, 1, 1, 1)
    sigma_t = sigma * torch.sqrt(te * (1 - te))
    xt = te * x1 + (1 - te) * x0 + sigma_t * eps
    x1_hat, s_hat = model(xt, t).chunk(2, dim=1)
    lam = 2 * sigma_t / sigma**2
    return w_flow * ((x1_hat - x1) ** 2).mean() + ((lam * s_hat + eps) ** 2).mean()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_model(cfg: dict, size: int, device: torch.device, channels_last: bool) -> nn.Module:
    torch.manual_seed(0)
    model = UNet(3, 6, size, **cfg).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def train_throughput(cfg: dict, size: int, batch: int, device: torch.device, *, bf16: bool,
                     channels_last: bool, compile_: bool, warmup: int, steps: int) -> dict:
    """Images/s of full training steps (forward, loss, backward, clip, AdamW, EMA)."""
    model = make_model(cfg, size, device, channels_last)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0.01)
    fwd = torch.compile(model) if compile_ else model
    g = torch.Generator(device=device).manual_seed(0)
    x1 = torch.rand(batch, 3, size, size, generator=g, device=device) * 2 - 1
    if channels_last:
        x1 = x1.contiguous(memory_format=torch.channels_last)

    def step() -> float:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = idff_loss(fwd, x1, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1e-4)
        return loss.detach()

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync(device)
    first_s = time.perf_counter() - t0  # includes compilation when compile_
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync(device)
    dt = time.perf_counter() - t0
    out = {"bf16": bf16, "channels_last": channels_last, "compile": compile_, "batch": batch,
           "steps_timed": steps, "step_ms": 1e3 * dt / steps, "images_per_s": batch * steps / dt,
           "warmup_s": first_s, "loss": float(loss)}
    if device.type == "cuda":
        out["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def sampling_throughput(cfg: dict, size: int, batch: int, device: torch.device, *, nfe: int,
                        bf16: bool, repeats: int) -> dict:
    """Images/s of IDFF order-1 Euler sampling at ``nfe`` forward passes (EMA net in eval)."""
    model = make_model(cfg, size, device, channels_last=False).eval()
    net = CountingNet(model)
    x0 = torch.randn(batch, 3, size, size, device=device,
                     generator=torch.Generator(device=device).manual_seed(1))

    def run() -> int:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out, stats = generate(net, "idff1", x0, sigma=0.2, solver="euler", nfe=nfe,
                                  params={"sigma_s": 0.4})
        assert torch.isfinite(out).all()
        return stats.nfe

    run()  # warm-up (cuDNN autotuning, allocator)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        passes = run()
    sync(device)
    dt = time.perf_counter() - t0
    return {"bf16": bf16, "batch": batch, "nfe": passes, "repeats": repeats,
            "images_per_s": batch * repeats / dt,
            "forward_passes_per_s": batch * repeats * passes / dt, "s_per_batch": dt / repeats}


def training_run(cfg: dict, size: int, batch: int, device: torch.device, *, minutes: float,
                 max_steps: int, n_images: int, bf16: bool, channels_last: bool,
                 lr: float = 2e-4, warmup: int = 500, log_every: int = 50) -> dict:
    """Train on the offline CIFAR-like stand-in for ``minutes`` (or ``max_steps``), logging the
    loss (an exponential moving average over steps, as the library's trainer reports it)."""
    t0 = time.perf_counter()
    images = offline_cifar_like(n_images, seed=0, size=size)
    data_s = time.perf_counter() - t0
    source = ImagePairs(images, hflip=True)
    model = make_model(cfg, size, device, channels_last)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    data_gen = torch.Generator().manual_seed(0)
    noise_gen = torch.Generator(device=device).manual_seed(1)
    curve, running, step = [], math.nan, 0
    t0 = time.perf_counter()
    while step < max_steps and time.perf_counter() - t0 < 60 * minutes:
        _, x1, _ = source.sample_batch(batch, data_gen)
        x1 = x1.to(device, non_blocking=True)
        if channels_last:
            x1 = x1.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = idff_loss(model, x1, noise_gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - 0.9999)
        step += 1
        value = float(loss.detach())
        if not math.isfinite(value):
            raise RuntimeError(f"loss became {value} at step {step}")
        running = value if step == 1 else 0.98 * running + 0.02 * value
        if step == 1 or step % log_every == 0:
            elapsed = time.perf_counter() - t0
            curve.append([step, round(elapsed, 2), running, value])
            print(f"  step {step:6d}  {elapsed:7.1f} s  loss(ema) {running:.4f}  "
                  f"loss {value:.4f}", flush=True)
    sync(device)
    wall = time.perf_counter() - t0
    if not curve or curve[-1][0] != step:
        curve.append([step, round(wall, 2), running, value])
    return {"steps": step, "wall_s": wall, "images_per_s": step * batch / wall,
            "data_images": n_images, "data_prep_s": data_s, "bf16": bf16,
            "channels_last": channels_last, "lr": lr, "warmup": warmup,
            "loss_first": curve[0][2], "loss_last": running,
            "loss_fell": bool(running < curve[0][2]),
            "curve_columns": ["step", "elapsed_s", "loss_ema", "loss"], "curve": curve}


def write_json(path: Path, result: dict) -> None:
    """Atomic write; called after every section, so a run cut short still leaves its numbers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", default="results/benchmarks/gpu_images.json",
                   help="JSON output path")
    p.add_argument("--tiny", action="store_true", help="tiny UNet at 16x16 (a CPU check)")
    p.add_argument("--device", default="auto", help="auto, cuda or cpu")
    p.add_argument("--batch", type=int, help="training batch (default 128; tiny 8)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (default 10; tiny 1)")
    p.add_argument("--steps", type=int, default=30, help="timed training steps per setting")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile settings")
    p.add_argument("--sample-batch", type=int, help="sampling batch (default 1000; tiny 8)")
    p.add_argument("--sample-repeats", type=int, default=3)
    p.add_argument("--nfe", type=int, default=10, help="sampling NFE (forward passes)")
    p.add_argument("--train-minutes", type=float, default=3.0)
    p.add_argument("--train-steps", type=int, default=10**9, help="cap of the training run")
    p.add_argument("--train-images", type=int, help="stand-in crops (default 20000; tiny 256)")
    args = p.parse_args(argv)

    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    out = Path(args.out)
    cfg, size = (TINY, 16) if args.tiny else (PAPER, 32)
    batch = args.batch or (8 if args.tiny else 128)
    warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 10)
    sample_batch = args.sample_batch or (8 if args.tiny else 1000)
    n_images = args.train_images or (256 if args.tiny else 20000)
    result: dict = {
        "benchmark": "gpu_images", "tiny": args.tiny,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda"
        else f"cpu:{platform.machine()}",
        "torch": torch.__version__, "python": platform.python_version(),
        "unet": {**{k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
                 "image_size": size, "parameters": count_parameters(UNet(3, 6, size, **cfg))},
        "argv": sys.argv[1:] if argv is None else argv, "complete": False,
        "train_throughput": [], "sampling": []}
    print(f"device {result['device']}, torch {torch.__version__}, UNet "
          f"{result['unet']['parameters']:,} parameters at {size}x{size}", flush=True)
    bf16_ok = device.type == "cuda" or args.tiny
    settings = [(bf16_ok, cl, comp) for comp in ((False,) if args.no_compile else (False, True))
                for cl in (False, True)]
    if device.type == "cuda":
        settings.insert(0, (False, False, False))  # an fp32 (TF32) baseline
    for bf16, cl, comp in settings:
        tag = f"bf16={bf16} channels_last={cl} compile={comp}"
        try:
            r = train_throughput(cfg, size, batch, device, bf16=bf16, channels_last=cl,
                                 compile_=comp, warmup=warmup, steps=args.steps)
            print(f"train {tag}: {r['images_per_s']:.1f} images/s ({r['step_ms']:.1f} ms/step, "
                  f"warm-up {r['warmup_s']:.1f} s)", flush=True)
        except Exception as exc:  # e.g. compile without a compiler: record, go on
            r = {"bf16": bf16, "channels_last": cl, "compile": comp,
                 "error": f"{type(exc).__name__}: {exc}"}
            print(f"train {tag}: FAILED {r['error']}", flush=True)
            traceback.print_exc()
        result["train_throughput"].append(r)
        write_json(out, result)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    for bf16 in ((False, True) if bf16_ok else (False,)):
        r = sampling_throughput(cfg, size, sample_batch, device, nfe=args.nfe, bf16=bf16,
                                repeats=args.sample_repeats)
        print(f"sample NFE {r['nfe']} bf16={bf16}: {r['images_per_s']:.1f} images/s "
              f"({r['forward_passes_per_s']:.0f} image forward passes/s)", flush=True)
        result["sampling"].append(r)
        write_json(out, result)
    ok = [r for r in result["train_throughput"] if "error" not in r]
    best = max(ok, key=lambda r: r["images_per_s"]) if ok else {"bf16": bf16_ok,
                                                                "channels_last": False}
    print(f"training run: {args.train_minutes} min (at most {args.train_steps} steps), "
          f"bf16={best['bf16']} channels_last={best['channels_last']}", flush=True)
    result["training_run"] = training_run(
        cfg, size, batch, device, minutes=args.train_minutes, max_steps=args.train_steps,
        n_images=n_images, bf16=best["bf16"], channels_last=best["channels_last"],
        warmup=10 if args.tiny else 500, log_every=1 if args.tiny else 200)
    result["complete"] = True
    write_json(out, result)
    print(f"wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
