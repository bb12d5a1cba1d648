"""Planning a build: per architecture, the rendered Dockerfile and the docker build command;
the base images to look up first; what --dry-run shows."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dockerma.core import dockerfile, outputs
from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.engine import builders
from dockerma.engine.buildx import Builder
from dockerma.engine.docker import display
from dockerma.errors import DockermaError
from dockerma.flows import smoke
from dockerma.flows.inputs import STDIN, Inputs, Request, final_stage
from dockerma.options import BuildArgs
from dockerma.output import Output

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

Pinned = Mapping[tuple[str, Platform], str]  # (image, platform) -> the digest it is pinned to


@dataclass(frozen=True)
class Plan:
    platform: Platform
    dockerfile: Path
    argv: tuple[str, ...]
    iidfile: Path
    tags: tuple[str, ...]
    engine: builders.Engine
    scratch: str | None = None  # the empty base loaded before building (classic builder)
    image: bool = True  # an image lands in the engine (else only -o's files: nothing to check)
    user_iidfile: str | None = None  # the user's --iidfile, for this architecture


def base_images(
    inputs: Inputs, request: Request, engines: Mapping[Platform, builders.Engine]
) -> list[tuple[str, Platform]]:
    """Every (image, platform) the builds start from, to be pinned to a digest first."""
    needs = bases_by_target(inputs, request, engines)
    return list(dict.fromkeys(pair for pairs in needs.values() for pair in pairs))


def bases_by_target(
    inputs: Inputs, request: Request, engines: Mapping[Platform, builders.Engine]
) -> dict[Platform, list[tuple[str, Platform]]]:
    """Per target, every (image, platform) its build starts from."""
    needs: dict[Platform, list[tuple[str, Platform]]] = {}
    for p in inputs.targets:  # BUILDPLATFORM is each engine's own
        build = engines[p].info.platform
        pairs = needs.setdefault(p, [])
        for pair in dockerfile.external_images(
            inputs.df,
            build_args=request.args.build_args,
            targets=[p],
            build=build,
            contexts=build_contexts(request.args),
        ):
            if pair not in pairs:
                pairs.append(pair)
        build_files = (request.cross_build_image, build)  # its tools run on the host
        if request.inject is not None and build_files not in pairs:
            from dockerma.core import inject  # --strategy inject only: see inputs.read

            if inject.uses_build_files(
                inputs.df,
                target=p,
                build=build,
                build_args=request.args.build_args,
                cross_build_image=request.inject,
            ):
                pairs.append(build_files)
    return needs


def make(
    inputs: Inputs,
    request: Request,
    engine: builders.Engine,
    target: Platform,
    pinned: Pinned,
    tmp: Path,
) -> Plan:
    """One architecture's plan: its Dockerfile rendered into tmp, and its docker build."""
    args = request.args
    wide, stand_in = _platform_option(inputs.df, args, target, engine, request.inject)
    rendered = _render(inputs.df, args, target, engine.info.platform, pinned, stand_in, request)
    path = _write(tmp, target, rendered, inputs.dockerfile_path)
    iidfile = tmp / f"iid.{target.suffix}"
    per_arch = tuple(str(t.suffixed(target.suffix)) for t in inputs.tags)
    dests = outputs.per_arch(args.passthrough, target)
    load, image = _load(dests, engine.builder, bool(per_arch or inputs.smokes))
    argv = (
        "build",
        *wide,
        "-f",
        str(path),
        *([] if dests.iidfile_refused else ["--iidfile", str(iidfile)]),
        *_progress(engine.info.buildkit, args.passthrough, quiet=args.quiet),
        *_auto_args(inputs.df, args, target, engine.info.platform),
        *(["--builder", engine.builder.name] if engine.builder and engine.builder.name else []),
        *[x for t in per_arch for x in ("-t", t)],
        *(["--load"] if load else []),
        *dests.args,
        str(inputs.context),
    )
    user_iidfile = outputs.per_file(args.iidfile, target) if args.iidfile else None
    return Plan(target, path, argv, iidfile, per_arch, engine, stand_in, image, user_iidfile)


def _load(dests: outputs.Destinations, builder: Builder | None, tagged: bool) -> tuple[bool, bool]:
    """Whether to add --load, and whether an image lands in the engine (to check, smoke-test
    and push). Without -o the user wants the image; with -o to files too when tagged (buildx
    exports to both, 0.13+); without -t and with -o only the files. buildx's docker driver
    leaves the image in the engine by itself; any other driver only with --load."""
    wanted = not dests.outputs or tagged
    own = builder is None or builder.loads_itself
    there = dests.loads_image if own else dests.loads_with_any_driver
    load = wanted and not there
    return load, there or load


