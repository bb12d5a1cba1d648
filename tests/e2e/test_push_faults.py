"""Registry faults during push: retries that recover, failures that publish nothing."""

from __future__ import annotations

import re
import urllib.error

import pytest

from tests.e2e.conftest import write
from tests.e2e.registry_proxy import Proxy

pytestmark = pytest.mark.e2e


@pytest.fixture
def proxy(bed):
    # A free port: every engine of the bed speaks plain HTTP to any loopback port.
    p = Proxy(bed["DOCKERMA_REGISTRY"])
    yield p
    p.stop()


def _build(engine, tmp_path, name: str) -> None:
    ctx = write(
        tmp_path / "ctx",
        f"# dockerma archs:amd64,arm64\nFROM {engine.base}\nRUN echo {name} > /v\n",
    )
    res = engine.dockerma("build", "-t", name, str(ctx))
    assert res.returncode == 0, res.stderr


def _repo(engine, proxy, what):
    return engine.name_for(what).replace(engine.registry, proxy.address, 1)


def test_503_then_success_with_visible_retries(engine, tmp_path, proxy, registry_get) -> None:
    name = _repo(engine, proxy, "flaky")
    _build(engine, tmp_path, f"{name}:v1")
    failures = {"n": 0}

    def fault(method: str, path: str):
        if method == "PUT" and "/manifests/" in path and failures["n"] < 3:
            failures["n"] += 1
            return 503
        return None

    proxy.fault = fault
    res = engine.dockerma("push", f"{name}:v1")
    assert res.returncode == 0, res.stderr + res.stdout
    assert failures["n"] == 3
    output = res.stdout + res.stderr
    assert re.search(r"retry 1/\d", output), output
    real = name.replace(proxy.address, engine.registry, 1)
    doc, _ = registry_get(f"{real}:v1")
    assert {m["platform"]["architecture"] for m in doc["manifests"]} == {"amd64", "arm64"}


def test_registry_gone_mid_push_publishes_no_list(engine, tmp_path, proxy, registry_get) -> None:
    name = _repo(engine, proxy, "gone")
    _build(engine, tmp_path, f"{name}:v1")
    proxy.fault = lambda method, path: "die" if method == "PUT" and "/manifests/" in path else None
    res = engine.dockerma("push", f"{name}:v1")
    assert res.returncode != 0
    assert res.stderr.strip().splitlines()[-1].startswith("dockerma: error: ")
    assert "no manifest list was pushed" in res.stderr
    assert "Traceback" not in res.stderr
    real = name.replace(proxy.address, engine.registry, 1)
    with pytest.raises(urllib.error.HTTPError):
        registry_get(f"{real}:v1")
    # once the registry is back, the same command succeeds
    proxy.fault = lambda method, path: None
    proxy.start()
    res = engine.dockerma("push", f"{name}:v1")
    assert res.returncode == 0, res.stderr
    doc, _ = registry_get(f"{real}:v1")
    assert len(doc["manifests"]) == 2
