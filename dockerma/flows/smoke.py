"""Smoke tests: run a command in a freshly built per-arch image before anything is published."""

from __future__ import annotations

import functools
import shlex
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from dockerma.core.platforms import Platform
from dockerma.engine.docker import Docker
from dockerma.errors import DockermaError
from dockerma.output import Output


@dataclass(frozen=True)
class SmokeResult:
    command: str
    status: str  # "passed", "failed", "timed out"
    exit_code: int | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def describe(self) -> str:
        if self.status == "failed":
            return f"failed (exit {self.exit_code})"
        return self.status

    def as_dict(self) -> dict[str, object]:
        return {"command": self.command, "status": self.status, "exit_code": self.exit_code}


def split(command: str) -> list[str]:
    """Split CMD as a shell would: the image may have no shell at all (FROM scratch)."""
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise DockermaError(
            f"smoke test {command!r} cannot be split: {e}; fix its quoting"
        ) from None
    if not argv:
        raise DockermaError("an empty smoke test command; give a command such as 'uname -m'")
    return argv


def docker_args(
    image: str, platform: Platform, command: str, name: str, network: str = "none"
) -> list[str]:
    """The `docker run` arguments of one smoke test: the command as the container's process
    (entrypoint replaced), removed afterwards, named so that a timeout can stop it."""
    argv = split(command)
    return [
        "run",
        "--rm",
        "--name",
        name,
        "--platform",
        platform.docker,
        "--network",
        network,
        "--entrypoint",
        argv[0],
        image,
        *argv[1:],
    ]


def container_name() -> str:
    return f"dockerma-smoke-{uuid.uuid4().hex[:12]}"


def run(
    docker: Docker,
    image: str,
    platform: Platform,
    command: str,
    *,
    timeout: float,
    on_line: Callable[[str], None],
    network: str = "none",
) -> SmokeResult:
    """Run the command in the image with a timeout."""
    # A named container, so a timeout can stop it: killing `docker run` leaves it running.
    name = container_name()
    args = docker_args(image, platform, command, name, network)
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        docker.run("kill", name)

    timer = threading.Timer(timeout, stop)
    timer.daemon = True
    timer.start()
    try:
        # Stopping `docker run` on Ctrl-C leaves the container running too.
        with docker.on_stop("rm", "-f", name):
            code = docker.stream(
                *args,
                on_line=on_line,
                platform=str(platform),
                check=False,
            )
    finally:
        timer.cancel()
        if timed_out.is_set():
            docker.run("rm", "-f", name)
    if timed_out.is_set():
        return SmokeResult(command, "timed out", code)
    return SmokeResult(command, "passed" if code == 0 else "failed", code)


def run_tests(
    docker: Docker,
    image: str,
    platform: Platform,
    commands: Sequence[str],
    *,
    timeout: float,
    out: Output,
) -> Iterator[SmokeResult]:
    """Each smoke test in turn in one per-arch image, its output and verdict on the
    architecture's lines; yields each result as it is known (a caller stopped by an error
    keeps the ones before it)."""
    label = platform.suffix
    for command in commands:
        res = run(
            docker,
            image,
            platform,
            command,
            timeout=timeout,
            on_line=functools.partial(out.line, label),
        )
        out.line(label, f"smoke test {command!r}: {res.describe()}")
        yield res
