"""One prepared GPU check (issue 17): the trainer against a bare loop, compile and CUDA graphs,
several trainings per GPU, and sampling throughput, side by side in one run.

    python benchmarks/gpu_check.py docs/results/gpu_check.json          # one H200: <= 8 minutes
    python benchmarks/gpu_check.py /tmp/gpu_check.json --tiny           # CPU check (tests do this)

Needs this repository and torch, numpy, tqdm (no POT, jsonschema, torch-fidelity, Snakemake):
POT is replaced by a stub module when missing, so only independent-coupling methods (IDFF,
I-CFM) are measured. At the paper's CIFAR-10 size (UNet 128 ch, [1, 2, 2, 4], 2 res blocks,
attention at 16, 68.8M parameters, batch 128, 32 x 32) it measures

1. ``trainer_vs_bare``: images/s of a bare training loop and of ``idff.train.train`` (the
   pipeline's trainer: data on the device, IDFF loss, clipping, fused AdamW, EMA, the
   on-device loss buffer) for TF32, bf16 autocast and bf16 + channels_last; the ratio
   trainer / bare; and the host synchronisations per trainer step that
   ``torch.cuda.set_sync_debug_mode`` reports;
2. ``compile_graphs``: the trainer with ``model.compile`` and with ``train.cuda_graphs``,
   each in its own process with a time limit: time to the first steps and steady images/s;
3. ``jobs_per_gpu``: 1, 2, 4 and 8 trainer processes on the GPU at once for a fixed window:
   aggregate images/s (what ``experiments.<exp>.jobs_per_gpu`` should be set from);
4. ``sampling``: images/s of IDFF order-1 Euler sampling at NFE 10 (the sweep's generator,
   including the conversion to uint8 on the host) against bare forward passes, per batch size;
   FID feature extraction when torch-fidelity and the Inception weights are present.

The JSON is rewritten after every section, so a run cut short keeps what it measured; every
section records its wall time, and sections that would overrun ``--budget-s`` are skipped
with the reason.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import types
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if importlib.util.find_spec("ot") is None:  # POT: only the OT couplings use it
    sys.modules["ot"] = types.ModuleType("ot")

from idff.data.images import ImagePairs  # noqa: E402
from idff.families.images import to_uint8  # noqa: E402
from idff.flows.generator import Generator  # noqa: E402
from idff.flows.methods import build_method  # noqa: E402
from idff.flows.nfe import CountingNet  # noqa: E402
from idff.models.unet import UNet, count_parameters  # noqa: E402
from idff.train import TrainConfig, train  # noqa: E402

PAPER = {"model_channels": 128, "channel_mult": [1, 2, 2, 4], "num_res_blocks": 2,
         "attention_resolutions": [16], "num_heads": 4, "num_head_channels": 64, "dropout": 0.1}
TINY = {"model_channels": 16, "channel_mult": [1, 2], "num_res_blocks": 1,
        "attention_resolutions": [], "num_heads": 4, "num_head_channels": -1, "dropout": 0.1,
        "norm_groups": 8}
PRECISIONS = {"tf32": {"tf32": True, "bf16": False, "channels_last": False},
              "bf16": {"tf32": True, "bf16": True, "channels_last": False},
              "bf16_channels_last": {"tf32": True, "bf16": True, "channels_last": True}}


class StopTraining(Exception):
    """Raised by the timing hook: the measured window is over (no final checkpoint needed)."""


# ----------------------------------------------------------------------------------- helpers

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def settings(tiny: bool) -> dict[str, Any]:
    return {"unet": TINY if tiny else PAPER, "size": 16 if tiny else 32,
            "batch": 8 if tiny else 128, "n_images": 256 if tiny else 5000}


def make_model(s: dict, device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    return UNet(3, 6, s["size"], **s["unet"]).to(device)


def image_source(s: dict, device: torch.device) -> ImagePairs:
    """Random uint8 images (throughput does not depend on their content), resident on device."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (s["n_images"], s["size"], s["size"], 3), generator=g,
                           dtype=torch.uint8)
    return ImagePairs(images, hflip=True).to(device)


def configure(device: torch.device, tf32: bool) -> None:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


# ------------------------------------------------------------------------- 1. bare vs trainer

