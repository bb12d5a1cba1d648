"""Push orchestration: per-arch images, then a manifest list built from registry digests."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from dockerma.core import manifests
from dockerma.core.platforms import BY_SUFFIX, Platform, from_suffix
from dockerma.core.references import ImageRef
from dockerma.engine import builders
from dockerma.engine.docker import Docker
from dockerma.engine.images import find_tagged, inspect_platforms, listing, mismatch, same_platform
from dockerma.errors import DockerError, DockermaError, UsageError
from dockerma.flows import metadata, smoke
from dockerma.flows.results import ArchResult
from dockerma.options import parse_push
from dockerma.output import Output
from dockerma.parallel import run_each
from dockerma.registry import credentials
from dockerma.registry.client import Manifest, NotFound, Registry, sha256_digest

log = logging.getLogger(__name__)

# The last line of a docker push: `v1-amd64: digest: sha256:… size: 528` (the tag, the digest
# of the manifest or index it uploaded, its size).
_PUSHED = re.compile(r"^(\S+): digest: (\S+) size: \d+\s*$")

RETRIES = 3
# docker push output that means "try again": registry 5xx, throttling, dropped connections.
_TRANSIENT = (
    " 500",
    " 502",
    " 503",
    " 504",
    " 429",
    "status: 5",
    "timeout",
    "timed out",
    "connection reset",
    "connection refused",
    "broken pipe",
    "eof",
    "temporarily unavailable",
    "too many requests",
)
_AUTH = ("denied", "unauthorized", "no basic auth credentials", "authentication required")


def run(
    docker: Docker,
    docker_args: Sequence[str],
    *,
    insecure: bool = False,
    jobs: int | None = None,
    smoke_tests: Sequence[str] = (),
    smoke_timeout: float = 120.0,
    builder_specs: Sequence[str] = (),
    metadata_file: str | None = None,
) -> int:
    args = parse_push(docker_args)
    out = Output(quiet=args.quiet)
    try:
        ref = ImageRef.parse(args.names[0])
        for cmd in smoke_tests:
            smoke.split(cmd)
    except DockermaError as e:
        raise UsageError(str(e)) from None
    if ref.digest:
        raise UsageError(f"cannot push a digest reference {ref}; push NAME[:TAG]")
    if metadata_file:
        metadata.check(metadata_file)
    mapping = builders.parse(builder_specs)
    # The engines' answers and the local per-arch images do not depend on each other: ask
    # both at once (each docker call costs tens of milliseconds; push is otherwise a chain of
    # them). The cli started these calls already (images.push_probes).
    with ThreadPoolExecutor(max_workers=2) as pool:
        connecting = pool.submit(builders.connect, docker, mapping, list(mapping))
        finding = pool.submit(_find_local, docker, ref, args.all_tags)
        info, nodes = connecting.result()
        local, known = finding.result()
    registry = Registry(
        config_dir=docker.options.config,
        insecure=[ref.registry] if insecure else (),  # that registry only
        insecure_registries=info.insecure_registries,
        on_retry=out.warn,
        on_warning=out.warn,
    )
    try:
        groups = _find_everywhere(docker, ref, nodes, local)
        if not args.all_tags:
            groups = {ref.tag_or_latest: groups.get(ref.tag_or_latest, {})}
        if not any(groups.values()):
            raise DockermaError(
                f"no per-arch images for {ref.name}:{ref.tag_or_latest} (looked for "
                f"{ref.name}:{ref.tag_or_latest}-ARCH); build them with dockerma build -t {ref}"
            )
        # The registry reads start now and run while docker checks the local images.
        lookups = {
            tag: Lookups(registry, [ref.with_tag(tag)], list(images))
            for tag, images in groups.items()
        }
        try:
            for images in groups.values():
                for group in _by_engine(images).values():
                    here = group[0].docker == docker  # what `known` describes: the local engine
                    check_platforms(
                        group[0].docker, {i.platform: i for i in group}, known if here else {}
                    )
        except DockermaError:
            for pending in lookups.values():
                pending.settle()
            raise
        out.set_labels([p.suffix for images in groups.values() for p in images])
        if smoke_tests:
            for images in groups.values():
                for img in images.values():
                    for cmd in smoke_tests:
                        res = smoke.run(
                            img.docker,
                            img.image_id,
                            img.platform,
                            cmd,
                            timeout=smoke_timeout,
                            on_line=functools.partial(out.line, img.platform.suffix),
                        )
                        img.smoke.append(res)
                        out.line(img.platform.suffix, f"smoke test {cmd!r}: {res.describe()}")
                bad = [i for i in images.values() if not all(s.passed for s in i.smoke)]
                if bad:
                    raise DockermaError(
                        "smoke test failed for "
                        + ", ".join(
                            f"{i.tags[0]} ({', '.join(s.describe() for s in i.smoke)})" for i in bad
                        )
                        + "; nothing was pushed"
                    )
        lists: dict[str, str] = {}
        for tag, images in groups.items():
            lists.update(
                publish(
                    {p: img.docker for p, img in images.items()},
                    out,
                    [ref.with_tag(tag)],
                    images,
                    registry=registry,
                    jobs=jobs,
                    passthrough=args.passthrough,
                    recheck=bool(smoke_tests),  # just inspected, unless smoke tests took time
                    lookups=lookups[tag],
                )
            )
        if metadata_file:
            metadata.write(
                metadata_file, [i for imgs in groups.values() for i in imgs.values()], lists
            )
        return 0

    finally:
        registry.finish()  # the probe uploads' cancellations, if still under way


def _find_everywhere(
    docker: Docker,
    ref: ImageRef,
    nodes: Mapping[Platform, builders.Node],
    local: dict[str, dict[Platform, ArchResult]],
) -> dict[str, dict[Platform, ArchResult]]:
    """Per-arch images by tag: each platform looked for on its builder, the rest locally."""
    groups = local
    for tag_images in groups.values():
        for p in [p for p in tag_images if any(p.matches(q) for q in nodes)]:
            del tag_images[p]  # that platform lives on its builder
    for p, node in nodes.items():
        for tag, tag_images in find_all(node.docker, ref).items():
            img = next((i for q, i in tag_images.items() if q.matches(p)), None)
            if img is not None:
                img.docker, img.engine = node.docker, node.endpoint
                groups.setdefault(tag, {})[img.platform] = img
    return {tag: imgs for tag, imgs in groups.items() if imgs}


def _find_local(
    docker: Docker, ref: ImageRef, all_tags: bool
) -> tuple[dict[str, dict[Platform, ArchResult]], dict[str, Platform]]:
    """The local per-arch images by tag, and the platforms docker described on the way (image
    id -> platform): each NAME:TAG-SUFFIX asked for by name, or, for -a (any tag) or when
    docker's answer does not match the names asked, the repository's image list."""
    tagged = None if all_tags else find_tagged(docker, ref)
    if tagged is None:
        return find_all(docker, ref), {}
    tag = ref.tag_or_latest
    found = {
        platform: ArchResult(
            platform, [f"{ref.name}:{tag}-{suffix}"], image_id=image_id, docker=docker
        )
        for suffix, (image_id, _) in tagged.items()
        if (platform := from_suffix(suffix)) is not None
    }
    known = {image_id: actual for image_id, actual in tagged.values() if actual.arch}
    return ({tag: _in_order(found)} if found else {}), known


def _by_engine(images: Mapping[Platform, ArchResult]) -> dict[str, list[ArchResult]]:
    out: dict[str, list[ArchResult]] = {}
    for img in images.values():
        out.setdefault(img.engine, []).append(img)
    return out


def find_all(docker: Docker, ref: ImageRef) -> dict[str, dict[Platform, ArchResult]]:
    raw = docker.capture(*listing(ref.name))
    groups: dict[str, dict[Platform, ArchResult]] = {}
    for line in raw.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        tag = str(row.get("Tag") or "")
        base, sep, suffix = tag.rpartition("-")
        platform = from_suffix(suffix)
        if not sep or platform is None:
            continue
        groups.setdefault(base, {})[platform] = ArchResult(
            platform, [f"{ref.name}:{tag}"], image_id=str(row.get("ID") or ""), docker=docker
        )
    return {k: _in_order(v) for k, v in groups.items()}


def _in_order(found: Mapping[Platform, ArchResult]) -> dict[Platform, ArchResult]:
    """The usual platforms first, in their usual order, then the others by name."""
    order = list(BY_SUFFIX.values())

    def key(item: tuple[Platform, ArchResult]) -> tuple[int, str]:
        p = item[0]
        return (order.index(p) if p in order else len(order), str(p))

    return dict(sorted(found.items(), key=key))


def check_platforms(
    docker: Docker,
    found: Mapping[Platform, ArchResult],
    known: Mapping[str, Platform] | None = None,
) -> None:
    """Refuse to publish an image whose own architecture/variant differs from its suffix.

    known: image id -> platform of images docker described already (images.find_tagged);
    the others are inspected now.
    """
    todo = []
    for img in found.values():
        full = _full_id(img.image_id, known or {})
        if full is None:
            todo.append(img)
        else:
            _check_one(img, full, (known or {})[full])
    if not todo:
        return
    tags = [img.tags[0] for img in todo]
    described = inspect_platforms(docker, tags)
    if len(described) != len(tags):
        raise DockermaError(
            f"docker image inspect did not describe {', '.join(tags)}; refusing to publish "
            "images whose platform cannot be checked; nothing was pushed"
        )
    for img, (image_id, actual) in zip(todo, described):
        _check_one(img, image_id, actual)


def _full_id(listed: str, known: Mapping[str, Platform]) -> str | None:
    """The full id in known of the image `docker image ls` listed as `listed` (12 hex digits,
    or the full id); None if known does not have it."""
    short = listed.removeprefix("sha256:")
    if len(short) < 12:
        return None
    return next((k for k in known if k.removeprefix("sha256:").startswith(short)), None)


def _check_one(img: ArchResult, image_id: str, actual: Platform) -> None:
    img.image_id = image_id
    img.actual = actual
    if not same_platform(actual, img.platform):
        raise DockermaError(f"{mismatch(img.tags[0], actual, img.platform)}; nothing was pushed")


class Lookups:
    """The registry reads a push starts with, all sent at once in the background.

    Push access for each list (an auth problem stops the run before the first push), what
    each per-arch tag holds now (what is already there is not pushed again) and what each list
    tag holds (an equal list is not written again). Started as soon as the tags are known, so
    they overlap the docker calls that check the local images.
    """

    def __init__(
        self, registry: Registry, refs: Sequence[ImageRef], platforms: Sequence[Platform]
    ) -> None:
        # A thread per read: a config read waits for its manifest read in the same pool.
        reads = len(refs) * (2 + len(platforms)) + len(platforms)
        pool = ThreadPoolExecutor(max_workers=max(1, reads))
        self.access = [pool.submit(registry.check_push_access, ref) for ref in refs]
        self.published = {
            (ref, p): pool.submit(_current, registry, ref.suffixed(p.suffix))
            for ref in refs
            for p in platforms
        }
        self.lists = {ref: pool.submit(_current, registry, ref) for ref in refs}
        # The config of the image each per-arch tag of the first ref holds: see own_platform.
        self._configs = {
            p: pool.submit(_config_of, registry, ref.suffixed(p.suffix), self.published[(ref, p)])
            for ref in refs[:1]
            for p in platforms
        }
        pool.shutdown(wait=False)

    def settle(self) -> None:
        """Wait for every read, so that none logs after dockerma's last line."""
        wait(self.access)
        wait(self.published.values())
        wait(self.lists.values())
        wait(self._configs.values())

    def own_platform(self, p: Platform, config_digest: str) -> Platform | None:
        """The platform the image config `config_digest` records, when the registry's per-arch
        tag for p already holds that image (the config blob, checked against its digest, is
        then the local image's own: on the classic store the image id is that digest); None
        when it does not, and the local engine must be asked."""
        future = self._configs.get(p)
        got = future.result() if future is not None else None
        if got is None or got[0] != config_digest:
            return None
        return got[1]

    def already_there(
        self, images: Mapping[Platform, ArchResult], passthrough: Sequence[str]
    ) -> dict[tuple[ImageRef, Platform], manifests.Entry]:
        """Raises the first access problem; else the per-arch tags that need no push."""
        self.settle()
        for future in self.access:
            future.result()
        there: dict[tuple[ImageRef, Platform], manifests.Entry] = {}
        if _may_skip(passthrough):
            for (ref, p), f in self.published.items():
                tag = ref.suffixed(p.suffix)
                entry = _same_image(f.result(), images[p].image_id, p, tag) if p in images else None
                if entry is not None:
                    there[(ref, p)] = entry
        return there


