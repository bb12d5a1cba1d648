"""parallel.py: results in order, every failure kept, the jobs bound, one item inline; start."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from dockerma import parallel
from dockerma.errors import Interrupted
from dockerma.parallel import run_each


def test_order_is_kept() -> None:
    # Later items finish first.
    items = [5, 4, 3, 2, 1, 0]
    outcomes = run_each(items, lambda n: (time.sleep(n * 0.01), n * 10)[1])
    assert [o.item for o in outcomes] == items
    assert [o.value for o in outcomes] == [50, 40, 30, 20, 10, 0]
    assert all(o.ok for o in outcomes)


@pytest.mark.parametrize("jobs", [None, 1, 2])
def test_every_failure_is_reported(jobs: int | None) -> None:
    def work(n: int) -> int:
        if n % 2:
            raise ValueError(f"odd {n}")
        return n

    outcomes = run_each([0, 1, 2, 3, 4, 5], work, jobs=jobs)
    assert [o.ok for o in outcomes] == [True, False, True, False, True, False]
    assert [str(o.error) for o in outcomes if not o.ok] == ["odd 1", "odd 3", "odd 5"]
    assert [o.value for o in outcomes if o.ok] == [0, 2, 4]


@pytest.mark.parametrize(
    ("jobs", "items", "bound"), [(1, 4, 1), (2, 6, 2), (3, 6, 3), (None, 5, 5)]
)
def test_jobs_bound_is_respected(jobs: int | None, items: int, bound: int) -> None:
    lock = threading.Lock()
    running = 0
    peak = 0

    def work(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return n

    outcomes = run_each(list(range(items)), work, jobs=jobs)
    assert [o.value for o in outcomes] == list(range(items))
    assert peak == bound


@pytest.mark.parametrize(("items", "jobs"), [([7], None), ([7], 4), ([1, 2, 3], 1)])
def test_single_item_or_one_job_runs_inline(items: list[int], jobs: int | None) -> None:
    threads: list[threading.Thread] = []

    def work(n: int) -> int:
        threads.append(threading.current_thread())
        return n

    outcomes = run_each(items, work, jobs=jobs)
    assert [o.value for o in outcomes] == items
    assert threads == [threading.main_thread()] * len(items)


def test_no_items() -> None:
    assert run_each([], lambda n: n) == []


@pytest.mark.parametrize("items", [[1], [1, 2]])
def test_keyboard_interrupt_propagates(items: list[int]) -> None:
    def work(n: int) -> int:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_each(items, work)


@pytest.mark.parametrize(("items", "jobs"), [([1], None), ([1, 2, 3], 1)])
def test_interruption_propagates_and_nothing_more_starts(
    items: list[int], jobs: int | None
) -> None:
    # Ctrl-C/SIGTERM/SIGHUP while the work runs inline (one item, --jobs 1) is not the first
    # architecture's failure, and the next one does not start (issue 17).
    started: list[int] = []

    def work(n: int) -> int:
        started.append(n)
        raise Interrupted(signal.SIGTERM)

    with pytest.raises(Interrupted):
        run_each(items, work, jobs=jobs)
    assert started == [1]


def test_start_runs_in_the_background_and_gives_the_value() -> None:
    release = threading.Event()
    first = parallel.start(lambda: release.wait(5) and "first")
    # one call may wait for another: each has a thread of its own
    second = parallel.start(lambda a, b: (release.set(), a + b)[1], 1, 2)
    assert (first.result(timeout=5), second.result(timeout=5)) == ("first", 3)


def test_start_keeps_the_error_for_result() -> None:
    def fail() -> None:
        raise ValueError("boom")

    future = parallel.start(fail)
    with pytest.raises(ValueError, match="boom"):
        future.result(timeout=5)
