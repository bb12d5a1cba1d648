"""ArchResult: one architecture's image through build, smoke test and push."""

from __future__ import annotations

from dataclasses import dataclass, field

from dockerma.core.platforms import Platform
from dockerma.engine.docker import Docker
from dockerma.flows.smoke import SmokeResult


@dataclass
class ArchResult:
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

    @property
    def ok(self) -> bool:
        return not self.error and all(s.passed for s in self.smoke)

    @property
    def result(self) -> str:
        if self.error:
            return "failed"
        if not all(s.passed for s in self.smoke):
            return "failed (smoke)"
        return "ok"
