"""Per-architecture records: one frozen record per phase (build, checks, push), and `Arch`,
which ties them together for the summary and the metadata file.

`ArchResult` is the mutable record `dockerma push` still finds, checks and publishes images
with; build hands its images to push's publish as ArchResults (see `Arch.for_push`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dockerma.core.platforms import Platform
from dockerma.engine.docker import Docker
from dockerma.flows.smoke import SmokeResult


class Report(Protocol):
    """What the summary table and the metadata file read of one architecture."""

    @property
    def platform(self) -> Platform: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def image_id(self) -> str: ...
    @property
    def seconds(self) -> float: ...
    @property
    def error(self) -> str: ...
    @property
    def smoke(self) -> Sequence[SmokeResult]: ...
    @property
    def digest(self) -> str: ...
    @property
    def engine(self) -> str: ...
    @property
    def result(self) -> str: ...


def _verdict(error: str, smoke: Sequence[SmokeResult]) -> str:
    if error:
        return "failed"
    if not all(s.passed for s in smoke):
        return "failed (smoke)"
    return "ok"


@dataclass(frozen=True)
class Built:
    """One architecture's docker build: the image it made, or why it failed."""

    platform: Platform
    tags: tuple[str, ...]
    engine: str = "local"  # the builder endpoint, or local
    docker: Docker = field(default_factory=Docker)  # the engine that has the image
    image_id: str = ""  # as the --iidfile gave it
    error: str = ""
    # the image's own digest where the build said (flows.bake.Baked), else ""; on the
    # containerd store it tells a rebuild of what the registry holds (see flows.lookups)
    own_digest: str = ""


@dataclass(frozen=True)
class Checked:
    """The checks of a built image: its platform (as docker or the registry said) and the
    smoke tests; error: the first of them that failed."""

    image_id: str = ""  # the id docker inspect gave; "" when it was not asked
    actual: Platform | None = None  # what the image's own config says it is
    smoke: tuple[SmokeResult, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class Pushed:
    """A per-arch image in the registry: the digest of its manifest there."""

    platform: Platform
    digest: str


@dataclass(frozen=True)
class Arch:
    """One architecture through the phases of a build."""

    built: Built
    seconds: float = 0.0  # the build with the checks made right after it
    checked: Checked = field(default_factory=Checked)
    pushed: Pushed | None = None

    @property
    def platform(self) -> Platform:
        return self.built.platform

    @property
    def tags(self) -> tuple[str, ...]:
        return self.built.tags

    @property
    def image_id(self) -> str:
        return self.checked.image_id or self.built.image_id

    @property
    def own_digest(self) -> str:
        return self.built.own_digest

    @property
    def engine(self) -> str:
        return self.built.engine

    @property
    def docker(self) -> Docker:
        return self.built.docker

    @property
    def actual(self) -> Platform | None:
        return self.checked.actual

    @property
    def smoke(self) -> tuple[SmokeResult, ...]:
        return self.checked.smoke

    @property
    def error(self) -> str:
        return self.built.error or self.checked.error

    @property
    def digest(self) -> str:
        return self.pushed.digest if self.pushed is not None else ""

    @property
    def ok(self) -> bool:
        return not self.error and all(s.passed for s in self.smoke)

    @property
    def result(self) -> str:
        return _verdict(self.error, self.smoke)

    def for_push(self) -> ArchResult:
        """The record push's publish reads (image id, actual platform) and writes (digest)."""
        return ArchResult(
            self.platform,
            list(self.tags),
            image_id=self.image_id,
            seconds=self.seconds,
            engine=self.engine,
            actual=self.actual,
            docker=self.docker,
            smoke=list(self.smoke),
            own_digest=self.own_digest,
        )


@dataclass
class ArchResult:
    """One architecture's image through `dockerma push`: found, checked, smoke tested, pushed."""

    platform: Platform
    tags: list[str]
    image_id: str = ""
    seconds: float = 0.0
    error: str = ""
    smoke: list[SmokeResult] = field(default_factory=list)
    digest: str = ""  # the per-arch image manifest in the registry, once pushed
    engine: str = "local"  # the builder endpoint, or local
    actual: Platform | None = None  # what the image's own config says it is
    docker: Docker = field(default_factory=Docker)  # the engine that has the image
    own_digest: str = ""  # as Built.own_digest: "" when unknown

    @property
    def ok(self) -> bool:
        return not self.error and all(s.passed for s in self.smoke)

    @property
    def result(self) -> str:
        return _verdict(self.error, self.smoke)
