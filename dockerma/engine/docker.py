"""The docker CLI bound to one engine: its global options and the calls dockerma makes.

Global docker options (`-H`, `--context`, `--tls*`, …) are rendered once from a frozen
`GlobalOptions` and prepended to every docker call; the processes run in engine/process.py.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from dockerma.core.masking import redact, secret_values
from dockerma.engine import process
from dockerma.engine.process import (
    Result,
    display,
    interrupt,
    reset_interruption,
    running_children,
    terminate_children,
)
from dockerma.errors import DockerError

if TYPE_CHECKING:
    from dockerma.engine.readahead import ReadAhead

# The runner's controls are importable from here too: the CLI's signal handling and the build
# flow's clean-up use them (their owners may import engine.process instead).
__all__ = [
    "ENGINE_PROBE",
    "Docker",
    "GlobalOptions",
    "Result",
    "display",
    "interrupt",
    "reset_interruption",
    "running_children",
    "terminate_children",
]

# What dockerma asks every engine first (engine.probe); the CLI reads it ahead of need.
ENGINE_PROBE = ("info", "--format", "{{json .}}")


@dataclass(frozen=True)
class GlobalOptions:
    """docker's own options, which go before the sub-command (`docker -H x build …`)."""

    hosts: tuple[str, ...] = ()
    context: str | None = None
    config: str | None = None
    debug: bool = False
    log_level: str | None = None
    tls: bool = False
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    tlsverify: bool = False

    def argv(self) -> list[str]:
        out: list[str] = []
        if self.config:
            out += ["--config", self.config]
        if self.context:
            out += ["--context", self.context]
        for host in self.hosts:
            out += ["--host", host]
        if self.debug:
            out.append("--debug")
        if self.log_level:
            out += ["--log-level", self.log_level]
        if self.tls:
            out.append("--tls")
        if self.tlscacert:
            out += ["--tlscacert", self.tlscacert]
        if self.tlscert:
            out += ["--tlscert", self.tlscert]
        if self.tlskey:
            out += ["--tlskey", self.tlskey]
        if self.tlsverify:
            out.append("--tlsverify")
        return out


@dataclass(frozen=True)
class Docker:
    """The docker CLI bound to one engine (its global options).

    read_ahead: the calls the CLI started ahead of need; run and capture take their results.
    """

    options: GlobalOptions = field(default_factory=GlobalOptions)
    binary: str = "docker"
    read_ahead: ReadAhead | None = field(default=None, compare=False, repr=False)

    def for_host(self, endpoint: str) -> Docker:
        """The same CLI pointed at another engine (a DOCKER_HOST URL or a context name)."""
        if re.match(r"^[a-z][a-z0-9+.-]*://", endpoint):
            opts = replace(self.options, hosts=(endpoint,), context=None)
        else:
            opts = replace(self.options, hosts=(), context=endpoint)
        return replace(self, options=opts)

    def with_read_ahead(self, read_ahead: ReadAhead) -> Docker:
        return replace(self, read_ahead=read_ahead)

    def argv(self, args: Sequence[str]) -> list[str]:
        return [self.binary, *self.options.argv(), *args]

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        # Old CLIs (< 20.10) hide `docker manifest` behind this; newer ones ignore it.
        env["DOCKER_CLI_EXPERIMENTAL"] = "enabled"
        return env

    def run(
        self,
        *args: str,
        input: str | bytes | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Run docker, capture both streams; never raises for a non-zero exit."""
        argv = self.argv(args)
        if input is None and timeout is None:
            taken = self._take_read_ahead(argv)
            if taken is not None:
                return taken
        return process.run_process(argv, env=self.environ(), input=input, timeout=timeout)

    def capture(self, *args: str, platform: str | None = None, input: str | None = None) -> str:
        """Run docker and return its stdout; a non-zero exit raises DockerError."""
        argv = self.argv(args)
        res = self._take_read_ahead(argv) if input is None else None
        if res is None:
            res = process.run_process(argv, env=self.environ(), input=input)
        if res.returncode != 0:
            raise DockerError(
                redact(argv), res.returncode, res.stderr or res.stdout, platform=platform
            )
        return res.stdout

    def _take_read_ahead(self, argv: Sequence[str]) -> Result | None:
        return None if self.read_ahead is None else self.read_ahead.take(argv)

    def on_stop(self, *args: str) -> contextlib.AbstractContextManager[None]:
        """While the block runs, an interruption also runs `docker args` once the children
        are stopped (`rm -f NAME`: a container outlives its killed `docker run`)."""
        return process.on_stop(self.argv(args), self.environ())

    def stream(
        self,
        *args: str,
        on_line: Callable[[str], None],
        platform: str | None = None,
        check: bool = True,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        mask: Sequence[str] = (),
    ) -> int:
        """Run docker, hand each whole output line (stdout and stderr) to on_line.

        timeout: seconds after which docker is killed; its last line then says so.
        env: variables set for this call on top of the usual environment.
        mask: more values to hide in its lines (secrets its argv does not show).
        """
        argv = self.argv(args)
        tail: deque[str] = deque(maxlen=50)
        environ = {**self.environ(), **(env or {})}
        secrets = sorted({*secret_values(argv, environ), *mask}, key=len, reverse=True)

        def handle(line: str) -> None:
            # BuildKit prints RUN steps with build args expanded: mask the secret ones.
            for value in secrets:
                line = line.replace(value, "***")
            tail.append(line)
            on_line(line)

        code = process.stream_process(argv, env=environ, on_line=handle, timeout=timeout)
        if check and code != 0:
            raise DockerError(redact(argv), code, "\n".join(tail), platform=platform)
        return code
