"""Native builders: `--builder ARCH=ENDPOINT` sends an architecture to another docker engine.

An endpoint is a docker context name or a DOCKER_HOST URL (`ssh://ci@arm-box`,
`tcp://…`, `unix:///…`); the same CLI and credentials are used, only `--host`/`--context`
change. The mapping also comes from DOCKERMA_BUILDERS (`arm64=ssh://a,arm=ctx`), which the
command line overrides per architecture.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dockerma.core.platforms import Platform
from dockerma.engine import probe
from dockerma.engine.buildx import Builder
from dockerma.engine.docker import Docker
from dockerma.errors import DockermaError, UsageError
from dockerma.parallel import run_each

LOCAL = "local"
ENV = "DOCKERMA_BUILDERS"


@dataclass(frozen=True)
class Engine:
    """One docker engine: the CLI bound to it, the endpoint the user named it by (or local),
    and what it is."""

    docker: Docker
    endpoint: str
    info: probe.EngineInfo
    # The buildx builder of the local BuildKit engine (None: the engine's own, or no BuildKit)
    builder: Builder | None = None

    @property
    def local(self) -> bool:
        return self.endpoint == LOCAL


def parse(specs: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[Platform, str]:
    env = os.environ if environ is None else environ
    items = [s for s in env.get(ENV, "").split(",") if s.strip()] + list(specs)
    mapping: dict[Platform, str] = {}
    for spec in items:
        arch, sep, endpoint = spec.partition("=")
        if not sep or not arch.strip() or not endpoint.strip():
            raise UsageError(
                f"--builder {spec!r}: write ARCH=ENDPOINT, e.g. --builder arm64=ssh://ci@arm-box"
            )
        platform = Platform.parse(arch)
        for known in list(mapping):
            if known.matches(platform):
                del mapping[known]
        mapping[platform] = endpoint.strip()
    return mapping


def connect(
    docker: Docker, mapping: Mapping[Platform, str], targets: Sequence[Platform]
) -> tuple[probe.EngineInfo, dict[Platform, Engine]]:
    """Ask every engine involved what it is, in parallel; an unreachable one fails the run.

    Returns the local engine's info and the engine that builds each target platform.
    """
    wanted: dict[str, Docker] = {LOCAL: docker}
    for p in targets:
        for known, endpoint in mapping.items():
            if known.matches(p):
                wanted[endpoint] = docker.for_host(endpoint)
    outcomes = run_each(list(wanted.items()), lambda item: probe.probe(item[1]))
    infos: dict[str, probe.EngineInfo] = {}
    for o in outcomes:
        endpoint = o.item[0]
        if o.error is not None:
            if endpoint == LOCAL:
                raise o.error
            raise DockermaError(
                f"builder {endpoint} does not answer: {o.error}; check the endpoint (a docker "
                "context name or a DOCKER_HOST URL such as ssh://user@host) and that its engine "
                "runs"
            )
        assert o.value is not None
        infos[endpoint] = o.value
    engines: dict[Platform, Engine] = {}
    for p in targets:
        endpoint = next((e for k, e in mapping.items() if k.matches(p)), LOCAL)
        engines[p] = Engine(wanted[endpoint], endpoint, infos[endpoint])
    return infos[LOCAL], engines


def unused(specs: Sequence[str], targets: Sequence[Platform]) -> list[str]:
    """Warnings for --builder options naming an architecture this run does not build (a
    typo, or a list that changed); the DOCKERMA_BUILDERS default may name more, silently."""
    out = []
    for spec in specs:
        platform = Platform.parse(spec.partition("=")[0])
        if not any(t.matches(platform) for t in targets):
            building = ", ".join(str(t) for t in targets)
            out.append(f"--builder {spec}: {platform} is not built in this run ({building})")
    return out


def mismatches(engines: Mapping[Platform, Engine]) -> list[str]:
    """Warnings for builders that will emulate the architecture they were given."""
    out = []
    for p, engine in engines.items():
        if not engine.local and not probe.runs_natively(p, engine.info.platform):
            out.append(
                f"builder {engine.endpoint} is {engine.info.platform}, not {p}: {p} will be built "
                "there under emulation"
            )
    return out
