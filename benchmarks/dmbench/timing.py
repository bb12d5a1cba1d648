"""Running commands and timing them: one, all at once, one after the other; medians and the
balanced order of the methods within each run."""

from __future__ import annotations

import contextlib
import shlex
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class Failed(Exception):
    """A command of a timed run failed (retried, or the section fails)."""


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def run(
    tmp: Path,
    argv: list[str],
    env: dict[str, str],
    *,
    check: bool = True,
    cwd: Path | None = None,
) -> float:
    """Run one command, output to a log file in TMP; its wall time in seconds."""
    logf = tmp / "last.log"
    with open(logf, "wb") as fh:
        t0 = time.perf_counter()
        code = subprocess.call(
            argv, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd
        )
        dt = time.perf_counter() - t0
    if check and code != 0:
        raise Failed(f"`{shlex.join(argv)}` exited {code}:\n{_tail(logf)}")
    return dt


def run_parallel(tmp: Path, argvs: list[list[str]], env: dict[str, str]) -> float:
    """`cmd1 & cmd2 & cmd3 & wait`: start all, wait for all; wall time."""
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(open(tmp / f"par{i}.log", "wb")) for i in range(len(argvs))]
        t0 = time.perf_counter()
        procs = [
            subprocess.Popen(
                a, env=env, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
            for a, f in zip(argvs, files)
        ]
        codes = [p.wait() for p in procs]
        dt = time.perf_counter() - t0
    for i, (a, c) in enumerate(zip(argvs, codes)):
        if c != 0:
            raise Failed(f"`{shlex.join(a)}` exited {c}:\n{_tail(tmp / f'par{i}.log')}")
    return dt


def run_sequential(tmp: Path, argvs: list[list[str]], env: dict[str, str]) -> float:
    return sum(run(tmp, a, env) for a in argvs)


def capture(argv: list[str], env: dict[str, str]) -> str:
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False).stdout


@dataclass(frozen=True)
class Sample:
    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def span(self) -> str:
        lo, hi = min(self.values), max(self.values)
        digits = 3 if hi < 1 else 2
        return f"{lo:.{digits}f}–{hi:.{digits}f}"


def rotate(items: list[T], i: int) -> list[T]:
    """The order of run i: a Williams design, so that over n runs (2n for an odd count) each
    item comes first equally often and follows every other item equally often. (A plain
    rotation keeps the cyclic order: each item would always run right after the same one, and
    pay for what that one leaves behind — a busy daemon, a registry still committing.)"""
    n = len(items)
    if n < 2:
        return list(items)
    first = [0]
    lo, hi = 1, n - 1
    while lo <= hi:
        first.append(lo)
        lo += 1
        if lo <= hi:
            first.append(hi)
            hi -= 1
    k = i % (n if n % 2 == 0 else 2 * n)
    row = [(x + k) % n for x in first]
    if k >= n:  # odd n: the second n runs are the first n reversed
        row = [(x + k - n) % n for x in first][::-1]
    return [items[j] for j in row]