def bare_loop(s: dict, device: torch.device, *, tf32: bool, bf16: bool, channels_last: bool,
              warmup: int, steps: int) -> dict:
    """The floor: the same step as the trainer (IDFF loss, clip, AdamW, EMA) with nothing else."""
    configure(device, tf32)
    model = make_model(s, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0.01, fused=True)
    method = build_method("idff")
    source = image_source(s, device)
    g = torch.Generator(device=device).manual_seed(0)
    params = list(model.parameters())

    def step() -> None:
        _, x1, _ = source.sample_batch(s["batch"], g)
        if channels_last:
            x1 = x1.contiguous(memory_format=torch.channels_last)
        x0 = torch.randn(x1.shape, generator=g, device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = method.loss(model, x0, x1, None, generator=g).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(ema.parameters()), params, 1e-4)

    for _ in range(warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    dt = time.perf_counter() - t0
    return {"steps": steps, "step_ms": 1e3 * dt / steps, "images_per_s": s["batch"] * steps / dt}


def trainer_run(s: dict, device: torch.device, *, tf32: bool, bf16: bool, channels_last: bool,
                warmup: int, steps: int, compile_: bool = False, cuda_graphs: bool = False,
                count_syncs: bool = True) -> dict:
    """``idff.train.train`` on the paper-size UNet, timed between the hooks of two steps."""
    configure(device, tf32)
    model = make_model(s, device)
    if compile_:
        model.compile()
    cfg = TrainConfig(steps=warmup + steps + 1, batch_size=s["batch"], lr=2e-4,
                      weight_decay=0.01, warmup=100, ema_decay=0.9999, grad_clip=1.0,
                      ckpt_every=10**9, log_every=50, progress_every_s=0, bf16=bf16, tf32=tf32,
                      channels_last=channels_last, cuda_graphs=cuda_graphs)
    marks: dict[str, float] = {}
    caught: list[warnings.WarningMessage] = []

    def hook(step: int, loss: torch.Tensor) -> torch.Tensor:
        if step == 1:
            sync(device)
            marks["first_step_s"] = time.perf_counter() - marks["start"]
        if step == warmup:
            sync(device)
            marks["t0"] = time.perf_counter()
            if count_syncs and device.type == "cuda":
                torch.cuda.set_sync_debug_mode("warn")
        if step == warmup + steps:
            if count_syncs and device.type == "cuda":
                torch.cuda.set_sync_debug_mode("default")
            sync(device)
            marks["t1"] = time.perf_counter()
            raise StopTraining
        return loss

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        marks["start"] = time.perf_counter()
        try:
            train(model, build_method("idff"), image_source(s, device), cfg, Path(tmp) / "m.pt",
                  meta={"gpu_check": True}, device=device, progress=False, on_step=hook)
        except StopTraining:
            pass
        caught = [w for w in rec if "synchroniz" in str(w.message).lower()]
    dt = marks["t1"] - marks["t0"]
    out = {"steps": steps, "step_ms": 1e3 * dt / steps, "images_per_s": s["batch"] * steps / dt,
           "first_step_s": marks.get("first_step_s"), "log_every": cfg.log_every}
    if count_syncs and device.type == "cuda":
        out["sync_warnings"] = len(caught)
        out["sync_warnings_per_step"] = len(caught) / steps
        out["sync_examples"] = sorted({str(w.message).splitlines()[0][:160] for w in caught})[:5]
    if device.type == "cuda":
        out["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def section_trainer_vs_bare(s: dict, device: torch.device, a: argparse.Namespace) -> dict:
    rows = []
    precisions = PRECISIONS if device.type == "cuda" else {"fp32": {"tf32": False, "bf16": False,
                                                                    "channels_last": False}}
    for name, p in precisions.items():
        row: dict[str, Any] = {"precision": name, **p}
        for part, fn in (("bare", bare_loop), ("trainer", trainer_run)):
            try:
                row[part] = fn(s, device, warmup=a.warmup, steps=a.steps, **p)
            except Exception as exc:  # record and go on: one failure must not cost the rest
                row[part] = {"error": f"{type(exc).__name__}: {exc}"}
                traceback.print_exc()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if "images_per_s" in row["bare"] and "images_per_s" in row["trainer"]:
            row["trainer_over_bare"] = row["trainer"]["images_per_s"] / row["bare"]["images_per_s"]
        print(f"[1] {name}: bare {row['bare'].get('images_per_s', float('nan')):.0f} images/s, "
              f"trainer {row['trainer'].get('images_per_s', float('nan')):.0f} images/s, "
              f"ratio {row.get('trainer_over_bare', float('nan')):.3f}", flush=True)
        rows.append(row)
    ok = [r for r in rows if "trainer_over_bare" in r]
    best = max(ok, key=lambda r: r["trainer"]["images_per_s"]) if ok else None
    return {"rows": rows, "fastest_trainer_precision": best["precision"] if best else None}


# ------------------------------------------------------------- workers (own processes, limits)

def worker(spec: dict) -> dict:
    """One measurement in a fresh process (compile, graphs, or a packed training job)."""
    device = torch.device(spec["device"])
    s = settings(spec["tiny"])
    p = PRECISIONS.get(spec.get("precision", ""), {"tf32": False, "bf16": False,
                                                   "channels_last": False})
    if spec["kind"] in ("compile", "cuda_graphs"):
        return trainer_run(s, device, warmup=spec["warmup"], steps=spec["steps"],
                           compile_=spec["kind"] == "compile",
                           cuda_graphs=spec["kind"] == "cuda_graphs", count_syncs=False,
                           **({**p, "bf16": False} if spec["kind"] == "cuda_graphs" else p))
    if spec["kind"] == "packed":
        return packed_job(s, device, spec, p)
    raise ValueError(f"unknown worker kind {spec['kind']!r}")


def run_worker(spec: dict, timeout: float) -> dict:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout:.0f} s", "wall_s": timeout}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:300],
                "wall_s": time.perf_counter() - t0}
    return {**json.loads(lines[-1]), "wall_s": time.perf_counter() - t0}


