"""Pinning the images a build starts from: from the engine itself when it has dockerma's
per-arch tags of them (an earlier `dockerma build`), else from their registry.

Precedence, as `docker build` has it: an image the engine has is used unless --pull; a
registry is asked only for what the engine does not have for every architecture. A name
the engine has some of, that its registry does not answer for, stops the run before any
build, naming the architectures to build first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.engine import builders, local_bases
from dockerma.errors import DockermaError
from dockerma.options import BuildArgs
from dockerma.parallel import run_each
from dockerma.registry import bases as baseimages
from dockerma.registry.client import Registry

Pair = tuple[str, Platform]  # an image as written (ARGs substituted), and the platform it is for
_PerEngine = list[tuple[local_bases.Found, Sequence[Platform]]]


def pin(
    registry: Registry,
    engines: Mapping[Platform, builders.Engine],
    needs: Mapping[Platform, Sequence[Pair]],
    *,
    pull: bool,
) -> dict[Pair, str]:
    """The reference each (image, platform) is pinned to; `needs` lists, per target, the
    pairs its build starts from (built on engines[target])."""
    pairs = list(dict.fromkeys(pair for wanted in needs.values() for pair in wanted))
    local, partial = ({}, {}) if pull else _local(engines, needs)
    rest = [pair for pair in pairs if pair not in local]
    pinned = dict(local)
    pinned.update(baseimages.resolve(registry, [pair for pair in rest if pair[0] not in partial]))
    for text, per_engine in partial.items():
        try:
            pinned.update(baseimages.resolve(registry, [pair for pair in rest if pair[0] == text]))
        except DockermaError as error:
            raise DockermaError(
                f"base image {text}: {local_bases.missing_text(text, per_engine)} (its registry "
                f"{ImageRef.parse(text).registry} has none either: {error})"
            ) from None
    return pinned


def pulls(args: BuildArgs) -> bool:
    """docker build --pull: the registry's image, whatever the engine has."""
    for arg in args.passthrough:
        name, equals, value = arg.partition("=")
        if name == "--pull":
            return not equals or value.strip().lower() not in ("false", "0", "never")
    return False


def _local(
    engines: Mapping[Platform, builders.Engine], needs: Mapping[Platform, Sequence[Pair]]
) -> tuple[dict[Pair, str], dict[str, _PerEngine]]:
    """The pairs every engine that needs them has (pinned to the local image), and the names
    engines have only some of."""
    wanted: dict[str, tuple[builders.Engine, dict[str, list[Platform]]]] = {}
    for target, pairs in needs.items():
        engine = engines[target]
        texts = wanted.setdefault(engine.endpoint, (engine, {}))[1]
        for text, p in pairs:
            if not ImageRef.parse(text).digest and p not in texts.setdefault(text, []):
                texts[text].append(p)
    outcomes = run_each(
        list(wanted.values()),
        lambda item: local_bases.find(item[0].docker, item[1], item[0].info),
    )
    per_text: dict[str, _PerEngine] = {}
    for o in outcomes:
        if o.error is not None:
            raise o.error
        for text, found in (o.value or {}).items():
            per_text.setdefault(text, []).append((found, o.item[1][text]))
    local: dict[Pair, str] = {}
    partial: dict[str, _PerEngine] = {}
    for text, per_engine in per_text.items():
        got = _agreed(text, per_engine)
        if got is not None:
            local.update(got)
        elif any(f.pinned or f.plain is not None for f, _ in per_engine):
            partial[text] = per_engine
    return local, partial


def _agreed(text: str, per_engine: _PerEngine) -> dict[Pair, str] | None:
    """Every platform of text pinned locally, to one reference whichever engine builds it."""
    got: dict[Pair, str] = {}
    for found, platforms in per_engine:
        for p in platforms:
            ref = found.pinned.get(p)
            if ref is None or got.setdefault((text, p), ref) != ref:
                return None
    return got
