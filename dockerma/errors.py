"""The error types; the CLI boundary turns them into `dockerma: error: …` and exit codes."""

from __future__ import annotations

import shlex
from collections.abc import Sequence


class DockermaError(Exception):
    """A failure the user can act on; str() is one line: what went wrong and how to fix it."""

    exit_code = 1


class DockerError(DockermaError):
    """A docker command that failed: the command, its exit code and the tail of its output."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int,
        output: str = "",
        *,
        platform: str | None = None,
        hint: str = "",
    ) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.output = output
        self.platform = platform
        self.hint = hint
        super().__init__(self._message())

    def tail(self, lines: int = 50) -> list[str]:
        return [line for line in self.output.splitlines() if line.strip()][-lines:]

    def _message(self) -> str:
        last = self.tail(1)
        where = f" for {self.platform}" if self.platform else ""
        msg = f"`{shlex.join(self.argv)}` failed{where} with exit code {self.returncode}"
        if last:
            msg += f": {last[0].strip()}"
        if self.hint:
            msg += f" ({self.hint})"
        return msg

    def details(self) -> str:
        """The multi-line form shown with --debug: the command and its indented output."""
        body = "\n".join(f"    {line}" for line in self.tail())
        return f"command: {shlex.join(self.argv)}\nreturn code: {self.returncode}\noutput:\n{body}"


class DockerNotFound(DockermaError):
    pass


class Interrupted(DockermaError):
    exit_code = 130


class UsageError(DockermaError):
    """Bad command-line usage; exit code 2 as click's own usage errors."""

    exit_code = 2


class Terminated(DockermaError):
    """SIGTERM: children stopped, temp files removed, exit 143 as a shell would report it."""

    exit_code = 143
