"""The error types; the CLI boundary turns them into `dockerma: error: …` and exit codes."""

from __future__ import annotations

import shlex
import signal
from collections.abc import Sequence

from dockerma.core.masking import redact
from dockerma.output import printable


class DockermaError(Exception):
    """A failure the user can act on; str() is one line: what went wrong and how to fix it."""

    exit_code = 1

    def __str__(self) -> str:
        # Messages carry what registries and docker said (error bodies, platform strings,
        # output lines): one printable line, control characters escaped, no URL password.
        return printable(super().__str__())


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
        # Build-arg names only: any value may be a secret (GH_PAT=…); --debug's details()
        # shows the values whose names do not look secret.
        shown = shlex.join(redact(self.argv, names_only=True))
        msg = f"`{shown}` failed{where} with exit code {self.returncode}"
        if last:
            msg += f": {last[0].strip()}"
        if self.hint:
            msg += f" ({self.hint})"
        return msg

    def details(self) -> str:
        """The multi-line form shown with --debug: the command and its indented output."""
        body = "\n".join(f"    {printable(line)}" for line in self.tail())
        command = printable(shlex.join(redact(self.argv)))
        return f"command: {command}\nreturn code: {self.returncode}\noutput:\n{body}"


class DockerNotFound(DockermaError):
    pass


class UsageError(DockermaError):
    """Bad command-line usage; exit code 2 as click's own usage errors."""

    exit_code = 2


class Interrupted(BaseException):
    """Ctrl-C, SIGTERM or SIGHUP: every docker child stopped, temp files removed, and exit
    130 (SIGINT) or 143 (SIGTERM, and SIGHUP too: the README documents 130 or 143 only).

    A BaseException, as KeyboardInterrupt is: the handlers that keep one architecture's
    failure (`except DockermaError`, `except Exception`) must not take an interruption for
    one and go on with the next architecture (issue 17, item 3).
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        return 130 if self.signum == signal.SIGINT else 143