def section_compile_graphs(s: dict, device: torch.device, a: argparse.Namespace,
                           precision: str) -> dict:
    out = {}
    kinds = ["compile"] + (["cuda_graphs"] if device.type == "cuda" else [])
    if device.type != "cuda":
        out["cuda_graphs"] = {"skipped": "needs a CUDA device"}
    if a.no_compile:
        kinds.remove("compile")
        out["compile"] = {"skipped": "--no-compile"}
    for kind in kinds:
        spec = {"kind": kind, "device": str(device), "tiny": a.tiny, "precision": precision,
                "warmup": a.warmup, "steps": a.steps}
        out[kind] = run_worker(spec, a.compile_timeout)
        print(f"[2] {kind}: {out[kind]}", flush=True)
    return out


def packed_job(s: dict, device: torch.device, spec: dict, p: dict) -> dict:
    """A trainer that warms up, says ready, waits for the go file, then counts its steps
    within the window (the parent starts every job's window at once)."""
    ready, go = Path(spec["ready"]), Path(spec["go"])
    counts = {"steps": 0}

    def hook(step: int, loss: torch.Tensor) -> torch.Tensor:
        if step == spec["warmup"]:
            sync(device)
            ready.touch()
            while not go.exists():
                time.sleep(0.01)
            counts["t0"] = time.perf_counter()
            counts["start_step"] = step
        elif "t0" in counts and time.perf_counter() - counts["t0"] >= spec["window_s"]:
            sync(device)
            counts["t1"] = time.perf_counter()
            counts["steps"] = step - counts["start_step"]
            raise StopTraining
        return loss

    configure(device, p["tf32"])
    model = make_model(s, device)
    cfg = TrainConfig(steps=10**9, batch_size=s["batch"], lr=2e-4, warmup=100, ckpt_every=10**9,
                      progress_every_s=0, bf16=p["bf16"], tf32=p["tf32"],
                      channels_last=p["channels_last"])
    with tempfile.TemporaryDirectory() as tmp:
        try:
            train(model, build_method("idff"), image_source(s, device), cfg, Path(tmp) / "m.pt",
                  meta={}, device=device, progress=False, on_step=hook)
        except StopTraining:
            pass
    dt = counts["t1"] - counts["t0"]
    return {"steps": counts["steps"], "seconds": dt,
            "images_per_s": s["batch"] * counts["steps"] / dt,
            "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30
            if device.type == "cuda" else None}


