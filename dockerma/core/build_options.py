"""The options `docker build` knows, to tell a misspelt one before anything starts (issue 20).

An option that neither dockerma nor docker's build knows would fail once per architecture
(or be read as docker's and its value as the context). The tables below hold every option of
docker build's two front ends, the legacy builder's (CLI 20.10-28) and buildx's (0.10-0.29,
with the legacy options it accepts hidden); an option outside them is looked up in the
installed docker's own `docker build --help` (a newer docker may have more) before it is
refused, so the usual run costs no docker call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from dockerma.errors import UsageError

# docker build with the legacy builder (CLI 20.10-28 `docker build --help`, plus --squash:
# experimental daemons only, and --stream).
LEGACY = frozenset(
    [
        "--add-host",
        "--build-arg",
        "--cache-from",
        "--cgroup-parent",
        "--compress",
        "--cpu-period",
        "--cpu-quota",
        "--cpu-shares",
        "-c",
        "--cpuset-cpus",
        "--cpuset-mems",
        "--disable-content-trust",
        "--file",
        "-f",
        "--force-rm",
        "--iidfile",
        "--isolation",
        "--label",
        "--memory",
        "-m",
        "--memory-swap",
        "--network",
        "--no-cache",
        "--platform",
        "--pull",
        "--quiet",
        "-q",
        "--rm",
        "--security-opt",
        "--shm-size",
        "--tag",
        "-t",
        "--target",
        "--ulimit",
        "--squash",
        "--stream",
    ]
)
# docker buildx build (0.10-0.29) adds these; it accepts the legacy ones too.
BUILDX_ONLY = frozenset(
    [
        "--allow",
        "--annotation",
        "--attest",
        "--build-context",
        "--builder",
        "--cache-to",
        "--call",
        "--check",
        "--debug",
        "-D",
        "--load",
        "--metadata-file",
        "--no-cache-filter",
        "--output",
        "-o",
        "--progress",
        "--provenance",
        "--push",
        "--sbom",
        "--secret",
        "--ssh",
    ]
)
KNOWN = LEGACY | BUILDX_ONLY

_HELP_LINE = re.compile(r"^\s+(?:(-[A-Za-z]), )?(--[A-Za-z0-9][\w-]*)(?: (\w+))?")


def parse_help(text: str) -> dict[str, bool]:
    """`docker build --help`'s options: each name (long and short), and whether it takes a
    value (a type word follows it: `--network string`, `--load` has none)."""
    found: dict[str, bool] = {}
    for line in text.splitlines():
        m = _HELP_LINE.match(line)
        if m:
            for name in (m.group(1), m.group(2)):
                if name:
                    found[name] = bool(m.group(3))
    return found


class UnknownOptions(UsageError):
    """Options neither dockerma nor docker build knows; the message suggests the closest."""

    def __init__(self, names: Iterable[str], candidates: Iterable[str]):
        import difflib  # only on this error path: a run's start-up does not pay for it

        self.names = tuple(dict.fromkeys(names))
        first = self.names[0]
        close = difflib.get_close_matches(first, sorted(set(candidates)), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else "; see dockerma build --help"
        which = "options" if len(self.names) > 1 else "option"
        super().__init__(
            f"unknown {which} {', '.join(self.names)}: neither dockerma nor this docker's "
            f"build knows it{hint}"
        )


def unknown(names: Iterable[str], docker_help: Mapping[str, bool] | None) -> list[str]:
    """The names outside the tables and (when given) outside docker's own help."""
    extra = docker_help or {}
    return [n for n in names if n not in KNOWN and n not in extra]
