"""What every result file records: git commit, config hash, seed, device, versions, wall time."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from .gpu_slots import claim_slot


def config_hash(cfg: Any) -> str:
    """Stable 12-hex-digit hash of a JSON-serialisable config slice (key order does not matter)."""
    blob = json.dumps(cfg, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@lru_cache(maxsize=1)
def git_commit() -> str:
    """Commit of the working tree this package was imported from (``+dirty`` if modified)."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` takes CUDA when present; an explicit ``cuda`` without a GPU is an error.

    ``auto`` and ``cuda`` on a machine with several visible GPUs claim a free one
    (idff/gpu_slots.py), so concurrent jobs (``--resources gpu=K``) get different GPUs;
    ``cuda:N`` takes GPU N of the visible ones.
    """
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} was requested but no CUDA GPU is visible; "
                           f"use device: auto or cpu")
    n = torch.cuda.device_count()
    if requested in ("auto", "cuda"):
        slot, alone = claim_slot(n)
        if not alone:
            print(f"all {n} GPUs are taken by other idff jobs; sharing cuda:{slot} (run fewer "
                  f"GPU jobs at once: --resources gpu={n})", flush=True)
        return torch.device("cuda", slot)
    index = requested.partition(":")[2]
    if not index.isdigit() or int(index) >= n:
        raise RuntimeError(f"device {requested!r} does not exist: {n} CUDA GPU(s) are visible "
                           f"(cuda:0 to cuda:{n - 1}); use one of them, cuda or auto")
    return torch.device(requested)


def device_name(device: torch.device) -> str:
    """``cuda:<index>:<model>`` (the index among the visible GPUs) or ``cpu:<processor>``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index}:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}"


def record(*, cfg: Any, seed: int | None, device: torch.device | str, wall_s: float,
           **extra: Any) -> dict[str, Any]:
    """The provenance block written into every result JSON."""
    dev = device if isinstance(device, torch.device) else torch.device(device)
    if dev.type == "cuda":  # which physical GPU the index means
        extra.setdefault("cuda_visible_devices", os.environ.get("CUDA_VISIBLE_DEVICES", "all"))
    return {
        "git_commit": git_commit(),
        "config_hash": config_hash(cfg),
        "seed": seed,
        "device": device_name(dev),
        "torch": torch.__version__,
        "wall_s": round(float(wall_s), 4),
        **extra,
    }
