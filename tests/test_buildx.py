"""--builder NAME (buildx's option) and builders whose driver keeps the images (issue 20):
engine/buildx.py, and what the build command makes of them, against the fake docker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dockerma.engine import buildx
from tests.conftest import FakeDocker
from tests.test_build import INFO, INFO_RULE
from tests.test_outputs import _arch_builds

REMOTE = "Name:          ci\nDriver:        remote\nLast Activity: 2026-12-02\n\nNodes:\n"


def test_parse_inspect() -> None:
    found = buildx.parse_inspect(REMOTE, "ci")
    assert (found.name, found.driver, found.described, found.loads_itself) == (
        "ci",
        "remote",
        "ci",
        False,
    )
    assert buildx.parse_inspect("Name: default\nDriver: docker\n", "").loads_itself


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A docker config dir with one builder made (buildx keeps it in buildx/instances/)."""
    cfg = tmp_path / "docker-config"
    (cfg / "buildx" / "instances").mkdir(parents=True)
    (cfg / "buildx" / "instances" / "ci").write_text("{}")
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    return cfg


def _inspect_rule(args: list[str], text: str, code: int = 0) -> dict[str, Any]:
    return {"match": ["buildx", "inspect", *args], "stdout": text, "exit": code}


def test_named_remote_builder_reaches_docker_with_load(
    fake_docker: FakeDocker,
    run_dockerma: Any,
    two_arch: Path,
    config: Path,
) -> None:
    fake_docker.script([INFO_RULE, _inspect_rule(["ci"], REMOTE)])
    res = run_dockerma("build", "--builder", "ci", "-t", "app:v1", str(two_arch))
    assert res.code == 0, res.err
    for argv in _arch_builds(fake_docker).values():
        assert argv[argv.index("--builder") + 1] == "ci"
        assert "--load" in argv
    assert "buildx builder ci (remote driver): each image was loaded into the engine" in res.out
    # the emulation check asks buildx of the same builder (its platforms)
    asked = [c for c in fake_docker.calls() if c[:2] == ["buildx", "inspect"]]
    assert asked and all(c == ["buildx", "inspect", "ci"] for c in asked)


def test_named_docker_driver_builder_needs_no_load(
    fake_docker: FakeDocker,
    run_dockerma: Any,
    two_arch: Path,
    config: Path,
) -> None:
    fake_docker.script([INFO_RULE, _inspect_rule(["ctx"], "Name: ctx\nDriver: docker\n")])
    res = run_dockerma("build", "--builder=ctx", "-t", "app:v1", str(two_arch))
    assert res.code == 0, res.err
    for argv in _arch_builds(fake_docker).values():
        assert argv[argv.index("--builder") + 1] == "ctx"
        assert "--load" not in argv
    assert "--load" not in res.out


def test_default_builder_from_buildx_builder_env(
    fake_docker: FakeDocker,
    run_dockerma: Any,
    two_arch: Path,
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BUILDX_BUILDER", "ci")
    fake_docker.script([INFO_RULE, _inspect_rule([], REMOTE.replace("remote", "docker-container"))])
    res = run_dockerma("build", "-t", "app:v1", str(two_arch))
    assert res.code == 0, res.err
    assert ["buildx", "inspect"] in fake_docker.calls()
    for argv in _arch_builds(fake_docker).values():
        assert "--builder" not in argv  # docker finds it as dockerma did
        assert "--load" in argv
    assert "(docker-container driver)" in res.out


def test_no_builder_made_asks_buildx_nothing(
    fake_docker: FakeDocker,
    run_dockerma: Any,
    two_arch: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty-config"))
    fake_docker.script([INFO_RULE])
    # (amd64 only: a foreign one has the emulation check ask buildx for its platforms)
    res = run_dockerma("build", "--platform", "amd64", "-t", "app:v1", str(two_arch))
    assert res.code == 0, res.err
    assert not [c for c in fake_docker.calls() if c[:1] == ["buildx"]]
    for argv in _arch_builds(fake_docker).values():
        assert "--load" not in argv and "--builder" not in argv


def test_unknown_builder_is_one_error_line(
    fake_docker: FakeDocker,
    run_dockerma: Any,
    two_arch: Path,
    config: Path,
) -> None:
    rule = _inspect_rule(["nosuch"], "", 1)
    rule["stderr"] = 'ERROR: no builder "nosuch" found\n'
    fake_docker.script([INFO_RULE, rule])
    res = run_dockerma("build", "--builder", "nosuch", "-t", "app:v1", str(two_arch))
    assert res.code == 1
    assert res.err.strip().splitlines() == [
        'dockerma: error: buildx builder nosuch: ERROR: no builder "nosuch" found; see '
        "`docker buildx ls` for the builders there are"
    ]
    assert not _arch_builds(fake_docker)


def test_named_builder_on_the_legacy_builder_is_a_usage_error(
    fake_docker: FakeDocker,
    run_dockerma: Any,
    two_arch: Path,
) -> None:
    legacy = {**INFO, "ClientInfo": {"Plugins": []}}
    fake_docker.script([{"match": ["info"], "stdout": json.dumps(legacy)}])
    res = run_dockerma("build", "--builder", "ci", "-t", "app:v1", str(two_arch))
    assert res.code == 2
    assert "--builder ci names a buildx builder" in res.err
    assert not _arch_builds(fake_docker)


def test_native_builder_spec_stays_dockermas(
    fake_docker: FakeDocker,
    run_dockerma: Any,
    two_arch: Path,
) -> None:
    fake_docker.script([INFO_RULE])
    res = run_dockerma("build", "--builder", "arm64=tcp://127.0.0.1:1", "--dry-run", str(two_arch))
    assert res.code == 0, res.err
    assert "tcp://127.0.0.1:1" in res.out
    assert "--builder" not in res.out
