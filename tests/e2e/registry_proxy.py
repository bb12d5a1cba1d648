"""A loopback HTTP proxy in front of the test bed's registry that can misbehave on cue."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "transfer-encoding", "keep-alive", "content-length"}


class Proxy:
    """Forward every request to `upstream`; `fault(method, path)` may answer instead.

    fault returns None to forward, an int to answer with that status, or "die" to stop the
    proxy (a registry that went away: the connection drops, later ones are refused).
    """

    def __init__(self, upstream: str, port: int = 0) -> None:
        self.upstream = upstream
        self.fault: Callable[[str, str], int | str | None] = lambda m, p: None
        self.log: list[tuple[str, str, int]] = []
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._port}"

    def start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # A TLS hello sent here must get an answer starting with "HTTP/", as Go's
            # servers give: only then does containerd's resolver (the containerd image
            # store) fall back to plain HTTP. http.server's default answers such garbage
            # as HTTP/0.9, with no status line at all.
            default_request_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                body = self._body()
                verdict = proxy.fault(self.command, self.path)
                if verdict == "die":
                    proxy.log.append((self.command, self.path, 0))
                    threading.Thread(target=proxy.stop, daemon=True).start()
                    self.close_connection = True
                    return
                if isinstance(verdict, int):
                    proxy.log.append((self.command, self.path, verdict))
                    self.send_response(verdict)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                proxy.log.append((self.command, self.path, resp.status))
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
