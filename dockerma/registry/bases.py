"""Base image look-ups: one registry request per distinct image per run, in parallel.

Nothing is cached across runs: a tag like `busybox:1` moves, and the original dockerma's
days-long digest cache pinned stale bases. Within one run each image is asked for once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from dockerma.core import manifests
from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError
from dockerma.parallel import run_each
from dockerma.registry import mirrors
from dockerma.registry.client import NotFound, Registry


@dataclass(frozen=True)
class BaseImage:
    ref: ImageRef
    entries: tuple[manifests.Entry, ...]
    is_list: bool

    def available(self) -> str:
        return ", ".join(str(e.platform) for e in self.entries) or "none"


def lookup(registry: Registry, text: str) -> BaseImage:
    """The platforms and digests a base image offers (a list, an index or one image)."""
    ref = ImageRef.parse(text)
    try:
        # Docker Hub's images through the engine's mirrors first, as the engine pulls them.
        source, m = mirrors.get_manifest(registry, ref)
    except NotFound:
        raise DockermaError(
            f"base image {text} was not found in its registry {ref.registry}; check the name "
            "and tag, or push it there first (dockerma pins bases by registry digest)"
        ) from None
    unreadable = DockermaError(
        f"base image {text} has a manifest dockerma cannot read ({m.media_type or 'no type'}); "
        f"check what registry {ref.registry} serves"
    )
    where = f"registry {ref.registry} (base image {text})"
    try:  # a registry (or a proxy in front of it) may answer anything
        doc = json.loads(m.body)
        if manifests.is_index(doc, m.media_type):
            return BaseImage(ref, tuple(manifests.entries(doc, where)), True)
        config_digest = (doc.get("config") or {}).get("digest")
        if not config_digest:
            raise unreadable
        config_digest = manifests.check_digest(config_digest, where)
        config = json.loads(registry.get_blob(source, config_digest))
        platform = manifests.config_platform(config)
    except (AttributeError, KeyError, TypeError, ValueError):
        raise unreadable from None
    entry = manifests.Entry(platform, m.digest, m.media_type, len(m.body))
    return BaseImage(ref, (entry,), False)


def resolve(
    registry: Registry, pairs: Sequence[tuple[str, Platform]], *, jobs: int | None = None
) -> dict[tuple[str, Platform], str]:
    """The pinned reference (`name@sha256:…`) for every (image, platform) pair.

    Fails before anything is built when an image lacks a platform, naming the image, the
    missing and the available platforms.
    """
    names = list(dict.fromkeys(text for text, _ in pairs))
    outcomes = run_each(names, lambda t: lookup(registry, t), jobs=jobs)
    for o in outcomes:
        if o.error is not None:
            raise o.error
    images = {o.item: o.value for o in outcomes if o.value is not None}
    pinned: dict[tuple[str, Platform], str] = {}
    missing: dict[str, list[Platform]] = {}
    for text, platform in pairs:
        image = images[text]
        entry = manifests.pick(image.entries, platform)
        if entry is None:
            missing.setdefault(text, []).append(platform)
            continue
        pinned[(text, platform)] = image.ref.pinned(entry.digest)
    if missing:
        text, plats = next(iter(missing.items()))
        raise DockermaError(
            f"base image {text} has no {', '.join(map(str, plats))} (it has: "
            f"{images[text].available()}); drop that architecture or use a base image that "
            "provides it"
        )
    return pinned
