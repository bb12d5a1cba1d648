"""dockerma push: the manifest list is tied to what docker push uploaded (issue 17, item 10),
and every digest the registry sends back is checked (item 2).

The fake docker (tests/fakedocker) stands in for the engine and reports a digest for each
push; the fake registry (tests/fakeregistry.py) holds what a per-arch tag points at when
dockerma reads it back: what was pushed, or what a concurrent push put there since.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import FakeDocker
from tests.fakeregistry import DOCKER_LIST, FakeRegistry, digest_of

INFO = {
    "Architecture": "x86_64",
    "ClientInfo": {"Plugins": [{"Name": "buildx"}]},
    "DriverStatus": [["Backing Filesystem", "extfs"]],
    "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}},
}


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# The local image: on the classic store its id is its config digest.
LOCAL_CONFIG = {"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": []}, "v": "ours"}
OTHER_CONFIG = {"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": []}, "v": "other"}
LOCAL_ID = digest_of(json.dumps(LOCAL_CONFIG).encode())


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as reg:
        yield reg


def _script(fake: FakeDocker, name: str, push_output: str) -> None:
    inspected = [
        {
            "Id": LOCAL_ID,
            "Os": "linux",
            "Architecture": "amd64",
            "RepoTags": [f"{name}:v1-amd64"],
        }
    ]
    fake.script(
        [
            {"match": ["info"], "stdout": json.dumps(INFO)},
            {"match": ["image", "inspect"], "stdout": json.dumps(inspected)},
            {"match": ["push"], "stdout": push_output},
        ]
    )


def _list_puts(registry: FakeRegistry) -> list[str]:
    return [path for path, _ in registry.state.puts if path.endswith("/manifests/v1")]


def test_list_is_written_from_what_docker_push_reported(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry
) -> None:
    name = f"{registry.address}/team/app"
    pushed, _ = registry.image("team/app", "v1-amd64", OTHER_CONFIG)  # not the local id:
    # what docker push reports is the proof (the containerd store, or --platform pushes)
    _script(fake_docker, name, f"abc: Pushed\nv1-amd64: digest: {pushed} size: 528\n")
    res = run_dockerma("push", f"{name}:v1")
    assert res.code == 0, res.err
    assert len(_list_puts(registry)) == 1
    written = json.loads(registry.state.puts[-1][1])
    assert [m["digest"] for m in written["manifests"]] == [pushed]


def test_a_concurrent_push_to_the_per_arch_tag_is_refused(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry
) -> None:
    name = f"{registry.address}/team/app"
    # docker push reported one digest; the tag holds another image when dockerma reads it.
    reported = sha("what docker push uploaded")
    intruder, _ = registry.image("team/app", "v1-amd64", OTHER_CONFIG)
    _script(fake_docker, name, f"v1-amd64: digest: {reported} size: 528\n")
    res = run_dockerma("push", f"{name}:v1")
    assert res.code == 1
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dockerma: error: "), res.err
    assert f"{name}:v1-amd64" in lines[0] and intruder in lines[0] and reported in lines[0]
    assert "no manifest list" in lines[0]
    assert _list_puts(registry) == []  # nothing wrong got into a list


def test_without_a_reported_digest_the_local_image_id_decides(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry
) -> None:
    # docker push -q prints the name only: the tag's config must be the local image.
    name = f"{registry.address}/team/app"
    intruder, _ = registry.image("team/app", "v1-amd64", OTHER_CONFIG)
    _script(fake_docker, name, f"{name}:v1-amd64\n")
    res = run_dockerma("push", "-q", f"{name}:v1")
    assert res.code == 1
    assert "not the local image" in res.err and intruder in res.err
    assert _list_puts(registry) == []


def test_without_a_reported_digest_the_local_image_is_accepted(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry
) -> None:
    name = f"{registry.address}/team/app"
    ours, config = registry.image("team/app", "v1-amd64", LOCAL_CONFIG)
    assert config == LOCAL_ID
    _script(fake_docker, name, f"{name}:v1-amd64\n")
    # (an option beside -q makes the push happen although the registry has the image)
    res = run_dockerma("push", "-q", "--disable-content-trust", f"{name}:v1")
    assert res.code == 0, res.err
    assert [c for c in fake_docker.calls() if c[0] == "push"]
    written = json.loads(registry.state.puts[-1][1])
    assert [m["digest"] for m in written["manifests"]] == [ours]


def test_a_hostile_index_entry_in_the_per_arch_tag_is_refused(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry
) -> None:
    # containerd store: the per-arch tag is an index; its entries are read and checked.
    name = f"{registry.address}/team/app"
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [
            {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": "sha256:" + "a" * 64 + "\nevil",
                "size": 1,
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    pushed = registry.manifest("team/app", "v1-amd64", json.dumps(doc).encode(), DOCKER_LIST)
    _script(fake_docker, name, f"v1-amd64: digest: {pushed} size: 300\n")
    res = run_dockerma("push", f"{name}:v1")
    assert res.code == 1
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "invalid digest" in lines[0] and registry.address in lines[0]
    assert _list_puts(registry) == []
