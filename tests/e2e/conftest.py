"""Fixtures for the real engines and registries that scripts/testbed provides.

Without the test bed these tests skip, except when DOCKERMA_E2E=require (set by scripts/test
and CI): then a missing engine or registry is a failure, never a skip.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ENV_FILE = Path(os.environ.get("DOCKERMA_TESTBED_ENV", "/var/lib/dockerma-testbed/env"))
REQUIRE = os.environ.get("DOCKERMA_E2E") == "require"
ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


# In every repository name a test makes: the images of this session are removed at its end,
# and only those (another session may run beside this one).
SESSION = uuid.uuid4().hex[:6]


def unique(what: str) -> str:
    """A repository name component for one test: `what-SESSION-random`."""
    return f"{what}-{SESSION}-{uuid.uuid4().hex[:6]}"


def _unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"test bed required (DOCKERMA_E2E=require) but {reason}; run scripts/testbed")
    pytest.skip(f"{reason}; run scripts/testbed (DOCKERMA_E2E=require makes this a failure)")


# One e2e run at a time on a machine: engines, registries, bridges and binfmt handlers are
# shared, so a second run waits here for the first (the lock dies with its process).
LOCK_FILE = Path(os.environ.get("DOCKERMA_E2E_LOCK", "/tmp/dockerma-e2e-run.lock"))
_lock: list[object] = []


def _wait_for_other_runs() -> None:
    if _lock:
        return
    handle = LOCK_FILE.open("a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    _lock.append(handle)


@pytest.fixture(scope="session")
def bed() -> dict[str, str]:
    _wait_for_other_runs()
    if not ENV_FILE.is_file():
        _unavailable(f"{ENV_FILE} is missing")
    values: dict[str, str] = {}
    for line in ENV_FILE.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            values[key.strip()] = value.strip()
    try:
        urllib.request.urlopen(f"http://{values['DOCKERMA_REGISTRY']}/v2/", timeout=5).close()
    except Exception as e:  # noqa: BLE001
        _unavailable(f"the registry {values.get('DOCKERMA_REGISTRY')} does not answer ({e})")
    return values


@dataclass
class Engine:
    """One docker engine of the test bed, with the environment that selects it."""

    name: str
    env: dict[str, str]
    bed: dict[str, str]
    created: list[str] = field(default_factory=list)

    @property
    def buildkit(self) -> bool:
        """The engine builds with BuildKit (and keeps images in the containerd store)."""
        return self.name != "classic"

    @property
    def registry(self) -> str:
        return self.bed["DOCKERMA_REGISTRY"]

    @property
    def base(self) -> str:
        return self.bed["DOCKERMA_BASE_IMAGE"]

    def docker(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and res.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {res.stderr}{res.stdout}")
        return res

    def dockerma(
        self,
        *args: str,
        cwd: Path | str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 600,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dockerma", *args],
            env={**self.env, **(env or {})},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            **({"input": input} if input is not None else {"stdin": subprocess.DEVNULL}),
        )

    def name_for(self, what: str) -> str:
        """A fresh repository in the plain-HTTP registry for one test."""
        return f"{self.registry}/e2e-{self.name}/{unique(what)}"

    def inspect(self, ref: str) -> dict:
        return json.loads(self.docker("image", "inspect", ref).stdout)[0]

    def run(self, platform: str, ref: str, *cmd: str) -> str:
        return self.docker("run", "--rm", "--platform", platform, ref, *cmd).stdout.strip()


# The engines every engine-parametrised test runs on (scripts/testbed starts them all):
#   classic  Debian bookworm's docker 20.10, the classic builder
#   modern   docker 26.1 (Debian trixie): BuildKit (buildx 0.13), containerd 1.7 image store
#   current  docker 28.5 (Debian unstable): BuildKit (buildx 0.29), containerd 2.1 image store
# The last two are found by DOCKERMA_<NAME>_HOST, _CONFIG (with the buildx plugin) and _CLI
# (a `docker` alone in its directory, put first on PATH) in the bed's env file.
ENGINES = ["classic", "modern", "current"]


def _engine(name: str, bed: dict[str, str]) -> Engine:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_BUILDKIT")
    }
    env["NO_COLOR"] = "1"
    if name != "classic":
        key = f"DOCKERMA_{name.upper()}"
        if f"{key}_HOST" not in bed:
            _unavailable(f"the {name} engine is not in the test bed ({key}_HOST)")
        env["DOCKER_HOST"] = bed[f"{key}_HOST"]
        env["DOCKER_CONFIG"] = bed[f"{key}_CONFIG"]
        if bed.get(f"{key}_CLI"):
            cli_dir = str(Path(bed[f"{key}_CLI"]).parent)
            env["PATH"] = os.pathsep.join([cli_dir, env.get("PATH", os.defpath)])
    eng = Engine(name, env, bed)
    res = eng.docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=30)
    if res.returncode != 0:
        _unavailable(f"the {name} docker engine does not answer: {res.stderr.strip()}")
    return eng


def remove_session_images(docker: list[str], env: dict[str, str]) -> None:
    """Remove every image tag of this session from an engine: the tests leave their per-arch
    images behind for one another's checks; thousands of them slow an engine down."""
    listed = subprocess.run(
        [*docker, "image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    tags = []
    for line in listed.stdout.splitlines():
        ref, _, image_id = line.partition(" ")
        if "/e2e-" in ref and f"-{SESSION}-" in ref:
            # a tag moved away by a rebuild leaves the old image listed as REPO:<none>
            # (its RepoDigests still name the repository): only its id removes it
            tags.append(image_id if ref.endswith(":<none>") else ref)
    for i in range(0, len(tags), 100):
        subprocess.run(
            [*docker, "image", "rm", "--force", *tags[i : i + 100]],
            env=env,
            capture_output=True,
            check=False,
        )


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest, bed: dict[str, str]) -> Iterator[Engine]:
    eng = _engine(request.param, bed)
    yield eng
    remove_session_images(["docker"], eng.env)


@pytest.fixture(scope="session")
def classic(bed: dict[str, str]) -> Iterator[Engine]:
    eng = _engine("classic", bed)
    yield eng
    remove_session_images(["docker"], eng.env)


@pytest.fixture
def registry_get(bed: dict[str, str]):
    """GET a manifest from a plain-HTTP registry by the HTTP API: (json, digest header)."""

    def get(ref: str) -> tuple[dict, str]:
        host, _, rest = ref.partition("/")
        name, _, tag = rest.rpartition(":")
        req = urllib.request.Request(
            f"http://{host}/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read()), r.headers.get("Docker-Content-Digest", "")

    return get


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def write(dirpath: Path, dockerfile: str, **files: str) -> Path:
    dirpath.mkdir(parents=True, exist_ok=True)
    (dirpath / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (dirpath / name).write_text(text)
    return dirpath


def snapshot(dirpath: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(dirpath)): p.read_bytes()
        for p in sorted(dirpath.rglob("*"))
        if p.is_file()
    }
