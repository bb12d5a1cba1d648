"""3. The modern engine's anchor: dockerma build --push against `docker buildx build --push`."""

from __future__ import annotations

from typing import Callable

from ..bed import Bed, remember
from ..config import ARCHS, TARGET_BUILD
from ..report import log, out, table, verdict
from ..timing import Sample, rotate, run
from ..workloads import user_dockerfile

DM = "dockerma build --push"
BX = "docker buildx build --push"


def _methods(
    bed: Bed, env: dict[str, str], workload: str
) -> Callable[..., dict[str, Callable[[], float]]]:
    ctx = bed.tmp / f"ctx-buildx-{workload}"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(user_dockerfile(workload, bed.base))
    bx_ref = f"{bed.repo('buildx-bx')}:v-{bed.run_id}"
    dm_ref = f"{bed.repo('buildx-dm')}:v-{bed.run_id}"
    platforms = ",".join(p for _, p, *_ in ARCHS)

    def methods(extra: list[str]) -> dict[str, Callable[[], float]]:
        dm = [*bed.dockerma, "build", "--push", "-t", dm_ref, *extra, str(ctx)]
        bx = ["docker", "buildx", "build", "--platform", platforms, "--push", "-t", bx_ref]
        bx += [*extra, str(ctx)]
        return {DM: lambda: run(bed.tmp, dm, env), BX: lambda: run(bed.tmp, bx, env)}

    return methods


def _made(bed: Bed) -> list[str]:
    bx_ref = f"{bed.repo('buildx-bx')}:v-{bed.run_id}"
    dm_ref = f"{bed.repo('buildx-dm')}:v-{bed.run_id}"
    return [bx_ref] + [f"{dm_ref}-{s}" for s, *_ in ARCHS]


def _rows(bed: Bed, env: dict[str, str], runs: int, workload: str) -> tuple[list[list[str]], float]:
    methods = _methods(bed, env, workload)
    log("buildx: warm-up")
    for m, fn in methods([]).items():
        bed.timed(f"buildx warm-up {m}", fn)
    rows = []
    worst = 0.0
    for cache, extra in (("cold", ["--no-cache"]), ("warm", [])):
        ms = methods(extra)
        times: dict[str, list[float]] = {m: [] for m in ms}
        for i in range(runs):
            for m in rotate(list(ms), i):
                dt = bed.timed(f"buildx {cache} {m}", ms[m])
                times[m].append(dt)
                log(f"buildx {cache} {i + 1}/{runs}: {m} {dt:.2f} s")
            remember(bed, "modern", _made(bed))
        dm = Sample(times[DM]).median
        for m, v in times.items():
            s = Sample(v)
            ratio = dm / s.median
            if m.startswith("docker buildx"):
                worst = max(worst, ratio)
            rows.append([workload, cache, m, f"{s.median:.2f} s", s.span(), f"{ratio:.2f}"])
    return rows, worst


def bench(bed: Bed, runs: int, workload: str) -> bool:
    if bed.modern is None:
        out("\n== 3. Modern engine: skipped (DOCKERMA_MODERN_HOST not set; run scripts/testbed) ==")
        return True
    since = len(bed.ledger.retried)
    rows, worst = _rows(bed, bed.modern, runs, workload)
    out()
    out(
        "== 3. Modern engine (docker 26, BuildKit, containerd store): build + push of 3 archs "
        f"— {runs} runs each =="
    )
    out(
        "same Dockerfile (tag base, not pinned) for both; cold = --no-cache on both sides; "
        "warm = cache hits, re-push"
    )
    table(["workload", "cache", "method", "median", "min–max s", "dockerma ÷ this"], rows)
    bed.retries_note(since)
    ok = worst <= TARGET_BUILD
    out(
        "target (anchor; the build target applied): dockerma build --push ≤ "
        f"{TARGET_BUILD:.2f} × docker buildx build --push: {verdict(ok)} (worst {worst:.2f})"
    )
    return ok
