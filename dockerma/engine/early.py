"""The emulation probes `dockerma build` starts with `docker info`, before the build flow is
imported (issue 21).

The emulation check (engine.emulation) runs a probe container per foreign platform, 0.2-0.3 s,
and could only start once the flow's imports (~0.2 s) and the Dockerfile's reading were done.
So the CLI guesses, cheaply, what the check will ask: the platforms of --platform, else of
the Dockerfile's archs comment, that are foreign to this machine (the likeliest guess of the
engine's own platform). It starts those probes on the run's read-ahead, and the check takes
their results as its own calls (the same argv). A wrong guess costs nothing but an unused
container: a probe the check does not ask for (the engine is elsewhere, of another platform,
or its builder answers for itself) is stopped when the command ends, and one the guess
missed is run by the check as before. Any problem with the inputs is left to the flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dockerma.core import exit_elf
from dockerma.core.dockerfile_directives import head_archs
from dockerma.core.platforms import Platform, host_platform, parse_list
from dockerma.engine.probe import emulation_probe, runs_natively
from dockerma.errors import DockermaError

# The archs comment stands before the first instruction: the file's head is enough.
HEAD_BYTES = 65536


def probes(
    dockerfile: str | None,
    context: str,
    platforms: str | None,
    environ: Mapping[str, str],
) -> list[tuple[str, ...]]:
    """The probe calls to start now for a build of context (-f dockerfile; None: its
    Dockerfile) with --platform platforms; none where another engine or builder may decide
    (DOCKERMA_BUILDERS, BUILDX_BUILDER: the caller leaves out --builder and inject itself)."""
    if environ.get("DOCKERMA_BUILDERS") or environ.get("BUILDX_BUILDER"):
        return []
    targets = _targets(dockerfile, context, platforms)
    machine = host_platform()
    return [
        emulation_probe(p)
        for p in targets
        if not runs_natively(p, machine) and exit_elf.supported(p)
    ]


def _targets(dockerfile: str | None, context: str, platforms: str | None) -> list[Platform]:
    try:
        if platforms is not None:
            return parse_list(platforms)
        if dockerfile == "-":
            return []  # stdin, read once by the flow
        path = Path(dockerfile) if dockerfile is not None else Path(context) / "Dockerfile"
        if not path.is_file():
            return []  # (a FIFO would block the read)
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES).decode("utf-8", errors="replace")
    except (DockermaError, OSError, ValueError):
        return []
    return list(head_archs(head) or ())
