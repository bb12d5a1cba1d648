"""Engines where users run them (issue 20): a remote engine over ssh, and a client that cannot
see the engine's binfmt_misc (as with Docker Desktop or colima): what the engine can run is
asked of the engine.

The ssh engine is the classic engine reached through the test bed's own sshd
(scripts/testbed-ssh, DOCKERMA_SSH_HOST).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Engine, _unavailable, remove_session_images, write
from tests.e2e.test_inject import binfmt_disabled

pytestmark = pytest.mark.e2e

BINFMT = Path("/proc/sys/fs/binfmt_misc")
MACHINE = {"amd64": "x86_64", "arm64": "aarch64", "arm": "armv7l"}
PLATFORM = {"amd64": "linux/amd64", "arm64": "linux/arm64", "arm": "linux/arm/v7"}
DOCKERFILE = '# dockerma archs:{archs}\nFROM {base}\nRUN uname -m > /m\nCMD ["cat", "/m"]\n'
# A shell in a mount namespace of its own where binfmt_misc is unmounted: that process and its
# children see no handler at all, while the kernel (and so every engine here) keeps them.
HIDE_BINFMT = (
    "umount -l /proc/sys/fs/binfmt_misc && "
    "test ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 && "
    "test ! -e /proc/sys/fs/binfmt_misc/qemu-arm && "
    'exec "$@"'
)


@pytest.fixture(scope="module")
def ssh_host(bed: dict[str, str], classic: Engine) -> str:
    host = bed.get("DOCKERMA_SSH_HOST", "")
    if not host:
        _unavailable("the test bed has no ssh engine (DOCKERMA_SSH_HOST)")
    res = classic.docker("-H", host, "version", "--format", "{{.Server.Version}}", check=False)
    if res.returncode != 0:
        _unavailable(f"the ssh engine {host} does not answer: {res.stderr.strip()}")
    return host


@pytest.fixture(scope="module")
def second_host(bed: dict[str, str], classic: Engine) -> Iterator[str]:
    host = bed.get("DOCKERMA_SECOND_HOST", "")
    if not host:
        _unavailable("the test bed has no second engine (DOCKERMA_SECOND_HOST)")
    yield host
    remove_session_images(["docker", "-H", host], classic.env)


def _arch(classic: Engine, host: str, ref: str) -> str | None:
    """The architecture of an image in the engine at host; None when it is not there."""
    res = classic.docker(
        "-H", host, "image", "inspect", "--format", "{{.Architecture}}", ref, check=False
    )
    return res.stdout.strip() if res.returncode == 0 else None


def _platforms(doc: dict) -> set[tuple[str, str]]:
    return {
        (m["platform"]["architecture"], m["platform"].get("variant", "")) for m in doc["manifests"]
    }


def test_ssh_engine_builds_and_pushes_three_architectures(
    classic: Engine, ssh_host: str, tmp_path: Path, registry_get
) -> None:
    ctx = write(tmp_path / "ctx", DOCKERFILE.format(archs="amd64,arm64,arm", base=classic.base))
    name = classic.name_for("ssh")
    res = classic.dockerma("-H", ssh_host, "build", "--push", "-t", f"{name}:v1", str(ctx))
    assert res.returncode == 0, res.stderr + res.stdout
    doc, digest = registry_get(f"{name}:v1")
    assert digest.startswith("sha256:")
    platforms = _platforms(doc)
    assert {a for a, _ in platforms} == {"amd64", "arm64", "arm"}
    assert ("arm", "v7") in platforms
    for suffix, machine in MACHINE.items():
        ref = f"{name}:v1-{suffix}"
        assert _arch(classic, ssh_host, ref) == PLATFORM[suffix].split("/")[1]
        out = classic.docker("-H", ssh_host, "run", "--rm", "--platform", PLATFORM[suffix], ref)
        assert out.stdout.strip() == machine


def test_builder_over_ssh_builds_arm64_there(
    classic: Engine, ssh_host: str, second_host: str, tmp_path: Path, registry_get
) -> None:
    """The local engine is the bed's second one; arm64 goes to the ssh engine, and each image
    lands only where it was built."""
    ctx = write(tmp_path / "ctx", DOCKERFILE.format(archs="amd64,arm64", base=classic.base))
    name = classic.name_for("ssh-builder")
    res = classic.dockerma(
        "build", "--push", "--builder", f"arm64={ssh_host}", "-t", f"{name}:v1", str(ctx),
        env={"DOCKER_HOST": second_host},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    assert _arch(classic, ssh_host, f"{name}:v1-arm64") == "arm64"
    assert _arch(classic, second_host, f"{name}:v1-arm64") is None
    assert _arch(classic, second_host, f"{name}:v1-amd64") == "amd64"
    assert _arch(classic, ssh_host, f"{name}:v1-amd64") is None
    assert any(ssh_host in line for line in res.stdout.splitlines() if "linux/arm64" in line)
    doc, _ = registry_get(f"{name}:v1")
    assert {p[0] for p in _platforms(doc)} == {"amd64", "arm64"}


def _hidden(engine: Engine, *argv: str) -> subprocess.CompletedProcess[str]:
    """argv run where binfmt_misc cannot be seen (see HIDE_BINFMT), with the engine's env."""
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", HIDE_BINFMT, "sh", *argv],
        env=engine.env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def test_a_client_that_sees_no_binfmt_builds_what_the_engine_runs(
    engine: Engine, tmp_path: Path
) -> None:
    if not (BINFMT / "qemu-aarch64").is_file():
        _unavailable("the machine has no qemu-aarch64 handler (scripts/testbed registers it)")
    seen = _hidden(engine, "sh", "-c", "ls -A /proc/sys/fs/binfmt_misc | wc -l")
    assert (seen.returncode, seen.stdout.strip()) == (0, "0"), seen.stderr  # really hidden
    assert (BINFMT / "qemu-aarch64").read_text().startswith("enabled")  # the engine's are not
    ctx = write(tmp_path / "ctx", DOCKERFILE.format(archs="amd64,arm64,arm", base=engine.base))
    name = engine.name_for("hidden-binfmt")
    res = _hidden(engine, sys.executable, "-m", "dockerma", "build", "-t", f"{name}:v1", str(ctx))
    assert res.returncode == 0, res.stderr + res.stdout
    for suffix, machine in MACHINE.items():
        assert engine.run(PLATFORM[suffix], f"{name}:v1-{suffix}") == machine


