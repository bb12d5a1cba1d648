"""Registry mirrors and proxies against the real services of scripts/testbed-network (issue 19).

The bed's engines name a registry mirror (127.0.0.1:5010, holding library/busybox) in their
daemon.json; this machine has no route to Docker Hub. A TLS registry is reached by a name
(dockerma-registry.test -> 127.0.0.2, in /etc/hosts) so that it goes through a proxy: Debian's
tinyproxy on 127.0.0.1:3129 logs every CONNECT, the one on 127.0.0.1:3130 refuses CONNECT
to any port but 443. Everything is checked by independent means: the registries' HTTP API,
the proxy's own log, `docker image inspect`.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import ACCEPT, Engine, _unavailable, unique, write

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARCHS = {"amd64": "linux/amd64", "arm64": "linux/arm64", "arm": "linux/arm/v7"}
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


def _need(bed: dict[str, str], *keys: str) -> None:
    missing = [k for k in keys if k not in bed]
    if missing:
        _unavailable(f"{', '.join(missing)} missing from the bed (scripts/testbed-network)")


def _get(url: str, context: ssl.SSLContext | None = None) -> tuple[dict, str]:
    """A manifest (list) by the registry's HTTP API, straight (no proxy): (json, digest)."""
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    req = urllib.request.Request(url, headers={"Accept": ACCEPT})
    with opener.open(req, timeout=15) as r:
        return json.loads(r.read()), r.headers.get("Docker-Content-Digest", "")


def _dockerma(engine: Engine, *args: str, **proxy_env: str) -> subprocess.CompletedProcess[str]:
    """dockerma with exactly these proxy variables (the caller's own are dropped)."""
    clean = {k: v for k, v in engine.env.items() if k not in PROXY_VARIABLES}
    engine_env, engine.env = engine.env, clean
    try:
        return engine.dockerma(*args, env=proxy_env)
    finally:
        engine.env = engine_env


# -- Docker Hub names through the engine's registry mirror ------------------------------------


