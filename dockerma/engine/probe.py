"""What the docker engine is: its platform, its builder, its image store, its registries.

One `docker info` call answers all of it (server and client parts), so a run asks once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockerma.core.platforms import Platform, host_platform
from dockerma.engine.docker import ENGINE_PROBE, Docker
from dockerma.errors import DockerError, DockermaError


@dataclass(frozen=True)
class EngineInfo:
    platform: Platform
    buildkit: bool
    containerd_store: bool
    # What the daemon itself talks plain HTTP to (registry.client decides with them).
    insecure_registries: tuple[str, ...]
    # The daemon's registry-mirrors (URLs), through which it pulls Docker Hub's images.
    registry_mirrors: tuple[str, ...] = ()
    server_version: str = ""  # the daemon's, as docker info says it ("28.5.2", "20.10.24+dfsg1")
    buildx_version: str = ""  # the CLI's buildx plugin's ("0.29.1+ds1", "v0.13.1"); "" without


def probe(docker: Docker, *, environ: Mapping[str, str] | None = None) -> EngineInfo:
    """Ask the engine what it is; a clear error when docker is missing or does not answer."""
    env = os.environ if environ is None else environ
    try:
        raw = docker.capture(*ENGINE_PROBE)
    except DockerError as e:
        where = " ".join(docker.options.argv()) or os.environ.get("DOCKER_HOST", "")
        raise DockermaError(
            "the docker engine does not answer"
            + (f" ({where})" if where else "")
            + f": {e.tail(1)[0].strip() if e.tail(1) else e.returncode}; start dockerd or "
            "point DOCKER_HOST / --host / --context at a running engine"
        ) from None
    return parse_info(json.loads(raw or "{}"), env)


def parse_info(info: Mapping[str, Any], environ: Mapping[str, str]) -> EngineInfo:
    if info.get("ServerErrors") and not info.get("Architecture"):
        raise DockermaError(
            f"the docker engine does not answer: {info['ServerErrors'][0]}; start dockerd or "
            "point DOCKER_HOST / --host / --context at a running engine"
        )
    platform = (
        host_platform(str(info.get("Architecture") or ""))
        if info.get("Architecture")
        else host_platform()
    )
    client = info.get("ClientInfo") or {}
    versions = {
        p.get("Name"): str(p.get("Version") or "")
        for p in client.get("Plugins") or []
        if isinstance(p, dict)
    }
    plugins = set(versions)
    setting = environ.get("DOCKER_BUILDKIT", "")
    # CLI 23+ uses BuildKit through the buildx plugin and falls back to the legacy builder
    # without it; DOCKER_BUILDKIT=0 forces the legacy builder.
    buildkit = setting != "0" and ("buildx" in plugins or setting == "1")
    driver_status = dict(
        tuple(x) for x in info.get("DriverStatus") or [] if isinstance(x, list) and len(x) == 2
    )
    containerd = driver_status.get("driver-type") == "io.containerd.snapshotter.v1"
    reg = info.get("RegistryConfig") or {}
    insecure = list(reg.get("InsecureRegistryCIDRs") or [])
    for name, cfg in (reg.get("IndexConfigs") or {}).items():
        if isinstance(cfg, dict) and cfg.get("Secure") is False:
            insecure.append(name)
    mirrors = tuple(str(m) for m in reg.get("Mirrors") or [] if m)
    version = str(info.get("ServerVersion") or "")
    return EngineInfo(
        platform,
        buildkit,
        containerd,
        tuple(insecure),
        mirrors,
        version,
        versions.get("buildx", ""),
    )


def runs_natively(target: Platform, engine: Platform) -> bool:
    """Whether the engine's CPU runs target binaries without QEMU (x86_64 runs 386 too)."""
    if target.arch == engine.arch:
        return target.arch != "arm" or target.variant <= (engine.variant or "v7")
    return (engine.arch, target.arch) == ("amd64", "386")
