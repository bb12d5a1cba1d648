"""The only module that starts processes: every docker (and credential helper) call goes here.

Argument lists only, never a shell. Global docker options (`-H`, `--context`, `--tls*`, …)
are rendered once from a frozen `GlobalOptions` and prepended to every docker call.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from dockerma.core.masking import redact, secret_values
from dockerma.errors import DockerError, DockermaError, DockerNotFound, Interrupted

log = logging.getLogger("dockerma")


_children: set[subprocess.Popen[bytes]] = set()
# Reentrant: the signal handler (interrupt) runs in the main thread, maybe while it holds it.
_children_lock = threading.RLock()
# Set on Ctrl-C/SIGTERM/SIGHUP: no docker process may start any more (one started by a worker
# thread after the others were stopped would outlive dockerma in its own session).
_stopping = threading.Event()
# The interruption: the first signal's number; how many came; whether the CLI boundary's
# clean-up runs (a later signal then only hurries it); a signal that came while the main
# thread was between Popen and registering the child (raised once the child is registered).
_signal = {"first": 0, "count": 0, "cleaning": 0, "deferred": 0, "starting": 0}
# docker calls that undo what a stopped child leaves behind (a smoke test's container outlives
# its killed `docker run`): run by terminate_children, keyed by an id.
_on_stop: dict[int, tuple[list[str], dict[str, str]]] = {}
_on_stop_keys = itertools.count()
# What dockerma asks every engine first (engine.probe); cli starts it ahead of need.
ENGINE_PROBE = ("info", "--format", "{{json .}}")
# docker calls started ahead of need (Docker.prefetch), by argv and environment overrides.
_prefetched: dict[tuple[tuple[str, ...], tuple[tuple[str, str | None], ...]], _Pending] = {}


@dataclass(frozen=True)
class GlobalOptions:
    """docker's own options, which go before the sub-command (`docker -H x build …`)."""

    hosts: tuple[str, ...] = ()
    context: str | None = None
    config: str | None = None
    debug: bool = False
    log_level: str | None = None
    tls: bool = False
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    tlsverify: bool = False

    def argv(self) -> list[str]:
        out: list[str] = []
        if self.config:
            out += ["--config", self.config]
        if self.context:
            out += ["--context", self.context]
        for host in self.hosts:
            out += ["--host", host]
        if self.debug:
            out.append("--debug")
        if self.log_level:
            out += ["--log-level", self.log_level]
        if self.tls:
            out.append("--tls")
        if self.tlscacert:
            out += ["--tlscacert", self.tlscacert]
        if self.tlscert:
            out += ["--tlscert", self.tlscert]
        if self.tlskey:
            out += ["--tlskey", self.tlskey]
        if self.tlsverify:
            out.append("--tlsverify")
        return out


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def display(argv: Sequence[str]) -> str:
    """argv as a command line to show: secret build-arg values and URL passwords masked."""
    return shlex.join(redact(argv))


