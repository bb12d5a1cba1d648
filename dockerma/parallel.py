"""The one place that runs work on threads: per item on a bounded pool (run_each), or one call
in the background (start)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    item: T
    value: R | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def run_each(
    items: Sequence[T], work: Callable[[T], R], *, jobs: int | None = None
) -> list[Outcome[T, R]]:
    """Call work(item) for every item, at most `jobs` at once (all when None).

    Exceptions are kept per item (not re-raised) so the caller can report every failure;
    BaseExceptions (KeyboardInterrupt, SystemExit, errors.Interrupted: a signal) propagate at
    once, and no item starts after them.
    """

    def one(item: T) -> Outcome[T, R]:
        try:
            return Outcome(item, work(item))
        except Exception as exc:  # noqa: BLE001 - every failure is reported by the caller
            return Outcome(item, error=exc)

    if len(items) <= 1 or jobs == 1:
        return [one(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=min(jobs or len(items), len(items)))
    try:
        futures = [pool.submit(one, item) for item in items]
        return [f.result() for f in futures]
    finally:
        # On Ctrl-C do not wait: the caller stops the docker children, which ends the workers.
        pool.shutdown(wait=False, cancel_futures=True)


def start(work: Callable[..., R], *args: Any) -> Future[R]:
    """Call work(*args) on a thread of its own, now; the Future gives its value or raises its
    error. For work that overlaps the caller's own (a registry read beside docker calls); a
    thread each, so that one such call may wait for another without a deadlock."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(work, *args)
    finally:
        pool.shutdown(wait=False)
