"""The only module that starts processes: docker and credential helpers.

Argument lists only, never a shell. Every child runs in a session of its own and is kept in
one set, so that an interruption (Ctrl-C, SIGTERM, SIGHUP) can stop them all and run the
clean-ups registered with on_stop.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from dockerma.core.masking import redact
from dockerma.errors import DockermaError, DockerNotFound, Interrupted

log = logging.getLogger("dockerma")


_children: set[subprocess.Popen[bytes]] = set()
# Reentrant: the signal handler (interrupt) runs in the main thread, maybe while it holds it.
_children_lock = threading.RLock()
# Set on Ctrl-C/SIGTERM/SIGHUP: no process may start any more (one started by a worker
# thread after the others were stopped would outlive dockerma in its own session).
_stopping = threading.Event()
# The interruption: the first signal's number; how many came; whether the CLI boundary's
# clean-up runs (a later signal then only hurries it); a signal that came while the main
# thread was between Popen and registering the child (raised once the child is registered).
_signal = {"first": 0, "count": 0, "cleaning": 0, "deferred": 0, "starting": 0}
# Calls that undo what a stopped child leaves behind (a smoke test's container outlives its
# killed `docker run`): run by terminate_children, keyed by an id.
_on_stop: dict[int, tuple[list[str], dict[str, str]]] = {}
_on_stop_keys = itertools.count()


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def display(argv: Sequence[str]) -> str:
    """argv as a command line to show: secret build-arg values and URL passwords masked."""
    return shlex.join(redact(argv))


def _start(
    argv: Sequence[str], *, cleanup: bool = False, **kwargs: object
) -> subprocess.Popen[bytes]:
    """Start a child in a session of its own (the terminal's Ctrl-C reaches dockerma only,
    which stops its children itself) and register it for terminate_children.

    cleanup: one of the on_stop calls, the only ones that start after an interruption.
    """
    log.debug("+ %s", display(argv))
    if _stopping.is_set() and not cleanup:
        raise Interrupted(_signal["first"] or signal.SIGINT)
    main = threading.current_thread() is threading.main_thread()
    if main:
        # A signal between Popen and the registration below would lose the child: the
        # handler defers its exception until the child is registered.
        _signal["starting"] = 1
    try:
        proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
            list(argv), start_new_session=True, **kwargs
        )
    except FileNotFoundError:
        if main:
            _signal["starting"] = 0
        _raise_deferred()
        raise _not_found(argv[0]) from None
    with _children_lock:
        _children.add(proc)
        late = _stopping.is_set() and not cleanup
    if main:
        _signal["starting"] = 0
    if late:
        _kill(proc)
    _raise_deferred()
    return proc


def _not_found(program: str) -> DockermaError:
    if program == "docker" or program.endswith("/docker"):
        return DockerNotFound(
            f"docker is not installed or not on PATH (`{program}` not found); "
            "install the docker CLI (https://docs.docker.com/engine/install/)"
        )
    return DockermaError(f"`{program}` not found; install it or fix PATH")


def _raise_deferred() -> None:
    if _signal["deferred"] and threading.current_thread() is threading.main_thread():
        _signal["deferred"] = 0
        raise Interrupted(_signal["first"])


def _raise_if_stopped(returncode: int) -> None:
    # A child that failed because the interruption stopped it: not its own failure (an
    # architecture's build is not reported failed; issue 17).
    if returncode != 0 and _stopping.is_set():
        raise Interrupted(_signal["first"] or signal.SIGINT)


def _done(proc: subprocess.Popen[bytes]) -> None:
    # A child still running is left registered: an exception (the interruption) left its
    # reader, and terminate_children must still stop it (issue 17: it was dropped unkilled).
    if proc.poll() is None:
        return
    with _children_lock:
        _children.discard(proc)


def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    timeout: float | None = None,
) -> Result:
    """Run any program (docker, a credential helper) and capture its output as text."""
    proc = _start(
        argv,
        env=env,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        data = input.encode() if isinstance(input, str) else input
        out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        out, err = proc.communicate()
        return Result(-signal.SIGKILL, _decode(out), _decode(err) + "\n(timed out)")
    finally:
        _done(proc)
    _raise_if_stopped(proc.returncode)
    return Result(proc.returncode, _decode(out), _decode(err))


class Pending:
    """A program started now whose output is read later (result); it waits in the pipes, so
    it suits a call with little output (docker info's few kilobytes fit in them)."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.proc = _start(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def result(self) -> Result:
        try:
            out, err = self.proc.communicate()
        finally:
            _done(self.proc)
        return Result(self.proc.returncode, _decode(out), _decode(err))

    def stop(self) -> None:
        """Kill it and wait for it (a call no one will take)."""
        _kill(self.proc)
        self.result()


def stream_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None],
    timeout: float | None = None,
) -> int:
    """Run a program, hand each whole output line (stdout and stderr) to on_line; its exit
    code. timeout: seconds after which it is killed; its last line then says so."""
    proc = _start(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        _kill(proc)

    timer = threading.Timer(timeout or 0, expire)
    timer.daemon = True
    if timeout is not None:
        timer.start()
    try:
        for raw in proc.stdout:
            on_line(_decode(raw).rstrip("\r\n"))
        code = proc.wait()
    finally:
        timer.cancel()
        proc.stdout.close()
        _done(proc)
    if expired.is_set():
        on_line(f"(timed out after {timeout:g} s)")
    _raise_if_stopped(code)
    return code


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _signal_all(procs: Sequence[subprocess.Popen[bytes]], signum: int) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signum)