@dataclass(frozen=True)
class Docker:
    """A docker CLI bound to one engine (global options) and one environment."""

    options: GlobalOptions = field(default_factory=GlobalOptions)
    binary: str = "docker"
    env: tuple[tuple[str, str | None], ...] = ()

    def for_host(self, host: str) -> Docker:
        """The same CLI pointed at another engine (a DOCKER_HOST URL or a context name)."""
        if re.match(r"^[a-z][a-z0-9+.-]*://", host):
            opts = replace(self.options, hosts=(host,), context=None)
        else:
            opts = replace(self.options, hosts=(), context=host)
        return replace(self, options=opts)

    def with_env(self, **overrides: str | None) -> Docker:
        merged = dict(self.env)
        merged.update(overrides)
        return replace(self, env=tuple(merged.items()))

    def argv(self, args: Sequence[str]) -> list[str]:
        return [self.binary, *self.options.argv(), *args]

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        # Old CLIs (< 20.10) hide `docker manifest` behind this; newer ones ignore it.
        env["DOCKER_CLI_EXPERIMENTAL"] = "enabled"
        for key, value in self.env:
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def run(
        self,
        *args: str,
        input: str | bytes | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Run docker, capture both streams; never raises for a non-zero exit."""
        if input is None and timeout is None:
            pending = self._take_prefetched(args)
            if pending is not None:
                return pending.result()
        return run_process(self.argv(args), env=self.environ(), input=input, timeout=timeout)

    def prefetch(self, *args: str) -> None:
        """Start `docker args` now, for a later capture(*args) or run(*args) to take its result.

        For a call a run makes first (`docker info`, push's image listing): it then runs while
        Python imports and parses, instead of after. Started once; a failure to start is left
        for the real call to report; one never taken is stopped by drop_prefetched at exit.
        """
        argv = self.argv(args)
        key = (tuple(argv), self.env)
        with _children_lock:
            if key in _prefetched:
                return
        try:
            pending = _Pending(argv, self.environ())
        except DockermaError:
            return
        with _children_lock:
            _prefetched[key] = pending

    def capture(self, *args: str, platform: str | None = None, input: str | None = None) -> str:
        """Run docker and return its stdout; a non-zero exit raises DockerError."""
        argv = self.argv(args)
        pending = self._take_prefetched(args) if input is None else None
        if pending is not None:
            res = pending.result()
        else:
            res = run_process(argv, env=self.environ(), input=input)
        if res.returncode != 0:
            raise DockerError(
                redact(argv), res.returncode, res.stderr or res.stdout, platform=platform
            )
        return res.stdout

    def _take_prefetched(self, args: Sequence[str]) -> _Pending | None:
        with _children_lock:
            return _prefetched.pop((tuple(self.argv(args)), self.env), None)

    @contextlib.contextmanager
    def on_stop(self, *args: str) -> Iterator[None]:
        """While the block runs, an interruption also runs `docker args` once the children
        are stopped (`rm -f NAME`: a container outlives its killed `docker run`)."""
        key = next(_on_stop_keys)
        with _children_lock:
            _on_stop[key] = (self.argv(args), self.environ())
        yield  # left registered when the block raises (the interruption) for the clean-up
        with _children_lock:
            _on_stop.pop(key, None)

    def stream(
        self,
        *args: str,
        on_line: Callable[[str], None],
        platform: str | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> int:
        """Run docker, hand each whole output line (stdout and stderr) to on_line.

        timeout: seconds after which docker is killed; its last line then says so.
        """
        argv = self.argv(args)
        tail: deque[str] = deque(maxlen=50)
        secrets = secret_values(argv, self.environ())

        def handle(line: str) -> None:
            # BuildKit prints RUN steps with build args expanded: mask the secret ones.
            for value in secrets:
                line = line.replace(value, "***")
            tail.append(line)
            on_line(line)

        code = stream_process(argv, env=self.environ(), on_line=handle, timeout=timeout)
        if code != 0 and _stopping.is_set():
            # Stopped by the interruption: not this architecture's failure (issue 17).
            raise Interrupted(_signal["first"] or signal.SIGINT)
        if check and code != 0:
            raise DockerError(redact(argv), code, "\n".join(tail), platform=platform)
        return code


def _start(
    argv: Sequence[str], *, cleanup: bool = False, **kwargs: object
) -> subprocess.Popen[bytes]:
    """Start a child in a session of its own (the terminal's Ctrl-C reaches dockerma only,
    which stops its children itself) and register it for terminate_children.

    cleanup: one of the _on_stop calls, the only ones that start after an interruption.
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
        if argv[0] == "docker" or argv[0].endswith("/docker"):
            raise DockerNotFound(
                f"docker is not installed or not on PATH (`{argv[0]}` not found); "
                "install the docker CLI (https://docs.docker.com/engine/install/)"
            ) from None
        raise DockermaError(f"`{argv[0]}` not found; install it or fix PATH") from None
    with _children_lock:
        _children.add(proc)
        late = _stopping.is_set() and not cleanup
    if main:
        _signal["starting"] = 0
    if late:
        _kill(proc)
    _raise_deferred()
    return proc


def _raise_deferred() -> None:
    if _signal["deferred"] and threading.current_thread() is threading.main_thread():
        _signal["deferred"] = 0
        raise Interrupted(_signal["first"])


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
    if proc.returncode != 0 and _stopping.is_set():
        raise Interrupted(_signal["first"] or signal.SIGINT)  # stopped, not failed
    return Result(proc.returncode, _decode(out), _decode(err))


class _Pending:
    """A docker call started ahead of need; its output waits in the pipes (docker info's
    few kilobytes fit in them, so it never blocks on a full pipe for long)."""

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


def drop_prefetched() -> None:
    """Stop the prefetched calls no one took (a run that ended early, on bad input)."""
    with _children_lock:
        pending = list(_prefetched.values())
        _prefetched.clear()
    for p in pending:
        _kill(p.proc)
        p.result()


def stream_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None],
    timeout: float | None = None,
) -> int:
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
    return code


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def interrupt(signum: int) -> int | None:
    """The signal handler's half in this module: the signal to raise now, or None.

    The first signal: no docker process starts any more and every child gets SIGTERM at once,
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
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM if first else signal.SIGKILL)
    if not first and _signal["cleaning"]:
        return None
    if _signal["starting"]:
        _signal["deferred"] = 1
        return None
    return _signal["first"]


def terminate_children(grace: float = 5.0, *, final: bool = False) -> None:
    """Stop every docker process still running (Ctrl-C): SIGTERM, then SIGKILL after grace
    (at once after a second signal); then run the on_stop clean-ups; return when none runs.

    final: dockerma is exiting, so no docker process may start any more.
    """
    with _children_lock:
        if final:
            _stopping.set()
            _signal["cleaning"] = 1
        procs = list(_children)
        cleanups = list(_on_stop.values())
        _on_stop.clear()
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM if _signal["count"] <= 1 else signal.SIGKILL)
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
