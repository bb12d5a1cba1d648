"""Publish checked per-arch images: push each per-arch tag, then write and verify the list
built from the registry's digests. Used by `dockerma push` and `dockerma build --push`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

from dockerma.core import manifests
from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.engine.docker import Docker
from dockerma.engine.images import check_unchanged, forget_local_list, in_order
from dockerma.errors import DockermaError
from dockerma.flows.lookups import Lookups
from dockerma.flows.results import ArchResult
from dockerma.flows.upload import push_tag, push_timeout
from dockerma.output import Output
from dockerma.parallel import run_each
from dockerma.registry.client import NotFound, Registry, sha256_digest

# Per (list ref, platform): the list entry of a per-arch tag the registry holds already.
There = Mapping[tuple[ImageRef, Platform], manifests.Entry]
# Per (list ref, platform): the digest docker push reported (None: it printed none).
Reported = Mapping[tuple[ImageRef, Platform], Optional[str]]


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
    timeout = push_timeout()
    # The list's entries in one order whatever the command: `dockerma push` finds the images
    # by suffix and cannot know the Dockerfile's order, and a list of the same images written
    # in another order is another digest, a change in the registry where nothing changed.
    images = in_order(images)
    lookups = lookups or Lookups(registry, refs, list(images))
    if recheck:
        _recheck(dockers, refs, images, lookups)
    there = lookups.already_there(images, passthrough)
    reported = _push_all(dockers, out, refs, images, there, passthrough, timeout, jobs)
    lists: dict[str, str] = {}
    for ref in refs:
        items = _list_items(registry, ref, images, there, reported)
        target = ref.with_tag(ref.tag_or_latest)
        _warn_dropped(out, target, lookups, ref, items)
        unchanged = all((ref, p) in there for p in images)
        before = lookups.lists[ref].result() if unchanged else None
        digest = _write_list(registry, target, items, before)
        forget_local_list(next(iter(dockers.values())), target)
        lists[str(target)] = digest
        out.result(f"{target}: manifest list {digest} ({', '.join(str(p) for _, p in items)})")
    return lists


def _recheck(
    dockers: Mapping[Platform, Docker],
    refs: Sequence[ImageRef],
    images: Mapping[Platform, ArchResult],
    lookups: Lookups,
) -> None:
    try:
        check_unchanged(
            [
                (dockers[p], str(ref.suffixed(p.suffix)), images[p].image_id)
                for ref in refs
                for p in images
            ]
        )
    except DockermaError:
        lookups.settle()
        raise


def _push_all(
    dockers: Mapping[Platform, Docker],
    out: Output,
    refs: Sequence[ImageRef],
    images: Mapping[Platform, ArchResult],
    there: There,
    passthrough: Sequence[str],
    timeout: float | None,
    jobs: int | None,
) -> Reported:
    """docker push of every per-arch tag the registry does not hold already; what each push
    reported it uploaded (its digest line), to tie the list to it."""
    reported: dict[tuple[ImageRef, Platform], str | None] = {}

    def push_platform(p: Platform) -> None:
        # One platform's tags one after the other: two concurrent pushes of the same image
        # to one repository race on the containerd store (the registry refuses the second
        # index with 400, "references to blobs and/or manifests are missing").
        for ref in refs:
            tag = str(ref.suffixed(p.suffix))
            entry = there.get((ref, p))
            if entry is None:
                reported[(ref, p)] = push_tag(dockers[p], out, tag, p, passthrough, timeout)
            else:
                out.line(
                    p.suffix, f"{tag}: already in the registry ({entry.digest}), not pushed again"
                )

    failed = [o for o in run_each(list(images), push_platform, jobs=jobs) if o.error is not None]
    if failed:
        raise DockermaError(
            "push failed for "
            + "; ".join(f"{o.item}: {o.error}" for o in failed)
            + "; no manifest list was pushed"
        )
    return reported


def _list_items(
    registry: Registry,
    ref: ImageRef,
    images: Mapping[Platform, ArchResult],
    there: There,
    reported: Reported,
) -> list[tuple[manifests.Entry, Platform]]:
    """The entries of ref's list with the platform each is listed as: one registry read per
    pushed per-arch tag, all at once. Records each image's digest in the registry."""

    def read(p: Platform) -> manifests.Entry:
        known = there.get((ref, p))
        if known is not None:
            return known
        return _pushed_entry(
            registry, ref.suffixed(p.suffix), p, reported.get((ref, p)), images[p].image_id, ref
        )

    items: list[tuple[manifests.Entry, Platform]] = []
    for (p, img), got in zip(images.items(), run_each(list(images), read)):
        if got.error is not None:
            raise got.error
        assert got.value is not None
        img.digest = got.value.digest
        items.append((got.value, manifests.listed_platform(p, img.actual)))
    return items


def _pushed_entry(
    registry: Registry,
    ref: ImageRef,
    p: Platform,
    pushed: str | None,
    image_id: str,
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
    ours = m.digest == pushed if pushed else manifests.is_image(m, image_id)
    if not ours:
        what = f"the {pushed} docker push reported" if pushed else f"the local image {image_id}"
        raise DockermaError(
            f"{ref} in the registry is {m.digest}, not {what}: another push to that tag "
            f"since ours? no manifest list {target.with_tag(target.tag_or_latest)} was "
            "written; push again"
        )
    entry = manifests.list_entry(m, p, ref)
    if entry is None:
        raise DockermaError(f"{ref} is an index without a {p} image; rebuild it")
    return entry


def _warn_dropped(
    out: Output,
    target: ImageRef,
    lookups: Lookups,
    ref: ImageRef,
    items: Sequence[tuple[manifests.Entry, Platform]],
) -> None:
    dropped = manifests.dropped(lookups.lists[ref].result(), [p for _, p in items])
    if dropped:
        out.warn(
            f"{target}: the registry's list also had {', '.join(map(str, dropped))}, with "
            "no image in this push; the new list leaves "
            f"{'it' if len(dropped) == 1 else 'them'} out"
        )


def _write_list(
    registry: Registry,
    target: ImageRef,
    items: Sequence[tuple[manifests.Entry, Platform]],
    before: manifests.Stored | None,
) -> str:
    """Write the list of items as target and verify it; its digest.

    before: what target held, when nothing was pushed. Unchanged images pushed again make
    the very list the registry holds: that read is then the read-back, and nothing is written.
    """
    body, kind = manifests.make_list(items)
    if before is not None and before.digest == sha256_digest(body):
        manifests.verify(before, target, items)
        return before.digest
    digest = registry.put_manifest(target, body, kind)
    manifests.verify(registry.get_manifest(target), target, items)
    return digest
