"""Local images: the platform each one really is, and the check that it matches its tag."""

from __future__ import annotations

import json
from collections.abc import Sequence

from dockerma.docker import Docker
from dockerma.errors import DockermaError
from dockerma.platforms import Platform


def inspect_platforms(docker: Docker, refs: Sequence[str]) -> list[tuple[str, Platform]]:
    """(image id, own platform) for each local image, in one `docker image inspect` call."""
    # Plain JSON, not a --format template: the classic engine has no Variant key at all for
    # most images, and a template naming it fails.
    try:
        docs = json.loads(docker.capture("image", "inspect", *refs) or "[]")
    except ValueError:  # not JSON: not a docker we know
        return []
    if not isinstance(docs, list):
        return []
    out = []
    for doc in docs:
        if not isinstance(doc, dict):
            return []
        platform = Platform.from_registry(
            str(doc.get("Os") or ""),
            str(doc.get("Architecture") or ""),
            str(doc.get("Variant") or ""),
        )
        out.append((str(doc.get("Id") or ""), platform))
    return out


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