def test_no_route_to_docker_hub() -> None:
    """The premise of the mirror tests: Docker Hub does not answer from this machine."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.URLError):
        opener.open("https://registry-1.docker.io/v2/", timeout=10)


def test_from_busybox_builds_for_three_architectures_through_the_mirror(
    engine: Engine, tmp_path: Path
) -> None:
    _need(engine.bed, "DOCKERMA_MIRROR_URL")
    mirror = engine.bed["DOCKERMA_MIRROR_URL"]
    info = engine.docker("info", "--format", "{{json .RegistryConfig.Mirrors}}").stdout
    assert mirror + "/" in json.loads(info), f"the {engine.name} engine lists no mirror: {info}"
    listed, _ = _get(f"{mirror}/v2/library/busybox/manifests/1")
    digests = {
        "/".join(filter(None, (p["os"], p["architecture"], p.get("variant")))): m["digest"]
        for m in listed["manifests"]
        for p in [m["platform"]]
    }
    ctx = write(tmp_path / "ctx", "FROM busybox:1\nRUN uname -m > /arch\n")
    image = engine.name_for("mirror") + ":1"
    archs = ",".join(ARCHS.values())
    dry = _dockerma(engine, "build", "--dry-run", "--archs", archs, "-t", image, str(ctx))
    assert dry.returncode == 0, dry.stderr
    for platform in ARCHS.values():
        # Pinned to the mirror's digests, under Docker Hub's name: the engine pulls it so.
        assert f"FROM busybox@{digests[platform]}" in dry.stdout
    res = _dockerma(engine, "build", "--archs", archs, "-t", image, str(ctx))
    assert res.returncode == 0, res.stderr + res.stdout
    for suffix, platform in ARCHS.items():
        got = engine.inspect(f"{image}-{suffix}")
        assert "/".join(filter(None, ("linux", got["Architecture"], got.get("Variant")))) == (
            platform
        )
        ran = engine.run(platform, f"{image}-{suffix}", "cat", "/arch")
        assert ran == {"amd64": "x86_64", "arm64": "aarch64", "arm": "armv7l"}[suffix]


def test_mirror_down_and_no_docker_hub_names_both(classic: Engine, tmp_path: Path) -> None:
    _need(classic.bed, "DOCKERMA_MIRROR_URL")
    mirror = classic.bed["DOCKERMA_MIRROR_URL"]
    pidfile = Path("/var/lib/dockerma-testbed/mirror-registry/registry.pid")
    ctx = write(tmp_path / "ctx", "FROM busybox:1\n")
    pid = int(pidfile.read_text())
    os.kill(pid, signal.SIGTERM)  # the bed's mirror; scripts/testbed-network restarts it
    try:
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
        res = _dockerma(classic, "build", "--archs", "amd64,arm64", str(ctx))
    finally:
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "testbed-network")],
            check=True,
            capture_output=True,
            timeout=120,
        )
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dockerma: error: "), res.stderr
    assert f"registry mirror {mirror}" in lines[0]
    assert "Docker Hub (registry-1.docker.io)" in lines[0]
    assert "docker build" not in res.stdout  # nothing was built


def test_an_image_the_mirror_lacks_falls_back_to_docker_hub_and_names_both(
    classic: Engine, tmp_path: Path
) -> None:
    _need(classic.bed, "DOCKERMA_MIRROR_URL")
    ctx = write(tmp_path / "ctx", f"FROM {unique('nowhere')}:1\n")
    res = _dockerma(classic, "build", "--dry-run", "--archs", "amd64", str(ctx))
    assert res.returncode == 1
    assert "not found in registry 127.0.0.1:5010" in res.stderr  # the mirror said 404
    assert "Docker Hub (registry-1.docker.io)" in res.stderr  # then Docker Hub was asked


# -- proxies ------------------------------------------------------------------------------------


class Proxy:
    def __init__(self, bed: dict[str, str]) -> None:
        _need(bed, "DOCKERMA_PROXY", "DOCKERMA_PROXY_LOG", "DOCKERMA_NAMED_REGISTRY")
        self.url = f"http://{bed['DOCKERMA_PROXY']}"
        self.refusing = f"http://{bed['DOCKERMA_REFUSING_PROXY']}"
        self.log = Path(bed["DOCKERMA_PROXY_LOG"])
        self.registry = bed["DOCKERMA_NAMED_REGISTRY"]
        self.base = bed["DOCKERMA_NAMED_BASE_IMAGE"]
        self.tls = ssl.create_default_context(cafile=bed["DOCKERMA_TLS_CA"])
        try:
            _get(f"https://{self.registry}/v2/dockerma/busybox/manifests/1", self.tls)
        except Exception as err:  # noqa: BLE001
            _unavailable(f"the registry {self.registry} does not answer ({err})")

    def mark(self) -> int:
        return self.log.stat().st_size

    def connects(self, since: int) -> list[str]:
        """The CONNECT requests the proxy logged since `mark()`."""
        with self.log.open("rb") as f:
            f.seek(since)
            lines = f.read().decode(errors="replace").splitlines()
        return [line.split("): ", 1)[1] for line in lines if "Request (file descriptor" in line]


@pytest.fixture
def proxy(bed: dict[str, str]) -> Proxy:
    return Proxy(bed)


def test_build_and_push_through_a_proxy(classic: Engine, proxy: Proxy, tmp_path: Path) -> None:
    ctx = write(tmp_path / "ctx", f"FROM {proxy.base}\nRUN uname -m > /arch\n")
    repo = f"e2e-proxy/{unique('push')}"
    image = f"{proxy.registry}/{repo}:1"
    since = proxy.mark()
    res = _dockerma(
        classic, "build", "--archs", "amd64,arm64", "-t", image, "--push", str(ctx),
        HTTPS_PROXY=proxy.url,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    connects = proxy.connects(since)
    assert connects and all(c == f"CONNECT {proxy.registry} HTTP/1.0" for c in connects)
    # Base look-up, push access, the list and its verification: each a CONNECT.
    assert len(connects) >= 4, connects
    listed, _ = _get(f"https://{proxy.registry}/v2/{repo}/manifests/1", proxy.tls)
    platforms = {
        f"{m['platform']['os']}/{m['platform']['architecture']}" for m in listed["manifests"]
    }
    assert platforms == {"linux/amd64", "linux/arm64"}


@pytest.mark.parametrize(
    "variables",
    [
        {"HTTPS_PROXY": "{proxy}", "NO_PROXY": "dockerma-registry.test"},
        {"https_proxy": "{proxy}", "no_proxy": ".test"},
        {"HTTPS_PROXY": "{proxy}", "NO_PROXY": "127.0.0.0/8,dockerma-registry.test:5444"},
    ],
)
def test_no_proxy_sends_nothing_through_the_proxy(
    classic: Engine, proxy: Proxy, tmp_path: Path, variables: dict[str, str]
) -> None:
    ctx = write(tmp_path / "ctx", f"FROM {proxy.base}\n")
    since = proxy.mark()
    env = {k: v.format(proxy=proxy.url) for k, v in variables.items()}
    res = _dockerma(classic, "build", "--dry-run", "--archs", "amd64,arm64", str(ctx), **env)
    assert res.returncode == 0, res.stderr
    assert f"FROM {proxy.registry}/dockerma/busybox@sha256:" in res.stdout
    assert proxy.connects(since) == []


def test_lower_case_https_proxy_is_honoured(classic: Engine, proxy: Proxy, tmp_path: Path) -> None:
    ctx = write(tmp_path / "ctx", f"FROM {proxy.base}\n")
    since = proxy.mark()
    res = _dockerma(
        classic, "build", "--dry-run", "--archs", "amd64", str(ctx), https_proxy=proxy.url
    )
    assert res.returncode == 0, res.stderr
    assert proxy.connects(since) == [f"CONNECT {proxy.registry} HTTP/1.0"]


def test_loopback_registries_are_never_proxied(
    classic: Engine, proxy: Proxy, tmp_path: Path
) -> None:
    ctx = write(tmp_path / "ctx", f"FROM {classic.base}\n")
    since = proxy.mark()
    res = _dockerma(
        classic, "build", "--dry-run", "--archs", "amd64", str(ctx),
        HTTPS_PROXY=proxy.url, HTTP_PROXY=proxy.url,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert proxy.connects(since) == []


def test_a_proxy_that_refuses_is_one_clear_error(
    classic: Engine, proxy: Proxy, tmp_path: Path
) -> None:
    ctx = write(tmp_path / "ctx", f"FROM {proxy.base}\n")
    image = f"{proxy.registry}/e2e-proxy/{unique('refused')}:1"
    res = _dockerma(
        classic, "build", "--archs", "amd64", "-t", image, "--push", str(ctx),
        HTTPS_PROXY=proxy.refusing,
    )  # fmt: skip
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"dockerma: error: cannot reach registry {proxy.registry}")
    assert f"through proxy {proxy.refusing} (HTTPS_PROXY)" in lines[0]
    assert "CONNECT with 403" in lines[0]
    assert (
        classic.docker(
            "image", "inspect", f"{image.rsplit(':', 1)[0]}:1-amd64", check=False
        ).returncode
        != 0
    )
