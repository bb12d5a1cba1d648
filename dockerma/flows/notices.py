"""docker's notices that every per-architecture build repeats, shown once per run."""

from __future__ import annotations

import threading
from typing import Callable

# What docker's CLI prints on stderr before each build with the classic builder: this line,
# indented lines (why, and what to do), then an empty line.
LEGACY_BUILDER = "DEPRECATED: The legacy builder is deprecated"


class OncePerRun:
    """The classic builder's DEPRECATED notice in full the first time, then never again:
    each build's line handler goes through filter()."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shown = False

    def _first(self) -> bool:
        with self._lock:
            first, self._shown = not self._shown, True
        return first

    def filter(self, on_line: Callable[[str], None]) -> Callable[[str], None]:
        """on_line for one build's output, without a repeat of the notice."""
        skipping = False

        def handle(line: str) -> None:
            nonlocal skipping
            if skipping:
                if not line.strip():  # the notice's closing empty line
                    skipping = False
                    return
                if line[:1].isspace():  # one of its indented lines
                    return
                skipping = False
            if line.startswith(LEGACY_BUILDER) and not self._first():
                skipping = True
                return
            on_line(line)

        return handle