def publish(
    dockers: Mapping[Platform, Docker],
    out: Output,
    refs: Sequence[ImageRef],
    images: Mapping[Platform, ArchResult],
    *,
    registry: Registry,
    jobs: int | None = None,
    passthrough: Sequence[str] = (),
    recheck: bool = True,
    lookups: Lookups | None = None,
) -> dict[str, str]:
    """Push every per-arch tag of every ref, then stitch, push and verify each list.

    Before the first push: the registry must grant push access (an auth problem stops the
    run here) and, with recheck, every per-arch tag must still be the image that was checked.
    lookups: the registry reads, if the caller started them earlier.
    """
    timeout = _push_timeout()
    # The list's entries in one order whatever the command: `dockerma push` finds the images
    # by suffix and cannot know the Dockerfile's order, and a list of the same images written
    # in another order is another digest, a change in the registry where nothing changed.
    images = _in_order(images)
    work = [(ref, p) for ref in refs for p in images]
    lookups = lookups or Lookups(registry, refs, list(images))
    if recheck:
        try:
            _check_unchanged(
                [(dockers[p], str(ref.suffixed(p.suffix)), images[p].image_id) for ref, p in work]
            )
        except DockermaError:
            lookups.settle()
            raise
    there = lookups.already_there(images, passthrough)

    # What each docker push reported it uploaded (its digest line), to tie the list to it.
    reported: dict[tuple[ImageRef, Platform], str | None] = {}

    def push_platform(p: Platform) -> None:
        # One platform's tags one after the other: two concurrent pushes of the same image
        # to one repository race on the containerd store (the registry refuses the second
        # index with 400, "references to blobs and/or manifests are missing").
        for ref in refs:
            tag = str(ref.suffixed(p.suffix))
            entry = there.get((ref, p))
            if entry is None:
                reported[(ref, p)] = _push_tag(dockers[p], out, tag, p, passthrough, timeout)
            else:
                out.line(
                    p.suffix, f"{tag}: already in the registry ({entry.digest}), not pushed again"
                )

    outcomes = run_each(list(images), push_platform, jobs=jobs)
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        raise DockermaError(
            "push failed for "
            + "; ".join(f"{o.item}: {o.error}" for o in failed)
            + "; no manifest list was pushed"
        )
    lists: dict[str, str] = {}
    for ref in refs:
        items: list[tuple[manifests.Entry, Platform]] = []

        # one registry read per pushed per-arch tag, all at once
        def read(p: Platform, ref: ImageRef = ref) -> manifests.Entry:
            known = there.get((ref, p))
            if known is not None:
                return known
            pushed = reported.get((ref, p))
            return _pushed_entry(
                registry, ref.suffixed(p.suffix), p, pushed, images[p].image_id, target=ref
            )

        entries = run_each(list(images), read)
        for (p, img), got in zip(images.items(), entries):
            if got.error is not None:
                raise got.error
            assert got.value is not None
            entry = got.value
            img.digest = entry.digest
            # arm/v6 and v7 always carry their variant; arm64 its v8 only where the image
            # itself records it, as the base image did.
            actual = img.actual
            variant = (actual.variant if actual else "") if p.arch == "arm64" else p.variant
            items.append((entry, Platform(p.os, p.arch, variant)))
        body, kind = manifests.make_list(items)
        target = ref.with_tag(ref.tag_or_latest)
        dropped = _dropped(lookups.lists[ref].result(), [p for _, p in items])
        if dropped:
            out.warn(
                f"{target}: the registry's list also had {', '.join(map(str, dropped))}, with "
                "no image in this push; the new list leaves "
                f"{'it' if len(dropped) == 1 else 'them'} out"
            )
        # When nothing was pushed and the registry already holds this very list (unchanged
        # images pushed again), the read made before is the read-back: nothing is written.
        pushed = any((ref, p) not in there for p in images)
        before = None if pushed else lookups.lists[ref].result()
        if before is not None and before.digest == sha256_digest(body):
            digest = before.digest
            verify(registry, target, items, before)
        else:
            digest = registry.put_manifest(target, body, kind)
            verify(registry, target, items)
        _forget_local_list(next(iter(dockers.values())), target)
        lists[str(target)] = digest
        out.result(f"{target}: manifest list {digest} ({', '.join(str(p) for _, p in items)})")
    return lists


