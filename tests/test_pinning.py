"""Bases the engine has itself (issue 19, item 5): dockerma's per-arch tags of an earlier build
are used, pinned by id, without a registry look-up; what lacks an architecture stops the run
before any build; --pull and a registry that has the image keep the registry's digests.

The fake docker (tests/fakedocker) describes the local images; the fake registry serves
(or does not serve) the same name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockerma.core.platforms import Platform
from dockerma.flows import pinning
from dockerma.options import parse_build
from tests.conftest import FakeDocker
from tests.fakeregistry import DOCKER_LIST, FakeRegistry

CLASSIC = {"Architecture": "x86_64", "DriverStatus": [["Backing Filesystem", "extfs"]]}
CONTAINERD = {
    "Architecture": "x86_64",
    "ServerVersion": "28.5.2",
    "ClientInfo": {"Plugins": [{"Name": "buildx"}]},
    "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]],
}
CONTAINERD_26 = {**CONTAINERD, "ServerVersion": "26.1.5+dfsg1"}
BUILDKIT_CLASSIC_STORE = {**CLASSIC, "ClientInfo": {"Plugins": [{"Name": "buildx"}]}}
ID_AMD64 = "sha256:" + "1" * 64
ID_ARM64 = "sha256:" + "2" * 64
REGISTRY_DIGEST = "sha256:" + "9" * 64


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as reg:
        yield reg


def _image(image_id: str, arch: str, *tags: str) -> dict[str, Any]:
    return {"Id": image_id, "Os": "linux", "Architecture": arch, "RepoTags": list(tags)}


def _script(fake: FakeDocker, info: dict[str, Any], images: list[dict[str, Any]]) -> None:
    fake.script(
        [
            {"match": ["info"], "stdout": json.dumps(info)},
            # docker describes the names that exist, and exits 1 for the others
            {"match": ["image", "inspect"], "stdout": json.dumps(images), "exit": 1},
        ]
    )


def _context(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "app"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def _list(registry: FakeRegistry, repo: str, tag: str) -> None:
    entries = [
        {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "digest": REGISTRY_DIGEST,
            "size": 1,
            "platform": {"architecture": a, "os": "linux"},
        }
        for a in ("amd64", "arm64")
    ]
    body = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": entries})
    registry.manifest(repo, tag, body.encode(), DOCKER_LIST)


BOTH = [
    _image(ID_AMD64, "amd64", "{base}:1-amd64"),
    _image(ID_ARM64, "arm64", "{base}:1-arm64"),
]


def _local(base: str, images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**i, "RepoTags": [t.format(base=base) for t in i["RepoTags"]]} for i in images]


@pytest.mark.parametrize(
    ("info", "amd64", "arm64"),
    [
        # the classic builder starts from an image id
        (CLASSIC, ID_AMD64, ID_ARM64),
        # BuildKit on the containerd store: name:tag@id
        (CONTAINERD, "{base}:1-amd64@" + ID_AMD64, "{base}:1-arm64@" + ID_ARM64),
        # docker 26's BuildKit asks a registry for any digest: the per-arch tag
        (CONTAINERD_26, "{base}:1-amd64", "{base}:1-arm64"),
        # BuildKit on the classic store: the per-arch tag (it takes no id)
        (BUILDKIT_CLASSIC_STORE, "{base}:1-amd64", "{base}:1-arm64"),
    ],
)
def test_local_per_arch_bases_are_pinned_without_a_registry(
    fake_docker: FakeDocker,
    run_dockerma: Any,
    registry: FakeRegistry,
    tmp_path: Path,
    info: dict[str, Any],
    amd64: str,
    arm64: str,
) -> None:
    base = f"{registry.address}/team/mybase"  # the registry has nothing: a look-up would fail
    _script(fake_docker, info, _local(base, BOTH))
    ctx = _context(
        tmp_path,
        f"# dockerma archs:amd64,arm64:\nFROM {base}:1\nCOPY --from={base}:1 /x /x\n",
    )
    res = run_dockerma("build", "--dry-run", "-t", "app:1", str(ctx))
    assert res.code == 0, res.err
    assert f"FROM {amd64.format(base=base)}\nCOPY --from={amd64.format(base=base)} /x" in res.out
    assert f"FROM {arm64.format(base=base)}\nCOPY --from={arm64.format(base=base)} /x" in res.out
    asked = [c for c in fake_docker.calls() if c[:2] == ["image", "inspect"]]
    assert len(asked) == 1  # one docker call for every name
    assert f"{base}:1-amd64" in asked[0] and f"{base}:1-arm64" in asked[0]


def test_missing_architecture_stops_before_any_build(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry, tmp_path: Path
) -> None:
    base = f"{registry.address}/team/mybase"
    _script(fake_docker, CLASSIC, _local(base, BOTH[:1]))  # amd64 only
    ctx = _context(tmp_path, f"# dockerma archs:amd64,arm64,arm:\nFROM {base}:1\n")
    res = run_dockerma("build", "-t", "app:1", str(ctx))
    assert res.code == 1
    line = res.err.strip()
    assert len(line.splitlines()) == 1 and line.startswith("dockerma: error: "), res.err
    assert f"{base}:1-arm64, {base}:1-arm for linux/arm64, linux/arm/v7" in line
    assert f"dockerma build --platform linux/arm64,linux/arm/v7 -t {base}:1 " in line
    assert "build" not in [c[0] for c in fake_docker.calls()]


def test_a_single_arch_plain_tag_names_what_is_missing(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry, tmp_path: Path
) -> None:
    base = f"{registry.address}/team/mybase"
    _script(fake_docker, CLASSIC, [_image(ID_AMD64, "amd64", f"{base}:1")])
    ctx = _context(tmp_path, f"# dockerma archs:amd64,arm64:\nFROM {base}:1\n")
    res = run_dockerma("build", "-t", "app:1", str(ctx))
    assert res.code == 1
    assert f"no {base}:1-amd64, {base}:1-arm64" in res.err
    assert f"(only {base}:1, a linux/amd64 image)" in res.err
    assert "build" not in [c[0] for c in fake_docker.calls()]


def test_registry_answers_for_what_the_engine_has_only_partly(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry, tmp_path: Path
) -> None:
    base = f"{registry.address}/team/mybase"
    _list(registry, "team/mybase", "1")
    _script(fake_docker, CLASSIC, _local(base, BOTH[:1]))
    ctx = _context(tmp_path, f"# dockerma archs:amd64,arm64:\nFROM {base}:1\n")
    res = run_dockerma("build", "--dry-run", "-t", "app:1", str(ctx))
    assert res.code == 0, res.err
    assert res.out.count(f"FROM {base}@{REGISTRY_DIGEST}") == 2


def test_pull_takes_the_registry_whatever_the_engine_has(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry, tmp_path: Path
) -> None:
    base = f"{registry.address}/team/mybase"
    _list(registry, "team/mybase", "1")
    _script(fake_docker, CLASSIC, _local(base, BOTH))
    ctx = _context(tmp_path, f"# dockerma archs:amd64,arm64:\nFROM {base}:1\n")
    res = run_dockerma("build", "--dry-run", "--pull", "-t", "app:1", str(ctx))
    assert res.code == 0, res.err
    assert res.out.count(f"FROM {base}@{REGISTRY_DIGEST}") == 2
    assert not [c for c in fake_docker.calls() if c[:2] == ["image", "inspect"]]


def test_a_mislabelled_local_tag_is_not_used(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry, tmp_path: Path
) -> None:
    base = f"{registry.address}/team/mybase"
    wrong = [_image(ID_AMD64, "amd64", f"{base}:1-amd64", f"{base}:1-arm64")]
    _script(fake_docker, CLASSIC, wrong)
    ctx = _context(tmp_path, f"# dockerma archs:amd64,arm64:\nFROM {base}:1\n")
    res = run_dockerma("build", "-t", "app:1", str(ctx))
    assert res.code == 1
    assert f"no {base}:1-arm64 for linux/arm64" in res.err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["."], False),
        (["--pull", "."], True),
        (["--pull=true", "."], True),
        (["--pull=false", "."], False),
    ],
)
def test_pulls(args: list[str], expected: bool) -> None:
    assert pinning.pulls(parse_build(args, environ={})) is expected


def test_build_context_names_reach_no_look_up(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path
) -> None:
    _script(fake_docker, CONTAINERD, [])
    # neither a registry nor the engine has `tools` or `base`: only the contexts give them
    ctx = _context(tmp_path, "# dockerma archs:arm64:\nFROM base\nCOPY --from=tools /x /x\n")
    res = run_dockerma(
        "build",
        "--dry-run",
        "--build-context",
        "base=docker-image://x",
        "--build-context=tools=../tools",
        "-t",
        "app:1",
        str(ctx),
    )
    assert res.code == 0, res.err
    assert "FROM base\nCOPY --from=tools /x /x" in res.out
    assert not [c for c in fake_docker.calls() if c[:2] == ["image", "inspect"]]
    assert Platform.parse("arm64").docker in res.out


def test_buildplatform_stage_takes_the_build_machines_local_tag(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry, tmp_path: Path
) -> None:
    base = f"{registry.address}/team/mybase"
    _script(fake_docker, CLASSIC, _local(base, BOTH))
    ctx = _context(
        tmp_path,
        f"# dockerma archs:arm64:\nFROM --platform=$BUILDPLATFORM {base}:1 AS tools\n"
        f"FROM {base}:1\nCOPY --from=tools /x /x\n",
    )
    res = run_dockerma("build", "--dry-run", "-t", "app:1", str(ctx))
    assert res.code == 0, res.err
    assert f"FROM --platform=linux/amd64 {ID_AMD64} AS tools\nFROM {ID_ARM64}\n" in res.out
