"""The generic trainer: AdamW, linear warm-up, EMA, gradient clipping, atomic resumable checkpoints.

All randomness is drawn from two explicit generators (data indices on the CPU, path noise on the
training device) whose states are checkpointed with the model, optimiser, scheduler and EMA, so
a killed run resumes to the same weights an uninterrupted run would reach (on the CPU).
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .flows.methods import Method
from .io import CheckpointError, load_checkpoint, remove_stale_temps, save_checkpoint
from .layout import snapshot_path
from .train_log import Curve, StepBuffer, curve_path, progress_line
from .train_speed import (
    as_format,
    check_switches,
    configure_backends,
    make_optimizer,
    maybe_graph,
    memory_format,
)

CHECKPOINT_FORMAT = 1


class PairSource(Protocol):
    data_shape: tuple[int, ...]
    n_cond: int

    def sample_batch(self, batch_size: int, generator: torch.Generator
                     ) -> tuple[Tensor | None, Tensor, Tensor | None]: ...


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf; the last good checkpoint was kept."""


@dataclass
class TrainConfig:
    steps: int = 10_000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int = 0
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    ckpt_every: int = 1000
    seed: int = 0
    bf16: bool = False
    keep_every: int = 0  # also keep the EMA weights every N steps (snapshot_path); 0 = off
    # steps between host reads of the on-device loss: the finite check (a NaN stops the run
    # within this many steps), the history, and one row of the loss curve (X.curve.csv)
    log_every: int = 50
    progress_every: int = 0  # a progress line every N steps (0: off) ...
    progress_every_s: float = 60.0  # ... or every T seconds (0: off), checked at host reads
    tf32: bool = False  # CUDA: TF32 matmuls and convolutions
    channels_last: bool = False  # 4-D weights and batches in NHWC
    cuda_graphs: bool = False  # CUDA: capture the network's forward + backward per batch shape

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "ckpt_every", "log_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"train.{key} must be >= 1, got {getattr(self, key)}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.lr <= 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        if self.keep_every < 0:
            raise ValueError(f"train.keep_every must be >= 0 (0 = keep no snapshots), got "
                             f"{self.keep_every}")
        if self.progress_every < 0 or self.progress_every_s < 0:
            raise ValueError(f"train.progress_every and train.progress_every_s must be >= 0 "
                             f"(0 = off), got {self.progress_every}, {self.progress_every_s}")


def resume_path(out: str | Path) -> Path:
    """Where the periodic (resumable) checkpoint of a run writing ``out`` lives."""
    out = Path(out)
    return out.with_name(out.name + ".resume")


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    # one foreach call instead of a Python loop of lerp_: bit-identical (tests/test_fast_paths.py),
    # fewer dispatches on the CPU, one kernel launch per group of tensors on a GPU; no detach()
    # needed under no_grad (a detach per tensor would cost as much as the loop saves)
    pe, pm = list(ema.parameters()), list(model.parameters())
    if len(pe) != len(pm):
        raise ValueError(f"EMA model has {len(pe)} parameter tensors, the model {len(pm)}")
    if pe:
        torch._foreach_lerp_(pe, pm, 1 - decay)
    be, bm = list(ema.buffers()), list(model.buffers())
    if len(be) != len(bm):
        raise ValueError(f"EMA model has {len(be)} buffers, the model {len(bm)}")
    if be:
        torch._foreach_copy_(be, bm)