def _dropped(previous: Manifest | None, platforms: Sequence[Platform]) -> list[Platform]:
    """The platforms of the list the registry held that the new list lacks: replacing it is
    what push does, but a user who built fewer architectures this time should hear of it."""
    if previous is None:
        return []
    try:
        doc = previous.json
        if not manifests.is_index(doc, previous.media_type):
            return []
        found = manifests.entries(doc)
    except DockermaError:  # a list that is no list (or a bad digest in it): replaced all the same
        return []
    return [e.platform for e in found if not any(e.platform.matches(p) for p in platforms)]


def _current(registry: Registry, ref: ImageRef) -> Manifest | None:
    """What the registry holds for ref now; None when nothing (or when it cannot say: then the
    push goes ahead as if nothing were there, and meets the problem itself)."""
    try:
        return registry.get_manifest(ref)
    except NotFound:
        return None
    except DockermaError as err:
        log.debug("could not read %s before pushing: %s", ref, err)
        return None


def _config_of(
    registry: Registry, ref: ImageRef, manifest: Future[Manifest | None]
) -> tuple[str, Platform] | None:
    """(config digest, platform it records) of the image manifest ref holds; None if none."""
    m = manifest.result()
    digest = _config_digest(m) if m is not None else None
    if digest is None:
        return None
    try:
        doc = json.loads(registry.get_blob(ref, digest))
    except (DockermaError, ValueError) as err:
        log.debug("could not read the config of %s: %s", ref, err)
        return None
    if not isinstance(doc, dict):
        return None
    return digest, manifests.config_platform(doc)


