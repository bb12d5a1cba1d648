"""Manifests, manifest lists and OCI indexes: their media types, parse them, pick a platform's
digest, tell whether a registry's manifest is a local image, write and check a new list."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError

DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPES = frozenset({DOCKER_LIST, OCI_INDEX})
# What a manifest GET asks for: every kind at once. An OCI index asked for with only the
# Docker list type answers 404, and a request without Accept gets a converted schema-1 manifest.
ACCEPT = ", ".join((DOCKER_LIST, OCI_INDEX, DOCKER_MANIFEST, OCI_MANIFEST))

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


class Stored(Protocol):
    """A manifest, list or index as a registry stores it (registry.client.Manifest)."""

    @property
    def media_type(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def body(self) -> bytes: ...
    @property
    def json(self) -> dict[str, Any]: ...


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


def _where(ref: ImageRef) -> str:
    return f"registry {ref.registry} ({ref})"


def config_digest(m: Stored) -> str | None:
    """The config digest an image manifest names (None for an index or anything odd)."""
    if is_index(m.json, m.media_type):
        return None
    config = m.json.get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    return digest if isinstance(digest, str) and valid_digest(digest) else None


def is_image(m: Stored, image_id: str) -> bool:
    """Whether the registry's manifest m is the local image image_id: on the classic store the
    image id is the config digest m names; on the containerd store the digest of m itself."""
    if not valid_digest(image_id):
        return False
    return m.digest == image_id or config_digest(m) == image_id


def list_entry(m: Stored, p: Platform, ref: ImageRef) -> Entry | None:
    """The list entry for p of what ref holds: m itself, or inside an index (containerd store)
    the image for p (attestations are left out of the list); None when the index has none."""
    if is_index(m.json, m.media_type):
        return pick(entries(m.json, _where(ref)), p)
    return Entry(p, m.digest, m.media_type, len(m.body))


def same_image(m: Stored | None, image_id: str, p: Platform, ref: ImageRef) -> Entry | None:
    """The list entry for a per-arch tag the registry already holds as exactly this image.

    docker push of such an image uploads nothing and PUTs the manifest the registry has, so it
    is skipped.
    """
    if m is None or not is_image(m, image_id):
        return None
    return list_entry(m, p, ref)


def listed_platform(p: Platform, actual: Platform | None) -> Platform:
    """The platform a list records for the image tagged p whose config says `actual`: arm/v6
    and v7 always carry their variant; arm64 its v8 only where the image itself records it,
    as the base image did."""
    variant = (actual.variant if actual else "") if p.arch == "arm64" else p.variant
    return Platform(p.os, p.arch, variant)


def dropped(previous: Stored | None, platforms: Sequence[Platform]) -> list[Platform]:
    """The platforms of the list the registry held that the new list lacks: replacing it is
    what push does, but a user who built fewer architectures this time should hear of it."""
    if previous is None:
        return []
    try:
        doc = previous.json
        if not is_index(doc, previous.media_type):
            return []
        found = entries(doc)
    except DockermaError:  # a list that is no list (or a bad digest in it): replaced all the same
        return []
    return [e.platform for e in found if not any(e.platform.matches(p) for p in platforms)]


def verify(m: Stored, ref: ImageRef, items: Sequence[tuple[Entry, Platform]]) -> None:
    """The list m read back from ref has exactly the entries written (digest and platform)."""
    got = {(e.digest, str(e.platform)) for e in entries(m.json, _where(ref))}
    want = {(e.digest, str(p)) for e, p in items}
    if got != want:
        raise DockermaError(
            f"the registry's {ref} does not match what was pushed (got {sorted(got)}, expected "
            f"{sorted(want)}); push again"
        )
