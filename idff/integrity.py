"""Content records of data files: ``<file>.sha256`` (JSON: sha256, size) written beside the file.

``idff prepare`` records each data file it writes; every job that reads a data file verifies it
first, so a flipped byte is an error naming the file, not a silently shifted result. A data file
without a record (made before records existed, or placed by hand) is recorded at its first use,
with a line saying so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .data.download import file_digest
from .io import write_json_atomic


class DataIntegrityError(RuntimeError):
    """A data file's bytes differ from the content record written with it."""


def record_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def write_record(path: str | os.PathLike) -> Path:
    path = Path(path)
    return write_json_atomic(record_path(path), {"file": path.name, "size": path.stat().st_size,
                                                 "sha256": file_digest(path, "sha256")})


def verify_record(path: str | os.PathLike) -> None:
    """Check ``path`` against its record (size first, then sha256); record it if it has none."""
    path, rec = Path(path), record_path(path)
    if not path.is_file():
        return  # the loader says what is missing and how to make it
    fix = (f"delete {path} and {rec.name} and rerun the data job that writes it "
           f"(snakemake {path}, or idff prepare)")
    if not rec.is_file():
        write_record(path)
        print(f"recorded the content hash of {path} in {rec} (it had none)", flush=True)
        return
    try:
        want = json.loads(rec.read_text())
        size, sha = int(want["size"]), str(want["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataIntegrityError(f"content record {rec} of {path} is unreadable ({exc}); "
                                 f"{fix}") from exc
    got = path.stat().st_size
    if got != size:
        raise DataIntegrityError(f"data file {path} has {got} bytes but was written with {size}: "
                                 f"it is truncated or changed; {fix}")
    if file_digest(path, "sha256") != sha:
        raise DataIntegrityError(f"data file {path} is corrupt: its sha256 does not match the one "
                                 f"recorded when it was written ({rec}); {fix}")
