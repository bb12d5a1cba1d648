"""docker calls started ahead of need: the CLI starts the calls a flow makes first (`docker
info`, push's image look-ups), so that they run while Python imports the flow.

The CLI creates one ReadAhead per command, starts the calls on it and binds it to the Docker
it hands to the flow (Docker.with_read_ahead); the flow's own call with the same argv takes
the result instead of running docker again. Calls never taken are stopped by drop.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dockerma.engine.process import Pending, Result
from dockerma.errors import DockermaError

if TYPE_CHECKING:
    from dockerma.engine.docker import Docker


class ReadAhead:
    def __init__(self) -> None:
        self._pending: dict[tuple[str, ...], Pending] = {}
        self._lock = threading.Lock()

    def start(self, docker: Docker, *args: str) -> None:
        """Start `docker args` now, for the flow's same call to take; started once. A failure
        to start is left for that call to report."""
        argv = tuple(docker.argv(args))
        with self._lock:
            if argv in self._pending:
                return
        try:
            pending = Pending(argv, docker.environ())
        except DockermaError:
            return
        with self._lock:
            self._pending[argv] = pending

    def take(self, argv: Sequence[str]) -> Result | None:
        """The result of the call started for argv (waiting for it), once; else None."""
        with self._lock:
            pending = self._pending.pop(tuple(argv), None)
        return None if pending is None else pending.result()

    def drop(self) -> None:
        """Stop the calls no one took (a run that ended early, on bad input)."""
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for p in pending:
            p.stop()
