"""Base images an engine has itself: dockerma's own per-arch tags of an earlier build
(`mybase:1-arm64`), and the reference that makes a build use exactly that image.

Only the per-arch tags count, never a plain `mybase:1`: that is what `docker pull` leaves
behind, one architecture at a time, and the classic builder takes it for any --platform
(moby/moby#36552).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.engine import images
from dockerma.engine.docker import Docker
from dockerma.engine.probe import EngineInfo

# The first docker whose BuildKit takes `name:tag@<id>` from the containerd store (28.5 does
# here, 26.1 does not; 27 was not seen, so it gets the tag).
_DIGEST_FROM_STORE = 28


@dataclass(frozen=True)
class Found:
    """What an engine has of one base image name."""

    pinned: Mapping[Platform, str]  # per platform: the reference its build starts from
    plain: Platform | None  # the platform of NAME:TAG itself, when the engine has it


def find(
    docker: Docker,
    needs: Mapping[str, Sequence[Platform]],
    info: EngineInfo,
) -> dict[str, Found]:
    """Per base image (as written, without digest), what this engine has of it: one
    `docker image inspect` of every name asked (docker describes those that exist)."""
    refs = {text: ImageRef.parse(text) for text in needs}
    names = [
        str(name)
        for text, ref in refs.items()
        for name in (*(ref.suffixed(p.suffix) for p in needs[text]), _plain(ref))
    ]
    if not names:
        return {}
    described = images.describe(docker, names)
    found = {}
    for text, ref in refs.items():
        pinned = {}
        for p in needs[text]:
            tagged = ref.suffixed(p.suffix)
            got = described.get(f"{ref.familiar}:{tagged.tag}")
            if got is not None and images.same_platform(got[1], p):
                pinned[p] = _reference(tagged, got[0], info)
        plain = described.get(f"{ref.familiar}:{ref.tag_or_latest}")
        found[text] = Found(pinned, plain[1] if plain is not None else None)
    return found


def _plain(ref: ImageRef) -> ImageRef:
    return ref.with_tag(ref.tag_or_latest)


def _reference(tagged: ImageRef, image_id: str, info: EngineInfo) -> str:
    """What FROM (or --from=) names to start from that local image. Seen on the engines:

    - the classic builder takes an image id (`FROM sha256:…`); it tries a registry for
      `name@<id>` (the id is a config digest there, no manifest's);
    - BuildKit reads `sha256:…` as a Docker Hub name. On the containerd store of docker 28
      it takes `name:tag@<id>` (the id is the image's manifest or index digest) from the
      store; docker 26 asks the registry for any reference with a digest, and BuildKit on
      the classic store too: there only the per-arch tag itself works, an image whose
      platform dockerma has just checked and BuildKit checks again.
    """
    if not info.buildkit:
        return image_id
    if info.containerd_store and _major(info.server_version) >= _DIGEST_FROM_STORE:
        return f"{tagged}@{image_id}"
    return str(tagged)


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def missing_text(text: str, per_engine: Sequence[tuple[Found, Sequence[Platform]]]) -> str:
    """What the engines lack of `text` (for the platforms each builds), and how to make it."""
    ref = ImageRef.parse(text)
    absent = list(dict.fromkeys(p for f, ps in per_engine for p in ps if p not in f.pinned))
    tags = ", ".join(str(ref.suffixed(p.suffix)) for p in absent)
    plain = next((f.plain for f, _ in per_engine if f.plain is not None), None)
    had = f" (only {_plain(ref)}, a {plain} image)" if plain is not None else ""
    return (
        f"the docker engine has no {tags} for {', '.join(map(str, absent))}{had}; build "
        f"{'it' if len(absent) == 1 else 'them'} first: dockerma build --platform "
        f"{','.join(p.docker for p in absent)} -t {_plain(ref)} <its context>"
    )
