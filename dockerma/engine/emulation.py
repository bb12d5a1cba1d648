"""Which platforms an engine can run, asked of the engine itself (issue 20).

The engine may be elsewhere: `-H ssh://…`, `--context`, DOCKER_HOST, Docker Desktop's or
colima's VM. Its kernel, not the client's, decides whether a foreign binary runs (natively, as
386 on amd64 or arm/v7 on most arm64 CPUs, or through a binfmt_misc handler), so dockerma runs
a tiny program of each platform there (dockerma.core.exit_elf) in a container of that
platform: exit 0 means the engine runs it.

BuildKit's own list of platforms (`docker buildx inspect`) is not asked: docker's built-in
builder detects it once, when dockerd starts, so a handler enabled or disabled since is not
seen; docker 26 leaves out arm/v7 while it runs it.
"""

from __future__ import annotations

from collections.abc import Sequence

from dockerma.core import exit_elf
from dockerma.core.platforms import Platform
from dockerma.engine.docker import Docker
from dockerma.engine.probe import runs_natively
from dockerma.errors import DockermaError
from dockerma.parallel import run_each

# A probe runs in well under a second; a stalled engine must not hold the run for long.
TIMEOUT = 60.0


def unrunnable(docker: Docker, engine: Platform, targets: Sequence[Platform]) -> list[Platform]:
    """The targets the engine runs neither natively nor under emulation, one probe container
    each (in parallel) for every target that is foreign to the engine."""
    foreign = [p for p in targets if not runs_natively(p, engine) and exit_elf.supported(p)]
    if not foreign:
        return []
    _load(docker, foreign)
    outcomes = run_each(foreign, lambda p: _runs(docker, p))
    for o in outcomes:
        if o.error is not None:
            raise o.error
    return [o.item for o in outcomes if not o.value]


def _load(docker: Docker, platforms: Sequence[Platform]) -> None:
    """The probe images, loaded into the engine unless all are there already (under
    dockerma's own repository name: no image of the user's is touched)."""
    tags = [exit_elf.tag(p) for p in platforms]
    if docker.run("image", "inspect", "--format", "{{.Id}}", *tags).returncode == 0:
        return
    res = docker.run("load", "--quiet", input=exit_elf.image_tar(platforms))
    if res.returncode != 0:
        raise DockermaError(
            "cannot load dockerma's emulation probe into the docker engine: "
            f"{_last_line(res.stderr or res.stdout)}; check that the engine accepts `docker load`"
        )


def _runs(docker: Docker, platform: Platform) -> bool:
    res = docker.run(
        "run",
        "--rm",
        # never a pull: a probe image that went missing must not be looked for on Docker Hub
        "--pull",
        "never",
        "--network",
        "none",
        "--platform",
        str(platform),
        exit_elf.tag(platform),
        timeout=TIMEOUT,
    )
    return res.returncode == 0


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def hint(platform: Platform, engine: str, inject: bool) -> str:
    """The error for a platform the engine cannot run: which engine, and the fixes."""
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
