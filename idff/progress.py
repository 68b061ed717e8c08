"""Progress lines for long jobs: one plain line per unit of work, flushed at once.

Plain lines (no terminal control characters) read the same in a terminal and in a Snakemake job
log, where a 400,000-step run or a 500-point grid otherwise says nothing for hours.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def _dur(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


class Progress:
    """``Progress(what, total).step(**fields)`` prints ``what i/total fields elapsed ETA``."""

    def __init__(self, what: str, total: int, enabled: bool = True, stream: TextIO | None = None):
        self.what, self.total, self.enabled = what, max(int(total), 1), enabled
        self.stream = stream
        self.done = 0
        self.start = time.perf_counter()

    def step(self, **fields: Any) -> str:
        self.done += 1
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        text = " ".join(f"{k}={_fmt(v)}" for k, v in fields.items())
        line = (f"{self.what} {self.done}/{self.total} {text} elapsed {_dur(elapsed)} "
                f"ETA {_dur(eta)}").replace("  ", " ")
        if self.enabled:
            print(line, file=self.stream or sys.stdout, flush=True)
        return line