def _may_skip(passthrough: Sequence[str]) -> bool:
    # Options that change what docker push sends (--platform) or adds (content trust signs
    # each push) make every push happen.
    if any(a not in ("-q", "--quiet") for a in passthrough):
        return False
    return os.environ.get("DOCKER_CONTENT_TRUST", "").strip().lower() not in ("1", "true")


def _same_image(
    m: Manifest | None, image_id: str, p: Platform, ref: ImageRef
) -> manifests.Entry | None:
    """The list entry for a per-arch tag the registry already holds as exactly this image.

    docker push of such an image uploads nothing and PUTs the manifest the registry has, so it
    is skipped. The same image: on the classic store the image id is the config digest the
    registry's manifest names; on the containerd store it is the digest of the manifest (or
    index) itself.
    """
    if m is None or not _is_image(m, image_id):
        return None
    return _entry(m, p, ref)


def _is_image(m: Manifest, image_id: str) -> bool:
    """Whether the registry's manifest m is the local image image_id: on the classic store the
    image id is the config digest m names; on the containerd store the digest of m itself."""
    if not manifests.valid_digest(image_id):
        return False
    return m.digest == image_id or _config_digest(m) == image_id


def _entry(m: Manifest, p: Platform, ref: ImageRef) -> manifests.Entry | None:
    """The list entry for p: m itself, or inside an index (containerd store) the image for p
    (attestations are left out of the list); None when the index has none."""
    if manifests.is_index(m.json, m.media_type):
        found = manifests.entries(m.json, f"registry {ref.registry} ({ref})")
        return manifests.pick(found, p)
    return manifests.Entry(p, m.digest, m.media_type, len(m.body))


