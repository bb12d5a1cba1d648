"""Smoke tests in every per-arch image before anything is published."""

from __future__ import annotations

import json
import time
import urllib.error

import pytest

from tests.e2e.conftest import write

pytestmark = pytest.mark.e2e


def test_smoke_passes_and_shows_output(engine, tmp_path) -> None:
    ctx = write(tmp_path / "ctx", f"# dockerma archs:arm,amd64,arm64\nFROM {engine.base}\n")
    name = engine.name_for("smoke")
    meta = tmp_path / "m.json"
    res = engine.dockerma(
        "build", "--smoke-test", "uname -m", "--metadata-file", str(meta), "-t", name, str(ctx)
    )
    assert res.returncode == 0, res.stderr + res.stdout
    for label, machine in (("[arm]", "armv7l"), ("[arm64]", "aarch64"), ("[amd64]", "x86_64")):
        assert any(
            line.startswith(label) and line.rstrip().endswith(machine)
            for line in res.stdout.splitlines()
        ), res.stdout
    assert "SMOKE" in res.stdout
    doc = json.loads(meta.read_text())
    assert doc["architectures"]["arm64"]["smoke"][0]["status"] == "passed"


def test_smoke_failure_on_one_arch_blocks_push(engine, tmp_path, registry_get) -> None:
    # /only-amd64 exists only when the RUN ran on amd64; the smoke test needs it.
    ctx = write(
        tmp_path / "ctx",
        f"# dockerma archs:amd64,arm64\n# dockerma smoke:cat /only-amd64\nFROM {engine.base}\n"
        'RUN if [ "$(uname -m)" = x86_64 ]; then echo ok > /only-amd64; fi\n',
    )
    name = engine.name_for("smokefail")
    res = engine.dockerma("build", "--push", "-t", f"{name}:v1", str(ctx))
    assert res.returncode != 0
    assert "linux/arm64" in res.stderr and "nothing was pushed" in res.stderr
    for ref in (f"{name}:v1", f"{name}:v1-amd64", f"{name}:v1-arm64"):
        with pytest.raises(urllib.error.HTTPError):
            registry_get(ref)
    # the images stay local for a look
    assert engine.inspect(f"{name}:v1-arm64")["Architecture"] == "arm64"
    # --no-smoke-test skips the directive
    res = engine.dockerma("build", "--no-smoke-test", "-t", f"{name}:v1", str(ctx))
    assert res.returncode == 0, res.stderr
    # the same check on push
    res = engine.dockerma("push", "--smoke-test", "cat /only-amd64", f"{name}:v1")
    assert res.returncode != 0 and "nothing was pushed" in res.stderr
    with pytest.raises(urllib.error.HTTPError):
        registry_get(f"{name}:v1-amd64")


def test_smoke_timeout(engine, tmp_path) -> None:
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64\nFROM {engine.base}\n")
    name = engine.name_for("hang")
    start = time.monotonic()
    res = engine.dockerma(
        "build", "--smoke-test", "sleep 600", "--smoke-timeout", "3", "-t", name, str(ctx)
    )
    assert res.returncode != 0
    assert "timed out" in res.stdout + res.stderr
    assert time.monotonic() - start < 120
    left = engine.docker("ps", "-q", "--filter", "name=dockerma-smoke").stdout.strip()
    assert left == ""
