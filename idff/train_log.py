"""What the trainer reads back from the device, and what it writes about it.

A training step never waits for the GPU: its loss and gradient norm go into a small on-device
buffer (``StepBuffer``), which the trainer reads with one host transfer every ``train.log_every``
steps (and before every checkpoint). That read is where the finite check, the smoothed loss of
the checkpoint's ``history``, the loss curve (``Curve``, written as ``X.curve.csv`` beside a
checkpoint ``X.pt``) and the periodic progress lines (``progress_line``) come from.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from .io import write_text_atomic

CURVE_COLUMNS = ("step", "loss", "lr", "steps_per_s", "wall_s")


def curve_path(out: str | Path) -> Path:
    """Where the loss curve of the checkpoint ``out`` (``X.pt``) lives: ``X.curve.csv``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.curve.csv")


class StepBuffer:
    """Per-step (loss, gradient norm) kept on the training device until ``read``.

    ``record`` is a device-side copy (no host synchronisation); ``read`` returns the values
    recorded since the last read with a single device-to-host transfer.
    """

    def __init__(self, size: int, device: torch.device) -> None:
        self.values = torch.zeros(size, 2, device=device)
        self.n = 0

    def record(self, loss: Tensor, grad_norm: Tensor | None) -> None:
        row = self.values[self.n]
        if grad_norm is None:
            row[0].copy_(loss.detach())
        else:
            torch.stack((loss.detach().float(), grad_norm.detach().float()), out=row)
        self.n += 1

    def read(self, with_norm: bool) -> list[tuple[float, float]]:
        if self.n == 0:
            return []
        rows = self.values[:self.n].tolist()
        self.n = 0
        return [(a, b if with_norm else 0.0) for a, b in rows]


class Curve:
    """Loss-curve rows ``step, loss, lr, steps_per_s, wall_s``: one per ``every`` steps and one
    at the last step. ``loss`` is the mean per-step loss since the previous row; ``lr`` the
    learning rate of the row's step; ``wall_s`` training time since the run began (resumes
    included); ``steps_per_s`` over the row's interval."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.rows: list[list[float]] = []
        self.acc = [0.0, 0]  # loss sum and count since the last row

    def state(self) -> dict:
        return {"rows": self.rows, "acc": list(self.acc)}

    def load(self, state: dict | None) -> None:
        if state:
            self.rows = [list(r) for r in state.get("rows", [])]
            self.acc = list(state.get("acc", [0.0, 0]))

    def add(self, loss: float) -> None:
        self.acc[0] += loss
        self.acc[1] += 1

    def due(self, step: int, last: int) -> bool:
        return step % self.every == 0 or step == last

    def row(self, step: int, lr: float, steps_per_s: float, wall_s: float) -> None:
        mean = self.acc[0] / self.acc[1] if self.acc[1] else math.nan
        self.rows.append([step, mean, lr, steps_per_s, wall_s])
        self.acc = [0.0, 0]

    def csv(self) -> str:
        lines = [",".join(CURVE_COLUMNS)]
        for step, loss, lr, rate, wall in self.rows:
            lines.append(f"{int(step)},{loss:.6g},{lr:.6g},{rate:.4g},{wall:.3f}")
        return "\n".join(lines) + "\n"

    def write(self, path: str | Path) -> Path:
        return write_text_atomic(path, self.csv())


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def progress_line(step: int, total: int, loss: float, lr: float, steps_per_s: float,
                  device: torch.device) -> str:
    """``step 1200/400000 (0.3%) loss 0.1234 lr 2e-04 | 13.2 steps/s | ETA 8h25m | cuda:0 ...``"""
    eta = (total - step) / steps_per_s if steps_per_s > 0 else math.inf
    parts = [f"step {step}/{total} ({100 * step / total:.1f}%) loss {loss:.4g} lr {lr:.3g}",
             f"{steps_per_s:.3g} steps/s", f"ETA {format_duration(eta)}", str(device)]
    if device.type == "cuda":  # allocator statistics: host-side counters, no synchronisation
        parts.append(f"GPU mem {torch.cuda.memory_allocated(device) / 2**30:.2f} GiB "
                     f"(peak {torch.cuda.max_memory_allocated(device) / 2**30:.2f})")
    return " | ".join(parts)
