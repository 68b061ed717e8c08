"""A small HTTP server on 127.0.0.1 for the download tests: never the network.

One server for every download test (idff.data.download, the OISST fetcher, the kill-and-resume
checks): Range requests answered with 206, a first response cut half-way (``drop_first``),
chunked transfer, and slow delivery in pieces (``chunk``, ``delay``) so a client can be killed
mid-file.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def serve(files: dict[str, bytes], *, drop_first: bool = False, chunked: bool = False,
          chunk: int = 65536, delay: float = 0.0, no_length: bool = False,
          redirects: dict[str, str] | None = None, tls: tuple[str, str] | None = None
          ) -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """Serve ``files`` (URL path -> body); yields (base url, log of (path, Range header)).

    ``drop_first``: the first response is cut half-way and the connection closed.
    ``chunked``: Transfer-Encoding: chunked (no Content-Length), Range ignored.
    ``no_length``: no Content-Length and no chunks: the body ends when the connection closes
    (so a cut-off looks like a complete response).
    ``chunk``, ``delay``: the body goes out in ``chunk``-byte writes ``delay`` seconds apart.
    ``redirects``: URL path -> Location answered with 302. ``tls``: (cert file, key file): https.
    """
    log: list[tuple[str, str | None]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            log.append((self.path, rng))
            if self.path in (redirects or {}):
                self.send_response(302)
                self.send_header("Location", redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = files.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(rng.split("=")[1].split("-")[0]) if rng and not chunked else 0
            payload = body[start:]
            self.send_response(206 if start else 200)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            elif no_length:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(len(payload)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.end_headers()
            cut = drop_first and len(log) == 1
            data = payload[: len(payload) // 2] if cut else payload
            try:
                self._send(data, cut)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client was killed or gave up
            if cut:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

        def _send(self, data: bytes, cut: bool) -> None:
            for a in range(0, len(data), chunk):
                piece = data[a:a + chunk]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                self.wfile.flush()
                if delay:
                    time.sleep(delay)
            if chunked:  # end, or announce a chunk and hang up inside it
                self.wfile.write(b"2000\r\n" + b"\0" * 10 if cut else b"0\r\n\r\n")
                self.wfile.flush()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_port}", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
