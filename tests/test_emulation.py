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
    assert emulation.unrunnable(Docker(), AMD64, targets).missing == ()
    assert fake_docker.calls() == []


def test_each_foreign_target_is_run_once_on_the_engine(fake_docker: FakeDocker) -> None:
    fake_docker.script(
        [{"match": ["run", "linux/s390x"], "exit": 1, "stderr": "exec format error"}]
    )
    targets = [Platform.parse(p) for p in ("amd64", "arm64", "s390x", "arm/v7")]
    docker = Docker(GlobalOptions(hosts=("ssh://me@box",)))
    assert emulation.unrunnable(docker, AMD64, targets).missing == (Platform.parse("s390x"),)
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
    emulation.unrunnable(Docker(), AMD64, targets)  # the probe ran: its image is there
    assert [c[0] for c in fake_docker.calls()] == ["run"]
    fake_docker.log.unlink()
    missing = "Error response from daemon: No such image: dockerma-probe:arm64\n"
    fake_docker.script(
        [
            {"match": ["run"], "exit": 125, "stderr": missing},
            {"match": ["image", "inspect"], "exit": 1, "stderr": missing},
        ]
    )
    # (this fake's run keeps failing after the load: a probe that still fails is a no)
    got = emulation.unrunnable(Docker(), AMD64, targets)
    assert got.missing == (Platform.parse("arm64"),)
    assert [c[0] for c in fake_docker.calls()] == ["run", "image", "load", "run"]


def test_exec_format_error_is_a_no_without_a_load(fake_docker: FakeDocker) -> None:
    error = "exec /exit0: exec format error\n"
    fake_docker.script([{"match": ["run"], "exit": 1, "stderr": error}])
    got = emulation.unrunnable(Docker(), AMD64, [Platform.parse("s390x")])
    assert got.missing == (Platform.parse("s390x"),)
    assert [c[0] for c in fake_docker.calls()] == ["run"]


