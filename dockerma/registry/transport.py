"""One HTTP exchange with a registry, its token service or where it redirects, bounded.

A registry dockerma does not control may answer slowly, endlessly or absurdly: every
exchange here has a total deadline (not only a per-read timeout), a cap on the body it keeps,
and may be pinned to the addresses a trust decision was made for. Nothing here knows about
credentials; the caller decides what to send where (session.py, auth.py).
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockerma.registry.proxies import Proxy

# What dockerma keeps of an answer. docker refuses manifests over 4 MiB (distribution's
# maxManifestBodySize); containers/image (skopeo, podman) caps configs at 4 MiB and token
# answers and error bodies at 1 MiB (CVE-2020-1702). A body over its cap is refused, except
# an error body (any status from 300 up), which is cut: only its first message is shown.
MAX_MANIFEST = 4 << 20
MAX_CONFIG = 4 << 20
MAX_TOKEN = 1 << 20
MAX_ERROR = 1 << 20
# Manifests, configs and token answers are a handful of levels deep; json.loads recurses once
# per level and a registry could send `[` x 200,000 (a RecursionError, not a ValueError).
MAX_JSON_DEPTH = 100

_CHUNK = 64 << 10
_USER_AGENT = "dockerma"


class TooLarge(Exception):
    """The answer's body is larger than the cap of its kind."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit >> 20} MiB")
        self.limit = limit


class Expired(Exception):
    """No complete answer before the exchange's deadline."""


class ProxyFailed(OSError):
    """The proxy could not be reached, or would not open a tunnel (its CONNECT answer)."""

    def __init__(self, proxy: Proxy, cause: str) -> None:
        super().__init__(f"proxy {proxy.shown} ({proxy.variable}): {cause}")
        self.proxy = proxy
        self.cause = cause


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name, "") or ""


def exchange(
    *,
    scheme: str,
    netloc: str,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes | None,
    context: ssl.SSLContext | None,
    deadline: float,
    timeout: float,
    limit: int,
    addresses: Sequence[str] = (),
    proxy: Proxy | None = None,
) -> Response:
    """One request and its answer, over `scheme` ("http", or "https" with `context`).

    `deadline` (a time.monotonic() value) bounds the whole exchange: connecting, the TLS
    handshake, the headers and the body (Expired after it); `timeout` bounds each read. A
    body over `limit` raises TooLarge (an error answer's body is cut to MAX_ERROR instead).
    With `addresses`, the connection goes to those only, whatever the name resolves to now.
    With `proxy`, it goes to the proxy instead: a CONNECT tunnel for HTTPS (TLS is still
    spoken with the registry, end to end), the absolute URL for plain HTTP.
    """
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise Expired()
    per_read = min(timeout, remaining)
    sent = {"User-Agent": _USER_AGENT, **headers}
    conn = _connection(scheme, netloc, context, per_read, proxy)
    if proxy is not None and scheme == "http":
        target = f"http://{netloc}{target}"
        if proxy.authorization:
            sent["Proxy-Authorization"] = proxy.authorization
    watchdog = _Watchdog(remaining)
    # http.client's seam for opening the socket: the Host header and the TLS server name stay
    # the registry's name while the socket goes where the trust decision was made (or to the
    # proxy, which then decides where the name leads).
    opener = watchdog.opener(addresses if proxy is None else ())
    conn._create_connection = opener  # type: ignore[attr-defined]
    try:
        try:
            conn.request(method, target, body=body, headers=sent)
        except OSError as err:
            if proxy is None or watchdog.expired or conn.sock is not None:
                raise
            # Nothing was sent to the registry: the proxy refused us or the tunnel.
            raise ProxyFailed(proxy, _tunnel_cause(err)) from None
        raw = conn.getresponse()
        data = _read(raw, limit if raw.status < 300 else MAX_ERROR, watchdog)
    except (OSError, http.client.HTTPException):
        if watchdog.expired:
            raise Expired() from None
        raise
    finally:
        watchdog.cancel()
        conn.close()
    return Response(raw.status, raw.reason, raw.headers, data)


def _connection(
    scheme: str,
    netloc: str,
    context: ssl.SSLContext | None,
    timeout: float,
    proxy: Proxy | None,
) -> http.client.HTTPConnection:
    if proxy is None:
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=timeout, context=context)
        return http.client.HTTPConnection(netloc, timeout=timeout)
    if scheme == "http":
        return http.client.HTTPConnection(proxy.host, proxy.port, timeout=timeout)
    conn = http.client.HTTPSConnection(proxy.host, proxy.port, timeout=timeout, context=context)
    tunnel_headers = {"User-Agent": _USER_AGENT}
    if proxy.authorization:
        tunnel_headers["Proxy-Authorization"] = proxy.authorization
    host, port = _host_port(netloc)
    conn.set_tunnel(host, port, headers=tunnel_headers)
    return conn


def _host_port(netloc: str) -> tuple[str, int]:
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 443
    host, _, port = netloc.partition(":")
    return host, int(port) if port else 443


def _tunnel_cause(err: OSError) -> str:
    # http.client says "Tunnel connection failed: 403 Forbidden" for a refused CONNECT.
    text = str(err)
    if text.startswith("Tunnel connection failed: "):
        return "it answered CONNECT with " + text.removeprefix("Tunnel connection failed: ")
    reason = err.strerror or text or type(err).__name__
    return f"cannot connect to it: {reason}"


def _read(raw: http.client.HTTPResponse, limit: int, watchdog: _Watchdog) -> bytes:
    length = raw.getheader("Content-Length") or ""
    if raw.status < 300 and length.isdigit() and int(length) > limit:
        raise TooLarge(limit)  # said up front: not a byte of it is read
    data = bytearray()
    while True:
        chunk = raw.read1(_CHUNK)  # one read at a time, each bounded by the per-read timeout
        if watchdog.expired:
            raise Expired()
        if not chunk:
            if raw.length:  # read1 returns b"" at a premature end instead of raising
                raise http.client.IncompleteRead(bytes(data), raw.length)
            return bytes(data)
        data += chunk
        if len(data) > limit:
            if raw.status < 300:
                raise TooLarge(limit)
            return bytes(data[:limit])  # an error body: its start is all that is shown


class _Watchdog:
    """Shuts the connection's socket down at the deadline: a blocked read or handshake then
    returns at once, however slowly the server trickles its bytes."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sock: socket.socket | None = None
        self._done = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def opener(self, addresses: Sequence[str]) -> Callable[..., socket.socket]:
        def connect(
            address: tuple[str, int], timeout: float | None = None, source: Any = None
        ) -> socket.socket:
            hosts = addresses or (address[0],)
            error: OSError | None = None
            for host in hosts:
                try:
                    sock = socket.create_connection((host, address[1]), timeout, source)
                    break
                except OSError as err:
                    error = err
            else:
                assert error is not None
                raise error
            with self._lock:
                if self.expired:
                    sock.close()
                    raise Expired()
                # A duplicate: wrapping in TLS detaches the socket object, the handshake must
                # be interruptible too, and a duplicate is never another socket's number.
                self._sock = sock.dup()
            return sock

        return connect

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        with self._lock:
            self._done = True
            if self._sock is not None:
                self._sock.close()
        self._timer.cancel()


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `body`, read as JSON, nests arrays and objects more than `limit` deep; checked
    without recursion, before json.loads could hit the interpreter's recursion limit."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if len(brackets) <= limit:
        return False
    depth = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > limit:
            return True
    return False
