"""Native builders: --builder ARCH=ENDPOINT builds (and pushes) that architecture elsewhere."""

from __future__ import annotations

import urllib.error
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import remove_session_images, write

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def second(bed, classic) -> Iterator[str]:
    host = bed.get("DOCKERMA_SECOND_HOST")
    if not host:
        pytest.fail("the test bed has no second engine (DOCKERMA_SECOND_HOST)")
    yield host
    remove_session_images(["docker", "-H", host], classic.env)


def _on(classic, host: str, *args: str):
    return classic.docker("-H", host, *args, check=False)


def test_build_push_with_a_builder(classic, second, tmp_path, registry_get) -> None:
    ctx = write(
        tmp_path / "ctx",
        f'# dockerma archs:amd64,arm64\nFROM {classic.base}\nRUN uname -m > /m\nCMD ["cat", "/m"]\n',
    )
    name = classic.name_for("builders")
    unused = f"s390x={second}"  # an architecture this run does not build: a warning
    res = classic.dockerma(
        "build", "--push", "--builder", f"arm64={second}", "--builder", unused,
        "-t", f"{name}:v1", str(ctx),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    # (the second engine is amd64: the arm64 one is also warned about, as emulated there)
    warnings = [line for line in res.stderr.splitlines() if "warning: --builder" in line]
    assert len(warnings) == 1 and f"--builder {unused}: linux/s390x" in warnings[0], res.stderr
    # each image lives only where it was built
    assert _on(classic, second, "image", "inspect", f"{name}:v1-arm64").returncode == 0
    assert _on(classic, second, "image", "inspect", f"{name}:v1-amd64").returncode != 0
    assert classic.docker("image", "inspect", f"{name}:v1-arm64", check=False).returncode != 0
    assert classic.inspect(f"{name}:v1-amd64")["Architecture"] == "amd64"
    # the summary names the engine of each architecture
    assert any(
        second in line and "arm64" in line
        for line in res.stdout.splitlines()
        if "linux/arm64" in line
    )
    doc, _ = registry_get(f"{name}:v1")
    assert {m["platform"]["architecture"] for m in doc["manifests"]} == {"amd64", "arm64"}
    for platform, machine in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
        out = classic.docker(
            "run", "--rm", "--pull", "always", "--platform", platform, f"{name}:v1"
        )
        assert out.stdout.strip() == machine
    # push alone, with the same mapping, finds the arm64 image on its engine
    res = classic.dockerma("push", "--builder", f"arm64={second}", f"{name}:v1")
    assert res.returncode == 0, res.stderr


def test_unreachable_builder_fails_before_anything(classic, tmp_path, registry_get) -> None:
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64,arm64\nFROM {classic.base}\nRUN true\n")
    name = classic.name_for("unreachable")
    endpoint = "unix:///run/dockerma-nowhere.sock"
    res = classic.dockerma(
        "build", "--push", "--builder", f"arm64={endpoint}", "-t", f"{name}:v1", str(ctx)
    )
    assert res.returncode != 0
    assert endpoint in res.stderr.strip().splitlines()[-1]
    assert classic.docker("image", "inspect", f"{name}:v1-amd64", check=False).returncode != 0
    with pytest.raises(urllib.error.HTTPError):
        registry_get(f"{name}:v1")


def test_bad_builder_spec_is_a_usage_error(classic, tmp_path) -> None:
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64\nFROM {classic.base}\n")
    res = classic.dockerma("build", "--builder", "arm64", "-t", "x", str(ctx))
    assert res.returncode == 2
    assert "ARCH=ENDPOINT" in res.stderr
