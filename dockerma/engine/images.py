"""Local images: the per-arch images an engine has, the platform each one really is, and the
check that it matches its tag."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from dockerma.core.platforms import ALL_SUFFIXES, BY_SUFFIX, Platform, from_suffix
from dockerma.core.references import ImageRef
from dockerma.engine.docker import Docker
from dockerma.errors import DockerError, DockermaError

T = TypeVar("T")
V = TypeVar("V")


@dataclass(frozen=True)
class LocalImage:
    """A per-arch image an engine has: NAME:TAG-SUFFIX, its platform (by the suffix) and id."""

    platform: Platform
    tag: str
    image_id: str
    docker: Docker


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
    has. Two calls, because on the containerd store describing an image that exists is the
    slow part: the names that hardly ever exist are asked beside the usual ones, not after
    them.
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


def by_engine(items: Iterable[T], docker_of: Callable[[T], Docker]) -> dict[Docker, list[T]]:
    """items grouped by the engine that has them, in their order: one docker call per engine."""
    groups: dict[Docker, list[T]] = {}
    for item in items:
        groups.setdefault(docker_of(item), []).append(item)
    return groups


def in_order(found: Mapping[Platform, V]) -> dict[Platform, V]:
    """The usual platforms first, in their usual order, then the others by name."""
    order = list(BY_SUFFIX.values())

    def key(item: tuple[Platform, V]) -> tuple[int, str]:
        p = item[0]
        return (order.index(p) if p in order else len(order), str(p))

    return dict(sorted(found.items(), key=key))


def find_listed(docker: Docker, ref: ImageRef) -> dict[str, dict[Platform, LocalImage]]:
    """Every per-arch image of ref's repository on this engine, by tag (the part before the
    suffix), from its `docker image ls`."""
    raw = docker.capture(*listing(ref.name))
    groups: dict[str, dict[Platform, LocalImage]] = {}
    for line in raw.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        tag = str(row.get("Tag") or "")
        base, sep, suffix = tag.rpartition("-")
        platform = from_suffix(suffix)
        if not sep or platform is None:
            continue
        groups.setdefault(base, {})[platform] = LocalImage(
            platform, f"{ref.name}:{tag}", str(row.get("ID") or ""), docker
        )
    return {k: in_order(v) for k, v in groups.items()}


def find_local(
    docker: Docker, ref: ImageRef, all_tags: bool
) -> tuple[dict[str, dict[Platform, LocalImage]], dict[str, Platform]]:
    """The local per-arch images by tag, and the platforms docker described on the way (image
    id -> platform): each NAME:TAG-SUFFIX asked for by name, or, for -a (any tag) or when
    docker's answer does not match the names asked, the repository's image list."""
    tagged = None if all_tags else find_tagged(docker, ref)
    if tagged is None:
        return find_listed(docker, ref), {}
    tag = ref.tag_or_latest
    found = {
        platform: LocalImage(platform, f"{ref.name}:{tag}-{suffix}", image_id, docker)
        for suffix, (image_id, _) in tagged.items()
        if (platform := from_suffix(suffix)) is not None
    }
    known = {image_id: actual for image_id, actual in tagged.values() if actual.arch}
    return ({tag: in_order(found)} if found else {}), known


def full_id(listed: str, known: Mapping[str, Platform]) -> str | None:
    """The full id in known of the image `docker image ls` listed as `listed` (12 hex digits,
    or the full id); None if known does not have it."""
    short = listed.removeprefix("sha256:")
    if len(short) < 12:
        return None
    return next((k for k in known if k.removeprefix("sha256:").startswith(short)), None)


def check_unchanged(items: Sequence[tuple[Docker, str, str]]) -> None:
    """Each (engine, tag, image id) still there and the same image, before the first push.

    An image deleted or re-tagged since it was built (or found) stops the run here, so that
    a refused run pushes nothing at all.
    """
    for docker, group in by_engine(items, lambda item: item[0]).items():
        tags = [tag for _, tag, _ in group]
        try:
            found = inspect_platforms(docker, tags)
        except DockerError as e:
            gone = [t for t in tags if re.search(re.escape(t) + r"(?![\w.-])", e.output)]
            gone = gone or tags
            raise DockermaError(
                f"{', '.join(gone)} {'is' if len(gone) == 1 else 'are'} no longer in the docker "
                "engine (deleted since the build?); rebuild with dockerma build; nothing was pushed"
            ) from None
        for (_, tag, image_id), (now, _) in zip(group, found):
            if image_id and now != image_id:
                raise DockermaError(
                    f"{tag} is another image than the one built or checked ({image_id[:19]}, "
                    f"now {now[:19]}); rebuild it and push again; nothing was pushed"
                )


def forget_local_list(docker: Docker, ref: ImageRef) -> None:
    """Drop a list an earlier `docker manifest create` left in the docker config's manifest
    store: it shadows the registry's for `docker manifest inspect` (docker/cli#954). Without
    that store there is nothing to drop and no call to make."""
    config = docker.options.config or os.environ.get("DOCKER_CONFIG") or "~/.docker"
    store = Path(config).expanduser() / "manifests"
    if store.is_dir() and any(store.iterdir()):
        docker.run("manifest", "rm", str(ref))


def describe(docker: Docker, names: Sequence[str]) -> dict[str, tuple[str, Platform]]:
    """(image id, own platform) of those of `names` the engine has, by each tag docker shows
    (its familiar form); docker describes what exists and exits 1 for the rest."""
    docs = _docs(docker.run(*_inspect(names)).stdout) or []
    return {tag: (image_id, p) for image_id, p, tags in docs if image_id for tag in tags}
