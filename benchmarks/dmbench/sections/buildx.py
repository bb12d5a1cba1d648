"""3. The BuildKit engines (docker 26 `modern`, docker 28.5 `current`): `dockerma build --push`
against `docker buildx build --platform … --push`, and the designs dockerma could take there,
side by side (issue 21)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from ..bed import Bed, remember
from ..config import ARCHS, TARGET_BUILD, TARGET_HEAVY, TARGET_WARM
from ..report import log, out, table, verdict
from ..timing import Sample, rotate, run, run_parallel
from ..workloads import user_dockerfile

DM = "dockerma build --push"
PER_ARCH = "dockerma, a docker build per arch"  # DOCKERMA_BAKE=0: the design before issue 21
LOAD = "bake --load + docker push ×3 + list"  # the chosen design's commands, bare
DIRECT = "bake push=true + list"  # pushed straight from BuildKit (before any check)
BX = "docker buildx build --push"
HEAVY_RUNS = 3  # the CPU-heavy workload takes ~30 s a run
Methods = dict[str, Callable[[], float]]


def _bake_file(path: Path, ctx: Path, ref: str, push: bool) -> Path:
    """A bake definition with a target per architecture, the same Dockerfile for each (as the
    raw user writes it); loaded into the engine, or pushed from BuildKit (push)."""
    targets = {}
    for suffix, plat, *_ in ARCHS:
        target = {"context": str(ctx), "platforms": [plat]}
        if push:
            target["output"] = [f"type=image,name={ref}-{suffix},push=true"]
        else:
            target["tags"] = [f"{ref}-{suffix}"]
            target["output"] = ["type=docker"]
        targets[suffix] = target
    definition = {"group": {"default": {"targets": list(targets)}}, "target": targets}
    path.write_text(json.dumps(definition))
    return path


class _Refs:
    """The repositories each method pushes to, for one engine and workload."""

    def __init__(self, bed: Bed, engine: str, workload: str) -> None:
        def ref(method: str) -> str:
            return f"{bed.repo(f'bx-{engine}-{workload}-{method}')}:v-{bed.run_id}"

        self.dm, self.per_arch, self.load, self.direct, self.bx = (
            ref(m) for m in ("dm", "perarch", "load", "direct", "bx")
        )

    def per_arch_tags(self) -> list[str]:
        return [f"{r}-{s}" for r in (self.dm, self.per_arch, self.load) for s, *_ in ARCHS]


def _methods(bed: Bed, env: dict[str, str], engine: str, workload: str) -> Callable[..., Methods]:
    ctx = bed.tmp / f"ctx-bx-{engine}-{workload}"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(user_dockerfile(workload, bed.base))
    refs = _Refs(bed, engine, workload)
    platforms = ",".join(p for _, p, *_ in ARCHS)
    load_file = _bake_file(bed.tmp / f"bake-load-{engine}-{workload}.json", ctx, refs.load, False)
    direct_file = _bake_file(
        bed.tmp / f"bake-push-{engine}-{workload}.json", ctx, refs.direct, True
    )
    no_bake = {**env, "DOCKERMA_BAKE": "0"}
    # buildx 0.20+ wants `--allow fs.read=…` for a context outside the working folder (as
    # dockerma, the raw bake rows turn that check off)
    bake_env = {**env, "BUILDX_BAKE_ENTITLEMENTS_FS": "0"}

    def raw_bake(path: Path, ref: str, extra: list[str], docker_push: bool) -> float:
        bake = ["docker", "buildx", "bake", "-f", str(path), "--progress=plain", *extra]
        per_arch = [f"{ref}-{s}" for s, *_ in ARCHS]
        dt = run(bed.tmp, bake, bake_env)
        if docker_push:
            dt += run_parallel(bed.tmp, [["docker", "push", r] for r in per_arch], env)
        create = ["docker", "buildx", "imagetools", "create", "-t", ref, *per_arch]
        return dt + run(bed.tmp, create, env)

    def methods(extra: list[str], which: tuple[str, ...]) -> Methods:
        dm = [*bed.dockerma, "build", "--push", "-t", refs.dm, *extra, str(ctx)]
        one = [*bed.dockerma, "build", "--push", "-t", refs.per_arch, *extra, str(ctx)]
        bx = ["docker", "buildx", "build", "--platform", platforms, "--push", "-t", refs.bx]
        bx += [*extra, str(ctx)]
        every: Methods = {
            DM: lambda: run(bed.tmp, dm, env),
            PER_ARCH: lambda: run(bed.tmp, one, no_bake),
            LOAD: lambda: raw_bake(load_file, refs.load, extra, True),
            DIRECT: lambda: raw_bake(direct_file, refs.direct, extra, False),
            BX: lambda: run(bed.tmp, bx, env),
        }
        return {m: fn for m, fn in every.items() if m in which}

    return methods


def _rows(
    bed: Bed, engine: str, runs: int, workload: str, caches: tuple[str, ...], which: tuple[str, ...]
) -> tuple[list[list[str]], dict[str, float]]:
    env = bed.env(engine)
    assert env is not None
    methods = _methods(bed, env, engine, workload)
    if "warm" in caches:
        log(f"buildx {engine} {workload}: warm-up")
        for m, fn in methods([], which).items():
            bed.timed(f"buildx warm-up {m}", fn)
    rows = []
    ratios: dict[str, float] = {}
    for cache in caches:
        ms = methods(["--no-cache"] if cache == "cold" else [], which)
        times: dict[str, list[float]] = {m: [] for m in ms}
        for i in range(runs):
            for m in rotate(list(ms), i):
                dt = bed.timed(f"buildx {engine} {workload} {cache} {m}", ms[m])
                times[m].append(dt)
                log(f"buildx {engine} {workload} {cache} {i + 1}/{runs}: {m} {dt:.2f} s")
            remember(bed, engine, _Refs(bed, engine, workload).per_arch_tags())
        dm = Sample(times[DM]).median
        for m, v in times.items():
            s = Sample(v)
            rows.append([workload, cache, m, f"{s.median:.2f} s", s.span(), f"{dm / s.median:.2f}"])
        ratios[cache] = dm / Sample(times[BX]).median
    return rows, ratios


def _engine(bed: Bed, engine: str, title: str, runs: int, workloads: tuple[str, ...]) -> bool:
    since = len(bed.ledger.retried)
    rows: list[list[str]] = []
    checks: list[tuple[str, float, float]] = []  # (what, ratio, target)
    if "small" in workloads:
        every = (DM, PER_ARCH, LOAD, DIRECT, BX)
        r, ratios = _rows(bed, engine, runs, "small", ("cold", "warm"), every)
        rows += r
        checks += [("small cold", ratios["cold"], TARGET_BUILD)]
        checks += [("small warm", ratios["warm"], TARGET_WARM)]
    if "heavy" in workloads:
        heavy_runs = min(runs, HEAVY_RUNS)
        r, ratios = _rows(bed, engine, heavy_runs, "heavy", ("cold",), (DM, BX))
        rows += r
        checks += [(f"heavy cold ({heavy_runs} runs)", ratios["cold"], TARGET_HEAVY)]
    out()
    out(f"== 3. {title}: build + push of 3 archs — {runs} runs each ==")
    out(
        "same Dockerfile (base by tag, not pinned) for all; cold = --no-cache; warm = cache hits, "
        "re-push; raw bake rows: a target per arch, lists by `docker buildx imagetools create`"
    )
    table(["workload", "cache", "method", "median", "min–max s", "dockerma ÷ this"], rows)
    bed.retries_note(since)
    ok = True
    for what, ratio, target in checks:
        good = ratio <= target
        ok = ok and good
        out(f"target {what}: {DM} ≤ {target:.2f} × {BX}: {verdict(good)} ({ratio:.2f})")
    return ok


ENGINES = (
    ("modern", "Modern engine (docker 26, buildx 0.13, containerd store)"),
    ("current", "Current engine (docker 28.5, buildx 0.29, containerd 2.1 store)"),
)


def bench(bed: Bed, runs: int, workloads: tuple[str, ...]) -> bool:
    ok = True
    # DMBENCH_BUILDX_ENGINES=current: one engine only (a full section takes ~15 min)
    wanted = os.environ.get("DMBENCH_BUILDX_ENGINES", "modern,current").split(",")
    for engine, title in ENGINES:
        if engine not in wanted:
            continue
        if bed.env(engine) is None:
            out(f"\n== 3. {title}: skipped (not in the test bed; run scripts/testbed) ==")
            continue
        ok = _engine(bed, engine, title, runs, workloads) and ok
    return ok
