"""HTTP(S) proxies from the environment, chosen per request as docker's CLI chooses them.

docker's CLI (Go's net/http, golang.org/x/net/http/httpproxy) reads HTTPS_PROXY, HTTP_PROXY
and NO_PROXY, the upper-case name first, then the lower-case one. Its rules, kept here:

- a request to `localhost` or to a loopback IP literal never goes through a proxy; a *name*
  that resolves to a loopback address does (Go decides on the text, it resolves nothing);
- NO_PROXY is a comma-separated list: `*` (nothing is proxied), an IP, a CIDR, a domain
  (`example.com` matches it and its sub-domains, `.example.com` and `*.example.com` only
  the sub-domains), each but the CIDR optionally with `:port`, which must then match the
  request's port (443 and 80 when the URL names none);
- a proxy given without a scheme is `http://` one.

Only `http://` proxies are spoken (CONNECT for HTTPS registries, absolute URLs for plain
HTTP ones); another scheme is refused with the name of the variable to fix.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional, Union

from dockerma.core import references
from dockerma.errors import DockermaError

_DEFAULT_PORTS = {"http": 80, "https": 443}
Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    shown: str  # the proxy's URL without its credentials, for messages
    variable: str  # the environment variable that named it
    userinfo: str = field(default="", repr=False)  # "user:password" (decoded), or ""

    @property
    def authorization(self) -> str:
        """The Proxy-Authorization header's value ("" without credentials)."""
        if not self.userinfo:
            return ""
        return "Basic " + base64.b64encode(self.userinfo.encode()).decode()


@dataclass(frozen=True)
class _Rule:
    host: str = ""  # a domain suffix, with its leading dot
    whole: bool = False  # the domain itself matches too (written without a leading dot)
    ip: Optional[Address] = None  # noqa: UP045 (evaluated at run time on Python 3.9)
    net: Optional[Network] = None  # noqa: UP045
    port: str = ""
    everything: bool = False

    def matches(self, host: str, port: str, ip: Address | None) -> bool:
        if self.everything:
            return True
        if self.net is not None:
            return ip is not None and ip in self.net
        if self.ip is not None:
            return ip is not None and ip == self.ip and self.port in ("", port)
        if host.endswith(self.host) or (self.whole and host == self.host[1:]):
            return self.port in ("", port)
        return False


def parse_no_proxy(text: str) -> tuple[_Rule, ...]:
    rules: list[_Rule] = []
    for raw in text.split(","):
        item = raw.strip().lower()
        if not item:
            continue
        if item == "*":
            return (_Rule(everything=True),)
        if "/" in item:
            try:
                rules.append(_Rule(net=ipaddress.ip_network(item, strict=False)))
            except ValueError:
                pass  # Go: not a CIDR, then taken as a host name that never matches
            else:
                continue
        host, port = _split_port(item)
        if not host:
            continue
        ip = _ip(host)
        if ip is not None:
            rules.append(_Rule(ip=ip, port=port))
            continue
        if host.startswith("*."):
            host = host[1:]
        whole = not host.startswith(".")
        rules.append(_Rule(host=host if not whole else "." + host, whole=whole, port=port))
    return tuple(rules)


def _split_port(item: str) -> tuple[str, str]:
    """`host:port`, `[v6]:port` or a bare host (an IPv6 address without brackets too)."""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    if item.count(":") == 1:
        host, _, port = item.partition(":")
        return host, port
    return item, ""


def _ip(host: str) -> Address | None:
    try:
        addr = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped if mapped is not None else addr


def _first(environ: Mapping[str, str], name: str) -> tuple[str, str]:
    for key in (name.upper(), name.lower()):
        value = environ.get(key, "")
        if value:
            return key, value
    return name.upper(), ""


class Proxies:
    """The proxy settings of one run, read once from the environment."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._urls = {"http": _first(env, "http_proxy"), "https": _first(env, "https_proxy")}
        self._rules = parse_no_proxy(_first(env, "no_proxy")[1])

    def for_url(self, scheme: str, netloc: str) -> Proxy | None:
        """The proxy a request to `scheme://netloc` goes through; None: straight there."""
        variable, url = self._urls.get(scheme, ("", ""))
        if not url or not self.use_proxy(netloc, _DEFAULT_PORTS[scheme]):
            return None
        return _parse_proxy(variable, url)

    def use_proxy(self, netloc: str, default_port: int) -> bool:
        host = references.host_of(netloc).strip().lower()
        port = netloc.rsplit(":", 1)[1] if _has_port(netloc) else str(default_port)
        ip = _ip(host)
        if host == "localhost" or (ip is not None and ip.is_loopback):
            return False
        return not any(rule.matches(host, port, ip) for rule in self._rules)

    def secrets(self) -> list[str]:
        """The proxies' passwords, for Secrets to blank out."""
        found = []
        for _, url in self._urls.values():
            if url:
                with_scheme = url if "://" in url else "http://" + url
                parts = urllib.parse.urlsplit(with_scheme)
                if parts.password:
                    found += [parts.password, urllib.parse.unquote(parts.password)]
        return found


def _has_port(netloc: str) -> bool:
    if netloc.startswith("["):
        return "]:" in netloc
    return netloc.count(":") == 1


def _parse_proxy(variable: str, url: str) -> Proxy:
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    bad = DockermaError(
        f"{variable} is not a usable proxy URL; set it to http://HOST:PORT (dockerma speaks "
        "to HTTP proxies only)"
    )
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
    except ValueError:
        raise bad from None
    if parts.scheme.lower() != "http" or not parts.hostname or not port:
        raise bad
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    host = parts.hostname
    shown_host = f"[{host}]" if ":" in host else host
    return Proxy(
        host=host,
        port=port,
        shown=f"http://{shown_host}:{port}",
        variable=variable,
        userinfo=f"{user}:{password}" if user or password else "",
    )
