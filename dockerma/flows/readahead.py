"""push's registry reads during `dockerma build --push`: started by the first build that
succeeds (or with the bake), collected once the builds are over."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.registry.client import Registry

if TYPE_CHECKING:
    from dockerma.flows.lookups import Lookups

__all__ = ["RegistryReadAhead"]


class RegistryReadAhead:
    """push's registry reads (lookups.Lookups), started by the first build that succeeds.

    Earlier, the reads would slow the builds' start; started then, they run while the last
    builds do, and after a warm build nothing is left to wait for but the push. The push
    module is imported then too, not before the builds.
    """

    # Reads older than this when the last build ends are made again: what the registry held
    # may have changed meanwhile. Fresh ones also tell a warm rebuild's platform (see _known).
    FRESH_FOR = 1.0  # seconds

    def __init__(self, registry: Registry, tags: Sequence[ImageRef], targets: Sequence[Platform]):
        self._args = (registry, tags, targets)
        self._lock = threading.Lock()
        self._started: tuple[float, Lookups] | None = None
        self._resolve = False

    def start(self, *, resolve: bool = False) -> None:
        """Start the reads, unless a build started them already (resolve: see Lookups; the
        bake's images have known config digests)."""
        with self._lock:
            self._resolve = self._resolve or resolve
            if self._started is None:
                self._started = (time.monotonic(), self._lookups())

    def collect(self) -> tuple[Lookups | None, bool]:
        """The reads (made again if stale) once the builds are over, and whether they are
        fresh; None when no build succeeded."""
        if self._started is None:
            return None, False
        started, lookups = self._started
        if time.monotonic() - started <= self.FRESH_FOR:
            return lookups, True
        lookups.settle()
        return self._lookups(), False

    def _lookups(self) -> Lookups:
        from dockerma.flows import lookups  # see the class docstring

        return lookups.Lookups(*self._args, resolve=self._resolve)
