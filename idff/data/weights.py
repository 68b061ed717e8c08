"""Fetch a weights file like a data set: https only, checksum (full or prefix) and size, resume.

A SHA-256 *prefix* is what torch hub file names carry ("...-6726825d.pth"); idff.data.download
checks full digests only, so the file is first downloaded beside its destination and renamed
into place only after the prefix matched: the destination never holds an unchecked file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .download import DownloadError, download, file_digest

HEX = re.compile(r"[0-9a-f]{8,64}")


def check_sha256(path: Path, want: str, url: str) -> None:
    """Raise DownloadError when the SHA-256 of ``path`` does not start with ``want``."""
    got = file_digest(path, "sha256")
    if not got.startswith(want.lower()):
        raise DownloadError(f"{url}: sha256 {got} does not start with the expected {want}; the "
                            f"file was rejected (corrupt, or not the expected file)")


def fetch_weights(out: str | os.PathLike, *, url: str, sha256: str, size: int | None = None,
                  allow_http: bool = False, retries: int = 3, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``out`` unless ``out`` already holds a file with that checksum."""
    out = Path(out)
    if not HEX.fullmatch(str(sha256).lower()):
        raise ValueError(f"sha256 {sha256!r} must be 8 to 64 hex digits (a digest or its start)")
    hint = (f"download {url} (sha256 starting {sha256}) on a machine with internet and place it "
            f"at {out}")
    if out.is_file():
        try:
            check_sha256(out, sha256, str(out))
            if size is not None and out.stat().st_size != size:
                raise DownloadError(f"{out} has {out.stat().st_size} bytes, expected {size}")
            return out
        except DownloadError:
            out.unlink()  # wrong or truncated: fetch it again
    tmp = out.with_name(out.name + ".download")
    full = sha256 if len(sha256) == 64 else None
    download(url, tmp, sha256=full, size=size, retries=retries, timeout=timeout,
             allow_http=allow_http, manual_hint=hint)
    try:
        check_sha256(tmp, sha256, url)
    except DownloadError as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{exc}. {hint[0].upper()}{hint[1:]}") from None
    os.replace(tmp, out)
    return out
