"""engine/emulation.py and the build's emulation check: what the engine can run is asked of
the engine (a probe container per foreign platform), never read from the client's kernel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dockerma.core import exit_elf
from dockerma.core.platforms import Platform
from dockerma.engine import emulation
from dockerma.engine.docker import Docker, GlobalOptions
from dockerma.errors import DockermaError

from .conftest import FakeDocker

AMD64 = Platform.parse("amd64")
ARM64_INFO = {"Architecture": "aarch64", "ClientInfo": {"Plugins": []}}


def _probes(fake: FakeDocker) -> list[str]:
    """The platform of every probe container run, in order."""
    return [c[c.index("--platform") + 1] for c in fake.calls() if "run" in c[:3]]


def test_native_targets_need_no_probe(fake_docker: FakeDocker) -> None:
    targets = [Platform.parse(p) for p in ("amd64", "386")]
    assert emulation.unrunnable(Docker(), AMD64, targets) == []
    assert fake_docker.calls() == []


def test_each_foreign_target_is_run_once_on_the_engine(fake_docker: FakeDocker) -> None:
    fake_docker.script(
        [{"match": ["run", "linux/s390x"], "exit": 1, "stderr": "exec format error"}]
    )
    targets = [Platform.parse(p) for p in ("amd64", "arm64", "s390x", "arm/v7")]
    docker = Docker(GlobalOptions(hosts=("ssh://me@box",)))
    assert emulation.unrunnable(docker, AMD64, targets) == [Platform.parse("s390x")]
    assert sorted(_probes(fake_docker)) == ["linux/arm/v7", "linux/arm64", "linux/s390x"]
    for call in fake_docker.calls():
        assert call[:2] == ["--host", "ssh://me@box"]  # the engine's own, not the client's
    s390x = next(c for c in fake_docker.calls() if "linux/s390x" in c)
    assert s390x[2:] == [
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        "--platform",
        "linux/s390x",
        "dockerma-probe:s390x",
    ]


def test_probe_images_are_loaded_only_when_missing(fake_docker: FakeDocker) -> None:
    targets = [Platform.parse("arm64")]
    emulation.unrunnable(Docker(), AMD64, targets)  # image inspect succeeds: all there
    assert [c[0] for c in fake_docker.calls()] == ["image", "run"]
    fake_docker.log.unlink()
    fake_docker.script([{"match": ["image", "inspect"], "exit": 1, "stderr": "No such image"}])
    emulation.unrunnable(Docker(), AMD64, targets)
    assert [c[0] for c in fake_docker.calls()] == ["image", "load", "run"]


def test_a_refused_load_is_one_error_line(fake_docker: FakeDocker) -> None:
    fake_docker.script(
        [
            {"match": ["image", "inspect"], "exit": 1},
            {
                "match": ["load"],
                "exit": 1,
                "stderr": "Error: open /var/lib/x: read-only file system\n",
            },
        ]
    )
    with pytest.raises(DockermaError, match="cannot load dockerma's emulation probe.*read-only"):
        emulation.unrunnable(Docker(), AMD64, [Platform.parse("arm64")])


def test_arm64_engine_asks_about_arm_v7_and_never_names_qemu_arm(fake_docker: FakeDocker) -> None:
    arm64 = Platform.parse("arm64")
    targets = [Platform.parse(p) for p in ("arm64", "arm/v7", "amd64")]
    assert emulation.unrunnable(Docker(), arm64, targets) == []
    assert sorted(_probes(fake_docker)) == ["linux/amd64", "linux/arm/v7"]


def test_hint_names_the_engine_the_platform_and_the_fixes() -> None:
    text = emulation.hint(Platform.parse("s390x"), "the builder ssh://ci@box", inject=True)
    assert text.startswith("the builder ssh://ci@box cannot run linux/s390x:")
    assert "--install s390x" in text and "--builder s390x=ENDPOINT" in text
    assert "--strategy inject" not in text  # no cross-build image for s390x
    assert "\n" not in text
    arm = emulation.hint(Platform.parse("arm64"), "the docker engine", inject=True)
    assert "--strategy inject" in arm
    assert "--strategy inject" not in emulation.hint(Platform.parse("arm64"), "x", inject=False)


def _context(tmp_path: Path, archs: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"# dockerma archs:{archs}:\nFROM scratch\nCOPY a /\n")
    (ctx / "a").write_text("a\n")
    return ctx


def test_build_refuses_what_the_engine_cannot_run_before_building(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's own binfmt_misc (this machine's has handlers) no longer decides."""
    _context(tmp_path, "amd64,arm64")
    monkeypatch.chdir(tmp_path)
    fake_docker.script(
        [
            {
                "match": ["run", "linux/arm64"],
                "exit": 125,
                "stderr": "exec /exit0: exec format error\n",
            }
        ]
    )
    res = run_dockerma("-H", "tcp://engine:2375", "build", "-t", "app:v1", "ctx")
    assert res.code == 1
    lines = res.err.strip().splitlines()
    assert lines[-1].startswith(
        "dockerma: error: the docker engine (--host tcp://engine:2375) cannot run linux/arm64:"
    )
    assert not [c for c in fake_docker.calls() if "build" in c]


def test_build_goes_on_when_the_engine_runs_it(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _context(tmp_path, "amd64,arm64,s390x")
    monkeypatch.chdir(tmp_path)
    fake_docker.script([])
    res = run_dockerma("build", "-t", "app:v1", "ctx")
    assert res.code == 0, res.err
    assert sorted(_probes(fake_docker)) == ["linux/arm64", "linux/s390x"]
    builds = [c for c in fake_docker.calls() if c[0] == "build"]
    assert len(builds) == 3
    first_build = next(i for i, c in enumerate(fake_docker.calls()) if c[0] == "build")
    last_probe = max(i for i, c in enumerate(fake_docker.calls()) if c[0] == "run")
    assert last_probe < first_build


def test_a_native_builder_is_asked_too(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A --builder engine that must emulate is asked itself (the old check skipped it)."""
    _context(tmp_path, "amd64,s390x")
    monkeypatch.chdir(tmp_path)
    fake_docker.script(
        [
            {"match": ["run", "linux/s390x"], "exit": 1, "stderr": "exec format error\n"},
            {"match": ["info"], "stdout": json.dumps(ARM64_INFO)},
        ]
    )
    res = run_dockerma("build", "--builder", "s390x=ssh://ci@arm-box", "-t", "app:v1", "ctx")
    assert res.code == 1
    assert "error: the builder ssh://ci@arm-box cannot run linux/s390x" in res.err
    probe = next(c for c in fake_docker.calls() if c[2:3] == ["run"])
    assert probe[:2] == ["--host", "ssh://ci@arm-box"]


def test_inject_and_dry_run_ask_nothing(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _context(tmp_path, "amd64,arm64")
    monkeypatch.chdir(tmp_path)
    res = run_dockerma("build", "--dry-run", "-t", "app:v1", "ctx")
    assert res.code == 0, res.err
    assert _probes(fake_docker) == []
    assert exit_elf.REPOSITORY not in json.dumps(fake_docker.calls())
