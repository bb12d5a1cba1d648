"""Manifest lists and OCI indexes: parse them, pick a platform's digest, write a new list."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockerma.core.platforms import Platform
from dockerma.errors import DockermaError

DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPES = frozenset({DOCKER_LIST, OCI_INDEX})
IMAGE_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})

# BuildKit stores provenance/SBOM as extra index entries with platform unknown/unknown and
# this annotation (docker/buildx#1509); they are not images and must never be picked.
_REFERENCE_TYPE = "vnd.docker.reference.type"

# The registered digest algorithms of the OCI image spec, each with its exact length of
# lower-case hex: anything else a registry sends (a newline and an instruction after the hex,
# upper case, a made-up algorithm) is refused before it reaches a URL, a Dockerfile or a list.
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")


def valid_digest(digest: object) -> bool:
    """Whether `digest` is `sha256:<64 hex>` or `sha512:<128 hex>`, strictly."""
    return isinstance(digest, str) and _DIGEST.fullmatch(digest) is not None


def check_digest(digest: object, where: str) -> str:
    """`digest` itself when valid_digest; else a one-line DockermaError naming `where` (the
    registry and image it came from)."""
    if valid_digest(digest):
        return str(digest)
    shown = repr(digest)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    raise DockermaError(
        f"{where} gave an invalid digest {shown} (expected sha256:<64 hex digits>); "
        "the registry or a proxy in front of it is broken or hostile, nothing was used"
    )


@dataclass(frozen=True)
class Entry:
    """One image of a list: its platform and the descriptor that points at it."""

    platform: Platform
    digest: str
    media_type: str
    size: int


def media_type(doc: Mapping[str, Any], fallback: str = "") -> str:
    """The document's media type; OCI documents may omit it, so the HTTP header is the fallback."""
    mt = doc.get("mediaType") or fallback
    if not mt and "manifests" in doc:
        return OCI_INDEX
    return str(mt)


def is_index(doc: Mapping[str, Any], fallback: str = "") -> bool:
    return media_type(doc, fallback) in INDEX_TYPES or "manifests" in doc


def entries(doc: Mapping[str, Any], where: str = "the registry's manifest list") -> list[Entry]:
    """The image entries of a list or index, attestations and other non-images skipped.

    Every entry's digest is checked (check_digest), the skipped ones' too: a DockermaError
    naming `where` when one is not a digest.
    """
    out: list[Entry] = []
    for m in doc.get("manifests") or []:
        annotations = m.get("annotations") or {}
        plat = m.get("platform") or {}
        digest = check_digest(m["digest"], where)
        if _REFERENCE_TYPE in annotations:
            continue
        os_name, arch = plat.get("os", ""), plat.get("architecture", "")
        if not arch or arch == "unknown" or os_name == "unknown":
            continue
        out.append(
            Entry(
                Platform.from_registry(os_name, arch, plat.get("variant", "")),
                digest,
                str(m.get("mediaType") or ""),
                int(m.get("size") or 0),
            )
        )
    return out


def pick(candidates: Iterable[Entry], platform: Platform) -> Entry | None:
    """The entry for `platform` (arm64 matches with or without v8; arm/v6 never matches v7)."""
    for e in candidates:
        if e.platform.matches(platform):
            return e
    return None


def config_platform(config: Mapping[str, Any]) -> Platform:
    """The platform an image config records (`architecture`, `os`, `variant`)."""
    return Platform.from_registry(
        str(config.get("os") or "linux"),
        str(config.get("architecture") or ""),
        str(config.get("variant") or ""),
    )


def make_list(items: Sequence[tuple[Entry, Platform]]) -> tuple[bytes, str]:
    """A manifest list (Docker) or OCI index (when any image is OCI) for the given entries.

    Each image is recorded with the platform given beside it, so arm/v7 always carries its
    variant (moby/moby#34875: lists without it make arm hosts pull the wrong image).
    """
    oci = any(e.media_type == OCI_MANIFEST for e, _ in items)
    kind = OCI_INDEX if oci else DOCKER_LIST
    manifests = []
    for entry, plat in items:
        platform: dict[str, str] = {"architecture": plat.arch, "os": plat.os}
        if plat.variant:
            platform["variant"] = plat.variant
        manifests.append(
            {
                "mediaType": entry.media_type or (OCI_MANIFEST if oci else DOCKER_MANIFEST),
                "digest": entry.digest,
                "size": entry.size,
                "platform": platform,
            }
        )
    doc = {"schemaVersion": 2, "mediaType": kind, "manifests": manifests}
    return json.dumps(doc, indent=3).encode(), kind
