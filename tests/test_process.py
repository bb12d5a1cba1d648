"""engine/process.py: the runner: input, timeouts, missing programs, display, Ctrl-C."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from dockerma.engine import process
from dockerma.engine.process import run_process, running_children
from dockerma.errors import DockermaError, DockerNotFound


def test_missing_other_program_is_not_docker_not_found() -> None:
    with pytest.raises(DockermaError) as info:
        run_process(["/nonexistent/docker-credential-x", "get"])
    assert not isinstance(info.value, DockerNotFound)
    assert "docker-credential-x" in str(info.value)


def test_input_reaches_stdin() -> None:
    res = run_process(["cat"], input="hello\n")
    assert (res.returncode, res.stdout) == (0, "hello\n")


def test_timeout_kills_the_process() -> None:
    start = time.monotonic()
    res = run_process(["sleep", "30"], timeout=0.3)
    assert time.monotonic() - start < 5
    assert res.returncode == -signal.SIGKILL
    assert "(timed out)" in res.stderr


def test_display_is_redacted_and_quoted() -> None:
    shown = process.display(["docker", "build", "--build-arg", "TOKEN=abc", "--label", "a b", "."])
    assert shown == "docker build --build-arg 'TOKEN=***' --label 'a b' ."


def test_terminate_children_stops_a_running_child() -> None:
    results: list[process.Result] = []
    worker = threading.Thread(target=lambda: results.append(run_process(["sleep", "30"])))
    worker.start()
    deadline = time.monotonic() + 5
    while running_children() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert running_children() >= 1
    start = time.monotonic()
    process.terminate_children(grace=2)
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert time.monotonic() - start < 4
    assert results[0].returncode == -signal.SIGTERM
    assert running_children() == 0