def test_a_refused_load_is_one_error_line(fake_docker: FakeDocker) -> None:
    fake_docker.script(
        [
            {"match": ["run"], "exit": 125, "stderr": "No such image: dockerma-probe:arm64\n"},
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
    assert emulation.unrunnable(Docker(), arm64, targets).missing == ()
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


def test_dry_run_asks_nothing(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _context(tmp_path, "amd64,arm64")
    monkeypatch.chdir(tmp_path)
    res = run_dockerma("build", "--dry-run", "-t", "app:v1", "ctx")
    assert res.code == 0, res.err
    assert _probes(fake_docker) == []
    assert exit_elf.REPOSITORY not in json.dumps(fake_docker.calls())


# `docker buildx inspect` as buildx 0.13 (docker 26) and 0.29 (docker 28.5) print it on the test
# bed (the labels and GC policies cut), and a builder of the remote driver on an arm64 machine.
INSPECT_0_13 = """\
Name:          default
Driver:        docker
Last Activity: 2026-12-02 19:28:30 +0000 UTC

Nodes:
Name:             default
Endpoint:         default
Status:           running
BuildKit version: v0.0.0+unknown
Platforms:        linux/amd64, linux/amd64/v2, linux/amd64/v3, linux/arm64, linux/riscv64, \
linux/ppc64, linux/ppc64le, linux/s390x, linux/mips64le, linux/mips64, linux/loong64
Labels:
 org.mobyproject.buildkit.worker.executor:             containerd
"""
INSPECT_0_29 = """\
Name:          default
Driver:        docker
Last Activity: 2026-12-02 19:31:34 +0000 UTC

Nodes:
Name:             default
Endpoint:         default
Status:           running
BuildKit version: v0.0.0+unknown
Platforms:        linux/amd64, linux/amd64/v2, linux/amd64/v3, linux/arm64, linux/riscv64, \
linux/ppc64, linux/ppc64le, linux/s390x, linux/loong64, linux/arm/v7, linux/arm/v6
GC Policy rule#0:
 All:            false
"""
INSPECT_REMOTE = """\
Name:          arm-box
Driver:        remote
Last Activity: 2026-12-02 19:31:34 +0000 UTC

Nodes:
Name:             arm-box0
Endpoint:         tcp://arm-box:1234
Status:           running
BuildKit version: v0.16.0
Platforms:        linux/arm64*, linux/arm/v7, linux/arm/v6
"""


@pytest.mark.parametrize(
    ("text", "driver", "platforms"),
    [
        (INSPECT_0_13, "docker", "amd64 arm64 riscv64 ppc64le s390x mips64le loong64"),
        (INSPECT_0_29, "docker", "amd64 arm64 riscv64 ppc64le s390x loong64 arm/v7 arm/v6"),
        (INSPECT_REMOTE, "remote", "arm64 arm/v7 arm/v6"),
        ("", "", ""),
    ],
)
def test_parse_inspect(text: str, driver: str, platforms: str) -> None:
    builder = emulation.parse_inspect(text)
    assert builder.driver == driver
    assert builder.platforms == tuple(Platform.parse(p) for p in platforms.split())


def test_a_remote_builder_answers_for_itself(fake_docker: FakeDocker) -> None:
    """Its BuildKit runs elsewhere: its list decides, not the engine's kernel (whose probes
    fail here)."""
    fake_docker.script(
        [
            {"match": ["buildx", "inspect", "arm-box"], "stdout": INSPECT_REMOTE},
            {"match": ["run"], "exit": 1, "stderr": "exec format error\n"},
        ]
    )
    targets = [Platform.parse(p) for p in ("amd64", "arm64", "arm/v7", "s390x")]
    got = emulation.unrunnable(Docker(), AMD64, targets, builder=("arm-box", "remote"))
    assert got.missing == (Platform.parse("s390x"),)
    assert got.builder is not None and (got.builder.name, got.builder.driver) == (
        "arm-box",
        "remote",
    )
    text = emulation.hint(got.missing[0], "the docker engine", True, got.builder)
    assert text.startswith(
        "the buildx builder arm-box (remote driver, used by the docker engine) cannot build "
        "linux/s390x: it runs linux/arm64, linux/arm/v7, linux/arm/v6;"
    )


def test_dockers_own_builder_list_is_not_trusted(fake_docker: FakeDocker) -> None:
    """docker's built-in builder lists s390x from dockerd's start; the handler went since.
    Its list is not even asked: the probes decide."""
    fake_docker.script(
        [
            {"match": ["buildx", "inspect"], "stdout": INSPECT_0_29},
            {"match": ["run", "linux/s390x"], "exit": 1, "stderr": "exec format error\n"},
        ]
    )
    targets = [Platform.parse(p) for p in ("amd64", "arm/v7", "s390x")]
    for driver in ("docker", "docker-container"):
        got = emulation.unrunnable(Docker(), AMD64, targets, builder=("", driver))
        assert got == emulation.Answer((Platform.parse("s390x"),))
    assert not [c for c in fake_docker.calls() if c[0] == "buildx"]


@pytest.mark.parametrize("given", [["--builder", "arm-box"], ["--builder=arm-box"]])
def test_the_builder_named_by_docker_build_builder_is_asked(
    fake_docker: FakeDocker,
    run_dockerma: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    given: list[str],
) -> None:
    """docker's own --builder NAME, of the remote driver: its platforms decide, and the error
    names it."""
    _context(tmp_path, "amd64,arm64,s390x")
    monkeypatch.chdir(tmp_path)
    info = {"Architecture": "x86_64", "ClientInfo": {"Plugins": [{"Name": "buildx"}]}}
    fake_docker.script(
        [
            {"match": ["info"], "stdout": json.dumps(info)},
            {"match": ["buildx", "inspect", "arm-box"], "stdout": INSPECT_REMOTE},
            {"match": ["run"], "exit": 1, "stderr": "exec format error\n"},
        ]
    )
    res = run_dockerma("build", *given, "-t", "app:v1", "ctx")
    assert res.code == 1
    last = res.err.strip().splitlines()[-1]
    assert last.startswith(
        "dockerma: error: the buildx builder arm-box (remote driver, used by the docker engine) "
        "cannot build linux/s390x: it runs linux/arm64, linux/arm/v7, linux/arm/v6;"
    ), res.err
    assert not [c for c in fake_docker.calls() if c[0] == "build"]
