"""The command line: the `dockerma` group with docker's global options, `build` and `push`.

This is the only module that imports click, and the one place where errors become exit codes.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any, NoReturn

import click

from dockerma import __version__, output
from dockerma.engine import docker
from dockerma.engine.readahead import ReadAhead
from dockerma.errors import DockerError, DockermaError, Interrupted
from dockerma.output import printable

_SUBCOMMAND_SETTINGS: dict[str, Any] = {
    "ignore_unknown_options": True,
    "help_option_names": ["-h", "--help"],  # as docker's own commands (neither has an -h option)
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-v", "--version", prog_name="dockerma")
@click.option(
    "-H",
    "--host",
    "hosts",
    multiple=True,
    metavar="HOST",
    help="Docker daemon socket(s) to connect to.",
)
@click.option("-c", "--context", help="Name of the docker context to use.")
@click.option("--config", metavar="DIR", help="Location of the docker client config files.")
@click.option("-D", "--debug", is_flag=True, help="Debug output, and tracebacks on errors.")
@click.option(
    "-l",
    "--log-level",
    type=click.Choice(["debug", "info", "warn", "error", "fatal"]),
    help="docker's logging level.",
)
@click.option("--tls", is_flag=True, help="Use TLS; implied by --tlsverify.")
@click.option("--tlscacert", metavar="FILE", help="Trust certs signed only by this CA.")
@click.option("--tlscert", metavar="FILE", help="Path to TLS certificate file.")
@click.option("--tlskey", metavar="FILE", help="Path to TLS key file.")
@click.option("--tlsverify", is_flag=True, help="Use TLS and verify the remote.")
@click.pass_context
def cli(
    ctx: click.Context,
    hosts: tuple[str, ...],
    context: str | None,
    config: str | None,
    debug: bool,
    log_level: str | None,
    tls: bool,
    tlscacert: str | None,
    tlscert: str | None,
    tlskey: str | None,
    tlsverify: bool,
) -> None:
    """Multi-arch images with `docker build` and `docker push` as you know them.

    Name the architectures in the Dockerfile (`# dockerma archs:arm,amd64,arm64:`), then
    `dockerma build -t app:v1 .` builds app:v1-arm, app:v1-amd64, app:v1-arm64 and
    `dockerma push app:v1` publishes them with a manifest list app:v1.
    """
    options = docker.GlobalOptions(
        hosts=hosts,
        context=context,
        config=config,
        debug=debug,
        log_level=log_level,
        tls=tls,
        tlscacert=tlscacert,
        tlscert=tlscert,
        tlskey=tlskey,
        tlsverify=tlsverify,
    )
    ctx.obj = docker.Docker(options)
    if debug:
        output.debug_log()


# Options build and push share, word for word.
_SMOKE_TIMEOUT = click.option(
    "--smoke-timeout",
    type=click.FloatRange(min=0.1),
    default=120.0,
    show_default=True,
    help="Seconds a smoke test may run.",
)


def _docker(ctx: click.Context) -> docker.Docker:
    obj = ctx.find_object(docker.Docker)
    assert obj is not None
    return obj


def _read_ahead(ctx: click.Context, *calls: tuple[str, ...]) -> None:
    """Start the docker calls the flow makes first, now; the flow gets a Docker bound to them
    (its same calls take their results). The ones never taken stop when the command ends."""
    ahead = ReadAhead()
    ctx.call_on_close(ahead.drop)
    ctx.obj = _docker(ctx).with_read_ahead(ahead)
    for call in calls:
        ahead.start(ctx.obj, *call)


@cli.command(context_settings=_SUBCOMMAND_SETTINGS)
@click.option(
    "--platform",
    "--archs",
    "platforms",
    metavar="LIST",
    help="Architectures to build (comma separated); overrides the Dockerfile's comment.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    help="Build at most N architectures at once (default: all).",
)
@click.option(
    "--strategy",
    type=click.Choice(["auto", "emulate", "inject"]),
    default="auto",
    show_default=True,
    help="How foreign architectures are built.",
)
@click.option(
    "--cross-build-image",
    default="monsonnl/qemu-wrap-build-files",
    show_default=True,
    help="Image with the cross-build files for --strategy inject.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the rendered Dockerfiles and docker commands; build nothing.",
)
@click.option(
    "--push", is_flag=True, help="Push every tag (as `dockerma push`) once all builds succeeded."
)
@click.option(
    "--metadata-file",
    type=click.Path(dir_okay=False),
    help="Write per-architecture results as JSON.",
)
@click.option(
    "--smoke-test",
    "smoke_tests",
    multiple=True,
    metavar="CMD",
    help="Run CMD in every built image; a failure fails that architecture.",
)
@click.option(
    "--no-smoke-test", is_flag=True, help="Skip the smoke tests, also those of the Dockerfile."
)
@_SMOKE_TIMEOUT
@click.option(
    "--builder",
    "builder_specs",
    multiple=True,
    metavar="ARCH=ENDPOINT|NAME",
    help="Build ARCH on another docker engine (context name or DOCKER_HOST URL); a NAME "
    "alone is buildx's option: the buildx builder to use.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow plain HTTP or unverified TLS for the registry of the -t tags, and only it.",
)
@click.argument("docker_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def build(ctx: click.Context, /, docker_args: Sequence[str], **kwargs: Any) -> None:
    """Build one image per architecture: NAME:TAG-ARCH for every -t NAME:TAG.

    Every `docker build` option is accepted and passed on to each per-architecture build.
    Those naming where a build writes get one destination per architecture, as buildx lays
    out a multi-platform build: -o DIR -> DIR/linux_arm64/, dest=out.tar -> out-linux_arm64.tar,
    --cache-to/--cache-from REF -> REF-arm64, --iidfile iid -> iid-linux_arm64.
    """
    args = _parse_build(ctx, docker_args)  # a usage error never starts a build
    # --builder ARCH=ENDPOINT is dockerma's; --builder NAME is buildx's (the last one wins)
    specs = kwargs.pop("builder_specs")
    named = [s for s in specs if "=" not in s]
    kwargs["builder_specs"] = tuple(s for s in specs if "=" in s)
    kwargs["buildx_builder"] = named[-1] if named else None
    _read_ahead(ctx, docker.ENGINE_PROBE)  # runs while the imports below run
    from dockerma.flows import build as build_mod

    ctx.exit(build_mod.run(_docker(ctx), build_mod.Request(args, **kwargs)))


def _parse_build(ctx: click.Context, docker_args: Sequence[str]) -> Any:
    """docker build's arguments; an option outside the known ones is looked up in this
    docker's own `docker build --help` (the only docker call then) before it is refused."""
    from dockerma.core import build_options
    from dockerma.options import parse_build

    try:
        return parse_build(docker_args)
    except build_options.UnknownOptions:
        res = _docker(ctx).run("build", "--help")
        ours = [o for p in ctx.command.params for o in p.opts if o.startswith("-")]
        return parse_build(docker_args, docker_help=build_options.parse_help(res.stdout), ours=ours)


