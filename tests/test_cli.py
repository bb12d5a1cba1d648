"""cli.py: help and version, usage errors (exit 2), errors as one line (exit 1), --debug."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dockerma import __version__

from .conftest import FakeDocker

NO_DAEMON = (
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
    "Is the docker daemon running?\n"
)


def python_m(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "dockerma", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("# dockerma archs:amd64:\nFROM scratch\n")
    return ctx


@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version(run_dockerma: Any, flag: str) -> None:
    res = run_dockerma(flag)
    assert res.code == 0
    assert res.out.strip() == f"dockerma, version {__version__}"


def test_python_m_version() -> None:
    res = python_m("--version")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"dockerma, version {__version__}"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_commands(run_dockerma: Any, flag: str) -> None:
    res = run_dockerma(flag)
    assert res.code == 0
    commands = res.out.split("Commands:")[1].split()
    assert "build" in commands
    assert "push" in commands
    assert "--host" in res.out and "--tlsverify" in res.out


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("build", ["--platform", "--jobs", "--strategy", "--dry-run", "--push", "--smoke-test"]),
        ("push", ["--insecure", "--jobs", "--smoke-test", "--metadata-file"]),
    ],
)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_subcommand_help(
    fake_docker: FakeDocker, run_dockerma: Any, command: str, options: list[str], flag: str
) -> None:
    res = run_dockerma(command, flag)
    assert res.code == 0, res.err
    assert res.out.startswith(f"Usage: dockerma {command}")
    missing = [o for o in options if o not in res.out]
    assert not missing
    assert fake_docker.calls() == []


def test_no_command_prints_the_help_as_help(run_dockerma: Any) -> None:
    res = run_dockerma()
    assert res.code in (0, 2)  # click < 8.2 exits 0 here, later ones 2 (a usage error)
    text = res.out + res.err
    assert text.startswith("Usage: dockerma [OPTIONS] COMMAND"), text
    assert "\nCommands:\n" in text and "dockerma: error:" not in text


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus", "build", "."],
        ["nosuch"],
        ["--log-level", "loud", "build", "."],
        ["build", "--jobs", "0", "."],
        ["build", "--strategy", "sideways", "."],
        ["build", "-t", "x"],
        ["build", "-t", "x", "a", "b"],
        ["build", "--iidfile", "f", "."],
        ["push"],
        ["push", "a", "b"],
        ["push", "-a", "reg:5000/app:v1"],
    ],
)
def test_usage_errors_exit_2(fake_docker: FakeDocker, run_dockerma: Any, args: list[str]) -> None:
    res = run_dockerma(*args)
    assert res.code == 2, res.err
    assert res.err.strip()
    assert "Traceback" not in res.err
    assert fake_docker.calls() == []


def test_no_context_is_a_dockerma_error_line(fake_docker: FakeDocker, run_dockerma: Any) -> None:
    res = run_dockerma("build", "-t", "x")
    assert res.code == 2
    assert res.err.startswith("dockerma: error: ")
    assert len(res.err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["build", "-H", "x", "."], "-H"),
        (["build", "--host=tcp://x:1", "."], "--host"),
        (["build", "--tlsverify", "-t", "a", "."], "--tlsverify"),
        (["build", ".", "--config", "d"], "--config"),
        (["push", "-D", "app:v1"], "-D"),
        (["push", "--context", "c", "app:v1"], "--context"),
    ],
)
def test_global_option_after_subcommand(
    fake_docker: FakeDocker, run_dockerma: Any, args: list[str], option: str
) -> None:
    res = run_dockerma(*args)
    assert res.code == 2
    assert res.err.startswith(f"dockerma: error: {option} ")
    assert "before the sub-command" in res.err
    assert fake_docker.calls() == []


def test_missing_engine_is_one_line(fake_docker: FakeDocker, context: Path) -> None:
    fake_docker.script([{"match": ["info"], "stderr": NO_DAEMON, "exit": 1}])
    res = python_m("build", "-t", "app:v1", str(context))
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("dockerma: error: the docker engine does not answer")
    assert "Cannot connect to the Docker daemon" in lines[0]
    assert "Traceback" not in res.stderr


def test_missing_engine_with_debug_shows_traceback(fake_docker: FakeDocker, context: Path) -> None:
    fake_docker.script([{"match": ["info"], "stderr": NO_DAEMON, "exit": 1}])
    res = python_m("--debug", "build", "-t", "app:v1", str(context))
    assert res.returncode == 1
    assert "Traceback (most recent call last)" in res.stderr
    assert (
        res.stderr.strip()
        .splitlines()[-1]
        .startswith("dockerma: error: the docker engine does not answer")
    )
    # -D reaches docker too, as docker's own --debug.
    assert fake_docker.calls()[0][0] == "--debug"


def test_docker_not_installed(tmp_path: Path, context: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    res = python_m("build", str(context), env={**os.environ, "PATH": str(empty)})
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("dockerma: error: docker is not installed")
    assert "install" in lines[0].removeprefix("dockerma: error: docker is not installed")


def test_push_without_per_arch_images_pushes_nothing(
    fake_docker: FakeDocker, run_dockerma: Any
) -> None:
    other = {"ID": "cccccccccccc", "Repository": "localhost:5000/app", "Tag": "v2-amd64"}
    fake_docker.script(
        [
            {"match": ["info"], "stdout": json.dumps({"Architecture": "x86_64"})},
            {"match": ["image", "ls"], "stdout": json.dumps(other) + "\n"},
        ]
    )
    res = run_dockerma("push", "localhost:5000/app:v1")
    assert res.code == 1
    assert res.err.startswith("dockerma: error: no per-arch images for localhost:5000/app:v1")
    assert not [c for c in fake_docker.calls() if c[0] in ("push", "manifest")]
