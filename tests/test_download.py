"""idff.data.download against a loopback HTTP server (127.0.0.1 only, never the network)."""

from __future__ import annotations

import hashlib
import time

import pytest
from loopback import serve

from idff.data.download import DownloadError, download

BODY = bytes(range(256)) * 600  # 153,600 bytes: more than two 64 KiB read blocks


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_verifies_checksum_and_writes_file(tmp_path):
    with serve({"/f.bin": BODY}) as (url, log):
        out = download(f"{url}/f.bin", tmp_path / "f.bin", sha256=sha256(BODY),
                       md5=hashlib.md5(BODY).hexdigest(), size=len(BODY), allow_http=True)
    assert out.read_bytes() == BODY
    assert log == [("/f.bin", None)]
    assert not (tmp_path / "f.bin.part").exists()


def test_checksum_mismatch_is_rejected_and_nothing_left_behind(tmp_path):
    with serve({"/f.bin": BODY}) as (url, log):
        with pytest.raises(DownloadError, match="sha256") as err:
            download(f"{url}/f.bin", tmp_path / "f.bin", sha256="0" * 64, allow_http=True,
                     backoff=0.01)
    assert "f.bin" in str(err.value)
    assert len(log) == 1  # a wrong checksum is not retried
    assert list(tmp_path.iterdir()) == []


def test_only_https_unless_allowed(tmp_path):
    with serve({"/f.bin": BODY}) as (url, log):
        with pytest.raises(DownloadError, match="only https"):
            download(f"{url}/f.bin", tmp_path / "f.bin")
        with pytest.raises(DownloadError, match="only https"):
            download("ftp://127.0.0.1/f.bin", tmp_path / "f.bin", allow_http=True)
    assert log == []
    assert list(tmp_path.iterdir()) == []


def test_no_network_fails_fast_with_the_manual_hint(tmp_path):
    hint = "copy f.bin from a machine with internet into resources/"
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as err:
        download("https://nonexistent.invalid/f.bin", tmp_path / "f.bin", retries=3,
                 timeout=5, manual_hint=hint)
    assert time.monotonic() - t0 < 5.0
    assert hint in str(err.value) and "Without network" in str(err.value)
    assert not (tmp_path / "f.bin").exists()


def test_existing_verified_file_is_reused_without_network(tmp_path):
    dest = tmp_path / "f.bin"
    dest.write_bytes(BODY)
    with serve({"/f.bin": b"other bytes"}) as (url, log):
        out = download(f"{url}/f.bin", dest, sha256=sha256(BODY), allow_http=True)
    assert log == [] and out.read_bytes() == BODY
    # an invalid host name is never contacted either
    assert download("https://nonexistent.invalid/f.bin", dest, sha256=sha256(BODY)) == dest


def test_existing_file_that_fails_verification_is_replaced(tmp_path):
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"stale")
    with serve({"/f.bin": BODY}) as (url, log):
        download(f"{url}/f.bin", dest, sha256=sha256(BODY), allow_http=True)
    assert len(log) == 1 and dest.read_bytes() == BODY


def test_dropped_connection_is_retried_and_resumed_with_range(tmp_path):
    with serve({"/f.bin": BODY}, drop_first=True) as (url, log):
        out = download(f"{url}/f.bin", tmp_path / "f.bin", sha256=sha256(BODY),
                       allow_http=True, backoff=0.01)
    assert out.read_bytes() == BODY
    assert log == [("/f.bin", None), ("/f.bin", f"bytes={len(BODY) // 2}-")]


def test_dropped_chunked_response_is_retried(tmp_path):
    # http.client raises IncompleteRead (not an OSError) here; it must count as a dropped
    # connection, not escape download() untyped
    with serve({"/f.bin": BODY}, drop_first=True, chunked=True) as (url, log):
        out = download(f"{url}/f.bin", tmp_path / "f.bin", sha256=sha256(BODY),
                       allow_http=True, backoff=0.01)
    assert out.read_bytes() == BODY and len(log) == 2


def test_client_error_is_not_retried_and_names_the_fix(tmp_path):
    with serve({}) as (url, log):
        with pytest.raises(DownloadError, match="place it by hand"):
            download(f"{url}/missing.bin", tmp_path / "m.bin", allow_http=True, retries=3,
                     backoff=0.01, manual_hint="place it by hand")
    assert len(log) == 1


def test_retries_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="retries"):
        download("https://nonexistent.invalid/f", tmp_path / "f", retries=0)
