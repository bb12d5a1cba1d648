"""engine/probe.py: `docker info` parsed, native vs emulated architectures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dockerma.core.platforms import Platform
from dockerma.engine.docker import Docker, GlobalOptions
from dockerma.engine.probe import parse_info, probe, runs_natively
from dockerma.errors import DockermaError

from .conftest import FakeDocker

BUILDX = {"ClientInfo": {"Plugins": [{"Name": "buildx", "Version": "v0.17.1"}]}}
NO_PLUGINS = {"ClientInfo": {"Plugins": []}}
OVERLAY = [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]]
CONTAINERD = [["driver-type", "io.containerd.snapshotter.v1"]]


@pytest.mark.parametrize(
    ("info", "environ", "buildkit"),
    [
        (BUILDX, {}, True),
        (BUILDX, {"DOCKER_BUILDKIT": "1"}, True),
        (BUILDX, {"DOCKER_BUILDKIT": "0"}, False),
        (NO_PLUGINS, {}, False),
        (NO_PLUGINS, {"DOCKER_BUILDKIT": "1"}, True),
        ({"ClientInfo": {"Plugins": [{"Name": "compose"}]}}, {}, False),
        ({}, {}, False),
    ],
)
def test_buildkit(info: dict[str, Any], environ: dict[str, str], buildkit: bool) -> None:
    assert parse_info({"Architecture": "x86_64", **info}, environ).buildkit is buildkit


@pytest.mark.parametrize(
    ("info", "version"),
    [
        (BUILDX, "v0.17.1"),
        ({"ClientInfo": {"Plugins": [{"Name": "buildx", "Version": "0.29.1+ds1"}]}}, "0.29.1+ds1"),
        ({"ClientInfo": {"Plugins": [{"Name": "buildx"}]}}, ""),
        ({"ClientInfo": {"Plugins": [{"Name": "compose", "Version": "2.30.0"}]}}, ""),
        (NO_PLUGINS, ""),
        ({}, ""),
    ],
)
def test_buildx_version(info: dict[str, Any], version: str) -> None:
    assert parse_info({"Architecture": "x86_64", **info}, {}).buildx_version == version


@pytest.mark.parametrize(
    ("driver_status", "containerd"),
    [(CONTAINERD, True), (OVERLAY, False), ([], False), (None, False)],
)
def test_containerd_store(driver_status: Any, containerd: bool) -> None:
    info = {"Architecture": "x86_64", "DriverStatus": driver_status}
    assert parse_info(info, {}).containerd_store is containerd


@pytest.mark.parametrize(
    ("registry_config", "insecure"),
    [
        ({"InsecureRegistryCIDRs": ["127.0.0.0/8"]}, ("127.0.0.0/8",)),
        (
            {
                "InsecureRegistryCIDRs": ["127.0.0.0/8", "10.0.0.0/8"],
                "IndexConfigs": {
                    "docker.io": {"Name": "docker.io", "Secure": True, "Official": True},
                    "myreg:5000": {"Name": "myreg:5000", "Secure": False},
                },
            },
            ("127.0.0.0/8", "10.0.0.0/8", "myreg:5000"),
        ),
        ({}, ()),
        (None, ()),
    ],
)
def test_insecure_registries(registry_config: Any, insecure: tuple[str, ...]) -> None:
    info = {"Architecture": "x86_64", "RegistryConfig": registry_config}
    assert parse_info(info, {}).insecure_registries == insecure


@pytest.mark.parametrize(
    ("architecture", "platform"),
    [
        ("x86_64", "linux/amd64"),
        ("aarch64", "linux/arm64"),
        ("armv7l", "linux/arm/v7"),
        ("s390x", "linux/s390x"),
    ],
)
def test_engine_platform(architecture: str, platform: str) -> None:
    assert str(parse_info({"Architecture": architecture}, {}).platform) == platform


def test_server_errors_without_architecture() -> None:
    info = {"ServerErrors": ["Cannot connect to the Docker daemon at tcp://x:1"]}
    with pytest.raises(DockermaError, match="does not answer: Cannot connect"):
        parse_info(info, {})


def test_probe_asks_docker_info(fake_docker: FakeDocker) -> None:
    info = {"Architecture": "aarch64", **BUILDX, "DriverStatus": CONTAINERD}
    fake_docker.script([{"match": ["info", "--format"], "stdout": json.dumps(info)}])
    got = probe(Docker(), environ={})
    assert (str(got.platform), got.buildkit, got.containerd_store) == ("linux/arm64", True, True)
    assert fake_docker.calls() == [["info", "--format", "{{json .}}"]]


def test_probe_names_the_engine_and_the_fix(fake_docker: FakeDocker) -> None:
    fake_docker.script(
        [
            {
                "match": ["info"],
                "stderr": "Cannot connect to the Docker daemon at tcp://x:1. Is it running?\n",
                "exit": 1,
            }
        ]
    )
    with pytest.raises(DockermaError) as err:
        probe(Docker(GlobalOptions(hosts=("tcp://x:1",))), environ={})
    message = str(err.value)
    assert message.startswith("the docker engine does not answer (--host tcp://x:1): Cannot")
    assert "DOCKER_HOST" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("target", "engine", "native"),
    [
        ("amd64", "amd64", True),
        ("386", "amd64", True),
        ("arm64", "arm64", True),
        ("arm/v7", "arm/v7", True),
        ("arm/v6", "arm/v7", True),
        ("arm/v7", "arm/v6", False),
        ("arm64", "amd64", False),
        ("amd64", "arm64", False),
        ("arm/v7", "amd64", False),
        ("amd64", "386", False),
        ("s390x", "amd64", False),
    ],
)
def test_runs_natively(target: str, engine: str, native: bool) -> None:
    assert runs_natively(Platform.parse(target), Platform.parse(engine)) is native
