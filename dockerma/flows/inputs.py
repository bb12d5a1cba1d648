"""What `dockerma build` was asked, and the inputs it reads and checks before any docker call:
the context, the Dockerfile, the architectures, the tags, the smoke tests."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dockerma.core import dockerfile, outputs
from dockerma.core.platforms import Platform, parse_list
from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError, UsageError
from dockerma.flows import metadata, smoke
from dockerma.options import BuildArgs

# -f -: the Dockerfile comes on stdin, as with docker build (the context stays a directory)
STDIN = Path("-")


@dataclass(frozen=True)
class Request:
    """`dockerma build`'s command line: docker build's arguments and dockerma's options."""

    args: BuildArgs
    platforms: str | None = None
    jobs: int | None = None
    strategy: str = "auto"
    cross_build_image: str = "monsonnl/qemu-wrap-build-files"
    dry_run: bool = False
    push: bool = False
    metadata_file: str | None = None
    smoke_tests: Sequence[str] = ()
    no_smoke_test: bool = False
    smoke_timeout: float = 120.0
    builder_specs: Sequence[str] = ()
    buildx_builder: str | None = None  # --builder NAME: buildx's, passed on to docker
    insecure: bool = False

    @property
    def inject(self) -> str | None:
        """The cross-build image with --strategy inject, else None."""
        return self.cross_build_image if self.strategy == "inject" else None


@dataclass(frozen=True)
class Inputs:
    """The build's inputs, read and checked."""

    context: Path
    dockerfile_path: Path
    df: dockerfile.Dockerfile
    targets: tuple[Platform, ...]
    tags: tuple[ImageRef, ...]
    smokes: tuple[str, ...]  # the Dockerfile's smoke tests, then --smoke-test's


def read(request: Request) -> Inputs:
    """Everything the builds will need, checked before the first docker call."""
    args = request.args
    context, dockerfile_path = _locate(args)
    df = dockerfile.parse(_read_dockerfile(dockerfile_path))
    targets = _targets(df, request.platforms, dockerfile_path)
    tags = tuple(_parse_tag(t, targets) for t in args.tags)
    smokes = () if request.no_smoke_test else (*df.smoke, *request.smoke_tests)
    for cmd in smokes:
        try:
            smoke.split(cmd)
        except DockermaError as e:
            raise (UsageError(f"--smoke-test: {e}") if cmd in request.smoke_tests else e) from None
    if args.target:
        final_stage(df, args.target)
    outputs.per_arch(args.passthrough, targets[0])  # its usage errors (-o -), before docker
    if request.metadata_file:
        metadata.check(request.metadata_file)
    if request.push and not tags:
        raise UsageError("--push needs at least one -t NAME[:TAG] to push")
    if request.inject is not None:
        # Imported here, as in plan.py: its import is measurable in build's start-up, and only
        # this strategy needs it.
        from dockerma.core import inject

        inject.check(targets, request.inject)
    return Inputs(context, dockerfile_path, df, tuple(targets), tags, smokes)


def _targets(df: dockerfile.Dockerfile, platforms: str | None, path: Path) -> list[Platform]:
    named = "the Dockerfile on stdin" if path == STDIN else str(path)
    try:
        targets = parse_list(platforms) if platforms is not None else list(df.archs or ())
    except DockermaError as e:
        raise UsageError(f"--platform {platforms!r}: {e}") from None
    if targets:
        return targets
    if df.late_archs:
        raise DockermaError(
            f"no architectures given: {named} {df.late_archs} comes after the "
            "first instruction, where it is not read; move it above the first FROM/ARG "
            "or pass --platform amd64,arm64"
        )
    raise DockermaError(
        f"no architectures given: add `# dockerma archs:amd64,arm64:` to {named} "
        "or pass --platform amd64,arm64"
    )


def _read_dockerfile(path: Path) -> str:
    if path == STDIN:
        data = sys.stdin.buffer.read() if sys.stdin is not None else b""  # None: fd 0 closed
        return _decode(data, "on stdin (-f -)")
    if path.is_dir():
        raise DockermaError(f"Dockerfile {path} is a directory; pass the file with -f")
    if path.exists() and not path.is_file():
        # A FIFO would block the read for ever; a device is no Dockerfile either.
        raise DockermaError(f"Dockerfile {path} is not a regular file; pass the file with -f")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DockermaError(f"Dockerfile not found: {path}; create it or point -f at it") from None
    except OSError as e:
        raise DockermaError(
            f"cannot read Dockerfile {path}: {e.strerror}; check its permissions"
        ) from None
    return _decode(data, str(path))


def _decode(data: bytes, where: str) -> str:
    if b"\0" in data:
        raise DockermaError(f"Dockerfile {where} is a binary file, not a Dockerfile; check -f")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DockermaError(
            f"Dockerfile {where} is not UTF-8 (byte {e.start}); save it as UTF-8"
        ) from None


def _locate(args: BuildArgs) -> tuple[Path, Path]:
    ctx = args.context
    if "://" in ctx or ctx.startswith("git@") or ctx == "-":
        raise UsageError(
            f"build context {ctx!r} is a URL or stdin; dockerma needs a local directory "
            "(clone or unpack it first)"
        )
    context = Path(ctx)
    if not context.exists():
        raise DockermaError(f"build context {ctx} does not exist; pass an existing directory")
    if not context.is_dir():
        raise DockermaError(f"build context {ctx} is not a directory; pass the directory")
    if args.file is None:
        return context, context / "Dockerfile"
    # docker resolves -f against the working directory, not the context (- is stdin).
    return context, Path(args.file)


def make_tmp() -> Path:
    # tempfile quietly falls back to /tmp when TMPDIR is unusable: a TMPDIR the user set is
    # where the rendered Dockerfiles go, or the run stops before anything is built.
    where = os.environ.get("TMPDIR") or None
    try:
        return Path(tempfile.mkdtemp(prefix="dockerma-", dir=where))
    except OSError as e:
        raise DockermaError(
            f"cannot create a temporary directory in {where or tempfile.gettempdir()}: "
            f"{e.strerror}; point TMPDIR at a writable directory"
        ) from None


def _parse_tag(text: str, targets: Sequence[Platform]) -> ImageRef:
    """A -t value, checked with every per-arch suffix it will get (a usage error if bad)."""
    if not text.strip():
        raise UsageError("-t needs NAME[:TAG], got an empty string")
    try:
        ref = ImageRef.parse(text if ":" in text.rsplit("/", 1)[-1] else f"{text}:latest")
        if ref.digest:
            raise DockermaError(f"-t {text}: a tag cannot carry a digest; use NAME[:TAG]")
        for p in targets:
            ref.suffixed(p.suffix)
    except DockermaError as e:
        raise UsageError(str(e)) from None
    return ref


def final_stage(df: dockerfile.Dockerfile, target: str | None) -> dockerfile.Stage:
    """The stage --target names (an error when there is none), else the last one."""
    if target:
        for st in df.stages:
            if st.alias == target.lower():
                return st
        raise DockermaError(f"--target {target}: no stage named {target} in the Dockerfile")
    return df.stages[-1]
