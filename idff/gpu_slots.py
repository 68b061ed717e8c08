"""One GPU per concurrently running job on a machine with several GPUs.

Snakemake's ``--resources gpu=K`` only limits how many GPU jobs run at once; it assigns no
device. So a job that may use any GPU (``device: auto`` or ``cuda``) claims a slot itself: it
takes an exclusive, non-blocking ``flock`` on one lock file per visible GPU, first free one wins,
and holds it until the process ends (the kernel releases it even after a kill). The lock files
are named by the physical GPU id (the entry of ``CUDA_VISIBLE_DEVICES`` when set), so two jobs
that see different GPUs never block each other, and live in the machine's temp folder (or
``IDFF_GPU_LOCK_DIR``), so every pipeline on the machine shares them. With one visible GPU
(e.g. under SLURM, which sets ``CUDA_VISIBLE_DEVICES`` per job) no lock is taken. When every
slot is held (more jobs than GPUs: ``gpu=K`` above the GPU count), the job shares the GPU
``pid % n`` and says so.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path
from typing import IO

_held: dict[str, tuple[int, IO[str]]] = {}  # lock dir -> (slot, open lock file) of this process


def lock_dir() -> Path:
    default = Path(tempfile.gettempdir()) / f"idff-gpu-slots-{os.getuid()}"
    return Path(os.environ.get("IDFF_GPU_LOCK_DIR") or default)


def physical_ids(n: int) -> list[str]:
    """The physical id of each visible device index (``CUDA_VISIBLE_DEVICES`` order)."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    return visible[:n] if len(visible) >= n else [str(i) for i in range(n)]


def claim_slot(n: int, directory: Path | None = None) -> tuple[int, bool]:
    """The device index (0..n-1) this process uses, and whether it holds it alone.

    Idempotent within a process: later calls return the first claim.
    """
    if n <= 1:
        return 0, True
    directory = Path(directory or lock_dir())
    key = str(directory)
    if key in _held:
        return _held[key][0], True
    directory.mkdir(parents=True, exist_ok=True)
    for slot, phys in enumerate(physical_ids(n)):
        f = open(directory / f"gpu-{phys}.lock", "a+")  # noqa: SIM115 (held for the process)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        _held[key] = (slot, f)
        return slot, True
    return os.getpid() % n, False


def release_all() -> None:
    """Drop every slot this process holds (tests; a job simply exits)."""
    for _, f in _held.values():
        f.close()
    _held.clear()
