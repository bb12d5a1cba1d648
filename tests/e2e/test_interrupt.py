"""Ctrl-C, SIGTERM and SIGHUP: exit 130 / 143 / 143, every child docker process stopped, temp files gone,
nothing half-made left behind (no per-arch tag, no manifest list).

dockerma runs in its own session (start_new_session) and only dockerma is signalled, as a
process manager would; its docker children run in sessions of their own, so only dockerma
can stop them.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.conftest import Engine, snapshot, write
from tests.e2e.registry_proxy import Proxy

pytestmark = pytest.mark.e2e

SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 143)]
SIGNAL_IDS = ["SIGINT", "SIGTERM", "SIGHUP"]


@dataclass
class Running:
    """A dockerma run in the background; its output lines are collected as they come."""

    proc: subprocess.Popen[str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)

    def wait_for(self, test: Callable[[list[str]], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not test(self.out):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"never came (exit {self.proc.poll()}):\n{''.join(self.out)[-3000:]}\n"
                    f"{''.join(self.err)[-2000:]}"
                )
            time.sleep(0.05)

    def signal_and_wait(self, sig: int, timeout: float = 30) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(sig)  # dockerma only, not its process group
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started


def _start(engine: Engine, args: list[str], tmpdir: Path) -> Running:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockerma", *args],
        env={**engine.env, "TMPDIR": str(tmpdir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    run = Running(proc)
    for stream, into in ((proc.stdout, run.out), (proc.stderr, run.err)):
        threading.Thread(target=lambda s=stream, i=into: i.extend(s), daemon=True).start()
    return run


def _children_of_the_run(marker: str) -> list[str]:
    """Processes whose command line names this run (docker build/push of its tags)."""
    res = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True)
    return [line for line in res.stdout.splitlines() if "pgrep" not in line]


def _assert_all_stopped(marker: str, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while (left := _children_of_the_run(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], left


def _absent(registry_get, ref: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        registry_get(ref)
    assert info.value.code == 404


def _interrupt_build(
    engine: Engine,
    tmp_path: Path,
    registry_get,
    sig: int,
    code: int,
    archs: list[str],
    jobs: list[str],
) -> None:
    token = uuid.uuid4().hex
    ctx = write(
        tmp_path / "ctx",
        f"# dockerma archs:{','.join(archs)}\nFROM {engine.base}\nRUN sleep 30; echo {token}\n",
    )
    before = snapshot(ctx)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    name = engine.name_for("interrupted")
    run = _start(engine, ["build", *jobs, "--push", "-t", f"{name}:v1", str(ctx)], tmpdir)
    running = archs[:1] if jobs else archs
    # the RUN steps under way (classic: "Running in"; BuildKit: the step's header)
    run.wait_for(
        lambda out: all(
            any(
                line.startswith(f"[{arch}]") and ("Running in" in line or "RUN sleep" in line)
                for line in out
            )
            for arch in running
        ),
        timeout=60,
    )
    time.sleep(1)
    exit_code, took = run.signal_and_wait(sig)
    assert exit_code == code, "".join(run.err)
    assert took < 10, took
    output = "".join(run.out + run.err)
    assert "Traceback" not in output and "FAILED" not in output, output
    assert "architectures failed" not in output and "smoke test failed" not in output, output
    assert "".join(run.err).endswith("stopped every docker process\n")
    _assert_all_stopped(name)
    _assert_all_stopped(token)  # the RUN step's own process too
    if jobs:  # --jobs 1: the next architecture never started
        assert not [line for line in run.out if line.startswith(f"[{archs[1]}]")], run.out
    assert list(tmpdir.iterdir()) == []
    assert snapshot(ctx) == before
    # interrupted before its images were built: no per-arch tag, nothing in the registry
    assert engine.docker("image", "ls", "-q", name).stdout.strip() == ""
    for tag in ("v1", *(f"v1-{a}" for a in archs)):
        _absent(registry_get, f"{name}:{tag}")
    if engine.name == "classic":  # the RUN containers are gone too (BuildKit's are not listed)
        time.sleep(1)
        listed = engine.docker("ps", "-a", "--no-trunc", "--format", "{{.Command}}").stdout
        assert token not in listed


@pytest.mark.parametrize(("sig", "code"), SIGNALS, ids=SIGNAL_IDS)
def test_interrupt_a_parallel_build(
    engine: Engine, tmp_path: Path, registry_get, sig: int, code: int
) -> None:
    _interrupt_build(engine, tmp_path, registry_get, sig, code, ["amd64", "arm64"], [])


@pytest.mark.parametrize(("sig", "code"), SIGNALS, ids=SIGNAL_IDS)
def test_interrupt_a_one_arch_build(
    classic: Engine, tmp_path: Path, registry_get, sig: int, code: int
) -> None:
    # One architecture runs in dockerma's main thread: its docker child was left running.
    _interrupt_build(classic, tmp_path, registry_get, sig, code, ["amd64"], [])


@pytest.mark.parametrize(("sig", "code"), SIGNALS, ids=SIGNAL_IDS)
def test_interrupt_a_jobs_1_build(
    classic: Engine, tmp_path: Path, registry_get, sig: int, code: int
) -> None:
    # --jobs 1: the first architecture stopped, the second never started.
    _interrupt_build(classic, tmp_path, registry_get, sig, code, ["amd64", "arm64"], ["-j", "1"])


@pytest.mark.parametrize(("sig", "code"), SIGNALS, ids=SIGNAL_IDS)
def test_interrupt_a_smoke_test(
    classic: Engine, tmp_path: Path, registry_get, sig: int, code: int
) -> None:
    token = uuid.uuid4().hex
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64\nFROM {classic.base}\n")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    name = classic.name_for("smokeint")
    smoke = f"sh -c 'sleep 30; echo {token}'"
    run = _start(
        classic, ["build", "--push", "--smoke-test", smoke, "-t", f"{name}:v1", str(ctx)], tmpdir
    )
    deadline = time.monotonic() + 60
    # the container's own process (the host sees it), not only `docker run`
    while len(_children_of_the_run(token)) < 2 and time.monotonic() < deadline:
        assert run.proc.poll() is None, "".join(run.out) + "".join(run.err)
        time.sleep(0.1)
    time.sleep(0.5)
    exit_code, took = run.signal_and_wait(sig)
    assert exit_code == code, "".join(run.err)
    assert took < 10, took
    output = "".join(run.out + run.err)
    assert "Traceback" not in output and "FAILED" not in output, output
    assert "architectures failed" not in output and "smoke test failed" not in output, output
    _assert_all_stopped(token)  # `docker run` and the container it started
    assert list(tmpdir.iterdir()) == []
    listed = classic.docker("ps", "-a", "--no-trunc", "--format", "{{.Command}}").stdout
    assert token not in listed
    for tag in ("v1", "v1-amd64"):  # the smoke test had not passed: nothing published
        _absent(registry_get, f"{name}:{tag}")


@pytest.fixture
def slow_proxy(bed: dict[str, str]) -> Iterator[Proxy]:
    """The registry behind a free loopback port, with blob uploads held until the test ends."""
    p = Proxy(bed["DOCKERMA_REGISTRY"])
    release = threading.Event()
    p.uploads = []  # type: ignore[attr-defined]

    def fault(method: str, path: str):
        if method in ("PATCH", "PUT") and "/blobs/uploads/" in path:
            p.uploads.append(path)  # type: ignore[attr-defined]
            release.wait(120)
            return "die"
        return None

    p.fault = fault
    yield p
    release.set()
    p.stop()


@pytest.mark.parametrize(("sig", "code"), SIGNALS, ids=SIGNAL_IDS)
def test_interrupt_a_slow_push(
    engine: Engine, tmp_path: Path, slow_proxy: Proxy, registry_get, sig: int, code: int
) -> None:
    _interrupt_push(engine, tmp_path, slow_proxy, registry_get, sig, code, ["amd64", "arm64"])


@pytest.mark.parametrize(("sig", "code"), SIGNALS, ids=SIGNAL_IDS)
def test_interrupt_a_slow_one_platform_push(
    classic: Engine, tmp_path: Path, slow_proxy: Proxy, registry_get, sig: int, code: int
) -> None:
    # One platform is pushed from dockerma's main thread: it went on and published its tag.
    _interrupt_push(classic, tmp_path, slow_proxy, registry_get, sig, code, ["amd64"])


def _interrupt_push(
    engine: Engine,
    tmp_path: Path,
    slow_proxy: Proxy,
    registry_get,
    sig: int,
    code: int,
    archs: list[str],
) -> None:
    # A layer of its own per image, so the push has a blob to upload (and the proxy holds it).
    ctx = write(
        tmp_path / "ctx",
        f"# dockerma archs:{','.join(archs)}\nFROM {engine.base}\nRUN echo {uuid.uuid4()} > /id\n",
    )
    name = engine.name_for("slowpush").replace(engine.registry, slow_proxy.address, 1)
    real = name.replace(slow_proxy.address, engine.registry, 1)
    res = engine.dockerma("build", "-t", f"{name}:v1", str(ctx))
    assert res.returncode == 0, res.stderr + res.stdout
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    run = _start(engine, ["push", f"{name}:v1"], tmpdir)
    deadline = time.monotonic() + 60
    while not slow_proxy.uploads and time.monotonic() < deadline:  # type: ignore[attr-defined]
        assert run.proc.poll() is None, "".join(run.out) + "".join(run.err)
        time.sleep(0.05)
    assert slow_proxy.uploads  # type: ignore[attr-defined]
    time.sleep(0.5)
    exit_code, took = run.signal_and_wait(sig)
    assert exit_code == code, "".join(run.err)
    assert took < 10, took
    assert "Traceback" not in "".join(run.err)
    _assert_all_stopped(name)
    assert list(tmpdir.iterdir()) == []
    for tag in ("v1", *(f"v1-{a}" for a in archs)):
        _absent(registry_get, f"{real}:{tag}")
    # the local per-arch images are untouched: a rerun (without the slow proxy) would push them
    tags = engine.docker("image", "ls", "--format", "{{.Tag}}", name).stdout.split()
    assert sorted(tags) == [f"v1-{a}" for a in archs]


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """127.0.0.1:<port> that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.parametrize(("sig", "code"), SIGNALS, ids=SIGNAL_IDS)
def test_interrupt_while_waiting_for_a_silent_registry(
    classic: Engine, tmp_path: Path, silent_registry: str, sig: int, code: int
) -> None:
    # Two base images: they are looked up in parallel, in worker threads that wait 30 s per
    # try on this registry. dockerma must still leave at once.
    ctx = write(
        tmp_path / "ctx",
        f"# dockerma archs:amd64\nFROM {silent_registry}/a/one:1 AS one\n"
        f"FROM {silent_registry}/a/two:1\nCOPY --from=one / /\n",
    )
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    name = classic.name_for("silent")
    run = _start(classic, ["build", "-t", f"{name}:v1", str(ctx)], tmpdir)
    time.sleep(2)
    assert run.proc.poll() is None
    exit_code, took = run.signal_and_wait(sig)
    assert exit_code == code, "".join(run.err)
    assert took < 5, took
    assert list(tmpdir.iterdir()) == []
    _assert_all_stopped(name)
