"""The fixed facts of a benchmark run and the options it was started with."""

from __future__ import annotations

from dataclasses import dataclass

SECTIONS = ("build", "push", "buildx", "micro", "overhead", "buildah", "growth")
SECTION_ALIASES = {"buildpush": "buildah"}  # --only NAME: another name for a section
# heavy: the BuildKit section's CPU-bound workload (~15 s or more per emulated arch)
WORKLOADS = ("small", "cpu", "multistage", "heavy")
ENGINES = ("classic", "modern", "current")
# (tag suffix, docker platform, registry architecture, registry variant)
ARCHS = (
    ("amd64", "linux/amd64", "amd64", ""),
    ("arm64", "linux/arm64", "arm64", ""),
    ("arm", "linux/arm/v7", "arm", "v7"),
)
HOST_SUFFIX = "amd64"  # this machine kind is x86_64; checked at start

TARGET_BUILD = 1.05
TARGET_PUSH = 1.10
TARGET_PARSE = 0.5
TARGET_HELP = 0.2
TARGET_OVERHEAD = 0.3
TARGET_WARM = 1.10  # section 3, warm: dockerma build --push vs docker buildx build --push
TARGET_HEAVY = 1.02  # section 3, the CPU-heavy workload
TARGET_BUILD_PUSH = 1.00  # section 6: dockerma build --push vs the fastest alternative


@dataclass(frozen=True)
class Options:
    """The command line, checked."""

    runs: int
    sections: tuple[str, ...]
    workloads: tuple[str, ...]
    push_mb: int
    source: str | None
    no_pyc: bool
    python: str
    keep: bool