def train(model: nn.Module, method: Method, source: PairSource, cfg: TrainConfig, out: str | Path,
          *, meta: dict[str, Any], device: torch.device, progress: bool = True,
          on_step: Any = None) -> dict[str, Any]:
    """Train ``model`` with ``method`` on pairs from ``source`` and write the final checkpoint.

    ``meta`` (architecture, method and data description) is stored in the checkpoint and must
    match on resume. ``on_step(step, loss)`` is a test hook (e.g. to inject a failure).
    Progress lines (step, loss, steps/s, ETA, device) go to stdout every ``progress_every``
    steps or ``progress_every_s`` seconds whatever ``progress`` says; ``progress`` only allows a
    tqdm bar, and only on a terminal. The loss curve is written to ``curve_path(out)``.
    """
    out = Path(out)
    check_switches(cfg, device)
    configure_backends(cfg, device)
    model = memory_format(model.to(device), cfg)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay, device)
    warm = max(cfg.warmup, 0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)
    if hasattr(source, "to"):  # image data: resident on the training device, sampled there
        source = source.to(device)
    data_gen = torch.Generator(device=getattr(source, "device", "cpu")).manual_seed(cfg.seed)
    noise_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    torch.manual_seed(cfg.seed)  # dropout and other global draws
    step, history, running = 0, [], 0.0  # running: smoothed loss, checkpointed for exact resume
    curve, wall_before = Curve(cfg.log_every), 0.0
    rpath = resume_path(out)
    for stale in remove_stale_temps(out):  # covers the resume file's temps too
        print(f"removed {stale}, left by a run killed while writing a checkpoint", flush=True)
    state = load_checkpoint(rpath, map_location=device) if rpath.exists() else None
    if state is not None:
        _check_meta(rpath, state, meta)
        why = resume_mismatch(state, cfg)
        if why:
            print(f"not resuming {rpath}: it was trained with {why}; starting {out} from step 0",
                  flush=True)
            rpath.unlink()
            state = None
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        # map_location moved every tensor to ``device``; RNG states must be CPU ByteTensors
        data_gen.set_state(state["rng"]["data"].cpu())
        noise_gen.set_state(state["rng"]["noise"].to(noise_gen.get_state().device))
        torch.set_rng_state(state["rng"]["torch"].cpu())
        step, history = int(state["step"]), list(state["history"])
        running = float(state.get("running", history[-1][1] if history else 0.0))
        curve.load(state.get("curve"))
        wall_before = float(state.get("wall_s", 0.0))
        print(f"resuming {out} from step {step} ({rpath})", flush=True)

    def snapshot() -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "meta": meta, "train": asdict(cfg), "step": step,
                "model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "history": history, "running": running,
                "curve": curve.state(), "wall_s": wall_before + time.perf_counter() - t_start,
                "rng": {"data": data_gen.get_state().cpu(), "noise": noise_gen.get_state().cpu(),
                        "torch": torch.get_rng_state()}}

    def diverged(what: str, at: int) -> TrainingDiverged:
        bar.close()
        kept = rpath if rpath.exists() else "(none yet)"
        return TrainingDiverged(
            f"{what} at step {at} of {out}; the last good checkpoint {kept} was kept. Lower "
            f"train.lr or raise train.grad_clip, then rerun (training resumes from that checkpoint).")

    def save_if_finite(path: Path, state: dict[str, Any]) -> None:
        # a step can turn the weights non-finite while its loss was finite; never checkpoint them
        for part in ("model", "ema"):
            bad = [k for k, v in state[part].items() if v.is_floating_point()
                   and not torch.isfinite(v).all()]
            if bad:
                raise diverged(f"the {part} weights became non-finite ({bad[0]}); {path} was not "
                               f"written", step)
        save_checkpoint(path, state)

    def say(line: str) -> None:
        if bar.disable:
            print(line, flush=True)
        else:
            tqdm.write(line)

    def read_back() -> None:
        """The one host synchronisation of ``log_every`` steps: check and log what was recorded."""
        nonlocal running, line_step, line_time, row_step, row_time
        first = step - buf.n
        for i, (value, norm) in enumerate(buf.read(with_norm=cfg.grad_clip > 0)):
            s = first + i + 1  # steps done after this one
            if not math.isfinite(value):
                raise diverged(f"loss became {value}", s - 1)
            if not math.isfinite(norm):  # clipping turned every gradient into NaN
                raise diverged(f"the gradient norm became {norm} (loss {value:.4g})", s - 1)
            running = 0.98 * running + 0.02 * value if s > 1 else value
            curve.add(value)
            if s % 50 == 0 or s == cfg.steps:
                history.append([s, float(running)])
        now = time.perf_counter()
        if curve.due(step, cfg.steps):
            rate = (step - row_step) / max(now - row_time, 1e-9)
            curve.row(step, lr_used, rate, wall_before + now - t_start)
            row_step, row_time = step, now
        by_steps = cfg.progress_every and step - line_step >= cfg.progress_every
        by_time = cfg.progress_every_s and now - line_time >= cfg.progress_every_s
        if by_steps or by_time or step == cfg.steps:
            rate = (step - line_step) / max(now - line_time, 1e-9)
            say(progress_line(step, cfg.steps, running, lr_used, rate, device))
            line_step, line_time = step, now
        if not bar.disable:
            bar.set_postfix(loss=f"{running:.4f}")

    print(f"training {meta.get('method', {}).get('name', '?')} on {device} for {cfg.steps} steps",
          flush=True)
    model.train()
    net = maybe_graph(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    buf = StepBuffer(cfg.log_every, device)
    t_start = time.perf_counter()
    line_step = row_step = step
    line_time = row_time = t_start
    lr_used = opt.param_groups[0]["lr"]
    bar = tqdm(total=cfg.steps, initial=step, desc=out.parent.name or "train",
               disable=not (progress and sys.stderr.isatty()), mininterval=2.0)
    while step < cfg.steps:
        # no host-device synchronisation in here: values stay on the device until read_back
        x0, x1, cond = source.sample_batch(cfg.batch_size, data_gen)
        x1 = as_format(x1.to(device, non_blocking=True), cfg)
        if x0 is None:
            x0 = torch.randn(x1.shape, generator=noise_gen, device=device, dtype=x1.dtype)
        else:
            x0 = x0.to(device, non_blocking=True)
        x0 = as_format(x0, cfg)
        cond = cond.to(device, non_blocking=True) if cond is not None else None
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            result = method.loss(net, x0, x1, cond, generator=noise_gen)
        loss = result.loss
        if on_step is not None:
            loss = on_step(step, loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True) \
            if cfg.grad_clip > 0 else None
        lr_used = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        ema_update(ema, model, cfg.ema_decay)
        buf.record(loss, norm)
        step += 1
        bar.update(1)
        keep = cfg.keep_every and step % cfg.keep_every == 0 and step < cfg.steps
        ckpt = step % cfg.ckpt_every == 0 and step < cfg.steps
        if keep or ckpt or step % cfg.log_every == 0 or step == cfg.steps:
            read_back()  # before any file is written: a NaN never reaches a checkpoint
        if keep:
            # before the resume file: a resumed run never lacks a snapshot of an earlier step
            save_checkpoint(snapshot_path(out, step), {
                "format": CHECKPOINT_FORMAT, "meta": meta, "train": asdict(cfg), "step": step,
                "ema": ema.state_dict()})
        if ckpt:
            save_if_finite(rpath, snapshot())
    wall = time.perf_counter() - t_start
    state = snapshot()
    state["wall_s"] = wall
    curve.write(curve_path(out))  # first: a final checkpoint always has its curve beside it
    save_if_finite(out, state)
    bar.close()
    rpath.unlink(missing_ok=True)
    return {"steps": step, "final_loss": history[-1][1] if history else math.nan, "wall_s": wall}


#: TrainConfig fields that do not change the weights a run reaches (only when files are written);
#: ``steps`` may be raised (the run continues), never lowered below the saved step.
RESUME_FREE_KEYS = ("ckpt_every", "keep_every", "steps", "progress_every", "progress_every_s")


def resume_mismatch(state: dict, cfg: TrainConfig) -> str:
    """Why the resume checkpoint ``state`` cannot continue a run with ``cfg`` ("" if it can).

    Every setting that shapes the weights (lr, batch size, warm-up, EMA decay, clipping, bf16,
    weight decay, seed) must be equal; ``train.steps`` may grow but not drop below the saved step.
    """
    saved, now = state.get("train"), asdict(cfg)
    if not isinstance(saved, dict):
        return "no recorded train settings"
    diff = [f"train.{k}={saved.get(k)!r} (now {now[k]!r})" for k in now
            if k not in RESUME_FREE_KEYS and saved.get(k) != now[k]]
    step = int(state.get("step", 0))
    if cfg.steps < step:
        diff.append(f"{step} steps done already (train.steps is now {cfg.steps})")
    return ", ".join(diff)


def _check_meta(path: Path, state: dict, meta: dict) -> None:
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {state.get('format')}, expected "
                              f"{CHECKPOINT_FORMAT}; delete it and retrain")
    if state.get("meta") != meta:
        raise CheckpointError(
            f"checkpoint {path} was written for another model/method/data "
            f"({_diff(state.get('meta'), meta)}); delete it to start this run from scratch")