def _platform_option(
    df: dockerfile.Dockerfile,
    args: BuildArgs,
    target: Platform,
    engine: builders.Engine,
    cross_build_image: str | None,
) -> tuple[list[str], str | None]:
    """The build-wide --platform, and the empty base standing in for scratch (if any)."""
    build = engine.info.platform
    if engine.info.buildkit or not _cross_platform_stages(df, args, target, build):
        return ["--platform", target.docker], None
    # The classic builder refuses `COPY --from` a stage of another platform when a
    # build-wide --platform is set; without it each stage takes its pinned base's
    # platform, and a scratch stage (which would get the host's architecture: FROM
    # --platform= on scratch is ignored) starts from an empty image of the target's.
    if cross_build_image is None:
        # Imported only when needed: its tarball code is measurable in build's start-up.
        from dockerma.core import scratch

        return [], scratch.tag(target)
    if final_stage(df, args.target).base.lower() == "scratch":
        raise DockermaError(
            f"the classic builder cannot build {target} from this Dockerfile with "
            "--strategy inject: it mixes a FROM --platform stage with a FROM scratch final "
            "stage; use --strategy emulate or BuildKit (install docker-buildx)"
        )
    return [], None


def _render(
    df: dockerfile.Dockerfile,
    args: BuildArgs,
    target: Platform,
    build: Platform,
    pinned: Pinned,
    stand_in: str | None,
    request: Request,
) -> str:
    def pin(ref: str, p: Platform) -> str:
        return pinned[(ref, p)]

    contexts = build_contexts(args)
    if request.inject is None:
        return dockerfile.render(
            df,
            target=target,
            build=build,
            build_args=args.build_args,
            pin=pin,
            scratch=stand_in,
            contexts=contexts,
        )
    from dockerma.core import inject  # --strategy inject only: see inputs.read

    return inject.render(
        df,
        target=target,
        build=build,
        build_args=args.build_args,
        pin=pin,
        cross_build_image=request.inject,
        contexts=contexts,
    )


def build_contexts(args: BuildArgs) -> tuple[str, ...]:
    """The names `--build-context NAME=VALUE` gives: the user's own, never looked up or
    pinned (the classic builder refuses the option: see checks.builder)."""
    names: list[str] = []
    passthrough = args.passthrough
    for index, arg in enumerate(passthrough):
        if arg == "--build-context" and index + 1 < len(passthrough):
            value = passthrough[index + 1]
        elif arg.startswith("--build-context="):
            value = arg.partition("=")[2]
        else:
            continue
        name = value.partition("=")[0].strip()
        if name:
            names.append(name)
    return tuple(names)


def _write(tmp: Path, target: Platform, rendered: str, dockerfile_path: Path) -> Path:
    path = tmp / f"Dockerfile.{target.suffix}"
    path.write_text(rendered, encoding="utf-8")
    # BuildKit reads <Dockerfile>.dockerignore beside the Dockerfile before the context's.
    ignore = Path(f"{dockerfile_path}.dockerignore")
    if dockerfile_path != STDIN and ignore.is_file():
        shutil.copyfile(ignore, Path(f"{path}.dockerignore"))
    return path


def _auto_args(
    df: dockerfile.Dockerfile, args: BuildArgs, target: Platform, build: Platform
) -> list[str]:
    auto = {**target.buildargs("TARGET"), **build.buildargs("BUILD")}
    extra: list[str] = []
    for name in AUTO_ARGS:
        # Only the ones the Dockerfile declares: the classic builder warns about unused args.
        if name in df.declared_args and name not in args.build_args:
            extra += ["--build-arg", f"{name}={auto[name]}"]
    return extra


def _progress(buildkit: bool, passthrough: Sequence[str], *, quiet: bool = False) -> list[str]:
    """BuildKit's plain progress, for output lines dockerma can prefix; never with -q, which
    BuildKit refuses beside any --progress but quiet (-q is that mode already)."""
    if quiet or not buildkit:
        return []
    if any(a == "--progress" or a.startswith("--progress=") for a in passthrough):
        return []
    return ["--progress=plain"]


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


def show(
    out: Output, plans: Sequence[Plan], smokes: Sequence[str], pushed: Sequence[ImageRef]
) -> None:
    """--dry-run: each rendered Dockerfile and every docker command the run would make."""
    for plan in plans:
        docker = plan.engine.docker
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
        _show_push(out, plans, pushed)


def _show_push(out: Output, plans: Sequence[Plan], pushed: Sequence[ImageRef]) -> None:
    out.info("# once every build (and smoke test) succeeded: push")
    for plan in plans:
        for ref in pushed:
            tag = str(ref.suffixed(plan.platform.suffix))
            out.info(display(plan.engine.docker.argv(["push", tag])))
    for ref in pushed:
        target = ref.with_tag(ref.tag_or_latest)
        out.info(
            f"# then the manifest list {target} of these images is written to the "
            "registry, and read back to check it"
        )
    out.info("")
