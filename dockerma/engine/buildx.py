"""Which buildx builder a BuildKit build uses, and its driver.

`docker build` on BuildKit builds with the builder `--builder NAME` names, else BUILDX_BUILDER,
else the one `docker buildx use` chose, else the engine's own (`default`, the `docker` driver).
Only the docker driver leaves images in the engine: the others (docker-container, remote,
kubernetes: what CI set-ups such as setup-buildx-action create) keep them in the builder unless
`--load` sends them to the engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dockerma.engine.docker import Docker
from dockerma.errors import DockerError, DockermaError

DOCKER_DRIVER = "docker"


@dataclass(frozen=True)
class Builder:
    name: str  # as the user named it (--builder NAME), else "" (buildx's current one)
    driver: str
    described: str = ""  # buildx's name for it, for the summary

    @property
    def loads_itself(self) -> bool:
        """Whether its images land in the engine without --load."""
        return self.driver == DOCKER_DRIVER


def _config_dir(docker: Docker, env: Mapping[str, str]) -> Path:
    if docker.options.config:
        return Path(docker.options.config)
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"])
    return Path(env.get("HOME") or Path.home()) / ".docker"


def _only_default(docker: Docker, env: Mapping[str, str]) -> bool:
    """No builder was ever created (buildx keeps each in buildx/instances/): the one in use is
    the engine's own, whatever `docker buildx use` chose; buildx need not be asked."""
    instances = _config_dir(docker, env) / "buildx" / "instances"
    try:
        return not any(instances.iterdir())
    except OSError:
        return True


def find(docker: Docker, name: str | None, environ: Mapping[str, str] | None = None) -> Builder:
    """The builder a build with `--builder name` (or none) uses, asked of buildx when it may be
    another than the engine's own."""
    env = os.environ if environ is None else environ
    if not name and not env.get("BUILDX_BUILDER") and _only_default(docker, env):
        return Builder("", DOCKER_DRIVER, "default")
    try:
        text = docker.capture("buildx", "inspect", *([name] if name else []))
    except DockerError as e:
        what = f"buildx builder {name}" if name else "buildx's current builder"
        raise DockermaError(
            f"{what}: {e.tail(1)[0].strip() if e.tail(1) else e.returncode}; see "
            "`docker buildx ls` for the builders there are"
        ) from None
    return parse_inspect(text, name or "")


def parse_inspect(text: str, name: str) -> Builder:
    """`docker buildx inspect`'s first lines: `Name: X` and `Driver: Y`."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("Name", "Driver") and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    driver = fields.get("Driver") or DOCKER_DRIVER
    return Builder(name, driver, fields.get("Name") or name or "default")
