"""The test bed itself: real engines, a real registry, real QEMU emulation."""

from __future__ import annotations

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