def _config_digest(m: Manifest) -> str | None:
    """The config digest an image manifest names (None for an index or anything odd)."""
    if manifests.is_index(m.json, m.media_type):
        return None
    config = m.json.get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    return digest if isinstance(digest, str) and manifests.valid_digest(digest) else None


def _push_tag(
    docker: Docker,
    out: Output,
    tag: str,
    p: Platform,
    passthrough: Sequence[str],
    timeout: float | None = None,
) -> str | None:
    """docker push of one tag, retried when the registry failed; the digest docker reported
    (its last line), None when it printed none (-q prints the name only)."""
    label = p.suffix
    name = ImageRef.parse(tag).tag
    digests: list[str] = []

    def on_line(line: str) -> None:
        found = _PUSHED.match(line)
        if found and found.group(1) == name:
            digests.append(found.group(2))
        out.line(label, line)

    for attempt in range(RETRIES + 1):
        digests.clear()
        try:
            docker.stream(
                "push",
                *passthrough,
                tag,
                on_line=on_line,
                platform=str(p),
                timeout=timeout,
            )
            if not digests:
                return None
            return manifests.check_digest(digests[-1], f"docker push {tag}")
        except DockerError as e:
            text = "\n".join(e.tail(10)).lower()
            if any(a in text for a in _AUTH):
                registry = ImageRef.parse(tag).registry
                raise DockermaError(
                    f"{registry} refused the push of {tag} (not logged in or no access); run "
                    f"`{credentials.login_command(registry, docker.options.config)}`"
                ) from None
            if attempt == RETRIES or not any(t in text for t in _TRANSIENT):
                raise
            wait = 2.0**attempt
            out.line(
                label,
                f"push failed ({e.tail(1)[0].strip() if e.tail(1) else e.returncode}); "
                f"retry {attempt + 1}/{RETRIES} in {wait:.0f}s",
            )
            time.sleep(wait)
    raise AssertionError("unreachable")


