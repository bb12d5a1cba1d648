"""The build workloads, and the commands a raw docker user types for them."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from .bed import Bed
from .config import ARCHS, HOST_SUFFIX
from .timing import capture, run, run_parallel

# {FROM_TARGET}: the base for the target architecture; {FROM_BUILD}: for the build machine;
# {BUILDPLATFORM}: what the user writes after FROM --platform=. The user's Dockerfile (what
# dockerma gets) has the tag and $BUILDPLATFORM; the raw commands get the digest-pinned copy
# dockerma renders, which is what a careful user would have to write by hand.
DOCKERFILES = {
    "small": """\
# dockerma archs:amd64,arm64,arm
FROM {FROM_TARGET}
RUN echo one > /one
RUN echo two > /two
RUN echo three > /three
""",
    # ~0.9 s of md5 natively (this machine), ~5 s under qemu-aarch64, ~8.5 s under qemu-arm.
    "cpu": """\
# dockerma archs:amd64,arm64,arm
FROM {FROM_TARGET}
RUN head -c 100000000 /dev/zero | md5sum > /md5
RUN echo done > /done
""",
    "multistage": """\
# dockerma archs:amd64,arm64,arm
FROM --platform={BUILDPLATFORM} {FROM_BUILD} AS tool
ARG TARGETARCH
RUN echo "tool for $TARGETARCH built on $(uname -m)" > /tool.txt \
&& head -c 5000000 /dev/zero | md5sum >> /tool.txt
FROM {FROM_TARGET}
COPY --from=tool /tool.txt /tool.txt
RUN cat /tool.txt > /copied
""",
    # ~15 s of shell loop per emulated arch when built alone (~1.2 s natively), about twice
    # that with three builds sharing two cores.
    "heavy": """\
# dockerma archs:amd64,arm64,arm
FROM {FROM_TARGET}
RUN i=0; while [ $i -lt 1200000 ]; do i=$((i+1)); done; echo $i > /n
""",
    # push: a fresh random layer (--push-mb, default 2 MB) per STAMP, so every push uploads.
    "push": """\
# dockerma archs:amd64,arm64,arm
FROM {FROM_TARGET}
ARG STAMP=0
RUN echo "$STAMP" > /stamp && head -c {PUSH_BYTES} /dev/urandom > /payload
""",
}
# build args the user must pass by hand for a workload (dockerma adds them itself)
AUTO_ARGS = {"multistage": ("TARGETARCH",)}
CROSS_STAGE = {"multistage"}  # classic builder: no build-wide --platform (as dockerma does)


def user_dockerfile(name: str, base: str, buildplatform: str = "$BUILDPLATFORM") -> str:
    """Workload NAME as the user writes it: the base by tag."""
    return DOCKERFILES[name].format(FROM_TARGET=base, FROM_BUILD=base, BUILDPLATFORM=buildplatform)


def write_workload(bed: Bed, name: str) -> tuple[Path, dict[str, Path]]:
    """The user's context (Dockerfile with the tag) and the raw, pinned per-arch Dockerfiles."""
    ctx = bed.tmp / f"ctx-{name}"
    raw = bed.tmp / f"raw-{name}"
    ctx.mkdir(exist_ok=True)
    raw.mkdir(exist_ok=True)
    tpl = DOCKERFILES[name].replace("{PUSH_BYTES}", str(bed.push_mb * 1_000_000))
    (ctx / "Dockerfile").write_text(
        tpl.format(FROM_TARGET=bed.base, FROM_BUILD=bed.base, BUILDPLATFORM="$BUILDPLATFORM")
    )
    files = {}
    for suffix, _plat, _a, _v in ARCHS:
        f = raw / f"Dockerfile.{suffix}"
        f.write_text(
            tpl.format(
                FROM_TARGET=bed.pins[suffix],
                FROM_BUILD=bed.pins[HOST_SUFFIX],
                BUILDPLATFORM="linux/amd64",
            )
        )
        files[suffix] = f
    return ctx, files


