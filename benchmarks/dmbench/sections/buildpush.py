"""The four ways section 6 builds three archs and pushes them as one list."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..bed import Bed
from ..config import ARCHS
from ..timing import run, run_parallel
from ..workloads import raw_build_argvs, raw_push

# (build s, push s, total s) of one timed run; build and push are None where one command does both
Split = tuple[Optional[float], Optional[float], float]


@dataclass(frozen=True)
class BuildPushMethod:
    label: str  # the row's method column
    short: str  # how the verdict line names it
    alternative: bool  # an alternative to dockerma (the target applies against it)
    fn: Callable[[list[str]], Split]  # extra docker build flags -> one timed run


@dataclass(frozen=True)
class _Refs:
    """Workload NAME's repositories, one per method, and buildah's local list."""

    bed: Bed
    name: str

    def ref(self, method: str) -> str:
        return f"{self.bed.repo(f'buildah-{method}-{self.name}')}:v-{self.bed.run_id}"

    @property
    def raw_tags(self) -> list[str]:  # dockerma's naming, for the raw user too
        return [f"{self.ref('raw')}-{s}" for s, *_ in ARCHS]

    @property
    def buildah_list(self) -> str:
        return f"localhost/bench-{self.name}-{self.bed.run_id}"


def _buildah(bed: Bed, bh: list[str], refs: _Refs, ctx: Path, extra: list[str]) -> Split:
    env, lst = bed.classic, refs.buildah_list
    platforms = ",".join(p for _, p, *_ in ARCHS)
    t0 = time.perf_counter()
    # --manifest appends to an existing local list: a rebuild needs it removed first
    run(bed.tmp, [*bh, "manifest", "rm", lst], env, check=False)
    build = [*bh, "build", "--layers", "--jobs", "3", "--platform", platforms]
    build += ["--tls-verify=false", "--manifest", lst, *extra, str(ctx)]
    run(bed.tmp, build, env)
    b = time.perf_counter() - t0
    push = [*bh, "manifest", "push", "--all", "--tls-verify=false", lst]
    p = run(bed.tmp, [*push, f"docker://{refs.ref('bh')}"], env)
    return b, p, b + p


def buildpush_methods(
    bed: Bed, bh: list[str], name: str, ctx: Path, files: dict[str, Path]
) -> tuple[list[BuildPushMethod], list[str], str]:
    """The four ways to build the three archs of workload `name` and push them as one list,
    each to a repository of its own; the local per-arch tags they leave (for clean-up); and
    buildah's local list."""
    env, tmp, dockerma = bed.classic, bed.tmp, bed.dockerma
    refs = _Refs(bed, name)
    dmp_ref, dm_ref, raw_ref = refs.ref("dmpush"), refs.ref("dm"), refs.ref("raw")

    def dockerma_one(extra: list[str]) -> Split:
        t = run(tmp, [*dockerma, "build", "--push", "-t", dmp_ref, *extra, str(ctx)], env)
        return None, None, t

    def dockerma_two(extra: list[str]) -> Split:
        b = run(tmp, [*dockerma, "build", "-t", dm_ref, *extra, str(ctx)], env)
        p = run(tmp, [*dockerma, "push", dm_ref], env)
        return b, p, b + p

    def raw(extra: list[str]) -> Split:
        b = run_parallel(tmp, raw_build_argvs(name, files, ctx, refs.raw_tags, extra), env)
        p = raw_push(bed, raw_ref, refs.raw_tags)
        return b, p, b + p

    def buildah(extra: list[str]) -> Split:
        return _buildah(bed, bh, refs, ctx, extra)

    methods = [
        BuildPushMethod("dockerma build --push", "dockerma build --push", False, dockerma_one),
        BuildPushMethod(
            "dockerma build + dockerma push", "dockerma two commands", False, dockerma_two
        ),
        BuildPushMethod(
            "raw docker: build ×3 & + push ×3 & + manifest", "raw docker parallel", True, raw
        ),
        BuildPushMethod("buildah build --jobs 3 + manifest push", "buildah", True, buildah),
    ]
    local = [f"{r}-{s}" for r in (dmp_ref, dm_ref) for s, *_ in ARCHS] + refs.raw_tags
    return methods, local, refs.buildah_list
