"""Local images: the platform each one really is, and the check that it matches its tag."""

from __future__ import annotations

import json
from collections.abc import Sequence

from dockerma.core.platforms import ALL_SUFFIXES, BY_SUFFIX, Platform
from dockerma.core.references import ImageRef
from dockerma.engine.docker import Docker
from dockerma.errors import DockermaError


def inspect_platforms(docker: Docker, refs: Sequence[str]) -> list[tuple[str, Platform]]:
    """(image id, own platform) for each local image, in one `docker image inspect` call."""
    docs = _docs(docker.capture(*_inspect(refs))) or []
    return [(image_id, platform) for image_id, platform, _ in docs]


def _inspect(refs: Sequence[str]) -> tuple[str, ...]:
    # Plain JSON, not a --format template: the classic engine has no Variant key at all for
    # most images, and a template naming it fails.
    return ("image", "inspect", *refs)


def _docs(text: str) -> list[tuple[str, Platform, frozenset[str]]] | None:
    """(image id, own platform, tags) of each image in `docker image inspect` output."""
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
            frozenset(str(t) for t in doc.get("RepoTags") or () if isinstance(t, str)),
        )
        for doc in docs
    ]


# --- what `dockerma push NAME[:TAG]` asks the local engine first ---------------------------


def listing(name: str) -> tuple[str, ...]:
    """The `docker image ls` of one repository: a JSON line per tag, with its image id."""
    return ("image", "ls", "--format", "{{json .}}", name)


def candidates(ref: ImageRef) -> list[tuple[str, ...]]:
    """`docker image inspect` of every per-arch tag ref can have: NAME:TAG-SUFFIX for each
    suffix a platform can have (platforms.ALL_SUFFIXES), the usual ones in the first call.

    docker describes the tags that exist and exits 1 for the others. Asking by name costs the
    daemon a look-up per name, where `docker image ls` of the repository walks every image it
    has (~0.1 s for 400 images on dockerd 20.10; the 56 names take ~0.035 s). Two calls,
    because on the containerd store describing an image that exists is the slow part (~20 ms
    each): the names that hardly ever exist are asked beside the usual ones, not after them.
    """
    tag = ref.tag_or_latest
    names = [f"{ref.name}:{tag}-{suffix}" for suffix in ALL_SUFFIXES]
    usual = len(BY_SUFFIX)
    return [_inspect(names[:usual]), _inspect(names[usual:])]


def push_probes(name: str, *, all_tags: bool = False) -> list[tuple[str, ...]]:
    """The docker calls `dockerma push [-a] NAME` makes first, to start ahead of the imports;
    none for a NAME push refuses (a usage error starts no docker)."""
    try:
        ref = ImageRef.parse(name)
    except DockermaError:
        return []
    if ref.digest:
        return []
    return [listing(ref.name)] if all_tags else candidates(ref)


def find_tagged(docker: Docker, ref: ImageRef) -> dict[str, tuple[str, Platform]] | None:
    """The per-arch tags of ref that exist on this engine: suffix -> (image id, own platform).

    None when docker's answer cannot be matched to the names asked (a docker that is not
    docker, or names it shows otherwise): the caller then lists the repository instead, so
    that no per-arch tag is ever left out.
    """
    docs: list[tuple[str, Platform, frozenset[str]]] = []
    for args in candidates(ref):
        got = _docs(docker.run(*args).stdout)
        if got is None:
            return None
        docs += got
    tag = ref.tag_or_latest
    found: dict[str, tuple[str, Platform]] = {}
    for suffix in ALL_SUFFIXES:
        shown = f"{ref.familiar}:{tag}-{suffix}"
        for image_id, platform, tags in docs:
            if shown in tags and image_id:
                found[suffix] = (image_id, platform)
                break
    # docker describes only names that exist: an image none of ours matched was shown under
    # a name we do not recognise
    ids = {image_id for image_id, _ in found.values()}
    return found if all(image_id in ids for image_id, _, _ in docs) else None


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