def raw_build_argv(
    name: str, suffix: str, plat: str, tag: str, dockerfile: Path, ctx: Path, extra: list[str]
) -> list[str]:
    argv = ["docker", "build"]
    # The classic builder refuses COPY --from a stage of another platform under a build-wide
    # --platform: for such files dockerma drops it where a stage's platform differs from the
    # target (here: every foreign arch), and so does the user.
    if name not in CROSS_STAGE or suffix == HOST_SUFFIX:
        argv += ["--platform", plat]
    argv += ["-t", tag, "-f", str(dockerfile)]
    arch = plat.split("/")[1]
    for a in AUTO_ARGS.get(name, ()):
        if a == "TARGETARCH":
            argv += ["--build-arg", f"TARGETARCH={arch}"]
    return [*argv, *extra, str(ctx)]


def raw_build_argvs(
    name: str, files: dict[str, Path], ctx: Path, tags: list[str], extra: list[str]
) -> list[list[str]]:
    """The raw user's three `docker build`s, one per arch (in ARCHS order), each with its
    pinned Dockerfile; `tags` holds the per-arch tags, in the same order."""
    return [
        raw_build_argv(name, s, p, t, files[s], ctx, extra) for (s, p, *_), t in zip(ARCHS, tags)
    ]


def raw_push(bed: Bed, lst: str, per_arch: list[str]) -> float:
    """The raw user's push on the classic engine: `docker push` of the per-arch tags in
    parallel, then the list: `docker manifest rm` (failure ignored: a left-over local list would
    make create fail), `docker manifest create --insecure`, `docker manifest push --insecure
    --purge`; wall time. (No `docker manifest annotate`: create takes arm's v7 variant from the
    image.) The local list is removed again at clean-up should a push have failed."""
    env = bed.classic
    bed.ledger.manifests.add(lst)
    t0 = time.perf_counter()
    run_parallel(bed.tmp, [["docker", "push", r] for r in per_arch], env)
    run(bed.tmp, ["docker", "manifest", "rm", lst], env, check=False)
    run(bed.tmp, ["docker", "manifest", "create", "--insecure", lst, *per_arch], env)
    run(bed.tmp, ["docker", "manifest", "push", "--insecure", "--purge", lst], env)
    return time.perf_counter() - t0


def _compare_arch(
    lines: list[str], name: str, suffix: str, plat: str, dockerfile: Path, ctx: Path
) -> list[str]:
    """How dockerma's dry-run for one arch differs from the raw user's Dockerfile and flags."""
    try:
        start = next(i for i, x in enumerate(lines) if x.startswith(f"# {plat}: Dockerfile"))
        cmd_at = next(i for i, x in enumerate(lines) if x == f"# {plat}: command")
    except StopIteration:
        return [f"{plat}: dry-run output not understood"]
    problems = []
    rendered = "\n".join(lines[start + 1 : cmd_at]).strip()
    if rendered != dockerfile.read_text().strip():
        problems.append(f"{plat}: Dockerfile differs")
    cmd = shlex.split(lines[cmd_at + 1])
    dm_platform = "--platform" in cmd
    raw = raw_build_argv(name, suffix, plat, "t", dockerfile, ctx, [])
    if dm_platform != ("--platform" in raw):
        problems.append(f"{plat}: --platform {'set' if dm_platform else 'dropped'} by dockerma")
    dm_args = sorted(cmd[i + 1] for i, a in enumerate(cmd) if a == "--build-arg")
    raw_args = sorted(raw[i + 1] for i, a in enumerate(raw) if a == "--build-arg")
    if dm_args != raw_args:
        problems.append(f"{plat}: build args {dm_args} vs raw {raw_args}")
    return problems


def check_same_work(
    bed: Bed, name: str, ctx: Path, files: dict[str, Path], env: dict[str, str]
) -> str:
    """Compare the raw Dockerfiles and flags with `dockerma build --dry-run` (outside timing)."""
    text = capture([*bed.dockerma, "build", "--dry-run", "-t", "x/y:z", str(ctx)], env)
    lines = text.splitlines()
    problems = []
    for suffix, plat, _a, _v in ARCHS:
        problems += _compare_arch(lines, name, suffix, plat, files[suffix], ctx)
    return (
        "same Dockerfiles and flags as `dockerma build --dry-run`"
        if not problems
        else "DIFFERS: " + "; ".join(problems)
    )
