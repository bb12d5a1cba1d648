"""The insecure-registry rule: which registry (host:port) may speak plain HTTP or unverified
TLS, decided once per registry and never for any other host.

`--insecure` names registries; the daemon's insecure-registries list names registries and
CIDRs; loopback addresses are always among them, as in docker.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass

from dockerma.core import references
from dockerma.registry import hub

# docker's default insecure-registries (daemon.json can only add to them).
_LOOPBACK_NETS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@dataclass(frozen=True)
class Trust:
    """How dockerma may speak to one registry's own host:port (never to any other host)."""

    insecure: bool = False  # plain HTTP, or TLS without verification, is allowed
    loopback: bool = False  # plain HTTP is tried first: nothing leaves the machine
    # When the decision was made from resolved addresses: the connections go to these only
    # (a name that resolved to 127.0.0.1 once must not reach another host the next time).
    addresses: tuple[str, ...] = ()


VERIFIED = Trust()


def decide(
    registry: str, *, insecure: Collection[str], insecure_registries: Collection[str]
) -> Trust:
    """`insecure`: the registries `--insecure` names (lower case); `insecure_registries`: the
    daemon's list (names and CIDRs)."""
    named = registry.lower() in insecure  # --insecure
    networks = list(_LOOPBACK_NETS)
    for entry in insecure_registries:
        item = entry.strip().lower()
        for prefix in ("http://", "https://"):
            item = item.removeprefix(prefix)
        if "/" in item:
            with contextlib.suppress(ValueError):
                networks.append(ipaddress.ip_network(item, strict=False))
        elif item == registry.lower():
            named = True
    # docker matches CIDR entries (127.0.0.0/8 always among them) against the addresses
    # the name resolves to; the connections then go to the matching addresses only.
    found = addresses(hub.api_host(registry))
    if named:  # by its name: whatever it resolves to
        return Trust(True, bool(found) and all(a.is_loopback for a in found))
    matching = [a for a in found if any(a in net for net in networks)]
    if matching:
        loopback = all(a.is_loopback for a in matching)
        return Trust(True, loopback, tuple(str(a) for a in matching))
    return VERIFIED


class TrustBook:
    """Each registry's Trust, decided on first use and kept for the run; safe to share."""

    def __init__(
        self,
        *,
        insecure: Collection[str],
        insecure_registries: Collection[str],
        on_warning: Callable[[str], None] | None,
    ) -> None:
        self.insecure = frozenset(r.lower() for r in insecure)
        self.insecure_registries = tuple(insecure_registries)
        self._on_warning = on_warning
        self._lock = threading.Lock()
        self._known: dict[str, Trust] = {}

    def of(self, registry: str) -> Trust:
        with self._lock:
            known = self._known.get(registry)
        if known is not None:
            return known
        known = decide(
            registry, insecure=self.insecure, insecure_registries=self.insecure_registries
        )
        with self._lock:
            fresh = registry not in self._known
            known = self._known.setdefault(registry, known)
        if fresh and registry.lower() in self.insecure and self._on_warning is not None:
            self._on_warning(
                f"--insecure: registry {registry} is treated as insecure (plain HTTP, or "
                "TLS without certificate checks); every other host is verified as usual"
            )
        return known


def addresses(registry: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
    """The addresses `registry`'s host resolves to (itself when it is one); () when the name
    does not resolve."""
    host = references.host_of(registry)
    try:
        return (_unmapped(ipaddress.ip_address(host)),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return ()
    found = (_unmapped(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos)
    return tuple(dict.fromkeys(found))


def _unmapped(
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # ::ffff:127.0.0.1 is 127.0.0.1 (Python < 3.13 does not count it as loopback).
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped if mapped is not None else addr


def is_loopback(registry: str) -> bool:
    """Whether every address `registry` resolves to is a loopback one (127.0.0.0/8, ::1).

    Decided by resolving the name, as docker matches its default insecure 127.0.0.0/8: a
    name such as `x.localhost` is loopback only when it resolves there.
    """
    found = addresses(registry)
    return bool(found) and all(a.is_loopback for a in found)