def section_jobs_per_gpu(s: dict, device: torch.device, a: argparse.Namespace,
                         precision: str) -> dict:
    rows = []
    for k in a.jobs:
        with tempfile.TemporaryDirectory() as tmp:
            go = Path(tmp) / "go"
            procs = []
            for i in range(k):
                spec = {"kind": "packed", "device": str(device), "tiny": a.tiny,
                        "precision": precision, "warmup": a.warmup, "window_s": a.window_s,
                        "ready": str(Path(tmp) / f"ready{i}"), "go": str(go)}
                procs.append(subprocess.Popen([sys.executable, __file__, "--worker",
                                               json.dumps(spec)], stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True))
            deadline = time.perf_counter() + a.compile_timeout
            while (time.perf_counter() < deadline and any(p.poll() is None for p in procs)
                   and len(list(Path(tmp).glob("ready*"))) < k):
                time.sleep(0.05)
            go.touch()
            results = []
            for proc in procs:
                try:
                    out, err = proc.communicate(timeout=a.window_s + a.compile_timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    out, err = proc.communicate()
                lines = [ln for ln in out.splitlines() if ln.startswith("{")]
                results.append(json.loads(lines[-1]) if proc.returncode == 0 and lines else
                               {"error": (err.strip().splitlines() or ["no output"])[-1][:300]})
        ok = [r for r in results if "images_per_s" in r]
        row = {"jobs": k, "finished": len(ok), "per_job": results,
               "aggregate_images_per_s": sum(r["images_per_s"] for r in ok) if ok else None}
        rows.append(row)
        print(f"[3] {k} job(s): aggregate {row['aggregate_images_per_s']} images/s "
              f"({len(ok)}/{k} finished)", flush=True)
    good = [r for r in rows if r["aggregate_images_per_s"] and r["finished"] == r["jobs"]]
    best = max(good, key=lambda r: r["aggregate_images_per_s"]) if good else None
    return {"window_s": a.window_s, "precision": precision, "rows": rows,
            "best_jobs_per_gpu": best["jobs"] if best else None}


# -------------------------------------------------------------------------------- 4. sampling

def section_sampling(s: dict, device: torch.device, a: argparse.Namespace) -> dict:
    configure(device, True)
    model = make_model(s, device).eval().requires_grad_(False)
    net = CountingNet(model)
    rows = []
    for batch in a.sample_batches:
        x0 = torch.randn(batch, 3, s["size"], s["size"],
                         generator=torch.Generator().manual_seed(1))
        gen = Generator(net=net, sampler="idff1", solver="euler", nfe=a.nfe, sigma=0.2,
                        params={"sigma_s": 0.4}, device=device)

        def sample(gen: Generator = gen, x0: torch.Tensor = x0) -> None:
            to_uint8(gen(x0, None, seed=0)).permute(0, 2, 3, 1).cpu().numpy()

        def bare(x0: torch.Tensor = x0, batch: int = batch) -> None:
            x = x0.to(device)
            with torch.no_grad():
                for i in range(a.nfe):
                    x = model(x, torch.full((batch,), i / a.nfe, device=device)).chunk(2, 1)[0]
            sync(device)

        row: dict[str, Any] = {"batch": batch, "nfe": a.nfe}
        for name, fn in (("sweep_generator", sample), ("bare_forward", bare)):
            fn()  # warm-up (cuDNN autotuning, allocator)
            sync(device)
            t0 = time.perf_counter()
            for _ in range(a.sample_repeats):
                fn()
            sync(device)
            row[f"{name}_images_per_s"] = batch * a.sample_repeats / (time.perf_counter() - t0)
        row["generator_over_bare"] = row["sweep_generator_images_per_s"] / \
            row["bare_forward_images_per_s"]
        if device.type == "cuda":
            row["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            torch.cuda.empty_cache()
        print(f"[4] batch {batch}: generator {row['sweep_generator_images_per_s']:.0f} images/s, "
              f"bare {row['bare_forward_images_per_s']:.0f} images/s", flush=True)
        rows.append(row)
    fid = {"skipped": "torch-fidelity is not installed"}
    if importlib.util.find_spec("torch_fidelity") is not None:
        fid = {"skipped": "needs the Inception weights file (idff.metrics.images); measure with "
                          "`idff sweep` on a prepared machine"}
    best = max(rows, key=lambda r: r["sweep_generator_images_per_s"])
    return {"rows": rows, "fastest_batch": best["batch"], "fid_features": fid}


# ------------------------------------------------------------------------------------- main

def write_json(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    tmp.replace(path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", type=Path, default=ROOT / "docs/results/gpu_check.json")
    p.add_argument("--tiny", action="store_true", help="tiny UNet at 16 x 16: a CPU check")
    p.add_argument("--device", default="auto")
    p.add_argument("--warmup", type=int, help="untimed steps (default 15; tiny 2)")
    p.add_argument("--steps", type=int, help="timed steps (default 60; tiny 4)")
    p.add_argument("--jobs", help="concurrent trainings, e.g. 1,2,4,8 (tiny: 1,2)")
    p.add_argument("--window-s", type=float, help="timed window of packed jobs (default 15)")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--compile-timeout", type=float, default=150.0)
    p.add_argument("--sample-batches", help="e.g. 500,1000,2000 (tiny: 8,16)")
    p.add_argument("--sample-repeats", type=int, default=2)
    p.add_argument("--nfe", type=int, default=10)
    p.add_argument("--budget-s", type=float, default=450.0, help="skip sections beyond this")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.warmup = a.warmup if a.warmup is not None else (2 if a.tiny else 15)
    a.steps = a.steps or (4 if a.tiny else 60)
    a.jobs = [int(x) for x in (a.jobs or ("1,2" if a.tiny else "1,2,4,8")).split(",")]
    a.window_s = a.window_s or (2.0 if a.tiny else 15.0)
    a.sample_batches = [int(x) for x in (a.sample_batches or ("8,16" if a.tiny else
                                                              "500,1000,2000")).split(",")]
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))), flush=True)
        return 0
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if a.device == "auto" else a.device)
    s = settings(a.tiny)
    result: dict[str, Any] = {
        "benchmark": "gpu_check", "tiny": a.tiny, "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                        time.gmtime()),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda"
        else f"cpu:{platform.machine()}",
        "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
        "unet": {**s["unet"], "image_size": s["size"],
                 "parameters": count_parameters(UNet(3, 6, s["size"], **s["unet"]))},
        "batch": s["batch"], "argv": sys.argv[1:] if argv is None else argv,
        "pot_stubbed": not hasattr(sys.modules.get("ot"), "emd"), "sections": {},
        "complete": False}
    print(f"gpu_check on {result['device']}, torch {torch.__version__}, UNet "
          f"{result['unet']['parameters']:,} parameters", flush=True)
    t_all = time.perf_counter()
    precision = "tf32" if device.type == "cuda" else "fp32"
    sections = [
        ("trainer_vs_bare", lambda: section_trainer_vs_bare(s, device, a), 60),
        ("compile_graphs", lambda: section_compile_graphs(s, device, a, precision),
         a.compile_timeout),
        ("jobs_per_gpu", lambda: section_jobs_per_gpu(s, device, a, precision),
         len(a.jobs) * (a.window_s + 25)),
        ("sampling", lambda: section_sampling(s, device, a), 40),
    ]
    for name, run, estimate_s in sections:
        spent = time.perf_counter() - t_all
        if spent + (0 if a.tiny else estimate_s) > a.budget_s:
            result["sections"][name] = {"skipped": f"budget: {spent:.0f} s spent of "
                                                   f"{a.budget_s:.0f} s, needs ~{estimate_s:.0f} s"}
            continue
        t0 = time.perf_counter()
        try:
            result["sections"][name] = run()
        except Exception as exc:
            traceback.print_exc()
            result["sections"][name] = {"error": f"{type(exc).__name__}: {exc}"}
        result["sections"][name]["wall_s"] = time.perf_counter() - t0
        if name == "trainer_vs_bare":
            precision = result["sections"][name].get("fastest_trainer_precision") or precision
        write_json(a.out, result)
    result["wall_s"] = time.perf_counter() - t_all
    result["complete"] = True
    write_json(a.out, result)
    print(f"wrote {a.out} ({result['wall_s']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
