"""Local images: the platform each one really is, and the check that it matches its tag."""

from __future__ import annotations

import json
from collections.abc import Sequence

from dockerma.docker import Docker
from dockerma.errors import DockermaError
from dockerma.platforms import BY_SUFFIX, Platform
from dockerma.references import ImageRef


def inspect_platforms(docker: Docker, refs: Sequence[str]) -> list[tuple[str, Platform]]:
    """(image id, own platform) for each local image, in one `docker image inspect` call."""
    return _described(docker.capture(*_inspect(refs))) or []


def _inspect(refs: Sequence[str]) -> tuple[str, ...]:
    # Plain JSON, not a --format template: the classic engine has no Variant key at all for
    # most images, and a template naming it fails.
    return ("image", "inspect", *refs)


def _described(text: str) -> list[tuple[str, Platform]] | None:
    """(image id, own platform) of each image in `docker image inspect` output; None when it
    is not that (a docker we do not know)."""
    try:
        docs = json.loads(text or "[]")
    except ValueError:
        return None
    if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
        return None
    return [
        (
            str(doc.get("Id") or ""),
            Platform.from_registry(
                str(doc.get("Os") or ""),
                str(doc.get("Architecture") or ""),
                str(doc.get("Variant") or ""),
            ),
        )
        for doc in docs
    ]


# --- what `dockerma push NAME[:TAG]` asks the local engine first ---------------------------


def listing(name: str) -> tuple[str, ...]:
    """The `docker image ls` of one repository: a JSON line per tag, with its image id."""
    return ("image", "ls", "--format", "{{json .}}", name)


def candidates(ref: ImageRef) -> tuple[str, ...]:
    """One `docker image inspect` of every per-arch tag ref may have under a known suffix.

    The listing alone would do, but on an engine with many images `docker image ls` of one
    repository still costs the daemon a walk over all of them (~0.1 s for 400 images on
    dockerd 20.10): asked beside it, this answers the platform check at once instead of
    after it. docker describes the tags that exist and exits 1 for the others.
    """
    tag = ref.tag_or_latest
    return _inspect([f"{ref.name}:{tag}-{suffix}" for suffix in BY_SUFFIX])


def push_probes(name: str) -> list[tuple[str, ...]]:
    """The docker calls `dockerma push NAME` makes first, to start ahead of the imports;
    none for a NAME push refuses (a usage error starts no docker)."""
    try:
        ref = ImageRef.parse(name)
    except DockermaError:
        return []
    return [] if ref.digest else [listing(ref.name), candidates(ref)]


def described(docker: Docker, args: Sequence[str]) -> dict[str, Platform]:
    """Image id -> own platform of the images `docker *args` (an image inspect of tags that
    may not exist) describes; nothing when docker says nothing usable. Never raises."""
    found = _described(docker.run(*args).stdout) or []
    return {image_id: platform for image_id, platform in found if image_id and platform.arch}


def same_platform(actual: Platform, expected: Platform) -> bool:
    """An image's own platform matches its tag's (arm64 with or without v8 is one)."""
    if actual.matches(expected):
        return True
    # containerd treats an arm image without a variant as v7; the list records v7 explicitly.
    return expected.arch == actual.arch == "arm" and expected.variant == "v7" and not actual.variant


def mismatch(what: str, actual: Platform, expected: Platform) -> DockermaError:
    return DockermaError(
        f"{what} is a {actual} image, not {expected}: refusing to tag or publish it. If it was "
        "just built: the legacy builder on the containerd image store ignores --platform "
        "(moby/moby#47823), so use BuildKit (install docker-buildx, do not set "
        "DOCKER_BUILDKIT=0); otherwise rebuild it with dockerma build"
    )