def _check_unchanged(items: Sequence[tuple[Docker, str, str]]) -> None:
    """Each (engine, tag, image id) still there and the same image, before the first push.

    An image deleted or re-tagged since it was built (or found) stops the run here, so that
    a refused run pushes nothing at all.
    """
    by_engine: dict[Docker, list[tuple[str, str]]] = {}
    for docker, tag, image_id in items:
        by_engine.setdefault(docker, []).append((tag, image_id))
    for docker, pairs in by_engine.items():
        tags = [tag for tag, _ in pairs]
        try:
            found = inspect_platforms(docker, tags)
        except DockerError as e:
            gone = [t for t in tags if re.search(re.escape(t) + r"(?![\w.-])", e.output)]
            gone = gone or tags
            raise DockermaError(
                f"{', '.join(gone)} {'is' if len(gone) == 1 else 'are'} no longer in the docker "
                "engine (deleted since the build?); rebuild with dockerma build; nothing was pushed"
            ) from None
        for (tag, image_id), (now, _) in zip(pairs, found):
            if image_id and now != image_id:
                raise DockermaError(
                    f"{tag} is another image than the one built or checked ({image_id[:19]}, "
                    f"now {now[:19]}); rebuild it and push again; nothing was pushed"
                )


def _push_timeout() -> float | None:
    # dockerd sets no response timeout: against a registry that accepts the connection and
    # never answers, docker push waits for ever. DOCKERMA_PUSH_TIMEOUT (seconds) bounds each
    # push; a push that runs out is retried like a dropped connection.
    value = os.environ.get("DOCKERMA_PUSH_TIMEOUT", "").strip()
    try:
        seconds = float(value) if value else None
    except ValueError:
        seconds = -1.0
    if seconds is not None and seconds <= 0:
        raise UsageError(f"DOCKERMA_PUSH_TIMEOUT={value!r}: give a number of seconds, e.g. 600")
    return seconds


def _pushed_entry(
    registry: Registry,
    ref: ImageRef,
    p: Platform,
    pushed: str | None,
    image_id: str,
    *,
    target: ImageRef,
) -> manifests.Entry:
    """The image manifest a per-arch tag points at; inside an index (containerd store), the
    entry for its platform (attestations are left out of the list).

    The tag must still hold what was pushed: the digest docker push reported (pushed), or
    without one the local image (image_id), else a DockermaError. Another push to the same
    tag between ours and this read must not get into the list.
    """
    try:
        m = registry.get_manifest(ref)
    except NotFound:
        raise DockermaError(
            f"{ref} is not in the registry after docker push; push it again"
        ) from None
    ours = m.digest == pushed if pushed else _is_image(m, image_id)
    if not ours:
        what = f"the {pushed} docker push reported" if pushed else f"the local image {image_id}"
        raise DockermaError(
            f"{ref} in the registry is {m.digest}, not {what}: another push to that tag "
            f"since ours? no manifest list {target.with_tag(target.tag_or_latest)} was "
            "written; push again"
        )
    entry = _entry(m, p, ref)
    if entry is None:
        raise DockermaError(f"{ref} is an index without a {p} image; rebuild it")
    return entry


def verify(
    registry: Registry,
    ref: ImageRef,
    items: Sequence[tuple[manifests.Entry, Platform]],
    m: Manifest | None = None,
) -> None:
    """Read the list back (unless m is that read) and check every entry's digest and platform."""
    m = m if m is not None else registry.get_manifest(ref)
    found = manifests.entries(m.json, f"registry {ref.registry} ({ref})")
    got = {(e.digest, str(e.platform)) for e in found}
    want = {(e.digest, str(p)) for e, p in items}
    if got != want:
        raise DockermaError(
            f"the registry's {ref} does not match what was pushed (got {sorted(got)}, expected "
            f"{sorted(want)}); push again"
        )


def _forget_local_list(docker: Docker, ref: ImageRef) -> None:
    # A list left in ~/.docker/manifests by an earlier `docker manifest create` shadows the
    # registry's for `docker manifest inspect` (docker/cli#954): drop it. The store is a
    # folder of the docker config; without it there is nothing to drop and no call to make.
    config = docker.options.config or os.environ.get("DOCKER_CONFIG") or "~/.docker"
    store = Path(config).expanduser() / "manifests"
    if store.is_dir() and any(store.iterdir()):
        docker.run("manifest", "rm", str(ref))
