"""7. Growth: dockerma's wall time, own time and peak memory as platforms and Dockerfile lines
grow."""

from __future__ import annotations

import functools

from ..bed import Bed, base_index, remember
from ..report import counts, log, out, table, verdict
from ..timing import Sample, rotate, run
from ..workloads import user_dockerfile
from .growth_points import FLAT_FACTOR, FLAT_SLACK, Point, flat, growth_dockerfile

# the order in which platforms are added; the base has some of them (read from the registry)
GROWTH_PLATFORMS = ("amd64", "arm64", "arm", "386", "ppc64le", "s390x", "arm/v6", "riscv64")
GROWTH_COUNTS = (1, 2, 3, 5, 8)
GROWTH_BUILD_COUNTS = (1, 2, 3, 5)
GROWTH_LINES = (10, 100, 1000, 10000)

Points = dict[int, Point]


def base_platforms(bed: Bed) -> list[str]:
    """GROWTH_PLATFORMS the base has, in that order."""
    have = set()
    for m in base_index(bed).get("manifests", []):
        p = m.get("platform", {})
        have.add(p.get("architecture", "") + (f"/{p['variant']}" if p.get("variant") else ""))
    have |= {"arm"} if "arm/v7" in have else set()
    return [p for p in GROWTH_PLATFORMS if p in have]


def _platform_series(bed: Bed, runs: int, have: list[str]) -> dict[str, Points]:
    """dry-run, platforms growing: the base (registry look-ups per platform) and FROM scratch."""
    base_counts = sorted({n for n in GROWTH_COUNTS if n <= len(have)} | {len(have)})
    ctx_base = bed.tmp / "growth-base"
    ctx_scratch = bed.tmp / "growth-scratch"
    for c, text in (
        (ctx_base, f"FROM {bed.base}\nRUN echo one > /one\n"),
        (ctx_scratch, "FROM scratch\nCOPY Dockerfile /Dockerfile\n"),
    ):
        c.mkdir(exist_ok=True)
        (c / "Dockerfile").write_text(text)
    series = {
        f"dry-run, FROM {bed.base}": (ctx_base, base_counts, have),
        "dry-run, FROM scratch": (ctx_scratch, list(GROWTH_COUNTS), list(GROWTH_PLATFORMS)),
    }
    points = {s: {n: Point() for n in ns} for s, (_c, ns, _p) in series.items()}
    jobs = [
        (
            s,
            n,
            ["build", "--dry-run", "--platform", ",".join(pl[:n])]
            + ["-t", "bench/growth:dry", str(c)],
        )
        for s, (c, ns, pl) in series.items()
        for n in ns
    ]
    for i in range(runs):
        for s, n, args in rotate(jobs, i):
            p = points[s][n]
            bed.timed(f"growth {s} {n}", functools.partial(p.add, bed, args, bed.classic))
        log(f"growth platforms (dry-run) {i + 1}/{runs}")
    return points


def _build_series(bed: Bed, runs: int, have: list[str]) -> Points:
    """Real warm builds of the small workload, 1…5 platforms the base has."""
    env = bed.classic
    ctx = bed.tmp / "growth-build"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(user_dockerfile("small", bed.base, buildplatform=""))
    counts_ = [n for n in GROWTH_BUILD_COUNTS if n <= len(have)]
    jobs = []
    for n in counts_:
        ref = f"{bed.repo('growth')}:p{n}-{bed.run_id}"
        args = ["build", "--platform", ",".join(have[:n]), "-t", ref, str(ctx)]
        log(f"growth: priming the {n}-platform build")
        argv = [*bed.dockerma, *args]
        bed.timed(f"growth build {n} prime", functools.partial(run, bed.tmp, argv, env))
        remember(bed, "classic", [f"{ref}-{p.split('/')[0]}" for p in have[:n]])
        jobs.append((n, args))
    points = {n: Point() for n in counts_}
    for i in range(runs):
        for n, args in rotate(jobs, i):
            bed.timed(f"growth build {n}", functools.partial(points[n].add, bed, args, env))
        log(f"growth builds {i + 1}/{runs}")
    return points


def _size_series(bed: Bed, runs: int) -> Points:
    """dry-run, 3 platforms, Dockerfile growing."""
    points = {n: Point() for n in GROWTH_LINES}
    jobs = []
    for n in GROWTH_LINES:
        c = bed.tmp / f"growth-lines-{n}"
        c.mkdir(exist_ok=True)
        (c / "Dockerfile").write_text(growth_dockerfile(bed.base, n))
        for k in range(5):
            (c / f"f{k}").write_text(f"{k}\n")
        jobs.append((n, ["build", "--dry-run", "-t", "bench/growth:lines", str(c)]))
    for i in range(runs):
        for n, args in rotate(jobs, i):
            bed.timed(f"growth lines {n}", functools.partial(points[n].add, bed, args, bed.classic))
        log(f"growth Dockerfile size {i + 1}/{runs}")
    return points


