"""cli.py: help and version, usage errors (exit 2), errors as one line (exit 1), --debug."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from dockerma import __version__

from .conftest import FakeDocker
from .test_docker import INFO

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


# -- interruption (issue 17, item 3) ---------------------------------------------------------
# dockerma runs as a process of its own with the fake docker on PATH, whose slow calls stand in
# for a build, a smoke test or a push; the signal goes to dockerma alone (its children run in
# sessions of their own), as a terminal's Ctrl-C, a process manager's stop or a hang-up would.

INTERRUPTS = [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 143)]
INTERRUPT_IDS = ["SIGINT", "SIGTERM", "SIGHUP"]
# dockerma with the fake registry of test_docker (push reads and writes the registry itself).
DRIVER = (
    "import dockerma.flows.push; from tests.test_docker import FakeRegistry; "
    "dockerma.flows.push.Registry = FakeRegistry; from dockerma.cli import main; main()"
)
REPO = Path(__file__).resolve().parent.parent


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _interrupt_rules(name: str, archs: list[str], slow: str, **slow_rule: Any) -> list[Any]:
    rules: list[dict[str, Any]] = [
        {"match": ["info"], "stdout": json.dumps(INFO)},
        {"match": [slow], "sleep": 30, **slow_rule},
    ]
    for arch in archs:
        iid = _sha(arch)
        rules.append({"match": ["build", "--platform", f"linux/{arch}"], "iid": iid})
        inspected = [
            {
                "Id": iid,
                "Os": "linux",
                "Architecture": arch,
                "RepoTags": [f"{name}:v1-{arch}"],
            }
        ]
        for ref in (iid, f"{name}:v1-{arch}"):
            rules.append({"match": ["image", "inspect", ref], "stdout": json.dumps(inspected)})
    return rules


def _start_dockerma(args: list[str], tmpdir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, *args],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_call(fake: FakeDocker, proc: subprocess.Popen[str], words: list[str]) -> None:
    deadline = time.monotonic() + 20
    while not any(c[: len(words)] == words for c in fake.calls()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"no docker {words} (exit {proc.returncode}):\n{out}\n{err}")
        time.sleep(0.02)
    time.sleep(0.3)  # the fake is in its sleep


def _alive(token: str) -> list[str]:
    res = subprocess.run(["pgrep", "-af", token], capture_output=True, text=True)
    return [line for line in res.stdout.splitlines() if "pgrep" not in line]


def _interrupt(
    proc: subprocess.Popen[str], sig: int, *, again: float | None = None
) -> tuple[int, float, str]:
    """Signal dockerma; its exit code, how long it took to leave, and its stderr, after a
    check that no line (stdout included) reported the interruption as a failure."""
    started = time.monotonic()
    proc.send_signal(sig)
    if again is not None:
        time.sleep(again)
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"dockerma still ran 20 s after {sig}:\n{err}") from None
    took = time.monotonic() - started
    assert "failed" not in (out + err).lower(), out + err
    assert "Traceback" not in err, err
    return proc.returncode, took, err


MODES = {
    # mode: (archs, extra dockerma args, the slow docker call)
    "one-arch": (["amd64"], [], "build"),
    "jobs-1": (["amd64", "386"], ["--jobs", "1"], "build"),
    "parallel": (["amd64", "386"], [], "build"),
    "smoke-test": (["amd64"], ["--smoke-test", "sleep 30"], "run"),
}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(("sig", "code"), INTERRUPTS, ids=INTERRUPT_IDS)
def test_interrupted_build_stops_every_child(
    fake_docker: FakeDocker, tmp_path: Path, mode: str, sig: int, code: int
) -> None:
    archs, extra, slow = MODES[mode]
    token = uuid.uuid4().hex
    name = f"localhost:5000/{token}"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"# dockerma archs:{','.join(archs)}:\nFROM scratch\n")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    if mode == "smoke-test":
        extra = ["--smoke-test", f"sleep {token}"]  # the token names its docker run too
    fake_docker.script(_interrupt_rules(name, archs, slow))
    proc = _start_dockerma(["build", "-t", f"{name}:v1", *extra, str(ctx)], tmpdir)
    _wait_for_call(fake_docker, proc, [slow])
    before = fake_docker.calls()
    exit_code, took, err = _interrupt(proc, sig)
    assert exit_code == code, err
    assert took < 5, took
    assert _alive(token) == []
    assert list(tmpdir.iterdir()) == []  # the rendered Dockerfiles are gone
    assert "Traceback" not in err and "FAILED" not in err and "failed" not in err, err
    assert err.endswith("stopped every docker process\n"), err
    # nothing started afterwards (no next architecture, no next step) but the clean-up
    after = fake_docker.calls()[len(before) :]
    if mode == "smoke-test":  # its container outlives the killed `docker run`: removed
        assert [c[:2] for c in after] == [["rm", "-f"]], after
        assert after[0][2] == before[-1][before[-1].index("--name") + 1]
    else:
        assert after == [], after
    if mode == "jobs-1":
        assert [c[2] for c in fake_docker.calls() if c[0] == "build"] == ["linux/amd64"]


@pytest.mark.parametrize(("sig", "code"), INTERRUPTS, ids=INTERRUPT_IDS)
def test_interrupted_single_platform_push_publishes_nothing(
    fake_docker: FakeDocker, tmp_path: Path, sig: int, code: int
) -> None:
    token = uuid.uuid4().hex
    name = f"localhost:5000/{token}"
    fake_docker.script(_interrupt_rules(name, ["amd64"], "push"))
    proc = _start_dockerma(["push", f"{name}:v1"], tmp_path)
    _wait_for_call(fake_docker, proc, ["push"])
    before = fake_docker.calls()
    exit_code, took, err = _interrupt(proc, sig)
    assert exit_code == code, err
    assert took < 5, took
    assert _alive(token) == []
    assert "Traceback" not in err and "failed" not in err, err
    assert err.endswith("stopped every docker process\n"), err
    assert fake_docker.calls()[len(before) :] == []  # no list, no other push
    assert "manifest list" not in err


def test_second_ctrl_c_kills_at_once(fake_docker: FakeDocker, tmp_path: Path) -> None:
    # A docker that ignores SIGTERM would hold dockerma for the 5 s grace: a second Ctrl-C
    # kills it at once.
    token = uuid.uuid4().hex
    name = f"localhost:5000/{token}"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("# dockerma archs:amd64,386:\nFROM scratch\n")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    fake_docker.script(_interrupt_rules(name, ["amd64", "386"], "build", ignore_sigterm=True))
    proc = _start_dockerma(["build", "-t", f"{name}:v1", str(ctx)], tmpdir)
    _wait_for_call(fake_docker, proc, ["build"])
    time.sleep(0.3)
    exit_code, took, err = _interrupt(proc, signal.SIGINT, again=0.5)
    assert exit_code == 130, err
    assert took < 2.5, took
    assert _alive(token) == []
    assert list(tmpdir.iterdir()) == []
    assert "Traceback" not in err, err
    assert err.endswith("stopped every docker process\n"), err


def test_an_ignored_sigterm_ends_in_sigkill_after_the_grace(
    fake_docker: FakeDocker, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex
    name = f"localhost:5000/{token}"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("# dockerma archs:amd64:\nFROM scratch\n")
    fake_docker.script(_interrupt_rules(name, ["amd64"], "build", ignore_sigterm=True))
    proc = _start_dockerma(["build", "-t", f"{name}:v1", str(ctx)], tmp_path)
    _wait_for_call(fake_docker, proc, ["build"])
    exit_code, took, err = _interrupt(proc, signal.SIGTERM)
    assert exit_code == 143, err
    assert 4 < took < 8, took
    assert _alive(token) == []
    assert err.endswith("stopped every docker process\n"), err
