"""The end of a build: the table of every architecture, and the error line of a failed run."""

from __future__ import annotations

from collections.abc import Sequence

from dockerma.engine.buildx import Builder
from dockerma.errors import DockermaError
from dockerma.flows.results import Arch
from dockerma.output import Output


def table(out: Output, archs: Sequence[Arch], with_smoke: bool, with_engine: bool) -> None:
    headers = ["ARCH", "PLATFORM", "TAGS", "IMAGE ID", "TIME", "RESULT"]
    if with_smoke:
        headers.insert(5, "SMOKE")
    if with_engine:
        headers.insert(2, "ENGINE")
    rows = []
    for a in archs:
        row = [
            a.platform.suffix,
            str(a.platform),
            " ".join(a.tags) or "-",
            a.image_id.removeprefix("sha256:")[:12] or "-",
            f"{a.seconds:.1f}s",
            a.result,
        ]
        if with_smoke:
            row.insert(5, ", ".join(s.describe() for s in a.smoke) or "-")
        if with_engine:
            row.insert(2, a.engine)
        rows.append(row)
    out.info("")
    out.table(headers, rows)


def builders(found: Sequence[Builder]) -> list[str]:
    """A line for each buildx builder whose driver keeps its images (see plan._load)."""
    lines = []
    for b in dict.fromkeys(found):
        if not b.loads_itself:
            lines.append(
                f"buildx builder {b.described} ({b.driver} driver): each image was loaded "
                "into the engine with --load"
            )
    return lines


def failure(failed: Sequence[Arch], total: int, pushing: bool) -> DockermaError:
    """The one error line of a run where some architectures failed."""
    names = ", ".join(f"{a.platform} ({a.error or a.result})" for a in failed)
    hint = ""
    if any(not all(s.passed for s in a.smoke) for a in failed):
        first = failed[0]
        hint = (
            "; the images stay local for a look: docker run --rm -it --platform "
            f"{first.platform} {first.tags[0] if first.tags else first.image_id} sh"
        )
    if pushing:
        hint += "; nothing was pushed"
    return DockermaError(f"{len(failed)} of {total} architectures failed: {names}{hint}")
