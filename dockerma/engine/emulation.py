"""Which platforms an engine can run, asked of the engine itself (issue 20).

The engine may be elsewhere: `-H ssh://…`, `--context`, DOCKER_HOST, Docker Desktop's or
colima's VM. Its kernel, not the client's, decides whether a foreign binary runs (natively, as
386 on amd64 or arm/v7 on most arm64 CPUs, or through a binfmt_misc handler), so dockerma runs
a tiny program of each platform there (dockerma.core.exit_elf) in a container of that
platform: exit 0 means the engine runs it.

When the buildx builder in use runs its BuildKit elsewhere (the `remote`, `kubernetes` or a
cloud driver, as dockerma.engine.buildx found it), that builder's own list of platforms
(`docker buildx inspect`) decides, since the engine's kernel says nothing about it. Where it
runs on the engine's kernel (the `docker` and `docker-container` drivers), the probes decide:
docker's built-in builder detects its list once, when dockerd starts, so a handler enabled or
disabled since is missing from it or still listed, and docker 26 leaves out arm/v7 while it
runs it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from dockerma.core import exit_elf
from dockerma.core.platforms import Platform
from dockerma.engine.docker import Docker
from dockerma.engine.probe import runs_natively
from dockerma.errors import DockermaError
from dockerma.parallel import run_each

# A probe runs in well under a second; a stalled engine must not hold the run for long.
TIMEOUT = 60.0


# buildx drivers whose BuildKit runs on the engine's own kernel (in dockerd, or in a container).
LOCAL_DRIVERS = frozenset({"docker", "docker-container"})


@dataclass(frozen=True)
class Builder:
    """What `docker buildx inspect` says of a builder: its driver and its nodes' platforms."""

    name: str
    driver: str
    platforms: tuple[Platform, ...]

    @property
    def remote(self) -> bool:
        """Its BuildKit runs elsewhere, and it listed what it runs."""
        return self.driver not in LOCAL_DRIVERS and bool(self.platforms)


@dataclass(frozen=True)
class Answer:
    """The targets that cannot be built, and the remote builder that said so (None: the
    engine's kernel, through the probes)."""

    missing: tuple[Platform, ...]
    builder: Builder | None = None


def unrunnable(
    docker: Docker,
    engine: Platform,
    targets: Sequence[Platform],
    *,
    builder: tuple[str, str] | None = None,
) -> Answer:
    """The targets the engine (or its buildx builder) runs neither natively nor under
    emulation: one probe container each, in parallel, for every target foreign to the engine.

    builder: the buildx builder in use, (name, driver) as dockerma.engine.buildx found it; one
    whose BuildKit runs elsewhere is asked for its platforms instead.
    """
    foreign = [p for p in targets if not runs_natively(p, engine) and exit_elf.supported(p)]
    if not foreign:
        return Answer(())
    if builder is not None and builder[1] not in LOCAL_DRIVERS:
        listed = inspect_builder(docker, builder[0] or None)
        if listed is not None and listed.remote:
            missing = [p for p in foreign if not any(p.matches(q) for q in listed.platforms)]
            return Answer(tuple(missing), listed)
    return Answer(tuple(_probe(docker, foreign)))


def inspect_builder(docker: Docker, name: str | None) -> Builder | None:
    """The builder's platforms (`--builder NAME`, else buildx's current one); None when
    buildx does not answer (the build will say why)."""
    res = docker.run("buildx", "inspect", *([name] if name else []))
    return parse_inspect(res.stdout) if res.returncode == 0 else None


def parse_inspect(text: str) -> Builder:
    """`docker buildx inspect`'s text (buildx 0.10-0.29): the Driver line, and every node's
    Platforms line (a `*` marks platforms set by the user; amd64/v2 and the like are left out)."""
    name = driver = ""
    platforms: list[Platform] = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        if key.strip() == "Name" and not name:
            name = value.strip()
        elif key.strip() == "Driver" and not driver:
            driver = value.strip()
        elif key.strip() == "Platforms":
            for item in value.split(","):
                try:
                    p = Platform.parse(item.strip().rstrip("*"))
                except DockermaError:
                    continue
                if not any(p.matches(q) for q in platforms):
                    platforms.append(p)
    return Builder(name, driver, tuple(platforms))


def _probe(docker: Docker, foreign: Sequence[Platform]) -> list[Platform]:
    loader = _Loader(docker, foreign)
    outcomes = run_each(foreign, lambda p: _runs(docker, p, loader))
    for o in outcomes:
        if o.error is not None:
            raise o.error
    return [o.item for o in outcomes if not o.value]


class _Loader:
    """Loads the probe images into the engine, once, for the first probe that finds its image
    missing (a warm engine needs no call for it)."""

    def __init__(self, docker: Docker, platforms: Sequence[Platform]):
        self._docker = docker
        self._platforms = list(platforms)
        self._lock = threading.Lock()
        self._done = False

    def load(self) -> None:
        """The probe images, loaded unless all are there already (under dockerma's own
        repository name: no image of the user's is touched)."""
        with self._lock:
            if self._done:
                return
            tags = [exit_elf.tag(p) for p in self._platforms]
            if self._docker.run("image", "inspect", "--format", "{{.Id}}", *tags).returncode:
                res = self._docker.run("load", "--quiet", input=exit_elf.image_tar(self._platforms))
                if res.returncode != 0:
                    raise DockermaError(
                        "cannot load dockerma's emulation probe into the docker engine: "
                        f"{_last_line(res.stderr or res.stdout)}; check that the engine accepts "
                        "`docker load`"
                    )
            self._done = True


def _runs(docker: Docker, platform: Platform, loader: _Loader) -> bool:
    """Whether the probe of platform runs; its image loaded first when it is not there."""
    argv = (
        "run",
        "--rm",
        # never a pull: a missing probe image is loaded, never looked for on Docker Hub
        "--pull",
        "never",
        "--network",
        "none",
        "--platform",
        str(platform),
        exit_elf.tag(platform),
    )
    res = docker.run(*argv, timeout=TIMEOUT)
    if res.returncode == 0 or "exec format error" in res.stderr + res.stdout:
        return res.returncode == 0
    loader.load()  # most likely not loaded yet ("No such image"); else the retry fails too
    return docker.run(*argv, timeout=TIMEOUT).returncode == 0


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def hint(platform: Platform, engine: str, inject: bool, builder: Builder | None = None) -> str:
    """The error for a platform the engine cannot run: which engine, and the fixes."""
    if builder is not None:
        listed = ", ".join(str(p) for p in builder.platforms)
        return (
            f"the buildx builder {builder.name} ({builder.driver} driver, used by {engine}) "
            f"cannot build {platform}: it runs {listed}; add a node of that platform to it "
            f"(docker buildx create --append), choose another builder with --builder NAME, or "
            f"build it on another engine with --builder {platform.suffix}=ENDPOINT"
        )
    other = (
        ", or use --strategy inject (no binfmt needed)"
        if inject and platform.suffix in ("amd64", "arm", "arm64")
        else ""
    )
    return (
        f"{engine} cannot run {platform}: it is not its own architecture and the engine's "
        f"kernel has no QEMU (binfmt_misc) handler for it; on the engine's machine install "
        "qemu-user-static and binfmt-support (Debian/Ubuntu) or run `docker run --privileged "
        f"--rm tonistiigi/binfmt --install {platform.arch}`, or build it on a native engine "
        f"with --builder {platform.suffix}=ENDPOINT{other}"
    )
