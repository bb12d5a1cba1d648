"""The checks around a build: what each engine's builder can do before it starts, and what
each image built is (its platform) after."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from dockerma.core import build_options
from dockerma.core.platforms import Platform
from dockerma.engine import builders, images, probe
from dockerma.engine import emulation as emulation_
from dockerma.engine.docker import Docker
from dockerma.errors import DockerError, DockermaError, UsageError
from dockerma.flows.results import Arch, Built, Checked
from dockerma.options import BuildArgs
from dockerma.output import Output
from dockerma.parallel import run_each

BUILDKIT_ONLY = (
    "--provenance",
    "--sbom",
    "--attest",
    "--cache-to",
    "--build-context",
    "--secret",
    "--ssh",
    "--output",
    "-o",
    "--annotation",
    "--call",
    "--check",
    "--allow",
)

_UNKNOWN = ("", Platform("", "", ""))  # what docker did not describe


def builder(info: probe.EngineInfo, targets: Sequence[Platform], args: BuildArgs) -> None:
    """Refuse, before any build, what this engine's builder cannot do."""
    if info.buildkit:
        return
    for arg in args.passthrough:
        name = arg.split("=", 1)[0]
        if name in BUILDKIT_ONLY or name in build_options.BUILDX_ONLY:
            raise UsageError(
                f"{name} needs BuildKit, but this docker uses the legacy builder; install the "
                "buildx plugin (docker-buildx) and unset DOCKER_BUILDKIT=0, or drop the option"
            )
    foreign = [p for p in targets if not probe.runs_natively(p, info.platform)]
    if info.containerd_store and foreign:
        # moby/moby#47823: the legacy builder on the containerd image store ignores
        # --platform and silently builds the host's architecture.
        raise DockermaError(
            f"the legacy builder on the containerd image store cannot build {foreign[0]} "
            "(it ignores --platform, moby/moby#47823); use BuildKit: install the buildx plugin "
            "(docker-buildx) and unset DOCKER_BUILDKIT=0"
        )


def emulation(engines: Mapping[Platform, builders.Engine]) -> None:
    """Refuse, before any build, a platform that its engine cannot run: every engine is
    asked once (dockerma.engine.emulation), the engines in parallel."""
    by_engine: dict[str, list[Platform]] = {}
    for p, engine in engines.items():
        by_engine.setdefault(engine.endpoint, []).append(p)
    first = {e.endpoint: e for e in engines.values()}

    def ask(endpoint: str) -> emulation_.Answer:
        engine = first[endpoint]
        builder = engine.builder
        return emulation_.unrunnable(
            engine.docker,
            engine.info.platform,
            by_engine[endpoint],
            builder=(builder.name, builder.driver) if builder is not None else None,
        )

    for o in run_each(list(by_engine), ask):
        if o.error is not None:
            raise o.error
        assert o.value is not None
        if o.value.missing:
            engine = first[o.item]
            # inject's cross-build image holds QEMU for amd64 hosts only.
            inject = engine.info.platform.arch == "amd64"
            raise DockermaError(
                emulation_.hint(o.value.missing[0], _engine_name(engine), inject, o.value.builder)
            )


def _engine_name(engine: builders.Engine) -> str:
    if not engine.local:
        return f"the builder {engine.endpoint}"
    where = " ".join(engine.docker.options.argv()) or os.environ.get("DOCKER_HOST", "")
    return "the docker engine" + (f" ({where})" if where else "")


def inspect(docker: Docker, built: Sequence[Built | Arch]) -> list[tuple[str, Platform]]:
    """(image id, platform) of each image, as docker describes it; empty for each when docker
    says nothing of one."""
    # Inspected by tag: on the containerd store with --provenance=false the --iidfile holds
    # the config digest, which is not an image id there.
    refs = [b.tags[0] if b.tags else b.image_id for b in built]
    if not all(refs):
        return [_UNKNOWN] * len(built)
    found = images.inspect_platforms(docker, refs)
    return found if len(found) == len(refs) else [_UNKNOWN] * len(built)


def platform(built: Built | Arch, found: tuple[str, Platform], out: Output) -> Checked:
    """What the image just built is; one of another platform is untagged and fails (its
    error in the record)."""
    image_id, actual = found
    if not actual.arch:
        # Only a docker that is not docker (a wrapper, a stub) says nothing here.
        out.line(
            built.platform.suffix,
            f"warning: docker told nothing about the image built for "
            f"{built.platform}; its platform was not checked",
        )
        return Checked()
    if not images.same_platform(actual, built.platform):
        if built.tags:  # never leave a tag on an image of the wrong architecture
            built.docker.run("image", "rm", "--no-prune", *built.tags)
        error = images.mismatch(f"the image built for {built.platform}", actual, built.platform)
        return Checked(image_id, error=str(error))
    return Checked(image_id, actual)


def deferred(
    archs: Sequence[Arch],
    out: Output,
    known: Callable[[Arch], Platform | None],
) -> list[Arch]:
    """The platform checks of builds that left them to the end (build --push without smoke
    tests), right before the push: by known(arch), the platform the registry's copy of the
    very same image records, else one docker image inspect per engine for all the others."""
    checked: dict[int, Checked] = {}
    by_engine: dict[Docker, list[int]] = {}
    for i, a in enumerate(archs):
        if not a.ok:
            continue
        there = known(a)
        if there is not None:
            checked[i] = _guarded(out, a, functools.partial(platform, a, (a.image_id, there), out))
        else:
            by_engine.setdefault(a.docker, []).append(i)
    for docker, group in by_engine.items():
        checked.update(_inspect_group(docker, {i: archs[i] for i in group}, out))
    return [replace(a, checked=checked[i]) if i in checked else a for i, a in enumerate(archs)]


def _inspect_group(docker: Docker, group: Mapping[int, Arch], out: Output) -> dict[int, Checked]:
    try:
        found = inspect(docker, list(group.values()))
    except DockermaError:  # one is gone (deleted meanwhile?): find out which, one by one
        found = []
    return {
        i: _guarded(
            out, a, functools.partial(_check_one, docker, a, found[n] if found else None, out)
        )
        for n, (i, a) in enumerate(group.items())
    }


def _check_one(docker: Docker, a: Arch, found: tuple[str, Platform] | None, out: Output) -> Checked:
    if found is None:
        try:
            found = inspect(docker, [a])[0]
        except DockerError:
            raise DockermaError(
                f"{a.tags[0] if a.tags else a.image_id} is no longer in the docker "
                "engine (deleted since the build?); build again"
            ) from None
    return platform(a, found, out)


def _guarded(out: Output, a: Arch, check: Callable[[], Checked]) -> Checked:
    """check(), its error (raised or recorded) on the architecture's lines."""
    try:
        checked = check()
    except DockermaError as e:
        checked = Checked(error=str(e))
    if checked.error:
        out.line(a.platform.suffix, f"FAILED: {checked.error}")
    return checked
