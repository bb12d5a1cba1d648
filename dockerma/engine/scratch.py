"""The empty base image standing in for `FROM scratch` on the classic builder, loaded into an
engine (the image itself: dockerma.core.scratch)."""

from __future__ import annotations

from dockerma.core import scratch
from dockerma.core.platforms import Platform
from dockerma.engine.docker import Docker
from dockerma.errors import DockermaError


def ensure(docker: Docker, platform: Platform) -> str:
    """The local stand-in image for `platform`, loaded into the engine when missing."""
    name = scratch.tag(platform)
    if docker.run("image", "inspect", name).returncode == 0:
        return name
    res = docker.run("load", input=scratch.image_tar(platform))
    if res.returncode != 0:
        raise DockermaError(
            f"cannot load the empty base {name} for a FROM scratch stage: "
            f"{(res.stderr or res.stdout).strip().splitlines()[-1:]}; build with BuildKit "
            "(docker-buildx) instead"
        )
    return name