def _platform_table(plat: dict[str, Points], builds: Points) -> bool:
    rows = []
    verdicts = []
    for s, pts in plat.items():
        for n, p in pts.items():
            rows.append([s, str(n), *p.row(), counts(p.calls) or "-"])
        ok, why = flat(pts)
        verdicts.append((ok, f"{s}: {why}"))
    for n, p in builds.items():
        rows.append(["warm build, small workload", str(n), *p.row(), counts(p.calls)])
    ok, why = flat(builds)
    verdicts.append((ok, f"warm build: {why}"))
    headers = ["what", "platforms", "wall", "wall min–max s", "own", "peak RSS", "largest child"]
    table([*headers, "docker calls"], rows)
    ok_flat = all(v for v, _ in verdicts)
    out(
        f"own time flat in the number of platforms (largest count ≤ {FLAT_FACTOR}× the 1-platform "
        f"median or < +{FLAT_SLACK} s): {verdict(ok_flat)}"
    )
    for v, why in verdicts:
        out(f"  {verdict(v)} {why}")
    return ok_flat


def _size_table(size: Points) -> bool:
    first = GROWTH_LINES[0]
    w0 = Sample(size[first].walls).median
    r0 = max(size[first].rss)
    rows = []
    for n, p in size.items():
        w = Sample(p.walls).median
        extra = extra_rss = ""
        if n != first:
            extra = f"{(w - w0) / (n - first) * 1e6:.1f} µs"
            extra_rss = f"{(max(p.rss) - r0) / (n - first):.2f} KiB"
        rows.append([f"{n:,}", *p.row()[:4], f"{w / n * 1e3:.3f} ms", extra, extra_rss])
    headers = ["lines", "wall", "wall min–max s", "own", "peak RSS", "wall / line"]
    table([*headers, f"per line above {first}", f"RSS per line above {first}"], rows)
    big, mid = GROWTH_LINES[-1], GROWTH_LINES[-2]
    # linear-or-better: the increment to the largest file is no more than 1.5× what the increment
    # to the next-largest predicts (per line), with 0.1 s of slack for noise. An increment to the
    # next-largest below zero is noise around no measurable cost per line: it predicts 0, not a
    # negative time (which no run could meet).
    w_mid = Sample(size[mid].walls).median - w0
    w_big = Sample(size[big].walls).median - w0
    predicted = max(w_mid, 0.0) * (big - first) / (mid - first)
    ok_lin = w_big <= FLAT_FACTOR * predicted + FLAT_SLACK
    out(
        f"time per line not growing (wall above {first} lines at {big:,} ≤ {FLAT_FACTOR}× the "
        f"{mid:,}-line rate + {FLAT_SLACK} s): {verdict(ok_lin)} ({w_big:.3f} s vs "
        f"{predicted:.3f} s predicted linearly from {mid:,} lines)"
    )
    return ok_lin


def bench(bed: Bed, runs: int) -> bool:
    since = len(bed.ledger.retried)
    have = base_platforms(bed)
    plat = _platform_series(bed, runs, have)
    builds = _build_series(bed, runs, have)
    size = _size_series(bed, runs)
    out()
    out(
        "== 7. Growth: dockerma's cost as platforms and Dockerfile lines grow "
        f"— {runs} runs each =="
    )
    out(
        "wall = dockerma's run; own = wall − time in docker calls (logging shim, as in section 5); "
        "peak RSS = ru_maxrss"
    )
    out(
        "of the dockerma process itself (run in-process by a small wrapper); "
        "largest child = its biggest docker call."
    )
    out(
        f"platforms in order {','.join(GROWTH_PLATFORMS)}; the base has {','.join(have)}, "
        f"so counts beyond {len(have)} use FROM scratch (no base look-up)."
    )
    ok_flat = _platform_table(plat, builds)
    out()
    out(
        "Dockerfile size: `dockerma build --dry-run`, 3 platforms, generated RUN/ENV/COPY lines "
        "in 3 stages on the base"
    )
    ok_lin = _size_table(size)
    bed.retries_note(since)
    ok = ok_flat and ok_lin
    out(
        "target: own overhead flat in platforms and linear-or-better in Dockerfile size: "
        f"{verdict(ok)}"
    )
    return ok