@cli.command(context_settings=_SUBCOMMAND_SETTINGS)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow plain HTTP or unverified TLS for NAME's registry, and only it.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    help="Push at most N architectures at once (default: all).",
)
@click.option(
    "--smoke-test",
    "smoke_tests",
    multiple=True,
    metavar="CMD",
    help="Run CMD in every local per-arch image before pushing.",
)
@_SMOKE_TIMEOUT
@click.option(
    "--builder",
    "builder_specs",
    multiple=True,
    metavar="ARCH=ENDPOINT",
    help="Find ARCH's image on another docker engine and push from there.",
)
@click.option(
    "--metadata-file", type=click.Path(dir_okay=False), help="Write the pushed digests as JSON."
)
@click.argument("docker_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def push(ctx: click.Context, /, docker_args: Sequence[str], **kwargs: Any) -> None:
    """Push NAME:TAG-ARCH images and a manifest list NAME:TAG.

    `docker push` options (-q, --disable-content-trust, -a) are accepted and passed on.
    """
    from dockerma.engine.images import push_probes
    from dockerma.options import parse_push

    parsed = parse_push(docker_args)  # a usage error never starts docker
    probes = push_probes(parsed.names[0], all_tags=parsed.all_tags)
    if probes:  # (none for a NAME push refuses: that usage error starts no docker either)
        _read_ahead(ctx, docker.ENGINE_PROBE, *probes)  # they run while the imports below run
    from dockerma.flows import push as push_mod

    ctx.exit(push_mod.run(_docker(ctx), list(docker_args), **kwargs))


# click ≥ 8.2 raises this for a group run without a command (older ones print the help and
# exit 0 by themselves); its message is the whole help, which one error line would mangle.
_NO_ARGS_IS_HELP: tuple[type[click.ClickException], ...] = tuple(
    c for c in (getattr(click.exceptions, "NoArgsIsHelpError", None),) if c is not None
)


# Handled alike: Ctrl-C, a process manager's stop, a closed terminal or dropped ssh session.
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # The children get SIGTERM here and then; the exception unwinds the main thread (its
    # finally blocks remove the temp files) to main, which waits for them to be gone.
    raising = docker.interrupt(signum)
    if raising is not None:
        raise Interrupted(raising)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point: runs the CLI and turns every error into one line and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = any(a in ("-D", "--debug") for a in args[: _first_command(args)])
    before = {s: signal.signal(s, _on_signal) for s in _SIGNALS}
    code = 1
    try:
        code = _run(args, debug)
    except Interrupted as e:  # raised again by a second signal while leaving: hurry
        code = _interrupted(e.exit_code, e.signum)
    if argv is None:
        # The work is done: every docker child was waited for (or stopped, when interrupted)
        # and the temporary files are gone. Leave without the interpreter's clean-up, which
        # frees every module one by one (a cost on every run) and, after an interruption,
        # would wait for worker threads still blocked on a registry.
        if not output.flush():  # `dockerma build … | head`: the reader went away
            code = code or 1
        os._exit(code)
    for signum, handler in before.items():  # in-process (the tests): as they were
        signal.signal(signum, handler)
    docker.reset_interruption()
    output.flush()
    sys.exit(code)


def _run(args: list[str], debug: bool) -> int:
    try:
        return cli.main(args, prog_name="dockerma", standalone_mode=False) or 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        if isinstance(e, _NO_ARGS_IS_HELP):
            # `dockerma` alone: the help as docker prints its own, with click's usage code.
            output.boundary(e.format_message())
        else:
            # One `dockerma: error:` line for click's own errors too, as for dockerma's.
            message = " ".join(e.format_message().split("\n"))
            if isinstance(e, click.UsageError) and e.ctx is not None:
                message += f" (see {e.ctx.command_path} --help)"
            output.boundary(f"dockerma: error: {message}")
        return e.exit_code
    except Interrupted as e:
        return _interrupted(e.exit_code, e.signum)
    except (click.Abort, KeyboardInterrupt):  # a SIGINT before the handler was in place
        return _interrupted(130, signal.SIGINT)
    except DockermaError as e:
        if debug:
            output.traceback_now()
            if isinstance(e, DockerError):
                output.boundary(e.details())
        output.boundary(f"dockerma: error: {e}")
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - the one boundary where everything becomes an exit code
        if debug:
            output.traceback_now()
        output.boundary(
            f"dockerma: error: unexpected {type(e).__name__}: {printable(str(e))} (rerun with "
            "--debug for a traceback and report it)"
        )
        return 1


def _interrupted(code: int, signum: int) -> int:
    """Every docker child stopped (and waited for) before the one line that says so."""
    docker.terminate_children(final=True)
    name = signal.Signals(signum).name
    left = docker.running_children()
    if left:
        output.boundary(f"dockerma: interrupted ({name}); {left} docker processes still ran")
    else:
        output.boundary(f"dockerma: interrupted ({name}); stopped every docker process")
    return code


def _first_command(args: Sequence[str]) -> int:
    for i, a in enumerate(args):
        if a in ("build", "push"):
            return i
    return len(args)
