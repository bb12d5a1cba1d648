"""Docker Hub images through the engine's registry mirrors, as the engine pulls them.

The daemon's `registry-mirrors` (daemon.json; `docker info` lists them under
RegistryConfig.Mirrors) apply to Docker Hub only: for `busybox` the engine asks each mirror
in turn for `/v2/library/busybox/...`, and Docker Hub itself when no mirror has it (any
failure of a mirror, not only a 404). dockerma resolves Docker Hub bases the same way, so a
machine that reaches the mirror but not Docker Hub pins the same digests the engine pulls.
A mirror is a URL (`https://mirror.example:5000`, `http://10.0.0.5:5000`): plain HTTP only
when the URL says so.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError
from dockerma.registry import hub
from dockerma.registry.errors import NotFound, RegistryError

if TYPE_CHECKING:  # the client holds the mirrors (parse): no import at run time
    from dockerma.registry.client import Manifest, Registry

log = logging.getLogger("dockerma")


@dataclass(frozen=True)
class Mirror:
    url: str  # as the daemon lists it, for messages
    registry: str  # its host:port
    plain: bool  # the URL says http://


def parse(urls: Sequence[str]) -> tuple[Mirror, ...]:
    """The usable mirrors of the daemon's list (the daemon itself refused bad ones)."""
    found = []
    for url in urls:
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme.lower() in ("http", "https") and parts.netloc:
            shown = f"{parts.scheme.lower()}://{parts.netloc}"
            found.append(Mirror(shown, parts.netloc.lower(), parts.scheme.lower() == "http"))
    return tuple(found)


def plain_registries(mirrors: Sequence[Mirror]) -> list[str]:
    """The mirrors to speak plain HTTP to (their URL says so), for the insecure list."""
    return [m.registry for m in mirrors if m.plain]


def get_manifest(registry: Registry, ref: ImageRef) -> tuple[ImageRef, Manifest]:
    """`ref`'s manifest and where it was found: for a Docker Hub image the first of the
    registry's mirrors that has it, else Docker Hub; any other image from its own registry."""
    mirrors = registry.mirrors
    if not mirrors or not hub.is_hub(ref.registry):
        return ref, registry.get_manifest(ref)
    failures: list[tuple[str, DockermaError]] = []
    for mirror in mirrors:
        source = replace(ref, domain=mirror.registry, path=ref.repository)
        try:
            return source, registry.get_manifest(source)
        except DockermaError as err:
            log.debug("registry mirror %s: %s; trying the next", mirror.url, err)
            failures.append((mirror.url, err))
    try:
        return ref, registry.get_manifest(ref)
    except NotFound:
        if all(isinstance(err, NotFound) for _, err in failures):
            raise
        hub_error: DockermaError = NotFound(f"{ref} not found")
    except DockermaError as err:
        hub_error = err
    raise RegistryError(_neither(ref, failures, hub_error)) from None


def _neither(
    ref: ImageRef, failures: Sequence[tuple[str, DockermaError]], hub_error: Exception
) -> str:
    tried = "; ".join(f"registry mirror {url}: {err}" for url, err in failures)
    return (
        f"cannot look up {ref}, a Docker Hub image, from the engine's registry mirror"
        f"{'s' if len(failures) > 1 else ''} or from Docker Hub ({tried}; Docker Hub "
        f"({hub.API_HOST}): {hub_error}); start the mirror or fix the daemon's "
        "registry-mirrors, or let this machine reach Docker Hub"
    )
