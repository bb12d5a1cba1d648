"""Build orchestration: checks first, then one docker build per platform, in parallel."""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dockerma.core import dockerfile
from dockerma.core.platforms import Platform, parse_list
from dockerma.core.references import ImageRef
from dockerma.engine import builders, images
from dockerma.engine import probe as engine
from dockerma.engine.docker import Docker, display
from dockerma.errors import DockerError, DockermaError, UsageError
from dockerma.flows import smoke
from dockerma.flows.results import ArchResult
from dockerma.options import BuildArgs, parse_build
from dockerma.output import Output
from dockerma.parallel import run_each

# inject, metadata, scratch and push are imported where an option or Dockerfile needs them:
# every module imported here is paid for before the first docker build starts.
from dockerma.registry import bases as baseimages
from dockerma.registry.client import Registry

if TYPE_CHECKING:
    from dockerma.flows.push import Lookups

AUTO_ARGS = (
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
)


@dataclass(frozen=True)
class Plan:
    platform: Platform
    dockerfile: Path
    argv: tuple[str, ...]
    iidfile: Path
    tags: tuple[str, ...]
    node: builders.Node
    scratch: str | None = None  # the empty base loaded before building (classic builder)


def _show_plans(
    out: Output, plans: Sequence[Plan], smokes: Sequence[str], pushed: Sequence[ImageRef]
) -> None:
    """--dry-run: each rendered Dockerfile and every docker command the run would make."""
    for plan in plans:
        docker = plan.node.docker
        out.info(f"# {plan.platform}: {plan.dockerfile.name}")
        out.info(plan.dockerfile.read_text().rstrip("\n"))
        # (the build command right after this header: scripts read it there)
        out.info(f"# {plan.platform}: command")
        out.info(display(docker.argv(plan.argv)))
        if plan.scratch is not None:
            out.info(
                f"# {plan.platform}: before the build, when {plan.scratch} is missing "
                "(the empty base for FROM scratch, made by dockerma)"
            )
            out.info(display(docker.argv(["load"])))
        if smokes:  # run in the image just built, by id; shown by its first tag
            out.info(f"# {plan.platform}: smoke tests, after the build")
            image = plan.tags[0] if plan.tags else "IMAGE-ID"
            for cmd in smokes:
                args = smoke.docker_args(image, plan.platform, cmd, smoke.container_name())
                out.info(display(docker.argv(args)))
        out.info("")
    if pushed:
        out.info("# once every build (and smoke test) succeeded: push")
        for plan in plans:
            for ref in pushed:
                tag = str(ref.suffixed(plan.platform.suffix))
                out.info(display(plan.node.docker.argv(["push", tag])))
        for ref in pushed:
            target = ref.with_tag(ref.tag_or_latest)
            out.info(
                f"# then the manifest list {target} of these images is written to the "
                "registry, and read back to check it"
            )
        out.info("")


# -f -: the Dockerfile comes on stdin, as with docker build (the context stays a directory)
STDIN = Path("-")


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


def _make_tmp() -> Path:
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


