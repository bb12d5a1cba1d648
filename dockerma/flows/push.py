"""`dockerma push`: find the per-arch images (locally and on the builders), check them, smoke
test them, then publish them (flows/publish.py) as one manifest list per tag."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import wait

from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.engine import builders, probe
from dockerma.engine.docker import Docker
from dockerma.engine.images import (
    LocalImage,
    by_engine,
    find_listed,
    find_local,
    full_id,
    inspect_platforms,
    mismatch,
    same_platform,
)
from dockerma.errors import DockermaError, UsageError
from dockerma.flows import metadata, smoke
from dockerma.flows.lookups import Lookups
from dockerma.flows.publish import publish
from dockerma.flows.results import ArchResult
from dockerma.options import parse_push
from dockerma.output import Output
from dockerma.parallel import start
from dockerma.registry.client import Registry

# Per tag (the part before -SUFFIX): its per-arch images.
Groups = dict[str, dict[Platform, ArchResult]]


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
    ref = _target(args.names[0], smoke_tests)
    if metadata_file:
        metadata.check(metadata_file)
    info, engines, local, known = _connect_and_find(docker, ref, builder_specs, args.all_tags)
    registry = Registry(
        config_dir=docker.options.config,
        insecure=[ref.registry] if insecure else (),  # that registry only
        insecure_registries=info.insecure_registries,
        on_retry=out.warn,
        on_warning=out.warn,
    )
    try:
        groups = _per_arch_images(ref, engines, local, args.all_tags)
        # The registry reads start now and run while docker checks the local images.
        lookups = {
            tag: Lookups(registry, [ref.with_tag(tag)], list(images))
            for tag, images in groups.items()
        }
        _check_all(docker, groups, known, lookups)
        out.set_labels([p.suffix for images in groups.values() for p in images])
        if smoke_tests:
            _smoke_test(groups, smoke_tests, smoke_timeout, out)
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


def _target(name: str, smoke_tests: Sequence[str]) -> ImageRef:
    """The NAME[:TAG] to push; a UsageError for a bad name, a digest or a bad smoke test."""
    try:
        ref = ImageRef.parse(name)
        for cmd in smoke_tests:
            smoke.split(cmd)
    except DockermaError as e:
        raise UsageError(str(e)) from None
    if ref.digest:
        raise UsageError(f"cannot push a digest reference {ref}; push NAME[:TAG]")
    return ref


def _connect_and_find(
    docker: Docker, ref: ImageRef, builder_specs: Sequence[str], all_tags: bool
) -> tuple[
    probe.EngineInfo,
    dict[Platform, builders.Engine],
    dict[str, dict[Platform, LocalImage]],
    dict[str, Platform],
]:
    """The local engine's info, the builder of each platform that has one, the local per-arch
    images by tag and the platforms docker described on the way (see find_local).

    The engines' answers and the local images do not depend on each other: both are asked at
    once (the cli started these calls already: images.push_probes).
    """
    mapping = builders.parse(builder_specs)
    finding = start(find_local, docker, ref, all_tags)
    try:
        info, engines = builders.connect(docker, mapping, list(mapping))
    finally:
        wait([finding])  # nothing of it outlives an error
    local, known = finding.result()
    return info, engines, local, known


def _per_arch_images(
    ref: ImageRef,
    engines: Mapping[Platform, builders.Engine],
    local: Mapping[str, Mapping[Platform, LocalImage]],
    all_tags: bool,
) -> Groups:
    """Per-arch images by tag: each platform looked for on its builder, the rest locally; the
    asked tag only, unless all_tags. A DockermaError when there are none."""
    groups: Groups = {
        tag: {
            p: _record(img, builders.LOCAL)
            for p, img in images.items()
            if not any(p.matches(q) for q in engines)  # that platform lives on its builder
        }
        for tag, images in local.items()
    }
    for p, engine in engines.items():
        for tag, images in find_listed(engine.docker, ref).items():
            img = next((i for q, i in images.items() if q.matches(p)), None)
            if img is not None:
                groups.setdefault(tag, {})[img.platform] = _record(img, engine.endpoint)
    groups = {tag: imgs for tag, imgs in groups.items() if imgs}
    if not all_tags:
        groups = {ref.tag_or_latest: groups.get(ref.tag_or_latest, {})}
    if not any(groups.values()):
        raise DockermaError(
            f"no per-arch images for {ref.name}:{ref.tag_or_latest} (looked for "
            f"{ref.name}:{ref.tag_or_latest}-ARCH); build them with dockerma build -t {ref}"
        )
    return groups


def _record(img: LocalImage, endpoint: str) -> ArchResult:
    return ArchResult(
        img.platform, [img.tag], image_id=img.image_id, docker=img.docker, engine=endpoint
    )


def _check_all(
    docker: Docker, groups: Groups, known: Mapping[str, Platform], lookups: Mapping[str, Lookups]
) -> None:
    """check_platforms of every image, one docker call per engine at most; on a refusal the
    registry reads are waited for, so that none logs after the error line."""
    try:
        for images in groups.values():
            for group in by_engine(images.values(), lambda i: i.docker).values():
                here = group[0].docker == docker  # what `known` describes: the local engine
                check_platforms(
                    group[0].docker, {i.platform: i for i in group}, known if here else {}
                )
    except DockermaError:
        for pending in lookups.values():
            pending.settle()
        raise


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
        full = full_id(img.image_id, known or {})
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


def _check_one(img: ArchResult, image_id: str, actual: Platform) -> None:
    img.image_id = image_id
    img.actual = actual
    if not same_platform(actual, img.platform):
        raise DockermaError(f"{mismatch(img.tags[0], actual, img.platform)}; nothing was pushed")


def _smoke_test(groups: Groups, commands: Sequence[str], timeout: float, out: Output) -> None:
    """Every smoke test in every image; a DockermaError naming each image that failed one."""
    for images in groups.values():
        for img in images.values():
            img.smoke.extend(
                smoke.run_tests(
                    img.docker, img.image_id, img.platform, commands, timeout=timeout, out=out
                )
            )
        bad = [i for i in images.values() if not all(s.passed for s in i.smoke)]
        if bad:
            raise DockermaError(
                "smoke test failed for "
                + ", ".join(
                    f"{i.tags[0]} ({', '.join(s.describe() for s in i.smoke)})" for i in bad
                )
                + "; nothing was pushed"
            )
