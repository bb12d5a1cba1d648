"""Section 7's measurements: dockerma run in-process by a wrapper that reports its peak RSS,
under the docker logging shim."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..bed import Bed
from ..shim import shimmed_run
from ..timing import Sample

FLAT_FACTOR = 1.5  # "flat": the largest count within 1.5× the 1-platform median …
FLAT_SLACK = 0.1  # … or less than 0.1 s above it

# Run by the install's python: runs dockerma's console script in this process and writes its
# peak RSS (ru_maxrss of the process itself, not of the docker calls it makes) and that of its
# largest child, in KiB.
RSS_WRAPPER = """\
import os, resource, runpy, sys
report, target = sys.argv[1:3]
sys.argv = [target, *sys.argv[3:]]
sys.path[0] = os.path.dirname(os.path.abspath(target))  # as when the script is run itself
def write_report():
    with open(report, "w") as fh:
        fh.write(f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} "
                 f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n")
exit_now = os._exit
def report_and_exit(code):  # dockerma leaves by os._exit, past any finally
    write_report()
    exit_now(code)
os._exit = report_and_exit
try:
    runpy.run_path(target, run_name="__main__")
finally:
    write_report()
"""


def rss_argv(bed: Bed, report: Path, args: list[str]) -> list[str]:
    wrapper = bed.tmp / "rss_wrapper.py"
    if not wrapper.is_file():
        wrapper.write_text(RSS_WRAPPER)
    return [str(bed.install.python), str(wrapper), str(report), bed.dockerma[0], *args]


@dataclass
class Point:
    """The runs of one measurement, as they come in."""

    walls: list[float] = field(default_factory=list)
    owns: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)  # KiB, dockerma's process
    child_rss: list[int] = field(default_factory=list)  # KiB, its largest child (docker CLI)
    calls: Counter[str] = field(default_factory=Counter)

    def add(self, bed: Bed, args: list[str], env: dict[str, str]) -> None:
        report = bed.tmp / f"rss-{uuid.uuid4().hex[:8]}"
        r = shimmed_run(bed, rss_argv(bed, report, args), env)
        self.walls.append(r.end - r.start)
        self.owns.append((r.end - r.start) - r.docker_time())
        own_kib, child_kib = report.read_text().split()
        self.rss.append(int(own_kib))
        self.child_rss.append(int(child_kib))
        self.calls = Counter(c.kind for c in r.calls)

    def row(self) -> list[str]:
        w, o = Sample(self.walls), Sample(self.owns)
        return [
            f"{w.median:.3f} s",
            w.span(),
            f"{o.median:.3f} s",
            f"{max(self.rss) / 1024:.1f} MB",
            f"{max(self.child_rss) / 1024:.1f} MB",
        ]


def flat(points: dict[int, Point]) -> tuple[bool, str]:
    lo, hi = min(points), max(points)
    a, b = Sample(points[lo].owns).median, Sample(points[hi].owns).median
    ok = b <= FLAT_FACTOR * a or b - a < FLAT_SLACK
    return ok, f"{hi} vs {lo}: own {b:.3f} s vs {a:.3f} s = {b / a:.2f}×, {b - a:+.3f} s"


def growth_dockerfile(base: str, lines: int) -> str:
    """Exactly `lines` lines: the archs comment, two named stages and a final one on the base,
    RUN/ENV/COPY lines spread over them, the final stage copying from the other two."""
    body = lines - 6
    per = [body // 3 + (1 if k < body % 3 else 0) for k in range(3)]
    out_lines = ["# dockerma archs:amd64,arm64,arm"]
    i = 0
    for k in range(3):
        out_lines.append(f"FROM {base} AS s{k}" if k < 2 else f"FROM {base}")
        for _ in range(per[k]):
            kind = i % 3
            if kind == 0:
                out_lines.append(f"RUN echo {i} > /f{i % 50}")
            elif kind == 1:
                out_lines.append(f"ENV V{i}={i}")
            else:
                out_lines.append(f"COPY f{i % 5} /c/{i}")
            i += 1
    out_lines += ["COPY --from=s0 /f0 /from-s0", "COPY --from=s1 /f0 /from-s1"]
    assert len(out_lines) == lines
    return "\n".join(out_lines) + "\n"
