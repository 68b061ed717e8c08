"""Downloads that retry, resume, verify a checksum, write atomically and fail fast offline."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm


class DownloadError(RuntimeError):
    """A download failed; the message says what to place where to go on without network."""


def file_digest(path: str | os.PathLike, algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_file(path: str | os.PathLike, md5: str | None = None, sha256: str | None = None,
                size: int | None = None) -> None:
    """Raise DownloadError naming the file when its size or checksum is wrong."""
    path = Path(path)
    if not path.is_file():
        raise DownloadError(f"{path} does not exist")
    if size is not None and path.stat().st_size != size:
        raise DownloadError(f"{path} has {path.stat().st_size} bytes, expected {size}: "
                            f"the file is truncated or not the expected one; delete it and retry")
    for algo, want in (("md5", md5), ("sha256", sha256)):
        if want is not None:
            got = file_digest(path, algo)
            if got != want.lower():
                raise DownloadError(f"{path}: {algo} {got} does not match the expected {want}; "
                                    f"the file was rejected (corrupt or changed upstream)")


def download(url: str, dest: str | os.PathLike, *, md5: str | None = None, sha256: str | None = None,
             size: int | None = None, retries: int = 3, timeout: float = 20.0, backoff: float = 1.0,
             allow_http: bool = False, manual_hint: str = "") -> Path:
    """Fetch ``url`` to ``dest``.

    A partial file ``dest.part`` is resumed with an HTTP Range request after a dropped connection.
    The final file appears only after its checksum matched. Only https is allowed unless
    ``allow_http`` (tests use a loopback http server). Returns ``dest``; an existing ``dest`` that
    verifies is reused without any network access.
    """
    if retries < 1:
        raise ValueError(f"retries must be >= 1 (the number of attempts), got {retries}")
    dest = Path(dest)
    hint = manual_hint or f"download {url} by hand and place it at {dest}"
    if dest.is_file():
        try:
            verify_file(dest, md5=md5, sha256=sha256, size=size)
            return dest
        except DownloadError:
            dest.unlink()
    scheme = url.split("://", 1)[0].lower()
    if scheme != "https" and not (allow_http and scheme == "http"):
        raise DownloadError(f"refusing to download {url}: only https URLs are allowed")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_exc: Exception | None = None
    for attempt in range(1, retries + 1):
        resumed = part.is_file() and part.stat().st_size > 0
        try:
            _fetch_into(url, part, timeout=timeout)
            verify_file(part, md5=md5, sha256=sha256, size=size)
            os.replace(part, dest)
            return dest
        except DownloadError as exc:
            part.unlink(missing_ok=True)
            if not (resumed and attempt < retries):
                raise
            # the partial file came from an earlier, killed run (or the file changed upstream
            # since): its head is suspect, so fetch the whole file once more from the start
            last_exc = exc
            continue
        except urllib.error.HTTPError as exc:
            last_exc = exc
            if exc.code == 416:  # range not satisfiable: start over
                part.unlink(missing_ok=True)
            elif 400 <= exc.code < 500:
                break
        # HTTPException: a chunked response cut short raises http.client.IncompleteRead
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError,
                http.client.HTTPException) as exc:
            last_exc = exc
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, socket.gaierror):  # no DNS: no network at all, do not retry
                break
        if attempt < retries:
            time.sleep(backoff * attempt)
    part.unlink(missing_ok=True)
    raise DownloadError(f"could not download {url} after {attempt} attempt(s): {last_exc}. "
                        f"Without network: {hint}")


def _fetch_into(url: str, part: Path, timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "idff-reproduction"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        status = getattr(resp, "status", 200)
        mode = "ab" if have and status == 206 else "wb"
        total = resp.headers.get("Content-Length")
        total = int(total) + (have if mode == "ab" else 0) if total else None
        with open(part, mode) as f, tqdm(total=total, initial=have if mode == "ab" else 0, unit="B",
                                          unit_scale=True, desc=part.name[:-5], leave=False,
                                          disable=None) as bar:
            while block := resp.read(1 << 16):
                f.write(block)
                bar.update(len(block))
        if total is not None and part.stat().st_size < total:
            raise ConnectionError(f"connection dropped at {part.stat().st_size}/{total} bytes")
