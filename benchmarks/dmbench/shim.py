"""A PATH shim that logs every docker call, and dockerma's own time from that log."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .bed import Bed
from .timing import run

SHIM = """#!/bin/bash
# dockerma benchmarks: log start/end (epoch seconds) and argv of each docker call, run the real one.
s=$EPOCHREALTIME
"$DOCKERMA_BENCH_REAL_DOCKER" "$@"
rc=$?
printf '%s %s %s\\n' "$s" "$EPOCHREALTIME" "$*" >> "$DOCKERMA_BENCH_SHIM_LOG"
exit $rc
"""


@dataclass(frozen=True)
class Call:
    start: float
    end: float
    argv: str

    @property
    def kind(self) -> str:
        words = self.argv.split()
        if not words:
            return "?"
        if words[0] in ("image", "manifest", "buildx", "container", "system") and len(words) > 1:
            return f"{words[0]} {words[1]}"
        return words[0]


@dataclass(frozen=True)
class ShimmedRun:
    start: float  # epoch seconds
    end: float
    wall: float
    calls: list[Call]

    def docker_time(self) -> float:
        """Time during which at least one docker call of this run was running."""
        return union([(max(c.start, self.start), min(c.end, self.end)) for c in self.calls])


def shim_env(bed: Bed, env: dict[str, str], logfile: Path) -> dict[str, str]:
    shim_dir = bed.tmp / "shim"
    if not shim_dir.is_dir():
        shim_dir.mkdir()
        (shim_dir / "docker").write_text(SHIM)
        (shim_dir / "docker").chmod(0o755)
    e = dict(env)
    e["PATH"] = f"{shim_dir}:{env.get('PATH', '')}"
    e["DOCKERMA_BENCH_REAL_DOCKER"] = bed.docker
    e["DOCKERMA_BENCH_SHIM_LOG"] = str(logfile)
    return e


def read_calls(logfile: Path) -> list[Call]:
    calls = []
    if logfile.is_file():
        for line in logfile.read_text().splitlines():
            parts = line.split(" ", 2)
            if len(parts) >= 2:
                calls.append(
                    Call(float(parts[0]), float(parts[1]), parts[2] if len(parts) > 2 else "")
                )
    return sorted(calls, key=lambda c: c.start)


def union(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by the intervals (overlaps counted once)."""
    total = 0.0
    cur: tuple[float, float] | None = None
    for s, e in sorted(intervals):
        if cur is None or s > cur[1]:
            if cur is not None:
                total += cur[1] - cur[0]
            cur = (s, e)
        else:
            cur = (cur[0], max(cur[1], e))
    if cur is not None:
        total += cur[1] - cur[0]
    return total


def shimmed_run(bed: Bed, argv: list[str], env: dict[str, str]) -> ShimmedRun:
    """Epoch start and end, wall time and docker calls of one run under the shim."""
    logfile = bed.tmp / f"shim-{uuid.uuid4().hex[:8]}.log"
    e = shim_env(bed, env, logfile)
    t0 = time.time()
    wall = run(bed.tmp, argv, e)
    t1 = time.time()
    return ShimmedRun(t0, t1, wall, read_calls(logfile))
