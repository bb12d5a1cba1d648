"""2. dockerma push against raw `docker push` ×3 + `docker manifest …`, classic engine."""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from pathlib import Path
from typing import Callable

from ..bed import Bed, remember
from ..config import ARCHS, TARGET_PUSH
from ..report import counts, log, out, table, verdict
from ..shim import ShimmedRun, shimmed_run
from ..timing import Sample, rotate, run, run_parallel
from ..workloads import raw_build_argvs, raw_push, write_workload

DM = "dockerma push"
RAW = "raw push ×3 + manifest"


class _Push:
    """The two methods, each to a repository of its own, and fresh content before each push."""

    def __init__(self, bed: Bed, ctx: Path, files: dict[str, Path]) -> None:
        self.bed, self.ctx, self.files = bed, ctx, files
        self.repos = {DM: bed.repo("push-dm"), RAW: bed.repo("push-raw")}

    def per_arch(self, repo: str) -> list[str]:
        return [f"{repo}:v-{self.bed.run_id}-{s}" for s, *_ in ARCHS]

    def prepare(self, repo: str) -> None:  # new content, outside the timing
        bed = self.bed
        stamp = uuid.uuid4().hex
        extra = ["--build-arg", f"STAMP={stamp}"]
        argvs = raw_build_argvs("push", self.files, self.ctx, self.per_arch(repo), extra)
        bed.timed(
            "push: rebuild with new content",
            functools.partial(run_parallel, bed.tmp, argvs, bed.classic),
        )
        remember(bed, "classic", self.per_arch(repo))

    def dm_argv(self) -> list[str]:
        return [*self.bed.dockerma, "push", f"{self.repos[DM]}:v-{self.bed.run_id}"]

    def dm_push(self) -> float:
        return run(self.bed.tmp, self.dm_argv(), self.bed.classic)

    def raw(self) -> float:
        repo = self.repos[RAW]
        return raw_push(self.bed, f"{repo}:v-{self.bed.run_id}", self.per_arch(repo))


def _time(bed: Bed, p: _Push, runs: int) -> dict[str, Sample]:
    ms: dict[str, Callable[[], float]] = {DM: p.dm_push, RAW: p.raw}
    log("push: warm-up (base layers into the new repositories)")
    for m, fn in ms.items():
        p.prepare(p.repos[m])
        bed.timed(f"push warm-up {m}", fn)
    times: dict[str, list[float]] = {m: [] for m in ms}
    for i in range(runs):
        for m in rotate(list(ms), i):
            p.prepare(p.repos[m])
            dt = bed.timed(f"push {m}", ms[m])
            times[m].append(dt)
            log(f"push {i + 1}/{runs}: {m} {dt:.2f} s")
    return {m: Sample(v) for m, v in times.items()}


def _concurrency(shimmed: ShimmedRun) -> None:
    """The per-arch pushes inside one dockerma push: when each ran, and how far they overlapped."""
    calls, t0 = shimmed.calls, shimmed.start
    pushes = [c for c in calls if c.kind == "push"]
    out(
        "per-arch pushes inside one more dockerma push (docker wrapped by a logging shim; "
        f"wall {shimmed.wall:.2f} s, {len(calls)} docker calls: "
        f"{counts(Counter(c.kind for c in calls))})"
    )
    if not pushes:
        return
    prows = [
        [
            c.argv.split()[-1].rsplit("-", 1)[-1],
            f"+{c.start - t0:.2f} s",
            f"+{c.end - t0:.2f} s",
            f"{c.end - c.start:.2f} s",
        ]
        for c in pushes
    ]
    table(["arch", "start", "end", "duration"], prows)
    overlap = min(c.end for c in pushes) - max(c.start for c in pushes)
    span = max(c.end for c in pushes) - min(c.start for c in pushes)
    busy = sum(c.end - c.start for c in pushes)
    out(
        f"all {len(pushes)} pushes running at once for {max(overlap, 0):.2f} s; "
        f"sum of push times {busy:.2f} s over a span of {span:.2f} s = concurrency "
        f"{busy / span:.2f}× ({'concurrent' if overlap > 0 else 'NOT concurrent'})"
    )


def bench(bed: Bed, runs: int) -> bool:
    since = len(bed.ledger.retried)
    ctx, files = write_workload(bed, "push")
    p = _Push(bed, ctx, files)
    samples = _time(bed, p, runs)
    # concurrency: one more dockerma push of new content, docker wrapped by the logging shim
    p.prepare(p.repos[DM])
    shimmed = shimmed_run(bed, p.dm_argv(), bed.classic)
    rows = []
    dm = samples[DM].median
    ok = True
    for m, s in samples.items():
        ratio = dm / s.median
        target = ""
        if m.startswith("raw"):
            ok = ratio <= TARGET_PUSH
            target = f"≤ {TARGET_PUSH:.2f} {verdict(ok)}"
        rows.append([m, f"{s.median:.2f} s", s.span(), f"{ratio:.2f}", target])
    out()
    out(f"== 2. Push, 3 archs, classic engine, plain-HTTP registry — {runs} runs each ==")
    out(
        f"each run pushes new content (a fresh {bed.push_mb} MB random layer per arch, "
        "rebuilt outside the timing);"
    )
    out(
        "raw = docker push ×3 in parallel + docker manifest rm/create --insecure/push "
        "--insecure --purge"
    )
    table(["method", "median", "min–max s", "dockerma ÷ this", "target"], rows)
    bed.retries_note(since)
    out()
    _concurrency(shimmed)
    out(f"target: dockerma push wall time ≤ {TARGET_PUSH:.2f} × raw push commands: {verdict(ok)}")
    return ok
