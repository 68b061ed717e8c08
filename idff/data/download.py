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


def require_file(path: str | os.PathLike, error: type[Exception], what: str, fix: str) -> Path:
    """``path`` as a Path; raises ``error("<what> <path> does not exist; <fix>")`` when it is no file."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist; {fix}")
    return path


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


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to https (or to http when the caller allows plain http)."""

    def __init__(self, allow_http: bool) -> None:
        self.allow_http = allow_http

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        scheme = newurl.split("://", 1)[0].lower()
        if scheme != "https" and not (self.allow_http and scheme == "http"):
            raise DownloadError(f"refusing the redirect of {req.full_url} to {newurl}: a download "
                                f"never leaves https")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def download(url: str, dest: str | os.PathLike, *, md5: str | None = None, sha256: str | None = None,
             size: int | None = None, retries: int = 3, timeout: float = 20.0, backoff: float = 1.0,
             allow_http: bool = False, manual_hint: str = "", unsized_ok: bool = False) -> Path:
    """Fetch ``url`` to ``dest``.

    A partial file ``dest.part`` is resumed with an HTTP Range request after a dropped connection
    or any short read (fewer bytes than ``size`` or the server's Content-Length). The final file
    appears only after its size and checksum matched. Only https is allowed, redirects included,
    unless ``allow_http`` (tests use a loopback http server). Without ``size``, ``md5`` or
    ``sha256`` the server must send a Content-Length (else a cut-off transfer would look complete),
    unless ``unsized_ok``: the caller checks completeness itself. Returns ``dest``; an existing
    ``dest`` that verifies is reused without any network access.
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
    known = size is not None or md5 is not None or sha256 is not None
    opener = urllib.request.build_opener(_HttpsOnlyRedirects(allow_http))
    for attempt in range(1, retries + 1):
        resumed, sized = part.is_file() and part.stat().st_size > 0, False
        try:
            sized = _fetch_into(opener, url, part, timeout=timeout, size=size)
            if not (sized or known or unsized_ok):
                raise DownloadError(f"refusing {url}: the server sent no Content-Length and no "
                                    f"size or checksum is known for it, so a cut-off transfer "
                                    f"could not be told from a complete one; record its size")
            verify_file(part, md5=md5, sha256=sha256, size=size)
            os.replace(part, dest)
            return dest
        except DownloadError as exc:
            part.unlink(missing_ok=True)
            if str(exc).startswith("refusing") or not ((resumed or not sized) and attempt < retries):
                raise
            # the partial file came from an earlier, killed run (or the file changed upstream
            # since), or the transfer's length was unknown (a cut-off looks complete): fetch the
            # whole file once more from the start
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


def _fetch_into(opener: urllib.request.OpenerDirector, url: str, part: Path, timeout: float,
                size: int | None = None) -> bool:
    """Append the rest of ``url`` to ``part``; raise ConnectionError on a short read (fewer bytes
    than ``size`` or the Content-Length). Returns whether the full length was known."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "idff-reproduction"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    with opener.open(req, timeout=timeout) as resp:
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
        want = total if total is not None else size  # a complete other file: verify_file says so
        if want is not None and part.stat().st_size < want:
            raise ConnectionError(f"connection dropped at {part.stat().st_size}/{want} bytes")
    return want is not None
