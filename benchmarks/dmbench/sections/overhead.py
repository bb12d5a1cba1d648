"""5. dockerma's own (non-docker) time per run, 1/2/3 archs, classic engine."""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

from ..bed import Bed, remember
from ..config import ARCHS, TARGET_OVERHEAD
from ..report import counts, log, out, table, verdict
from ..shim import shimmed_run
from ..timing import Sample, run
from ..workloads import write_workload

AUX = ("build", "push")  # the docker calls a raw user runs too; the others are dockerma's extras


def _row(bed: Bed, what: str, n: int, ctx: Path, runs: int) -> tuple[list[str], float]:
    """One command with N archs, RUNS times under the shim; its row and own-time median."""
    env = bed.classic
    archs = ARCHS[:n]
    ref = f"{bed.repo('overhead')}:a{n}-{bed.run_id}"
    plats = ",".join(s for s, *_ in archs)
    if what == "build":
        argv = [*bed.dockerma, "build", "--platform", plats, "-t", ref, str(ctx)]
    else:
        argv = [*bed.dockerma, "push", ref]
    run(bed.tmp, argv, env)  # prime: cache hits / layers already in the registry
    remember(bed, "classic", [f"{ref}-{s}" for s, *_ in archs])
    walls, dockers, owns, extras = [], [], [], []
    calls_seen: Counter[str] = Counter()
    one = functools.partial(shimmed_run, bed, argv, env)
    for i in range(runs):
        r = bed.timed(f"overhead {what} {n}", one)
        wall, dtime = r.end - r.start, r.docker_time()
        own = wall - dtime
        walls.append(wall)
        dockers.append(dtime)
        owns.append(own)
        extras.append(sum(c.end - c.start for c in r.calls if c.kind not in AUX))
        calls_seen = Counter(c.kind for c in r.calls)
        log(
            f"overhead {what} {n} arch(s) {i + 1}/{runs}: wall {wall:.2f} s, "
            f"docker {dtime:.2f} s, own {own:.2f} s"
        )
    o = Sample(owns)
    row = [
        f"dockerma {what}",
        str(n),
        f"{Sample(walls).median:.2f} s",
        f"{Sample(dockers).median:.2f} s",
        f"{o.median:.2f} s",
        o.span(),
        f"{Sample(extras).median:.2f} s",
        counts(calls_seen),
        f"< {TARGET_OVERHEAD} {verdict(o.median < TARGET_OVERHEAD)}",
    ]
    return row, o.median


def bench(bed: Bed, runs: int) -> bool:
    since = len(bed.ledger.retried)
    ctx, _files = write_workload(bed, "small")
    rows = []
    worst = 0.0
    for what in ("build", "push"):
        for n in (1, 2, 3):
            row, own = _row(bed, what, n, ctx, runs)
            rows.append(row)
            worst = max(worst, own)
    out()
    out(f"== 5. dockerma's own overhead per run, classic engine — {runs} runs each ==")
    bed.retries_note(since)
    out(
        "own = wall time − time during which at least one docker call was running "
        "(docker wrapped by a"
    )
    out(
        "logging shim; build = warm cache, small workload; push = content already in the registry)."
    )
    out("extra docker = summed time of the docker calls a raw user would not run (not in 'own').")
    headers = ["command", "archs", "wall", "docker", "own", "own min–max s", "extra docker"]
    table([*headers, "docker calls", "target"], rows)
    ok = worst < TARGET_OVERHEAD
    out(
        f"target: dockerma overhead < {TARGET_OVERHEAD} s per run (own, non-docker time): "
        f"{verdict(ok)} (worst median {worst:.2f} s)"
    )
    return ok
