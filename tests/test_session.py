"""Retries, backoff and unreachable registries, against the fake registry."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from dockerma.core.references import ImageRef
from dockerma.registry import session
from dockerma.registry.client import (
    OCI_INDEX,
    RegistryError,
)
from tests.test_registry import INDEX_BODY, FakeRegistry, client

# -- retries and failures --------------------------------------------------------------------


def test_503_twice_then_success(fake: FakeRegistry) -> None:
    fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    fake.state.failures = [503, 503]
    reports: list[str] = []
    manifest = client(on_retry=reports.append).get_manifest(fake.ref("team/app:v1"))
    assert manifest.body == INDEX_BODY
    assert reports == [
        f"registry {fake.address} answered 503 for GET /v2/team/app/manifests/v1; retry 1/4 in 0 s",
        f"registry {fake.address} answered 503 for GET /v2/team/app/manifests/v1; retry 2/4 in 0 s",
    ]


def test_backoff_doubles(fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(session.time, "sleep", sleeps.append)
    fake.state.failures = [500, 502, 504, 429]
    registry = client(backoff=0.5, retries=4)
    registry.put_manifest(fake.ref("dockerma-scratch/a:1"), INDEX_BODY, OCI_INDEX)
    assert sleeps == [0.5, 1.0, 2.0, 4.0]


def test_retries_exhausted_names_status_and_hint(fake: FakeRegistry) -> None:
    fake.state.failures = [503] * 3
    reports: list[str] = []
    with pytest.raises(RegistryError) as info:
        client(retries=2, on_retry=reports.append).put_manifest(
            fake.ref("dockerma-scratch/a:1"), INDEX_BODY, OCI_INDEX
        )
    assert len(reports) == 2
    message = str(info.value)
    assert fake.address in message and "503" in message and "PUT" in message
    assert "try again later" in message


def test_other_client_errors_are_not_retried(fake: FakeRegistry) -> None:
    fake.state.failures = [400]
    reports: list[str] = []
    with pytest.raises(RegistryError, match="400"):
        client(on_retry=reports.append).put_manifest(
            fake.ref("dockerma-scratch/a:1"), INDEX_BODY, OCI_INDEX
        )
    assert reports == []


def test_unreachable_registry(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    reports: list[str] = []
    with pytest.raises(RegistryError) as info:
        client(retries=3, on_retry=reports.append).get_manifest(
            ImageRef.parse(f"127.0.0.1:{port}/team/app:v1")
        )
    assert "is the registry running? check its address" in str(info.value)
    assert "1 try" in str(info.value)
    assert reports == []  # nothing listening: no retry, as docker


def test_unknown_registry_host_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", no_such_host)
    reports: list[str] = []
    with pytest.raises(RegistryError) as info:
        client(retries=3, on_retry=reports.append).get_manifest(
            ImageRef.parse("registry.invalid/team/app:v1")
        )
    assert "registry.invalid" in str(info.value) and "no such host" in str(info.value)
    assert reports == []


def test_timeout_is_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # accepts connections, never answers
        port = sock.getsockname()[1]
        with pytest.raises(RegistryError, match="timed out"):
            client(retries=1, timeout=0.2).get_manifest(
                ImageRef.parse(f"127.0.0.1:{port}/team/app:v1")
            )
