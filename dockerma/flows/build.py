"""`dockerma build`: read and check the inputs, connect the engines, pin the base images,
plan one docker build per architecture, run them (in parallel) with their checks, report,
and push when asked."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.engine import builders, buildx, probe
from dockerma.engine.docker import Docker, terminate_children
from dockerma.errors import DockermaError, UsageError
from dockerma.flows import bake, checks, metadata, notices, pinning, plan, smoke, summary
from dockerma.flows.inputs import Inputs, Request, make_tmp
from dockerma.flows.inputs import read as read_inputs
from dockerma.flows.plan import Plan
from dockerma.flows.results import Arch, Built, Checked, Pushed
from dockerma.output import Output
from dockerma.parallel import run_each, start
from dockerma.registry.client import Registry

if TYPE_CHECKING:
    from dockerma.flows.lookups import Lookups

__all__ = ["Request", "run"]

Engines = Mapping[Platform, builders.Engine]


@dataclass(frozen=True)
class _Build:
    """What every step after the engines are connected works with."""

    request: Request
    inputs: Inputs
    engines: Engines
    registry: Registry
    out: Output


def run(docker: Docker, request: Request) -> int:
    out = Output(quiet=False)
    inputs = read_inputs(request)
    info, engines = _connect(docker, request, inputs, out)
    if request.insecure and not inputs.tags:
        out.warn("--insecure applies to the registry of the -t tags; without -t it does nothing")
    registry = Registry(
        config_dir=docker.options.config,
        # --insecure is for the registry the run pushes to, never for the base images.
        insecure=[t.registry for t in inputs.tags] if request.insecure else (),
        insecure_registries=info.insecure_registries,
        registry_mirrors=info.registry_mirrors,
        on_retry=out.warn,
        on_warning=out.warn,
    )
    b = _Build(request, inputs, engines, registry, out)
    try:
        pinned = _checked_bases(b)
        out.set_labels([p.suffix for p in inputs.targets])
        with _workdir(out, docker.options.debug) as tmp, _stopping_children():
            plans = [plan.make(inputs, request, engines[p], p, pinned, tmp) for p in inputs.targets]
            if request.dry_run:
                plan.show(out, plans, inputs.smokes, inputs.tags if request.push else ())
                bake.show(out, plans, request.jobs, os.environ)
                return 0
            archs, lookups = _build_all(plans, b)
            _report(archs, lookups, b)
            return 0
    finally:
        registry.finish()  # the probe upload's cancellation, if still under way


def _connect(
    docker: Docker, request: Request, inputs: Inputs, out: Output
) -> tuple[probe.EngineInfo, dict[Platform, builders.Engine]]:
    """The engine that builds each architecture, asked what it is and checked for the build."""
    specs, targets = request.builder_specs, list(inputs.targets)
    info, engines = builders.connect(docker, builders.parse(specs), targets)
    for warning in [*builders.unused(specs, targets), *builders.mismatches(engines)]:
        out.warn(warning)
    for p, engine in engines.items():
        checks.builder(engine.info, [p], request.args)
    engines = _buildx_builder(docker, request, info, engines)
    return info, engines


def _buildx_builder(
    docker: Docker,
    request: Request,
    info: probe.EngineInfo,
    engines: dict[Platform, builders.Engine],
) -> dict[Platform, builders.Engine]:
    """The local engine's buildx builder (--builder NAME, BUILDX_BUILDER, `docker buildx
    use`), and its driver: any but docker's own needs --load (see plan.make)."""
    if not info.buildkit:
        if request.buildx_builder:
            raise UsageError(
                f"--builder {request.buildx_builder} names a buildx builder, but this docker "
                "uses the legacy builder; install the buildx plugin (docker-buildx), or use "
                "--builder ARCH=ENDPOINT to build an architecture on another engine"
            )
        return engines
    found = buildx.find(docker, request.buildx_builder)
    return {p: replace(e, builder=found) if e.local else e for p, e in engines.items()}


def _checked_bases(b: _Build) -> dict[tuple[str, Platform], str]:
    """The base images pinned, while every engine is asked whether it runs the platforms it
    builds (checks.emulation: containers, a second or so); its refusal comes first."""
    request = b.request
    # inject runs foreign shells through the cross-build image's QEMU, not binfmt_misc.
    asking = not request.dry_run and request.inject is None
    emulation = start(checks.emulation, b.engines) if asking else None
    try:
        return _pin_bases(b)
    finally:
        if emulation is not None:
            emulation.result()


def _pin_bases(b: _Build) -> dict[tuple[str, Platform], str]:
    """The digest of every base image; with --push, the registry's push access checked too,
    beside the look-ups, so that a missing login shows now, not after the builds."""
    needs = plan.bases_by_target(b.inputs, b.request, b.engines)
    pushing = b.request.push and not b.request.dry_run
    access = [start(b.registry.check_push_access, t) for t in b.inputs.tags] if pushing else []
    try:
        pinned = pinning.pin(b.registry, b.engines, needs, pull=pinning.pulls(b.request.args))
    finally:
        wait(access)  # none of them may log after the error line
    for check in access:
        check.result()
    return pinned


@contextlib.contextmanager
def _workdir(out: Output, keep: bool) -> Iterator[Path]:
    """The folder of the rendered Dockerfiles and image id files; kept with --debug."""
    tmp = make_tmp()
    try:
        yield tmp
    finally:
        if keep:
            out.warn(f"rendered Dockerfiles kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _stopping_children() -> Iterator[None]:
    """An error or interruption stops every docker child still running (a parallel build,
    a smoke test) before the temporary files go."""
    try:
        yield
    except BaseException:
        terminate_children()
        raise


class _RegistryReadAhead:
    """push's registry reads (lookups.Lookups), started by the first build that succeeds.

    Earlier, the reads would slow the builds' start; started then, they run while the last
    builds do, and after a warm build nothing is left to wait for but the push. The push
    module is imported then too, not before the builds.
    """

    # Reads older than this when the last build ends are made again: what the registry held
    # may have changed meanwhile. Fresh ones also tell a warm rebuild's platform (see _known).
    FRESH_FOR = 1.0  # seconds

    def __init__(self, registry: Registry, tags: Sequence[ImageRef], targets: Sequence[Platform]):
        self._args = (registry, tags, targets)
        self._lock = threading.Lock()
        self._started: tuple[float, Lookups] | None = None
        self._resolve = False

    def start(self, *, resolve: bool = False) -> None:
        """Start the reads, unless a build started them already (resolve: see Lookups; the
        bake's images have known config digests)."""
        with self._lock:
            self._resolve = self._resolve or resolve
            if self._started is None:
                self._started = (time.monotonic(), self._lookups())

    def collect(self) -> tuple[Lookups | None, bool]:
        """The reads (made again if stale) once the builds are over, and whether they are
        fresh; None when no build succeeded."""
        if self._started is None:
            return None, False
        started, lookups = self._started
        if time.monotonic() - started <= self.FRESH_FOR:
            return lookups, True
        lookups.settle()
        return self._lookups(), False

    def _lookups(self) -> Lookups:
        from dockerma.flows import lookups  # see the class docstring

        return lookups.Lookups(*self._args, resolve=self._resolve)


def _build_all(plans: Sequence[Plan], b: _Build) -> tuple[list[Arch], Lookups | None]:
    """Every build with its checks, at most --jobs at once; a failure fails its architecture
    only. build --push without smoke tests checks every image's platform after the last build,
    in one docker call that is also the last look before pushing (see publish's recheck)."""
    request, inputs = b.request, b.inputs
    deferred = request.push and not inputs.smokes
    # An explicit step: push's registry reads start when the first build succeeds (see
    # _RegistryReadAhead), and are collected once the builds are over.
    ahead = _RegistryReadAhead(b.registry, inputs.tags, inputs.targets) if request.push else None
    started = time.monotonic()
    baked = _bake(plans, b, ahead)
    build = functools.partial(
        _build_arch,
        out=b.out,
        request=request,
        smokes=inputs.smokes,
        check=not deferred,
        ahead=ahead,
        notice=notices.OncePerRun(),
        baked=baked or {},
        started=started,
    )
    archs = [
        o.value
        if o.value is not None
        else Arch(Built(o.item.platform, o.item.tags, error=str(o.error)))
        for o in run_each(plans, build, jobs=request.jobs)
    ]
    lookups, fresh = ahead.collect() if ahead is not None else (None, False)
    if deferred:
        known = functools.partial(_known, lookups if fresh else None, b.engines)
        archs = checks.deferred(archs, b.out, known)
    return archs, lookups


def _bake(
    plans: Sequence[Plan], b: _Build, ahead: _RegistryReadAhead | None
) -> dict[Platform, bake.Baked] | None:
    """On BuildKit, every architecture in one bake (see flows/bake): the images; None when
    the plans are built one by one instead. push's registry reads start with the bake: a warm
    bake takes a few tenths of a second, and they are ready when it ends (after a longer one
    they are read again, see _RegistryReadAhead)."""
    if not bake.usable(plans, b.request.jobs, os.environ):
        return None
    if ahead is not None:
        ahead.start(resolve=True)
    return bake.build(plans, b.out, plans[0].iidfile.parent)


def _known(lookups: Lookups | None, engines: Engines, a: Arch) -> Platform | None:
    # A warm rebuild of what the registry holds: its config there (the image's own: the
    # image id is the config digest on the classic store; on the containerd store the image
    # manifest bake named) tells the platform without a docker call.
    containerd = engines[a.platform].info.containerd_store
    digest = a.own_digest if containerd else a.own_digest or a.image_id
    if lookups is None or not digest:
        return None
    return lookups.own_platform(a.platform, digest)


def _build_arch(
    plan: Plan,
    *,
    out: Output,
    request: Request,
    smokes: Sequence[str],
    check: bool,
    ahead: _RegistryReadAhead | None,
    notice: notices.OncePerRun,
    baked: Mapping[Platform, bake.Baked],
    started: float,
) -> Arch:
    """One architecture's build (unless baked: its image id from the bake that started at
    started); with check (else checks.deferred), its platform check, then its smoke tests."""
    start = started if plan.platform in baked else time.monotonic()
    engine = plan.engine
    built = Built(plan.platform, plan.tags, engine=engine.endpoint, docker=engine.docker)
    checked = Checked()
    try:
        image = baked.get(plan.platform)
        if image is None:
            built = replace(built, image_id=_docker_build(plan, out, notice))
        else:
            built = replace(built, image_id=image.image_id, own_digest=image.own_digest)
    except (DockermaError, OSError) as e:
        built = replace(built, error=str(e))
    else:
        if plan.image:  # (-o to files without -t leaves nothing in the engine to check)
            checked = _check(built, check, smokes, request.smoke_timeout, out)
        checked = _write_iidfile(plan, checked.image_id or built.image_id, checked)
    if built.error or checked.error:
        out.line(plan.platform.suffix, f"FAILED: {built.error or checked.error}")
    arch = Arch(built, time.monotonic() - start, checked)
    if ahead is not None and arch.ok:
        ahead.start()
    return arch


def _write_iidfile(plan: Plan, image_id: str, checked: Checked) -> Checked:
    """The user's --iidfile, one per architecture (core.outputs.per_file)."""
    if plan.user_iidfile is None or not image_id or checked.error:
        return checked
    try:
        Path(plan.user_iidfile).write_text(image_id, encoding="utf-8")
    except OSError as e:
        return replace(checked, error=f"--iidfile {plan.user_iidfile}: {e.strerror or e}")
    return checked


def _docker_build(plan: Plan, out: Output, notice: notices.OncePerRun) -> str:
    """docker build; the image id it wrote."""
    docker = plan.engine.docker
    if plan.scratch is not None:
        # Imported only when needed: its tarball code is measurable in build's start-up.
        from dockerma.engine import scratch

        scratch.ensure(docker, plan.platform)
    label = plan.platform.suffix
    on_line = notice.filter(functools.partial(out.line, label))
    docker.stream(*plan.argv, on_line=on_line, platform=str(plan.platform))
    return plan.iidfile.read_text().strip() if plan.iidfile.is_file() else ""


def _check(
    built: Built, check: bool, smokes: Sequence[str], timeout: float, out: Output
) -> Checked:
    """The platform check (unless deferred) and the smoke tests of an image just built."""
    checked = Checked()
    results: list[smoke.SmokeResult] = []
    try:
        if check:
            checked = checks.platform(built, checks.inspect(built.docker, [built])[0], out)
        if not checked.error:
            image = checked.image_id or built.image_id
            tests = smoke.run_tests(
                built.docker, image, built.platform, smokes, timeout=timeout, out=out
            )
            results.extend(tests)
    except (DockermaError, OSError) as e:
        checked = replace(checked, error=str(e))
    return replace(checked, smoke=tuple(results))


def _report(archs: Sequence[Arch], lookups: Lookups | None, b: _Build) -> None:
    """The summary table; then the push (when every build succeeded), the metadata file, and
    the error line of a failed run."""
    request = b.request
    remote = bool(request.builder_specs) or any(not e.local for e in b.engines.values())
    summary.table(b.out, archs, bool(b.inputs.smokes), remote)
    for note in summary.builders([e.builder for e in b.engines.values() if e.builder]):
        b.out.info(note)
    failed = [a for a in archs if not a.ok]
    if failed and lookups is not None:
        lookups.settle()  # none of its reads may log after the error line
    lists: dict[str, str] = {}
    if not failed and request.push:
        archs, lists = _push(archs, lookups, b)
    if request.metadata_file:
        metadata.write(request.metadata_file, archs, lists)
    if failed:
        raise summary.failure(failed, len(archs), request.push)


def _push(
    archs: Sequence[Arch], lookups: Lookups | None, b: _Build
) -> tuple[list[Arch], dict[str, str]]:
    """push's publish, as `dockerma push` does it; each architecture's pushed digest."""
    from dockerma.flows import publish  # only with --push: see _RegistryReadAhead

    images = {a.platform: a.for_push() for a in archs}
    lists = publish.publish(
        {p: e.docker for p, e in b.engines.items()},
        b.out,
        b.inputs.tags,
        images,
        registry=b.registry,
        jobs=b.request.jobs,
        passthrough=("--quiet",) if b.request.args.quiet else (),
        recheck=bool(b.inputs.smokes),  # else checks.deferred just inspected them
        lookups=lookups,
    )
    pushed = [replace(a, pushed=Pushed(a.platform, images[a.platform].digest)) for a in archs]
    return pushed, lists