def run(
    docker: Docker,
    docker_args: Sequence[str],
    *,
    platforms: str | None = None,
    jobs: int | None = None,
    strategy: str = "auto",
    cross_build_image: str = "monsonnl/qemu-wrap-build-files",
    dry_run: bool = False,
    push: bool = False,
    metadata_file: str | None = None,
    smoke_tests: Sequence[str] = (),
    no_smoke_test: bool = False,
    smoke_timeout: float = 120.0,
    builder_specs: Sequence[str] = (),
    insecure: bool = False,
) -> int:
    args = parse_build(docker_args)
    out = Output(quiet=False)
    context, dockerfile_path = _locate(args)
    df = dockerfile.parse(_read_dockerfile(dockerfile_path))
    named = "the Dockerfile on stdin" if dockerfile_path == STDIN else str(dockerfile_path)
    try:
        targets = parse_list(platforms) if platforms is not None else list(df.archs or ())
    except DockermaError as e:
        raise UsageError(f"--platform {platforms!r}: {e}") from None
    if not targets:
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
    tags = [_parse_tag(t, targets) for t in args.tags]
    # Everything the builds will need is checked before the first one starts.
    for cmd in () if no_smoke_test else (*df.smoke, *smoke_tests):
        try:
            smoke.split(cmd)
        except DockermaError as e:
            raise (UsageError(f"--smoke-test: {e}") if cmd in smoke_tests else e) from None
    if args.target:
        _final_stage(df, args.target)
    if metadata_file:
        from dockerma.flows import metadata

        metadata.check(metadata_file)
    if push and not tags:
        raise UsageError("--push needs at least one -t NAME[:TAG] to push")
    if strategy == "inject":
        from dockerma.core import inject

        inject.check(targets, cross_build_image)

    info, nodes = builders.connect(docker, builders.parse(builder_specs), targets)
    for warning in [*builders.unused(builder_specs, targets), *builders.mismatches(nodes)]:
        out.warn(warning)
    for p, node in nodes.items():
        _check_builder(node.info, [p], args)
        # binfmt_misc can only be read for the local engine's kernel.
        native = engine.runs_natively(p, node.info.platform)
        # inject runs foreign shells through the cross-build image's QEMU, not binfmt_misc.
        emulated = strategy != "inject" and not native
        if not dry_run and node.local and emulated and not engine.emulation_available(p):
            raise DockermaError(engine.emulation_hint(p))

    if insecure and not tags:
        out.warn("--insecure applies to the registry of the -t tags; without -t it does nothing")
    registry = Registry(
        config_dir=docker.options.config,
        # --insecure is for the registry the run pushes to, never for the base images.
        insecure=[t.registry for t in tags] if insecure else (),
        insecure_registries=info.insecure_registries,
        on_retry=out.warn,
        on_warning=out.warn,
    )
    try:
        pairs: list[tuple[str, Platform]] = []
        for p in targets:  # BUILDPLATFORM is each engine's own
            for pair in dockerfile.external_images(
                df, build_args=args.build_args, targets=[p], build=nodes[p].info.platform
            ):
                if pair not in pairs:
                    pairs.append(pair)
            build_files = (cross_build_image, nodes[p].info.platform)  # its tools run on the host
            if (
                strategy == "inject"
                and build_files not in pairs
                and inject.uses_build_files(
                    df,
                    target=p,
                    build=nodes[p].info.platform,
                    build_args=args.build_args,
                    cross_build_image=cross_build_image,
                )
            ):
                pairs.append(build_files)
        with ThreadPoolExecutor(max_workers=len(tags) or 1) as pool:
            # A missing login shows now, not after the builds; asked beside the base look-ups.
            checks = [
                pool.submit(registry.check_push_access, t) for t in tags if push and not dry_run
            ]
            pinned = baseimages.resolve(registry, pairs)
            for check in checks:
                check.result()

        smokes = [] if no_smoke_test else [*df.smoke, *smoke_tests]
        labels = [p.suffix for p in targets]
        out.set_labels(labels)
        tmp = _make_tmp()
        try:
            plans = [
                _plan(
                    nodes[p],
                    df,
                    args,
                    p,
                    pinned,
                    tmp,
                    context,
                    dockerfile_path,
                    tags,
                    cross_build_image if strategy == "inject" else None,
                )
                for p in targets
            ]
            if dry_run:
                _show_plans(out, plans, smokes, tags if push else [])
                return 0

            # build --push without smoke tests checks every image's platform after the last build,
            # in one docker call that is also the last look before pushing (see publish's recheck).
            deferred = push and not smokes

            # What the registry holds is read while the last builds run (from the moment the
            # first one is done: earlier, the reads would slow the builds' start): after a
            # warm build, nothing is left to wait for but the push. (The push module is
            # imported then too, not before the builds.)
            ahead: list[tuple[float, Lookups]] = []
            ahead_lock = threading.Lock()

            def work(plan: Plan) -> ArchResult:
                result = _build_one(plan, out, smokes, smoke_timeout, check=not deferred)
                if push and result.ok:
                    with ahead_lock:
                        if not ahead:
                            from dockerma.flows import push as push_mod

                            lookups = push_mod.Lookups(registry, tags, targets)
                            ahead.append((time.monotonic(), lookups))
                return result

            outcomes = run_each(plans, work, jobs=jobs)
            results: list[ArchResult] = []
            for o in outcomes:
                if o.value is not None:
                    results.append(o.value)
                else:
                    results.append(
                        ArchResult(o.item.platform, list(o.item.tags), error=str(o.error))
                    )
            lookups = ahead[0][1] if ahead else None
            fresh = lookups is not None and time.monotonic() - ahead[0][0] <= 1
            if lookups is not None and not fresh:
                # The last build took a while longer: what the registry held may have changed.
                # (Such builds made new images: the reads run beside the docker inspect.)
                from dockerma.flows import push as push_mod

                lookups.settle()
                lookups = push_mod.Lookups(registry, tags, targets)
            if deferred:

                def known(r: ArchResult) -> Platform | None:
                    # A warm rebuild of what the registry holds: its config there (checked
                    # against the image id, the config digest on the classic store) tells
                    # the platform without a docker call.
                    if not fresh or lookups is None or nodes[r.platform].info.containerd_store:
                        return None
                    return lookups.own_platform(r.platform, r.image_id)

                _check_built(results, out, known)
            _summary(
                out,
                results,
                bool(smokes),
                bool(builder_specs) or any(not n.local for n in nodes.values()),
            )
            failed = [r for r in results if not r.ok]
            if failed and lookups is not None:
                lookups.settle()  # none of its reads may log after the error line
            lists: dict[str, str] = {}
            if not failed and push:
                from dockerma.flows import push as push_mod

                lists = push_mod.publish(
                    {p: n.docker for p, n in nodes.items()},
                    out,
                    tags,
                    {r.platform: r for r in results},
                    registry=registry,
                    jobs=jobs,
                    passthrough=("--quiet",) if args.quiet else (),
                    recheck=not deferred,
                    lookups=lookups,
                )
            if metadata_file:
                from dockerma.flows import metadata

                metadata.write(metadata_file, results, lists)
            if failed:
                names = ", ".join(f"{r.platform} ({r.error or r.result})" for r in failed)
                hint = ""
                if any(not all(s.passed for s in r.smoke) for r in failed):
                    first = failed[0]
                    hint = (
                        "; the images stay local for a look: docker run --rm -it --platform "
                        f"{first.platform} {first.tags[0] if first.tags else first.image_id} sh"
                    )
                if push:
                    hint += "; nothing was pushed"
                raise DockermaError(
                    f"{len(failed)} of {len(results)} architectures failed: {names}{hint}"
                )
            return 0
        except BaseException:
            from dockerma.engine.docker import terminate_children

            terminate_children()
            raise
        finally:
            if docker.options.debug:
                out.warn(f"rendered Dockerfiles kept in {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)

    finally:
        registry.finish()  # the probe upload's cancellation, if still under way


BUILDKIT_ONLY = (
    "--provenance",
    "--sbom",
    "--attest",
    "--cache-to",
    "--build-context",
    "--secret",
    "--ssh",
    "--output",
    "-o",
    "--annotation",
    "--call",
    "--check",
    "--allow",
)


def _check_builder(info: engine.EngineInfo, targets: Sequence[Platform], args: BuildArgs) -> None:
    if info.buildkit:
        return
    for arg in args.passthrough:
        name = arg.split("=", 1)[0]
        if name in BUILDKIT_ONLY:
            raise UsageError(
                f"{name} needs BuildKit, but this docker uses the legacy builder; install the "
                "buildx plugin (docker-buildx) and unset DOCKER_BUILDKIT=0, or drop the option"
            )
    foreign = [p for p in targets if not engine.runs_natively(p, info.platform)]
    if info.containerd_store and foreign:
        # moby/moby#47823: the legacy builder on the containerd image store ignores
        # --platform and silently builds the host's architecture.
        raise DockermaError(
            f"the legacy builder on the containerd image store cannot build {foreign[0]} "
            "(it ignores --platform, moby/moby#47823); use BuildKit: install the buildx plugin "
            "(docker-buildx) and unset DOCKER_BUILDKIT=0"
        )


def _plan(
    node: builders.Node,
    df: dockerfile.Dockerfile,
    args: BuildArgs,
    target: Platform,
    pinned: dict[tuple[str, Platform], str],
    tmp: Path,
    context: Path,
    dockerfile_path: Path,
    tags: Sequence[ImageRef],
    cross_build_image: str | None = None,  # --strategy inject
) -> Plan:
    build_platform = node.info.platform
    buildkit = node.info.buildkit
    wide = ["--platform", target.docker]
    stand_in: str | None = None
    if not buildkit and _cross_platform_stages(df, args, target, build_platform):
        # The classic builder refuses `COPY --from` a stage of another platform when a
        # build-wide --platform is set; without it each stage takes its pinned base's
        # platform, and a scratch stage (which would get the host's architecture: FROM
        # --platform= on scratch is ignored) starts from an empty image of the target's.
        wide = []
        if cross_build_image is None:
            from dockerma.core import scratch

            stand_in = scratch.tag(target)
        elif _final_stage(df, args.target).base.lower() == "scratch":
            raise DockermaError(
                f"the classic builder cannot build {target} from this Dockerfile with "
                "--strategy inject: it mixes a FROM --platform stage with a FROM scratch final "
                "stage; use --strategy emulate or BuildKit (install docker-buildx)"
            )
    if cross_build_image is None:
        render: Callable[..., str] = functools.partial(dockerfile.render, scratch=stand_in)
    else:
        from dockerma.core import inject

        render = functools.partial(inject.render, cross_build_image=cross_build_image)
    rendered = render(
        df,
        target=target,
        build=build_platform,
        build_args=args.build_args,
        pin=lambda ref, p: pinned[(ref, p)],
    )
    path = tmp / f"Dockerfile.{target.suffix}"
    path.write_text(rendered, encoding="utf-8")
    # BuildKit reads <Dockerfile>.dockerignore beside the Dockerfile before the context's.
    ignore = Path(f"{dockerfile_path}.dockerignore")
    if dockerfile_path != STDIN and ignore.is_file():
        shutil.copyfile(ignore, Path(f"{path}.dockerignore"))
    iidfile = tmp / f"iid.{target.suffix}"
    auto = {**target.buildargs("TARGET"), **build_platform.buildargs("BUILD")}
    extra: list[str] = []
    for name in AUTO_ARGS:
        # Only the ones the Dockerfile declares: the classic builder warns about unused args.
        if name in df.declared_args and name not in args.build_args:
            extra += ["--build-arg", f"{name}={auto[name]}"]
    progress: list[str] = []
    if buildkit and not any(
        a == "--progress" or a.startswith("--progress=") for a in args.passthrough
    ):
        progress = ["--progress=plain"]
    per_arch = tuple(str(t.suffixed(target.suffix)) for t in tags)
    argv = (
        "build",
        *wide,
        "-f",
        str(path),
        "--iidfile",
        str(iidfile),
        *progress,
        *extra,
        *[x for t in per_arch for x in ("-t", t)],
        *args.passthrough,
        str(context),
    )
    return Plan(target, path, argv, iidfile, per_arch, node, stand_in)


def _cross_platform_stages(
    df: dockerfile.Dockerfile, args: BuildArgs, target: Platform, build: Platform
) -> bool:
    return any(
        st.platform_flag
        and not dockerfile.stage_platform(
            df, st, build_args=args.build_args, target=target, build=build
        ).matches(target)
        for st in df.stages
    )


def _final_stage(df: dockerfile.Dockerfile, target: str | None) -> dockerfile.Stage:
    if target:
        for st in df.stages:
            if st.alias == target.lower():
                return st
        raise DockermaError(f"--target {target}: no stage named {target} in the Dockerfile")
    return df.stages[-1]


def _build_one(
    plan: Plan, out: Output, smokes: Sequence[str], smoke_timeout: float, *, check: bool = True
) -> ArchResult:
    """One architecture's build; with check (else the caller's _check_built), its platform
    check and smoke tests."""
    docker = plan.node.docker
    label = plan.platform.suffix
    result = ArchResult(
        plan.platform, list(plan.tags), engine=plan.node.endpoint, docker=plan.node.docker
    )
    start = time.monotonic()
    try:
        if plan.scratch is not None:
            from dockerma.core import scratch

            scratch.ensure(docker, plan.platform)
        docker.stream(
            *plan.argv, on_line=lambda line: out.line(label, line), platform=str(plan.platform)
        )
        result.image_id = plan.iidfile.read_text().strip() if plan.iidfile.is_file() else ""
        if check:
            _check_platform(result, _inspect_built(docker, [result])[0], out)
        for cmd in smokes:
            res = smoke.run(
                docker,
                result.image_id,
                plan.platform,
                cmd,
                timeout=smoke_timeout,
                on_line=lambda line: out.line(label, line),
            )
            result.smoke.append(res)
            out.line(label, f"smoke test {cmd!r}: {res.describe()}")
    except (DockermaError, OSError) as e:
        result.error = str(e)
        out.line(label, f"FAILED: {e}")
    result.seconds = time.monotonic() - start
    return result


def _inspect_built(docker: Docker, results: Sequence[ArchResult]) -> list[tuple[str, Platform]]:
    # Inspected by tag: on the containerd store with --provenance=false the --iidfile holds
    # the config digest, which is not an image id there. [] for each a docker says nothing of.
    refs = [r.tags[0] if r.tags else r.image_id for r in results]
    if not all(refs):
        return [("", Platform("", "", ""))] * len(results)
    found = images.inspect_platforms(docker, refs)
    return found if len(found) == len(refs) else [("", Platform("", "", ""))] * len(results)


def _check_platform(result: ArchResult, found: tuple[str, Platform], out: Output) -> None:
    """Record what the image just built is; refuse (and untag) one of another platform."""
    image_id, actual = found
    if not actual.arch:
        # Only a docker that is not docker (a wrapper, a stub) says nothing here.
        out.line(
            result.platform.suffix,
            f"warning: docker told nothing about the image built for "
            f"{result.platform}; its platform was not checked",
        )
        return
    result.image_id = image_id
    if not images.same_platform(actual, result.platform):
        if result.tags:  # never leave a tag on an image of the wrong architecture
            result.docker.run("image", "rm", "--no-prune", *result.tags)
        raise images.mismatch(f"the image built for {result.platform}", actual, result.platform)
    result.actual = actual


def _check_built(
    results: Sequence[ArchResult],
    out: Output,
    known: Callable[[ArchResult], Platform | None] = lambda r: None,
) -> None:
    """The platform checks of builds that left them to the end (build --push without smoke
    tests), right before the push: by known(result), the platform the registry's copy of the
    very same image records, else one docker image inspect per engine for all the others."""
    by_engine: dict[Docker, list[ArchResult]] = {}
    for r in results:
        if not r.ok:
            continue
        platform = known(r)
        if platform is not None:
            try:
                _check_platform(r, (r.image_id, platform), out)
            except DockermaError as e:
                r.error = str(e)
                out.line(r.platform.suffix, f"FAILED: {e}")
        else:
            by_engine.setdefault(r.docker, []).append(r)
    for docker, group in by_engine.items():
        try:
            found = _inspect_built(docker, group)
        except DockermaError:  # one is gone (deleted meanwhile?): find out which, one by one
            found = []
        for i, r in enumerate(group):
            try:
                try:
                    one = found[i] if found else _inspect_built(docker, [r])[0]
                except DockerError:
                    raise DockermaError(
                        f"{r.tags[0] if r.tags else r.image_id} is no longer in the docker "
                        "engine (deleted since the build?); build again"
                    ) from None
                _check_platform(r, one, out)
            except DockermaError as e:
                r.error = str(e)
                out.line(r.platform.suffix, f"FAILED: {e}")


def _summary(
    out: Output, results: Sequence[ArchResult], with_smoke: bool, with_engine: bool
) -> None:
    headers = ["ARCH", "PLATFORM", "TAGS", "IMAGE ID", "TIME", "RESULT"]
    if with_smoke:
        headers.insert(5, "SMOKE")
    if with_engine:
        headers.insert(2, "ENGINE")
    rows = []
    for r in results:
        row = [
            r.platform.suffix,
            str(r.platform),
            " ".join(r.tags) or "-",
            r.image_id.removeprefix("sha256:")[:12] or "-",
            f"{r.seconds:.1f}s",
            r.result,
        ]
        if with_smoke:
            row.insert(5, ", ".join(s.describe() for s in r.smoke) or "-")
        if with_engine:
            row.insert(2, r.engine)
        rows.append(row)
    out.info("")
    out.table(headers, rows)
