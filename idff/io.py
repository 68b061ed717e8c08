"""Atomic file writes and safe checkpoint I/O.

Every file the pipeline writes goes through a temporary file in the same folder and an
``os.replace``, so a killed job never leaves a half-written output that looks finished.
Checkpoints are plain tensors and Python scalars, loaded with ``weights_only=True``.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, unsafe or of another model."""


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it into place atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def stale_temps(path: str | os.PathLike) -> list[Path]:
    """Temporary files that ``atomic_path`` left beside ``path`` when its writer was killed."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f".{glob.escape(path.name)}.*tmp"))


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete ``stale_temps(path)``; returns what was removed.

    Only for a writer that owns ``path`` (Snakemake's directory lock guarantees one job per
    output): a SIGKILL during a checkpoint write leaves a hidden temp file as large as the
    checkpoint, and nothing else ever deletes it.
    """
    removed = []
    for tmp in stale_temps(path):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Save ``state`` atomically; ``state`` must hold only tensors, containers and scalars.

    A failed write (full disk, quota) leaves the previous file in place and raises a
    CheckpointError that says so; torch's own message for it is an internal assertion.
    """
    path = Path(path)
    try:
        with atomic_path(path, suffix=".pt.tmp") as tmp:
            torch.save(state, tmp)
    except (OSError, RuntimeError) as exc:
        try:
            free = f"{shutil.disk_usage(path.parent).free / 1e9:.2f} GB free there"
        except OSError:
            free = "free space unknown"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"could not write checkpoint {path} ({first}; {free}); the disk or quota is probably "
            f"full: free space and rerun (the previous checkpoint, if any, is unchanged)") from exc
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` and turn every failure into a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train the model first (idff train) "
                              f"or pull it with `dvc pull`")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != ZIP_MAGIC:  # torch.save writes a zip archive; anything else is damaged or foreign
        what = "is empty" if not head else f"does not start with a zip signature ({head!r})"
        raise CheckpointError(f"checkpoint {path} {what}: it is truncated or not a checkpoint "
                              f"written by torch.save; delete it and rerun training")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated / pickled files
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(
                f"checkpoint {path} holds pickled Python objects and was refused (weights_only=True); "
                f"only checkpoints written by `idff train` can be loaded") from exc
        raise CheckpointError(f"checkpoint {path} could not be read ({msg}); it is probably truncated "
                              f"or not a checkpoint: delete it and rerun training") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a state dict")
    return state
