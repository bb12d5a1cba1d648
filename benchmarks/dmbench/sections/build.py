"""1. dockerma build against raw `docker build` ×3, parallel and sequential, classic engine."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..bed import Bed, remember
from ..config import ARCHS, TARGET_BUILD
from ..report import log, out, table, verdict
from ..timing import Sample, rotate, run, run_parallel, run_sequential
from ..workloads import check_same_work, raw_build_argvs, write_workload

DM = "dockerma build"
PAR = "raw parallel (& wait)"


class _Workload:
    """The three methods of one build workload."""

    def __init__(self, bed: Bed, name: str, ctx: Path, files: dict[str, Path]) -> None:
        self.bed, self.name, self.ctx, self.files = bed, name, ctx, files
        self.repo = bed.repo(f"build-{name}")

    def tags(self, kind: str) -> list[str]:
        return [f"{self.repo}:{kind}-{self.bed.run_id}-{s}" for s, *_ in ARCHS]

    def methods(self, extra: list[str]) -> dict[str, Callable[[], float]]:
        bed, env, ctx = self.bed, self.bed.classic, self.ctx
        dm_tag = f"{self.repo}:dm-{bed.run_id}"
        par = raw_build_argvs(self.name, self.files, ctx, self.tags("par"), extra)
        seq = raw_build_argvs(self.name, self.files, ctx, self.tags("seq"), extra)
        dm = [*bed.dockerma, "build", "-t", dm_tag, *extra, str(ctx)]
        return {
            DM: lambda: run(bed.tmp, dm, env),
            PAR: lambda: run_parallel(bed.tmp, par, env),
            "raw sequential": lambda: run_sequential(bed.tmp, seq, env),
        }


def _time(bed: Bed, w: _Workload, cache: str, extra: list[str], runs: int) -> dict[str, Sample]:
    ms = w.methods(extra)
    if cache == "warm":  # prime: every later run is all cache hits
        bed.timed(f"build {w.name} prime", ms[DM])
    times: dict[str, list[float]] = {m: [] for m in ms}
    all_tags = w.tags("dm") + w.tags("par") + w.tags("seq")
    for i in range(runs):
        for m in rotate(list(ms), i):
            dt = bed.timed(f"build {w.name} {cache} {m}", ms[m])
            times[m].append(dt)
            log(f"build {w.name} {cache} {i + 1}/{runs}: {m} {dt:.2f} s")
        remember(bed, "classic", all_tags)
    return {m: Sample(v) for m, v in times.items()}


def bench_workload(
    bed: Bed, name: str, runs: int, rows: list[list[str]], worst: list[tuple[float, str]]
) -> str:
    """Time one build workload cold and warm; add its rows; return its equivalence check."""
    ctx, files = write_workload(bed, name)
    note = f"{name}: {check_same_work(bed, name, ctx, files, bed.classic)}"
    w = _Workload(bed, name, ctx, files)
    log(f"build {name}: warm-up (pulls the pinned bases)")
    bed.timed(f"build {name} warm-up", w.methods([])[PAR])
    for cache, extra in (("cold", ["--no-cache"]), ("warm", [])):
        samples = _time(bed, w, cache, extra, runs)
        dm = samples[DM].median
        for m, sample in samples.items():
            ratio = dm / sample.median
            target = ""
            if m.startswith("raw parallel"):
                target = f"≤ {TARGET_BUILD:.2f} {verdict(ratio <= TARGET_BUILD)}"
                worst.append((ratio, f"{name}/{cache}"))
            rows.append(
                [name, cache, m, f"{sample.median:.2f} s", sample.span(), f"{ratio:.2f}", target]
            )
    return note


def bench(bed: Bed, runs: int, workloads: tuple[str, ...]) -> bool:
    since = len(bed.ledger.retried)
    rows: list[list[str]] = []
    worst: list[tuple[float, str]] = []
    notes = [bench_workload(bed, name, runs, rows, worst) for name in workloads]
    out()
    out(f"== 1. Build, 3 archs (amd64, arm64, arm/v7), classic engine — {runs} runs each ==")
    out(
        "cold = --no-cache on both sides; warm = second run, all cache hits; "
        "bases digest-pinned on both sides"
    )
    for n in notes:
        out(f"check: {n}")
    table(["workload", "cache", "method", "median", "min–max s", "dockerma ÷ this", "target"], rows)
    bed.retries_note(since)
    ratio, where = max(worst)
    ok = ratio <= TARGET_BUILD
    out(
        f"target: dockerma build wall time ≤ {TARGET_BUILD:.2f} × raw parallel docker build "
        f"(every workload, cold and warm): {verdict(ok)} (worst {ratio:.2f}, {where})"
    )
    return ok
