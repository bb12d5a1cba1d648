"""One `docker buildx bake` for every architecture: per-arch `docker build` argvs turned into
bake targets, and bake's plain progress lines handed back to their architecture.

On BuildKit every `docker build` pays a fixed start (the CLI's plugin calls, gRPC round trips,
the session); one bake with a target per architecture pays it once, as
`docker buildx build --platform a,b,c` does, while each target keeps its own rendered
Dockerfile, platform, tags and options. Only options with a known bake field are translated;
any other makes `target` answer None, and the build runs one `docker build` per architecture.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Target = dict[str, Any]

# docker build options whose value goes into a list field of the bake target
_LISTS = {
    "--cache-from": "cache-from",
    "--cache-to": "cache-to",
    "--secret": "secret",
    "--ssh": "ssh",
    "-o": "output",
    "--output": "output",
    "--no-cache-filter": "no-cache-filter",
    "-t": "tags",
    "--tag": "tags",
    "--platform": "platforms",
}
# ... into a string field
_STRINGS = {
    "-f": "dockerfile",
    "--file": "dockerfile",
    "--target": "target",
    "--network": "network",
}
# ... into a map field (NAME=VALUE)
_MAPS = {"--build-arg": "args", "--label": "labels", "--build-context": "contexts"}
# flags (no value) that are bake fields
_FLAGS = {"--no-cache": "no-cache", "--pull": "pull"}


@dataclass(frozen=True)
class Globals:
    """What applies to the whole bake, not one target: the builder, the progress mode;
    iidfiles: where each target's image id goes (bake has no --iidfile)."""

    builder: str | None = None
    progress: str | None = None
    iidfiles: tuple[str, ...] = ()


def _split(arg: str) -> tuple[str, str | None]:
    if arg.startswith("--") and "=" in arg:
        name, _, value = arg.partition("=")
        return name, value
    return arg, None


def _pairs(argv: Sequence[str]) -> list[tuple[str, str | None]] | None:
    """(option, value) pairs of a `build … CONTEXT` argv; None when an option is unknown."""
    takes_value = {*_LISTS, *_STRINGS, *_MAPS, "--iidfile", "--builder", "--progress"}
    out: list[tuple[str, str | None]] = []
    i = 0
    while i < len(argv):
        name, value = _split(argv[i])
        if name in takes_value:
            if value is None:
                if i + 1 >= len(argv):
                    return None
                i += 1
                value = argv[i]
        elif name not in (*_FLAGS, "--load") or value is not None:
            return None
        out.append((name, value))
        i += 1
    return out


def _map_value(value: str, environ: Mapping[str, str], *, from_env: bool) -> tuple[str, str] | None:
    key, sep, val = value.partition("=")
    if sep:
        return key, val
    if not from_env:
        return key, ""
    # `--build-arg NAME` takes NAME's value from the environment, or nothing when unset.
    return (key, environ[key]) if key in environ else None


def target(
    argv: Sequence[str], *, context_dir: str, environ: Mapping[str, str]
) -> tuple[Target, Globals] | None:
    """The bake target for one `docker build` argv (`build`, options, then the context), and
    its whole-bake options; None when the argv has an option bake cannot take per target."""
    if len(argv) < 2 or argv[0] != "build" or argv[-1] in ("-", ""):
        return None
    pairs = _pairs(argv[1:-1])
    if pairs is None:
        return None
    tgt: Target = {"context": context_dir}
    builder = progress = None
    iidfiles: list[str] = []
    for name, value in pairs:
        if value is None:
            if name == "--load":
                tgt.setdefault("output", []).append("type=docker")
            else:
                tgt[_FLAGS[name]] = True
        elif name in _LISTS:
            tgt.setdefault(_LISTS[name], []).append(value)
        elif name in _STRINGS:
            tgt[_STRINGS[name]] = value
        elif name in _MAPS:
            pair = _map_value(value, environ, from_env=name == "--build-arg")
            if pair is not None:
                tgt.setdefault(_MAPS[name], {})[pair[0]] = pair[1]
        elif name == "--iidfile":
            iidfiles.append(value)
        elif name == "--builder":
            builder = value
        else:
            progress = value
    return tgt, Globals(builder, progress, tuple(iidfiles))


def definition(targets: Mapping[str, Target]) -> dict[str, Any]:
    """The bake file (JSON) with these targets, all in the default group."""
    return {"group": {"default": {"targets": list(targets)}}, "target": dict(targets)}


_STEP = re.compile(r"#(\d+) ")
_NAMED = re.compile(r"#(\d+) \[([^\]\s]+)[\s\]]")
_ERROR = re.compile(r"(?: > \[|ERROR: target )([^\]\s:]+)")


@dataclass
class Lines:
    """Which target a line of bake's plain progress belongs to.

    BuildKit numbers its steps (`#12 …`) and names the target in each step's first line
    (`#12 [arm64 2/4] RUN …`, `#5 [arm64 internal] load metadata …`); the step's later lines
    (`#12 DONE 0.2s`) carry only the number. The error report after a failure names the
    target again (` > [arm64 3/4] RUN …:`, `ERROR: target arm64: …`).
    """

    names: frozenset[str]
    _steps: dict[str, str] = field(default_factory=dict)
    _last: str | None = None  # the target of the error block being printed

    def target_of(self, line: str) -> str | None:
        named = _NAMED.match(line)
        if named and named.group(2) in self.names:
            self._steps[named.group(1)] = named.group(2)
        step = _STEP.match(line)
        if step:
            return self._steps.get(step.group(1))
        error = _ERROR.match(line)
        if error and error.group(1) in self.names:
            self._last = error.group(1)
            return self._last
        if not line.strip():
            return None
        return self._last
