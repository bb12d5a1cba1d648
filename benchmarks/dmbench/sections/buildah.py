"""6. Three-arch build + push: `dockerma build --push` against the alternatives (raw docker
loop, buildah), and dockerma's two-command form."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..bed import Bed, remember
from ..config import ARCHS, TARGET_BUILD_PUSH
from ..report import log, out, table, verdict
from ..timing import Failed, Sample, capture, rotate, run
from ..workloads import check_same_work, write_workload
from .buildpush import BuildPushMethod, Split, buildpush_methods

BUILDAH_WORKLOADS = ("small", "cpu")


def _install_buildah() -> None:
    log("buildah: not installed; apt-get install -y buildah")
    res = subprocess.run(
        ["apt-get", "install", "-y", "buildah"],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0 or not shutil.which("buildah"):
        raise Failed(f"apt-get install -y buildah failed:\n{res.stdout[-800:]}{res.stderr[-800:]}")


def _remover(cmd: list[str], where: Path) -> Callable[[], None]:
    def remove() -> None:
        # containers first (unmounts them), then every image and list in this private store
        subprocess.run([*cmd, "rm", "--all"], capture_output=True, check=False)
        subprocess.run([*cmd, "rmi", "--all", "--force"], capture_output=True, check=False)
        if any(str(where) in line for line in Path("/proc/mounts").read_text().splitlines()):
            log(f"buildah: {where} still has mounts; left in place")
            return
        shutil.rmtree(where, ignore_errors=True)

    return remove


def _probe(cmd: list[str], driver: str, base: str) -> str | None:
    """Pull the base, run a command in a container of it (what a build's RUN needs); why not."""
    probe = subprocess.run(
        [*cmd, "from", "--tls-verify=false", "--platform", "linux/amd64", base],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"{driver}: buildah from: {probe.stderr.strip()[-300:]}"
    ctr = probe.stdout.strip().splitlines()[-1]
    ran = subprocess.run([*cmd, "run", ctr, "true"], capture_output=True, text=True, check=False)
    subprocess.run([*cmd, "rm", ctr], capture_output=True, check=False)
    if ran.returncode != 0:
        return f"{driver}: buildah run: {ran.stderr.strip()[-300:]}"
    return None


def buildah_setup(bed: Bed) -> list[str]:
    """The buildah command: installed from Debian if missing, with a storage of its own under the
    run's temporary folder (overlay if it works here as root, else vfs), removed at clean-up."""
    if not shutil.which("buildah"):
        _install_buildah()
    store = bed.tmp / "buildah"
    errors = []
    for driver in ("overlay", "vfs"):
        where = store / driver
        cmd = ["buildah", "--root", str(where / "root"), "--runroot", str(where / "run")]
        cmd += ["--storage-driver", driver]
        bed.ledger.cleanups.append(_remover(cmd, where))
        error = _probe(cmd, driver, bed.base)
        if error is None:
            return cmd
        errors.append(error)
    raise Failed("no buildah storage driver works here:\n" + "\n".join(errors))


@dataclass(frozen=True)
class _Runs:
    """The timed runs of one workload and cache state, per method (total, build, push)."""

    ms: list[BuildPushMethod]
    times: dict[str, list[Split]]

    def part(self, m: BuildPushMethod, k: int) -> Sample:
        return Sample([v for r in self.times[m.label] if (v := r[k]) is not None])


def _time(
    bed: Bed, ms: list[BuildPushMethod], what: str, extra: list[str], runs: int, local: list[str]
) -> _Runs:
    """RUNS timed runs of every method in the balanced order; WHAT names them in the log."""
    times: dict[str, list[Split]] = {m.label: [] for m in ms}
    for i in range(runs):
        for m in rotate(ms, i):
            r = bed.timed(f"buildpush {what} {m.label}", functools.partial(m.fn, extra))
            times[m.label].append(r)
            split = f" ({r[0]:.2f} + {r[1]:.2f})" if r[0] is not None and r[1] is not None else ""
            log(f"buildpush {what} {i + 1}/{runs}: {m.label} {r[2]:.2f} s{split}")
        remember(bed, "classic", local)
    return _Runs(ms, times)


def _rows(name: str, cache: str, t: _Runs) -> tuple[list[list[str]], tuple[float, str]]:
    """The table rows of one workload and cache state, and its ratio against the fastest
    alternative."""
    ms = t.ms
    dm_runs = t.times[ms[0].label]
    dmt = t.part(ms[0], 2).median
    fastest = min((m for m in ms if m.alternative), key=lambda m: t.part(m, 2).median)
    rows = []
    for m in ms:
        s = t.part(m, 2)
        ratio = dmt / s.median
        # the same ratio taken within each run (the methods of run i ran back to back):
        # slow drifts of the daemon cancel out, so its spread shows what the noise is
        paired = Sample([d[2] / r[2] for d, r in zip(dm_runs, t.times[m.label])])
        target = ""
        if m.alternative:
            target = f"≤ {TARGET_BUILD_PUSH:.2f} {verdict(ratio <= TARGET_BUILD_PUSH)}"
            target += " (fastest)" if m is fastest else ""
        split = ["—", "—"]
        if t.times[m.label][0][0] is not None:
            split = [f"{t.part(m, k).median:.2f} s" for k in (0, 1)]
        by_run = "—" if m is ms[0] else f"{paired.median:.2f} ({paired.span()})"
        rows.append(
            [name, cache, m.label, f"{s.median:.2f} s", s.span(), *split, f"{ratio:.2f}", by_run]
            + [target]
        )
    return rows, (dmt / t.part(fastest, 2).median, f"{name}/{cache} vs {fastest.short}")


def _workload(
    bed: Bed, bh: list[str], name: str, runs: int, rows: list[list[str]]
) -> tuple[str, list[str], list[tuple[float, str]]]:
    """Time one workload cold and warm, add its rows; its check note, the alternatives' short
    names and its ratios against the fastest alternative."""
    env = bed.classic
    # one Dockerfile (base by tag) for dockerma and buildah (buildah ignores the dockerma
    # comment); the raw docker user gets the digest-pinned per-arch copies, as in section 1
    ctx, files = write_workload(bed, name)
    note = f"{name}: raw docker {check_same_work(bed, name, ctx, files, env)}"
    ms, local, lst = buildpush_methods(bed, bh, name, ctx, files)
    log(f"buildpush {name}: warm-up (bases local on every side, repositories hold the base layers)")
    for m in ms:
        bed.timed(f"buildpush {name} warm-up {m.label}", functools.partial(m.fn, []))
    remember(bed, "classic", local)
    worst = []
    for cache, extra in (("cold", ["--no-cache"]), ("warm", [])):
        if cache == "warm":  # prime: every later run is all cache hits
            for m in ms:
                bed.timed(f"buildpush {name} prime {m.label}", functools.partial(m.fn, []))
        t = _time(bed, ms, f"{name} {cache}", extra, runs, local)
        more, ratio = _rows(name, cache, t)
        rows += more
        worst.append(ratio)
    run(bed.tmp, [*bh, "manifest", "rm", lst], env, check=False)  # the store goes at clean-up
    return note, [m.short for m in ms if m.alternative], worst


def _header(runs: int, version: str, driver: str) -> None:
    platforms = ",".join(p for _, p, *_ in ARCHS)
    out()
    out(
        "== 6. Three-arch build + push: dockerma against the alternatives (raw docker loop, "
        f"buildah) — {runs} runs each =="
    )
    out(
        "amd64, arm64, arm/v7 built and pushed as one list; docker on the classic engine; "
        f"{version}, storage driver {driver} (a store of its own, removed at clean-up)."
    )
    out(
        "dockerma build --push = `dockerma build --push -t REF ctx` (one command); "
        "dockerma build + dockerma push = `dockerma build -t REF ctx` + `dockerma push REF`."
    )
    out(
        "raw docker = `docker build --platform linux/<arch> -t REF-<arch> -f <pinned "
        "Dockerfile.<arch>> ctx` ×3 & wait, `docker push REF-<arch>` ×3 & wait,"
    )
    out(
        "  `docker manifest rm REF` (failure ignored), `docker manifest create --insecure REF "
        "<the three>`, `docker manifest push --insecure --purge REF`."
    )
    out(
        "buildah = `buildah manifest rm LIST` (a rebuild appends otherwise) + `buildah build "
        f"--layers --jobs 3 --platform {platforms} --tls-verify=false --manifest LIST ctx`"
    )
    out(
        "  + `buildah manifest push --all --tls-verify=false LIST docker://REF` (an OCI index). "
        "dockerma and buildah get the same Dockerfile (tag base, not pinned)."
    )
    out(
        "cold = --no-cache on all sides (bases already local; new layers pushed); warm = all cache "
        "hits, re-push of content the registry has. build/push: medians of the two parts (— : one "
        "command)."
    )
    out(
        "run by run = dockerma build --push ÷ this within each run (they ran back to back): "
        "median (min–max); the target is on the ratio of the medians."
    )


HEADERS = ["workload", "cache", "method", "median", "min–max s", "build", "push"]


def bench(bed: Bed, runs: int, workloads: tuple[str, ...]) -> bool:
    since = len(bed.ledger.retried)
    bh = buildah_setup(bed)
    version = capture([*bh, "--version"], bed.classic).strip()
    driver = bh[bh.index("--storage-driver") + 1]
    names = [w for w in workloads if w in BUILDAH_WORKLOADS] or ["small"]
    rows: list[list[str]] = []
    worst: list[tuple[float, str]] = []
    notes = []
    alts: list[str] = []  # the alternatives' short names, for the verdict line
    for name in names:
        note, alts, ratios = _workload(bed, bh, name, runs, rows)
        notes.append(note)
        worst += ratios
    _header(runs, version, driver)
    for n in notes:
        out(f"check: {n}")
    table([*HEADERS, "dockerma ÷ this", "run by run", "target"], rows)
    bed.retries_note(since)
    ratio, where = max(worst)
    ok = ratio <= TARGET_BUILD_PUSH
    out(
        f"target: dockerma build --push ≤ {TARGET_BUILD_PUSH:.2f} × the fastest alternative "
        f"({', '.join(alts)}), every workload, cold and warm: {verdict(ok)} (worst {ratio:.2f}, "
        f"{where})"
    )
    return ok