def test_an_engine_without_a_handler_is_named_before_anything_is_built(
    engine: Engine, tmp_path: Path
) -> None:
    """The engine's kernel lacks qemu-s390x for the length of the test (machine-wide, under
    the e2e lock): the error names the engine's missing platform, one line, nothing built."""
    if not (BINFMT / "qemu-s390x").is_file():
        _unavailable("the machine has no qemu-s390x handler (scripts/testbed registers it)")
    ctx = write(tmp_path / "ctx", DOCKERFILE.format(archs="amd64,s390x", base=engine.base))
    name = engine.name_for("no-handler")
    with binfmt_disabled("qemu-s390x"):
        res = engine.dockerma("build", "-t", f"{name}:v1", str(ctx))
    assert res.returncode == 1, res.stderr + res.stdout
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith("dockerma: error: the docker engine"), res.stderr
    assert "cannot run linux/s390x" in lines[-1], res.stderr
    assert "[amd64]" not in res.stdout + res.stderr  # no build started
    for suffix in ("amd64", "s390x"):
        listed = engine.docker("image", "inspect", f"{name}:v1-{suffix}", check=False)
        assert listed.returncode != 0


def test_a_context_over_ssh_with_no_binfmt_on_the_client(
    classic: Engine, ssh_host: str, tmp_path: Path
) -> None:
    """A docker context naming the ssh engine, in a client config of its own (--config), and
    a client that sees no binfmt_misc: the engine's handlers are what counts."""
    config = tmp_path / "docker-config"
    config.mkdir()
    classic.docker(
        "--config", str(config), "context", "create", "dm-ssh", "--docker", f"host={ssh_host}"
    )
    ctx = write(tmp_path / "ctx", DOCKERFILE.format(archs="amd64,arm64,arm", base=classic.base))
    name = classic.name_for("ssh-context")
    res = _hidden(
        classic, sys.executable, "-m", "dockerma", "--config", str(config), "--context", "dm-ssh",
        "build", "-t", f"{name}:v1", str(ctx),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    for suffix, machine in MACHINE.items():
        ref = f"{name}:v1-{suffix}"
        out = classic.docker("-H", ssh_host, "run", "--rm", "--platform", PLATFORM[suffix], ref)
        assert out.stdout.strip() == machine
