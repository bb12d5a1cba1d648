"""The registry reads a push starts with, all sent at once in the background."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import replace

from dockerma.core import manifests
from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError
from dockerma.flows.results import ArchResult
from dockerma.parallel import start
from dockerma.registry.client import Manifest, NotFound, Registry

log = logging.getLogger(__name__)


class Lookups:
    """Push access for each list (an auth problem stops the run before the first push), what
    each per-arch tag holds now (what is already there is not pushed again) and what each list
    tag holds (an equal list is not written again). Started as soon as the tags are known, so
    they overlap the docker calls that check the local images.
    """

    def __init__(
        self,
        registry: Registry,
        refs: Sequence[ImageRef],
        platforms: Sequence[Platform],
        *,
        resolve: bool = False,
    ) -> None:
        """resolve: also read the image for its platform inside every index a per-arch tag
        holds (the containerd store pushes one), when the images to push have known config
        digests (see already_there); a read per tag that is spared otherwise."""
        # A thread per read: a config read waits for its manifest read.
        self.access = [start(registry.check_push_access, ref) for ref in refs]
        self.published = {
            (ref, p): start(_current, registry, ref.suffixed(p.suffix))
            for ref in refs
            for p in platforms
        }
        self.lists = {ref: start(_current, registry, ref) for ref in refs}
        # The image each per-arch tag holds for its platform, (entry, config digest).
        self._images = {
            (ref, p): start(
                _image_of, registry, ref.suffixed(p.suffix), p, self.published[(ref, p)], resolve
            )
            for ref in refs
            for p in platforms
        }
        # The config of the image each per-arch tag of the first ref holds: see own_platform.
        self._configs = {
            p: start(_config_of, registry, ref.suffixed(p.suffix), self._images[(ref, p)])
            for ref in refs[:1]
            for p in platforms
        }

    def settle(self) -> None:
        """Wait for every read, so that none logs after dockerma's last line."""
        wait(self.access)
        wait(self.published.values())
        wait(self.lists.values())
        wait(self._images.values())
        wait(self._configs.values())

    def own_platform(self, p: Platform, digest: str) -> Platform | None:
        """The platform the image `digest` records, when the registry's per-arch tag for p
        already holds that image: digest is its config's (on the classic store the image id)
        or its image manifest's (the config it names, both checked against their digests, is
        then the local image's own); None when it does not, and the local engine must be
        asked."""
        future = self._configs.get(p)
        got = future.result() if future is not None else None
        if got is None or digest not in (got[0], got[2]):
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
                if p not in images:
                    continue
                entry = manifests.same_image(f.result(), images[p].image_id, p, tag)
                if entry is None and images[p].own_digest:
                    # The very same image manifest in another index: on the containerd store
                    # each build's provenance attestation makes a new index of an unchanged
                    # image. The registry's index stays, with the attestation of its build.
                    held = self._images[(ref, p)].result()
                    if held is not None and held[0].digest == images[p].own_digest:
                        entry = held[0]
                if entry is not None:
                    there[(ref, p)] = entry
        return there


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


def _image_of(
    registry: Registry,
    ref: ImageRef,
    p: Platform,
    manifest: Future[Manifest | None],
    resolve: bool,
) -> tuple[manifests.Entry, str] | None:
    """(list entry, config digest) of the image for p that ref holds: the manifest itself,
    or (with resolve) the one for p inside the index it holds; None if none."""
    m = manifest.result()
    if m is None:
        return None
    if not manifests.is_index(m.json, m.media_type):
        digest = manifests.config_digest(m)
        return (manifests.Entry(p, m.digest, m.media_type, len(m.body)), digest) if digest else None
    if not resolve:
        return None
    try:
        entry = manifests.list_entry(m, p, ref)
        if entry is None:
            return None
        child = registry.get_manifest(replace(ref, digest=entry.digest))
    except NotFound:
        return None
    except DockermaError as err:
        log.debug("could not read the image of %s for %s: %s", ref, p, err)
        return None
    digest = manifests.config_digest(child)
    return (entry, digest) if digest else None


def _config_of(
    registry: Registry, ref: ImageRef, image: Future[tuple[manifests.Entry, str] | None]
) -> tuple[str, Platform, str] | None:
    """(config digest, platform it records, image manifest digest) of the image ref holds;
    None if none."""
    held = image.result()
    if held is None:
        return None
    digest = held[1]
    try:
        doc = json.loads(registry.get_blob(ref, digest))
    except (DockermaError, ValueError) as err:
        log.debug("could not read the config of %s: %s", ref, err)
        return None
    if not isinstance(doc, dict):
        return None
    return digest, manifests.config_platform(doc), held[0].digest


def _may_skip(passthrough: Sequence[str]) -> bool:
    # Options that change what docker push sends (--platform) or adds (content trust signs
    # each push) make every push happen.
    if any(a not in ("-q", "--quiet") for a in passthrough):
        return False
    return os.environ.get("DOCKER_CONTENT_TRUST", "").strip().lower() not in ("1", "true")