@contextlib.contextmanager
def on_stop(argv: Sequence[str], env: Mapping[str, str]) -> Iterator[None]:
    """While the block runs, an interruption also runs argv once the children are stopped."""
    key = next(_on_stop_keys)
    with _children_lock:
        _on_stop[key] = (list(argv), dict(env))
    yield  # left registered when the block raises (the interruption) for the clean-up
    with _children_lock:
        _on_stop.pop(key, None)


def interrupt(signum: int) -> int | None:
    """The signal handler's half in this module: the signal to raise now, or None.

    The first signal: no process starts any more and every child gets SIGTERM at once,
    before the main thread unwinds (it may wait on them on its way out). A later one (a
    second Ctrl-C): every child, clean-ups included, is killed with SIGKILL; it is raised
    again to leave a wait that the first one did not end, unless the boundary already cleans
    up. None while the main thread is starting a child: _start raises once it is registered.
    """
    with _children_lock:
        _signal["count"] += 1
        first = _signal["count"] == 1
        if first:
            _signal["first"] = signum
            _stopping.set()
        procs = list(_children)
    _signal_all(procs, signal.SIGTERM if first else signal.SIGKILL)
    if not first and _signal["cleaning"]:
        return None
    if _signal["starting"]:
        _signal["deferred"] = 1
        return None
    return _signal["first"]


def terminate_children(grace: float = 5.0, *, final: bool = False) -> None:
    """Stop every child still running (Ctrl-C): SIGTERM, then SIGKILL after grace (at once
    after a second signal); then run the on_stop clean-ups; return when none runs.

    final: dockerma is exiting, so no process may start any more.
    """
    with _children_lock:
        if final:
            _stopping.set()
            _signal["cleaning"] = 1
        procs = list(_children)
        cleanups = list(_on_stop.values())
        _on_stop.clear()
    _signal_all(procs, signal.SIGTERM if _signal["count"] <= 1 else signal.SIGKILL)
    _wait_all(procs, grace)
    for argv, env in cleanups:
        with contextlib.suppress(DockermaError, OSError):
            proc = _start(
                argv,
                cleanup=True,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _wait_all([proc], 30.0)
    # Children a worker thread started meanwhile (_start kills them when stopping).
    with _children_lock:
        late = [p for p in _children if p not in procs]
    _wait_all(late, 0.0)


def _wait_all(procs: Sequence[subprocess.Popen[bytes]], grace: float) -> None:
    deadline = time.monotonic() + grace
    for proc in procs:
        while True:
            if _signal["count"] > 1:
                _kill(proc)  # a second signal: no more waiting
            try:
                proc.wait(timeout=max(0.05, min(0.1, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    _kill(proc)
        _done(proc)


def reset_interruption() -> None:
    """Forget an interruption (for a second in-process run: the tests)."""
    with _children_lock:
        _stopping.clear()
        _signal.update(first=0, count=0, cleaning=0, deferred=0, starting=0)


def running_children() -> int:
    with _children_lock:
        return sum(1 for p in _children if p.poll() is None)
