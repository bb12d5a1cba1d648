"""The test bed itself: real engines, a real registry, real QEMU emulation."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("platform", "machine"),
    [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64"), ("linux/arm/v7", "armv7l")],
)
def test_base_image_runs_per_platform(engine, platform: str, machine: str) -> None:
    # --pull always: a local tag of another architecture would otherwise run as is.
    out = engine.docker(
        "run", "--rm", "--pull", "always", "--platform", platform, engine.base, "uname", "-m"
    )
    assert out.stdout.strip() == machine


def test_base_image_is_a_multi_arch_list(bed, registry_get) -> None:
    doc, digest = registry_get(bed["DOCKERMA_BASE_IMAGE"])
    platforms = {
        "/".join(
            x
            for x in (
                m["platform"]["os"],
                m["platform"]["architecture"],
                m["platform"].get("variant", ""),
            )
            if x
        )
        for m in doc["manifests"]
    }
    assert {"linux/amd64", "linux/arm64", "linux/arm/v7"} <= platforms
    assert digest.startswith("sha256:")


def test_modern_engine_uses_buildkit_and_containerd_store(bed) -> None:
    from tests.e2e.conftest import _engine

    modern = _engine("modern", bed)
    info = modern.docker("info", "--format", "{{json .DriverStatus}}").stdout
    assert "io.containerd.snapshotter.v1" in info
    assert modern.docker("buildx", "version").returncode == 0


def test_current_engine_is_todays_docker(bed) -> None:
    # Debian unstable's docker 28.5 + buildx 0.29 + containerd 2.1, with the containerd store,
    # driven by its own CLI (put first on PATH for this engine's dockerma and docker runs).
    from tests.e2e.conftest import _engine

    current = _engine("current", bed)
    versions = current.docker(
        "version", "--format", "{{.Client.Version}} {{.Server.Version}}"
    ).stdout.split()
    assert [v.split(".")[:2] for v in versions] == [["28", "5"], ["28", "5"]], versions
    info = json.loads(current.docker("info", "--format", "{{json .}}").stdout)
    assert "io.containerd.snapshotter.v1" in json.dumps(info["DriverStatus"])
    containerd = current.docker("version", "--format", "{{json .Server.Components}}").stdout
    assert any(
        c["Name"] == "containerd" and c["Version"].startswith("2.1.")
        for c in json.loads(containerd)
    ), containerd
    buildx = current.docker("buildx", "version").stdout
    assert re.search(r" v?0\.29\.", buildx), buildx


def test_engines_are_apart(bed) -> None:
    # Three engines, three image stores: the same repository name is not shared between them.
    from tests.e2e.conftest import ENGINES, _engine

    roots = {
        _engine(n, bed).docker("info", "--format", "{{.DockerRootDir}}").stdout for n in ENGINES
    }
    assert len(roots) == len(ENGINES)
