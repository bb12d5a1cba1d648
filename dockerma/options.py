"""docker's own command-line options: which take a value, and where the context PATH is.

click cannot know docker's options, so `build` and `push` take them UNPROCESSED and this
module splits them: a table of the options that take a value tells an option's value from
the context argument (`--build-arg X=1 -t img .` has `.` as its context, not `X=1`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dockerma.core import build_options
from dockerma.errors import UsageError

# `docker build` / `docker buildx build` options that take a value (docker CLI 20.10–28).
BUILD_VALUE_OPTIONS = frozenset(
    [
        "--add-host",
        "--allow",
        "--annotation",
        "--attest",
        "--build-arg",
        "--build-context",
        "--builder",
        "--cache-from",
        "--cache-to",
        "--call",
        "--cgroup-parent",
        "--cpu-period",
        "--cpu-quota",
        "-c",
        "--cpu-shares",
        "--cpuset-cpus",
        "--cpuset-mems",
        "-f",
        "--file",
        "--iidfile",
        "--isolation",
        "--label",
        "-m",
        "--memory",
        "--memory-swap",
        "--metadata-file",
        "--network",
        "--no-cache-filter",
        "-o",
        "--output",
        "--platform",
        "--progress",
        "--provenance",
        "--sbom",
        "--secret",
        "--security-opt",
        "--shm-size",
        "--ssh",
        "-t",
        "--tag",
        "--target",
        "--ulimit",
    ]
)

PUSH_VALUE_OPTIONS = frozenset({"--platform"})

# Global docker options: valid only before the sub-command, as with docker itself.
GLOBAL_OPTIONS = frozenset(
    [
        "-H",
        "--host",
        "--context",
        "--config",
        "-D",
        "--debug",
        "-l",
        "--log-level",
        "--tls",
        "--tlscacert",
        "--tlscert",
        "--tlskey",
        "--tlsverify",
    ]
)


@dataclass(frozen=True)
class BuildArgs:
    """`docker build` arguments, split into what dockerma reads and what it passes on."""

    context: str
    tags: tuple[str, ...]
    file: str | None
    build_args: Mapping[str, str]
    passthrough: tuple[str, ...]
    target: str | None = None
    quiet: bool = False
    iidfile: str | None = None  # written per architecture (core.outputs.per_file)


def _split(opt: str) -> tuple[str, str | None]:
    if opt.startswith("--") and "=" in opt:
        name, _, value = opt.partition("=")
        return name, value
    return opt, None


def check_no_global(args: Sequence[str], command: str) -> None:
    for arg in args:
        name, _ = _split(arg)
        if name in GLOBAL_OPTIONS and name not in ("-c",):
            raise UsageError(
                f"{name} is a global docker option and goes before the sub-command: "
                f"dockerma {name} … {command} …"
            )


@dataclass
class _Build:
    """What parse_build has read so far."""

    env: Mapping[str, str]
    positional: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    passthrough: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    file: str | None = None
    target: str | None = None
    quiet: bool = False
    iidfile: str | None = None

    def option(self, name: str, value: str) -> None:
        """One option that takes a value."""
        if name in ("-t", "--tag"):
            self.tags.append(value)
        elif name in ("-f", "--file"):
            self.file = value
        elif name == "--iidfile":
            self.iidfile = value  # dockerma passes its own to docker, and writes this one
        else:
            if name == "--build-arg":
                key, sep, val = value.partition("=")
                if sep:
                    self.build_args[key] = val
                elif key in self.env:  # docker takes `--build-arg NAME` from the environment
                    self.build_args[key] = self.env[key]
            elif name == "--target":
                self.target = value
            self.passthrough += [name, value]

    def flag(self, arg: str) -> None:
        if _split(arg)[0] in ("-q", "--quiet"):
            self.quiet = True
        self.passthrough.append(arg)

    def context(self) -> str:
        if not self.positional:
            raise UsageError(
                "no build context given; pass the context directory last, e.g. dockerma build -t "
                "app ."
            )
        if len(self.positional) > 1:
            raise UsageError(
                f"expected one build context, got {len(self.positional)}: "
                f"{' '.join(self.positional)}; quote option values that contain spaces"
            )
        return self.positional[0]


def _name_value(arg: str) -> tuple[str, str | None]:
    """An option's name, and its value when attached (--tag=x, and -tname:tag, -fDockerfile)."""
    name, value = _split(arg)
    if value is None and len(name) > 2 and not name.startswith("--") and name[:2] in ("-t", "-f"):
        return name[:2], name[2:]
    return name, value


def parse_build(
    args: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    docker_help: Mapping[str, bool] | None = None,
    ours: Sequence[str] = (),
) -> BuildArgs:
    """Find the context, tags, -f and --build-arg values among docker build's arguments.

    An option outside build_options' tables and outside docker_help (this docker's own
    `docker build --help`, when given) raises UnknownOptions, whose "did you mean" also
    looks among ours (dockerma's own options)."""
    check_no_global(args, "build")
    seen = _Build(os.environ if environ is None else environ)
    help_ = docker_help or {}
    value_options = BUILD_VALUE_OPTIONS | {name for name, takes in help_.items() if takes}
    names: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            seen.positional.extend(args[i + 1 :])
            break
        name, value = _name_value(arg)
        if not arg.startswith("-") or arg == "-":
            seen.positional.append(arg)
            i += 1
            continue
        names.append(name)
        if name not in value_options:
            seen.flag(arg)
        elif value is not None:
            seen.option(name, value)
        elif i + 1 < len(args):
            i += 1
            seen.option(name, args[i])
        else:
            raise UsageError(f"option {name} needs a value")
        i += 1
    unknown = build_options.unknown(names, docker_help)
    if unknown:  # before the context's errors: a misspelt option's value reads as one
        raise build_options.UnknownOptions(unknown, [*build_options.KNOWN, *help_, *ours])
    return BuildArgs(
        context=seen.context(),
        tags=tuple(seen.tags),
        file=seen.file,
        build_args=seen.build_args,
        passthrough=tuple(seen.passthrough),
        target=seen.target,
        quiet=seen.quiet,
        iidfile=seen.iidfile,
    )


@dataclass(frozen=True)
class PushArgs:
    names: tuple[str, ...]
    passthrough: tuple[str, ...]
    all_tags: bool
    quiet: bool


def parse_push(args: Sequence[str]) -> PushArgs:
    check_no_global(args, "push")
    names: list[str] = []
    passthrough: list[str] = []
    all_tags = quiet = False
    i = 0
    while i < len(args):
        arg = args[i]
        name, value = _split(arg)
        if not arg.startswith("-"):
            names.append(arg)
        elif name in ("-a", "--all-tags"):
            all_tags = True
        elif name in PUSH_VALUE_OPTIONS and value is None:
            passthrough += [arg, args[i + 1]] if i + 1 < len(args) else [arg]
            i += 1
        else:
            if name in ("-q", "--quiet"):
                quiet = True
            passthrough.append(arg)
        i += 1
    if len(names) != 1:
        raise UsageError(
            f"expected one image name, got {len(names)}; usage: dockerma push NAME[:TAG]"
        )
    last = names[0].rsplit("/", 1)[-1]
    if all_tags and ":" in last and "@" not in last:
        # docker's rule too: -a pushes every tag of a repository
        raise UsageError(
            f"{names[0]}: a tag can't be used with --all-tags/-a; push the repository: "
            f"dockerma push -a {names[0].rsplit(':', 1)[0]}"
        )
    return PushArgs(tuple(names), tuple(passthrough), all_tags, quiet)
