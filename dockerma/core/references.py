"""ImageRef: docker image references that survive `localhost:5000/team/app:v1` and digests."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from dockerma.errors import DockermaError

# Docker Hub, under the names docker gives it: references without a registry live in
# HUB_DOMAIN; docker treats its other names as that registry (references, credentials), its
# registry API answers at HUB_API_HOST and docker keeps its credentials under HUB_CREDENTIALS_KEY
# (the old v1 index URL). Its official images live under `library/`.
HUB_DOMAIN = "docker.io"
HUB_NAMES = frozenset({HUB_DOMAIN, "index.docker.io", "registry-1.docker.io"})
HUB_API_HOST = "registry-1.docker.io"
HUB_CREDENTIALS_KEY = "https://index.docker.io/v1/"
_OFFICIAL = "library/"
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
# distribution/reference's grammar for the registry part: DNS labels (any case, inner
# hyphens) or a bracketed IPv6 address, then an optional numeric port.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_REGISTRY = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:]+\])(?::([0-9]+))?$")
MAX_TAG = 128  # docker refuses longer tags


@dataclass(frozen=True)
class ImageRef:
    """`[domain/]path[:tag][@digest]`; `domain` is empty when the reference had none."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        raw = text.strip()
        if not raw or any(c.isspace() for c in raw):
            raise DockermaError(f"invalid image reference {text!r}; use NAME[:TAG]")
        rest, _, digest = raw.partition("@")
        if digest and not _DIGEST.match(digest):
            raise DockermaError(f"invalid digest in {text!r}; use NAME@sha256:<64 hex digits>")
        name, tag = rest, ""
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            name, tag = rest[:colon], rest[colon + 1 :]
            if not _TAG.match(tag):
                raise DockermaError(
                    f"invalid tag {tag!r} in {text!r}; a tag is up to 128 letters, digits, "
                    "'_', '.' and '-', not starting with '.' or '-'"
                )
        domain, path = "", name
        first, sep, remainder = name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
            domain, path = first, remainder
            _check_registry(domain, text)
        if not path or not all(_COMPONENT.match(c) for c in path.split("/")):
            raise DockermaError(
                f"invalid image name {name!r} in {text!r}; use lowercase letters, digits and "
                "separators (., _, -), e.g. registry:5000/team/app:v1"
            )
        return cls(domain, path, tag, digest)

    @property
    def name(self) -> str:
        """The repository as the user wrote it, without tag or digest."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def familiar(self) -> str:
        """The repository as docker shows it (`docker image ls`, RepoTags): Docker Hub's
        `docker.io/` and `library/` left out."""
        if self.registry != HUB_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(_OFFICIAL) and path.count("/") == 1:
            path = path.removeprefix(_OFFICIAL)
        return path

    @property
    def registry(self) -> str:
        """The registry host[:port] the reference lives in (docker.io when none is named, or
        one of Docker Hub's other names)."""
        if self.domain in HUB_NAMES:
            return HUB_DOMAIN
        return self.domain or HUB_DOMAIN

    @property
    def repository(self) -> str:
        """The repository path in the registry's API (`library/` for official images)."""
        if self.registry == HUB_DOMAIN and "/" not in self.path:
            return f"{_OFFICIAL}{self.path}"
        return self.path

    def with_tag(self, tag: str) -> ImageRef:
        if len(tag) > MAX_TAG:
            raise DockermaError(
                f"tag {tag!r} is {len(tag)} characters, docker allows {MAX_TAG}; use a shorter tag"
            )
        if not _TAG.match(tag):
            raise DockermaError(f"invalid tag {tag!r}; use letters, digits, '_', '.' and '-'")
        return replace(self, tag=tag, digest="")

    @property
    def tag_or_latest(self) -> str:
        return self.tag or "latest"

    def suffixed(self, suffix: str) -> ImageRef:
        """`name:tag-suffix`, the per-architecture tag (tag defaults to latest)."""
        return self.with_tag(f"{self.tag_or_latest}-{suffix}")

    @property
    def reference(self) -> str:
        """The tag or digest part used in registry API paths."""
        return self.digest or self.tag_or_latest

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def pinned(self, digest: str) -> str:
        """`name@digest` (the tag dropped: docker ignores it when a digest is given)."""
        return f"{self.name}@{digest}"


def _check_registry(domain: str, text: str) -> None:
    # docker says "invalid reference format" here; without this check `localhost:abc/x`
    # reached the network and was retried as a registry that does not answer.
    match = _REGISTRY.match(domain)
    port = match.group(1) if match else None
    bad_ip = domain.startswith("[") and not _is_ip(host_of(domain))
    if match is None or bad_ip or (port is not None and not 0 < int(port) < 65536):
        raise DockermaError(
            f"invalid registry {domain!r} in {text!r}; a registry is HOST[:PORT] (a DNS name, "
            "an IPv4 address or [IPv6], and a port from 1 to 65535), e.g. localhost:5000/app"
        )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def host_of(registry: str) -> str:
    """The host part of `registry` (host[:port]), without the brackets of an IPv6 address."""
    if registry.startswith("["):
        return registry[1:].split("]", 1)[0]
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
