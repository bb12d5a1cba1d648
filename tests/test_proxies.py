"""Proxies as docker's CLI chooses them (Go's httpproxy rules), and requests through one."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError
from dockerma.registry import transport
from dockerma.registry.client import Registry, RegistryError
from dockerma.registry.proxies import Proxies, Proxy, parse_no_proxy

PROXY = "http://proxy.test:3128"


def proxied(no_proxy: str, netloc: str, scheme: str = "https") -> bool:
    env = {"HTTPS_PROXY": PROXY, "HTTP_PROXY": PROXY, "NO_PROXY": no_proxy}
    return Proxies(env).for_url(scheme, netloc) is not None


@pytest.mark.parametrize(
    ("no_proxy", "netloc", "expected"),
    [
        ("", "registry.example.com", True),
        ("example.com", "registry.example.com", False),  # a domain matches its sub-domains
        ("example.com", "example.com", False),  # and itself
        (".example.com", "registry.example.com", False),
        (".example.com", "example.com", True),  # a leading dot: sub-domains only
        ("*.example.com", "example.com", True),
        ("*.example.com", "a.b.example.com", False),
        ("example.com", "notexample.com", True),  # a suffix of the name, not of the label
        ("EXAMPLE.com", "Registry.Example.COM", False),  # case does not matter
        (" other.org , example.com ", "registry.example.com", False),
        ("*", "anything.test", False),
        ("10.1.2.3", "10.1.2.3:5000", False),  # an IP
        ("10.1.2.3", "10.1.2.4:5000", True),
        ("10.0.0.0/8", "10.200.0.9:443", False),  # a CIDR matches IP literals
        ("10.0.0.0/8", "registry.test", True),  # but names are not resolved
        ("registry.test:5000", "registry.test:5000", False),  # host:port
        ("registry.test:5000", "registry.test:5443", True),
        ("registry.test:443", "registry.test", False),  # the scheme's port when none given
        ("10.1.2.3:5000", "10.1.2.3:5001", True),
        ("[::2]:5000", "[::2]:5000", False),
        ("::2", "[::2]:5000", False),
        ("2001:db8::/32", "[2001:db8::7]:5000", False),
    ],
)
def test_no_proxy_matches_as_go_does(no_proxy: str, netloc: str, expected: bool) -> None:
    assert proxied(no_proxy, netloc) is expected


@pytest.mark.parametrize(
    "netloc", ["localhost:5000", "LOCALHOST", "127.0.0.1:5000", "127.9.9.9", "[::1]:5000"]
)
def test_loopback_literals_are_never_proxied(netloc: str) -> None:
    assert not proxied("", netloc)


def test_a_name_that_resolves_to_loopback_is_proxied() -> None:
    # Go decides on the text of the host, it resolves nothing: so does dockerma.
    assert proxied("", "localhost.localdomain:5000")
    assert proxied("", "dockerma-registry.test:5444")


def test_upper_case_variables_win_lower_case_ones_serve_alone() -> None:
    both = Proxies({"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"})
    assert both.for_url("https", "r.test") == Proxy("upper", 1, "http://upper:1", "HTTPS_PROXY")
    lower = Proxies({"https_proxy": "lower:2", "no_proxy": "r.test"})
    assert lower.for_url("https", "other.test") == Proxy(
        "lower", 2, "http://lower:2", "https_proxy"
    )
    assert lower.for_url("https", "r.test") is None  # no_proxy read too


def test_each_scheme_has_its_own_variable() -> None:
    only_https = Proxies({"HTTPS_PROXY": "http://p:3128"})
    assert only_https.for_url("http", "r.test") is None
    only_http = Proxies({"HTTP_PROXY": "http://p:3128"})
    assert only_http.for_url("https", "r.test") is None
    assert only_http.for_url("http", "r.test") is not None


def test_proxy_credentials_become_a_header_and_are_kept_secret() -> None:
    proxies = Proxies({"HTTPS_PROXY": "http://bob:s%40cret@p.test:8080"})
    proxy = proxies.for_url("https", "r.test")
    assert proxy is not None
    assert proxy.shown == "http://p.test:8080"  # no credentials in messages
    assert proxy.authorization == "Basic Ym9iOnNAY3JldA=="  # bob:s@cret
    assert "s@cret" in proxies.secrets()
    assert "s@cret" not in repr(proxy)


@pytest.mark.parametrize("url", ["socks5://p:1080", "https://p:3128", "http://:3128"])
def test_an_unusable_proxy_url_names_its_variable(url: str) -> None:
    with pytest.raises(DockermaError, match="HTTPS_PROXY is not a usable proxy URL"):
        Proxies({"HTTPS_PROXY": url}).for_url("https", "r.test")


def test_malformed_no_proxy_entries_are_skipped() -> None:
    assert parse_no_proxy(",, :80 ,") == ()


# -- requests through a proxy ------------------------------------------------------------------


class _ProxyHandler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_CONNECT(self) -> None:
        self.server.seen.append(("CONNECT", self.path, dict(self.headers)))
        self.send_response(403, "Forbidden")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path, dict(self.headers)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@pytest.fixture
def proxy_server() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
    server.daemon_threads = True
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.daemon = True
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _proxy(server: Any, userinfo: str = "") -> Proxy:
    port = server.server_address[1]
    return Proxy("127.0.0.1", port, f"http://127.0.0.1:{port}", "HTTP_PROXY", userinfo)


def test_plain_http_goes_to_the_proxy_as_an_absolute_url(proxy_server: Any) -> None:
    resp = transport.exchange(
        scheme="http",
        netloc="registry.test:5000",
        method="GET",
        target="/v2/",
        headers={},
        body=None,
        context=None,
        deadline=time.monotonic() + 10,
        timeout=5,
        limit=1000,
        addresses=("192.0.2.1",),  # a trust decision's addresses: the proxy resolves instead
        proxy=_proxy(proxy_server, "bob:pw"),
    )
    assert resp.status == 200
    [(method, path, headers)] = proxy_server.seen
    assert (method, path) == ("GET", "http://registry.test:5000/v2/")
    assert headers["Host"] == "registry.test:5000"
    assert headers["Proxy-Authorization"] == "Basic Ym9iOnB3"


def test_a_refused_connect_is_a_proxy_failure(proxy_server: Any) -> None:
    with pytest.raises(transport.ProxyFailed) as failure:
        transport.exchange(
            scheme="https",
            netloc="registry.test:5443",
            method="GET",
            target="/v2/",
            headers={"Authorization": "Basic c2VjcmV0"},
            body=None,
            context=None,
            deadline=time.monotonic() + 10,
            timeout=5,
            limit=1000,
            proxy=_proxy(proxy_server),
        )
    assert "answered CONNECT with 403 Forbidden" in str(failure.value)
    [(method, path, headers)] = proxy_server.seen
    assert (method, path) == ("CONNECT", "registry.test:5443")
    assert "Authorization" not in headers  # the registry's credentials stay in the tunnel


def test_a_refusing_proxy_is_one_clear_error_without_retries(
    proxy_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = proxy_server.server_address[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://bob:hunter2@127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    registry = Registry(retries=3, backoff=0.01)
    with pytest.raises(RegistryError) as failure:
        registry.get_manifest(ImageRef.parse("registry.example.com/team/app:1"))
    message = str(failure.value)
    assert f"through proxy http://127.0.0.1:{port} (HTTPS_PROXY)" in message
    assert "403 Forbidden" in message and "NO_PROXY" in message
    assert "hunter2" not in message
    assert len(proxy_server.seen) == 1  # not retried


def test_a_proxy_that_does_not_listen_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("https_proxy", f"127.0.0.1:{port}")
    for name in ("HTTPS_PROXY", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(
        RegistryError, match=rf"through proxy http://127.0.0.1:{port} \(https_proxy"
    ):
        Registry(retries=0).get_manifest(ImageRef.parse("registry.example.com/app:1"))


def test_no_proxy_sends_the_request_straight_there(
    proxy_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = proxy_server.server_address[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "example.com")
    with pytest.raises(RegistryError):
        # A name that resolves nowhere: straight there fails, and the proxy saw nothing.
        Registry(retries=0).get_manifest(ImageRef.parse("nowhere.example.com/app:1"))
    assert proxy_server.seen == []
