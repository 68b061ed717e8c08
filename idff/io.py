"""Atomic file writes and safe checkpoint I/O.

Every file the pipeline writes goes through a temporary file in the same folder and an
``os.replace``, so a killed job never leaves a half-written output that looks finished.
Checkpoints are plain tensors and Python scalars, loaded with ``weights_only=True``.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
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


DIGEST_KEY = "sha256"  # the content hash every checkpoint carries (of all its other entries)


def state_digest(state: Any) -> str:
    """sha256 of a checkpoint's content: every tensor's dtype, shape and bytes, every scalar.

    torch's zip reader checks no CRC, so a flipped byte in a tensor loads silently; this hash,
    stored in the checkpoint and recomputed at load, catches it.
    """
    h = hashlib.sha256()
    _feed(h, state)
    return h.hexdigest()


def _feed(h: Any, node: Any) -> None:
    if isinstance(node, torch.Tensor):
        t = node.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(node.shape)}:".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(node, dict):
        h.update(f"D{len(node)}:".encode())
        for key in sorted(node, key=repr):
            h.update(f"K{key!r}:".encode())
            _feed(h, node[key])
    elif isinstance(node, (list, tuple)):
        h.update(f"L{len(node)}:".encode())
        for item in node:
            _feed(h, item)
    else:
        h.update(f"S{type(node).__name__}{node!r};".encode())


def write_failure(exc: BaseException) -> str:
    """What a failed write actually hit, from the OSError's errno (torch wraps it in a
    RuntimeError, so the chain is searched), never a guess."""
    seen: BaseException | None = exc
    while seen is not None and not (isinstance(seen, OSError) and seen.errno):
        seen = seen.__cause__ or seen.__context__
    if seen is None:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"{first}; no OS error code"
    code = errno.errorcode.get(seen.errno, str(seen.errno))
    why = {errno.ENOSPC: "the disk is full: free space",
           errno.EDQUOT: "the disk quota is exhausted: free space or raise the quota",
           errno.EFBIG: "a file-size limit was hit (ulimit -f, RLIMIT_FSIZE): raise it",
           errno.EACCES: "no permission to write there: fix the folder's permissions",
           errno.EROFS: "the file system is read-only: write elsewhere"}.get(
        seen.errno, "see the error code")
    return f"{code}: {seen.strerror}; {why}"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Save ``state`` atomically with its content hash; ``state`` must hold only tensors,
    containers and scalars.

    A failed write (full disk, quota, file-size limit) leaves the previous file in place and
    raises a CheckpointError naming the error code that was hit.
    """
    path = Path(path)
    state = {k: v for k, v in state.items() if k != DIGEST_KEY}
    state[DIGEST_KEY] = state_digest(state)
    try:
        with atomic_path(path, suffix=".pt.tmp") as tmp, open(tmp, "wb") as f:
            torch.save(state, f)  # through a Python file: a failed write keeps its errno
    except (OSError, RuntimeError) as exc:
        raise CheckpointError(
            f"could not write checkpoint {path} ({write_failure(exc)}), then rerun (the previous "
            f"checkpoint, if any, is unchanged)") from exc
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
    want = state.pop(DIGEST_KEY, None)
    if want is None:
        raise CheckpointError(f"checkpoint {path} carries no content hash, so its bytes cannot "
                              f"be verified: it is not a checkpoint written by `idff train` (or "
                              f"one of an older idff); delete it and rerun the job that writes it")
    if state_digest(state) != want:
        raise CheckpointError(f"checkpoint {path} is corrupt: its content does not match the "
                              f"sha256 it was saved with; delete it and rerun the job that "
                              f"writes it")
    state[DIGEST_KEY] = want  # who loads it can record which checkpoint it used
    return state
