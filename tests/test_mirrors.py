"""Docker Hub bases through the engine's registry mirrors first, then Docker Hub (mirrors.py)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from dockerma.core.platforms import Platform
from dockerma.engine.probe import parse_info
from dockerma.errors import DockermaError
from dockerma.registry import bases, hub, mirrors
from dockerma.registry.client import Registry, RegistryError
from tests.fakeregistry import DOCKER_LIST, FakeRegistry

AMD64 = Platform.parse("linux/amd64")


def _list(digest: str) -> bytes:
    entry = {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "digest": digest,
        "size": 10,
        "platform": {"os": "linux", "architecture": "amd64"},
    }
    return json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [entry]}).encode()


MIRROR_DIGEST = "sha256:" + "a" * 64
HUB_DIGEST = "sha256:" + "b" * 64


@pytest.fixture
def mirror() -> Iterator[FakeRegistry]:
    with FakeRegistry() as reg:
        yield reg


@pytest.fixture
def docker_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRegistry]:
    """Docker Hub's API host, moved to a fake registry on loopback."""
    with FakeRegistry() as reg:
        monkeypatch.setattr(hub, "API_HOST", reg.address)
        yield reg


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_hub_base_is_resolved_through_the_mirror(
    mirror: FakeRegistry, docker_hub: FakeRegistry
) -> None:
    mirror.manifest("library/busybox", "1", _list(MIRROR_DIGEST), DOCKER_LIST)
    docker_hub.manifest("library/busybox", "1", _list(HUB_DIGEST), DOCKER_LIST)
    registry = Registry(registry_mirrors=[f"http://{mirror.address}/"])
    pinned = bases.resolve(registry, [("busybox:1", AMD64)])
    # The name stays Docker Hub's (the engine pulls it through its mirror), the digest is
    # the mirror's: the engine gets what dockerma looked up.
    assert pinned == {("busybox:1", AMD64): f"busybox@{MIRROR_DIGEST}"}


def test_docker_hub_when_the_mirror_lacks_the_image(
    mirror: FakeRegistry, docker_hub: FakeRegistry
) -> None:
    docker_hub.manifest("library/busybox", "1", _list(HUB_DIGEST), DOCKER_LIST)
    registry = Registry(registry_mirrors=[f"http://{mirror.address}"])
    assert bases.resolve(registry, [("docker.io/library/busybox:1", AMD64)]) == {
        ("docker.io/library/busybox:1", AMD64): f"docker.io/library/busybox@{HUB_DIGEST}"
    }


def test_the_next_mirror_when_one_is_down(mirror: FakeRegistry, docker_hub: FakeRegistry) -> None:
    mirror.manifest("team/tool", "2", _list(MIRROR_DIGEST), DOCKER_LIST)
    dead = f"http://127.0.0.1:{_closed_port()}"
    registry = Registry(registry_mirrors=[dead, f"http://{mirror.address}"], retries=0)
    image = bases.lookup(registry, "team/tool:2")
    assert [e.digest for e in image.entries] == [MIRROR_DIGEST]


def test_neither_mirror_nor_hub_names_both(monkeypatch: pytest.MonkeyPatch) -> None:
    hub_port, mirror_port = _closed_port(), _closed_port()
    monkeypatch.setattr(hub, "API_HOST", f"127.0.0.1:{hub_port}")
    registry = Registry(registry_mirrors=[f"http://127.0.0.1:{mirror_port}/"], retries=0)
    with pytest.raises(RegistryError) as failure:
        bases.lookup(registry, "busybox")
    message = str(failure.value)
    assert "from the engine's registry mirror or from Docker Hub" in message
    assert f"registry mirror http://127.0.0.1:{mirror_port}:" in message
    assert f"Docker Hub (127.0.0.1:{hub_port})" in message
    assert "\n" not in message


def test_not_found_anywhere_is_the_usual_not_found(
    mirror: FakeRegistry, docker_hub: FakeRegistry
) -> None:
    registry = Registry(registry_mirrors=[f"http://{mirror.address}"])
    with pytest.raises(DockermaError, match="base image busybox:9 was not found"):
        bases.lookup(registry, "busybox:9")


def test_other_registries_never_go_through_a_mirror(
    mirror: FakeRegistry, docker_hub: FakeRegistry
) -> None:
    with FakeRegistry() as own:
        own.manifest("library/busybox", "1", _list(HUB_DIGEST), DOCKER_LIST)
        mirror.manifest("library/busybox", "1", _list(MIRROR_DIGEST), DOCKER_LIST)
        registry = Registry(registry_mirrors=[f"http://{mirror.address}"])
        image = bases.lookup(registry, f"{own.address}/library/busybox:1")
    assert [e.digest for e in image.entries] == [HUB_DIGEST]


def test_mirror_urls_as_the_daemon_lists_them() -> None:
    found = mirrors.parse(["http://10.0.0.5:5000/", "https://Mirror.Example", "ftp://x", "junk"])
    assert found == (
        mirrors.Mirror("http://10.0.0.5:5000", "10.0.0.5:5000", True),
        mirrors.Mirror("https://Mirror.Example", "mirror.example", False),
    )
    assert mirrors.plain_registries(found) == ["10.0.0.5:5000"]


def test_a_plain_http_mirror_may_speak_plain_http_and_no_other() -> None:
    registry = Registry(registry_mirrors=["http://10.0.0.5:5000", "https://10.0.0.6:5000"])
    assert registry.is_insecure("10.0.0.5:5000")
    assert not registry.is_insecure("10.0.0.6:5000")


def test_docker_info_lists_the_mirrors() -> None:
    info = {
        "Architecture": "x86_64",
        "RegistryConfig": {"Mirrors": ["http://127.0.0.1:5010/"], "InsecureRegistryCIDRs": []},
    }
    assert parse_info(info, {}).registry_mirrors == ("http://127.0.0.1:5010/",)
    assert parse_info({"Architecture": "x86_64"}, {}).registry_mirrors == ()