def _diff(a: Any, b: Any) -> str:
    if not isinstance(a, dict) or not isinstance(b, dict):
        return f"{a!r} != {b!r}"
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return ", ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys)


def load_trained(path: str | Path, build: Any, device: torch.device, use_ema: bool = True,
                 expect: dict | None = None) -> tuple[nn.Module, dict]:
    """Load a final checkpoint into the model that ``build(meta)`` makes; check ``expect`` keys."""
    state = load_checkpoint(path, map_location=device)
    if state.get("format") != CHECKPOINT_FORMAT or "meta" not in state:
        raise CheckpointError(f"{path} is not a checkpoint written by `idff train`")
    meta = state["meta"]
    for key, want in (expect or {}).items():
        if meta.get(key) != want:
            raise CheckpointError(f"checkpoint {path} has {key}={meta.get(key)!r} but this job "
                                  f"expects {want!r}; it belongs to another model or method")
    weights = state.get("ema" if use_ema else "model")
    if not isinstance(weights, dict):
        raise CheckpointError(f"checkpoint {path} has no {'ema' if use_ema else 'model'} weights; "
                              f"it is damaged: delete it and rerun training")
    bad = [k for k, v in weights.items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"checkpoint {path} holds non-finite (NaN/inf) weights in {bad[0]} "
                              f"({len(bad)} tensor(s)); every sample would be NaN: delete it and "
                              f"rerun training")
    model = build(meta)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not fit the model architecture: "
                              f"{str(exc).splitlines()[0]}") from exc
    return model.to(device).eval(), state
