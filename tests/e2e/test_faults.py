"""Faults end to end: a docker daemon that dies, a registry that hangs or fails, an image that
vanishes before the push, a temp dir that cannot be used.

Each fault: a clear `dockerma: error:` line, a non-zero exit, no temporary files, the user's
files unchanged, no manifest list pointing at anything wrong, and the same command succeeds
once the fault is gone.

The daemon faults use a private dockerd (Debian's /usr/sbin/dockerd with its own socket,
data-root, exec-root, pidfile and bridge): the test bed's engines are never stopped. Never
--bridge=none: dockerd would delete the host's docker0. Nothing of it outlives the run: the
daemon gets SIGKILL when pytest dies, and what a killed run left (mounts, directories, the
bridge) is reaped when the fixture next starts. Bridge name, subnet and proxy port are
chosen free, so two runs never collide.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Engine, _unavailable, snapshot, write
from tests.e2e.registry_proxy import Proxy

pytestmark = pytest.mark.e2e

DOCKERD = "/usr/sbin/dockerd"
# Every private daemon's run directory: /run/dmafault-XXXX, with owner.json naming its data
# directory, bridge and pytest pid, so that a later run can reap what a killed one left.
RUN_PREFIX = "dmafault-"
OWNER = "owner.json"


def _refused(res: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The error line, after checking the contract for a failed run."""
    shown = f"stdout:\n{res.stdout[-3000:]}\nstderr:\n{res.stderr[-3000:]}"
    assert res.returncode == 1, shown
    lines = res.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("dockerma: error: "), shown
    assert sum(line.startswith("dockerma: error: ") for line in lines) == 1, shown
    assert "Traceback" not in res.stderr, shown
    for needle in needles:
        assert needle in lines[-1], shown
    print(lines[-1])  # shown with -s / -rP: the figures of the report
    return lines[-1]


def _no_list(registry_get, ref: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        registry_get(ref)
    assert info.value.code == 404


# --- a private docker daemon ------------------------------------------------------------


class PrivateDockerd:
    """A dockerd of this test's own: start, kill (SIGKILL) and stop it at will."""

    def __init__(self, run_dir: Path, data_dir: Path, bridge: str) -> None:
        self.run_dir = run_dir  # short path: the socket and containerd's live under it
        self.data_dir = data_dir
        self.bridge = bridge
        self.sock = run_dir / "docker.sock"
        self.host = f"unix://{self.sock}"
        self.log = data_dir / "dockerd.log"
        self.config = data_dir / "daemon.json"
        self.config.write_text("{}\n")  # not /etc/docker/daemon.json
        self.proc: subprocess.Popen[bytes] | None = None

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        res = subprocess.run(
            ["docker", "--host", self.host, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {res.stderr}{res.stdout}")
        return res

    def up(self) -> bool:
        return self.docker("info", "--format", "{{.ID}}", check=False).returncode == 0

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self._clear_stale_containerd()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    DOCKERD,
                    "--host",
                    self.host,
                    "--data-root",
                    str(self.data_dir / "data"),
                    "--exec-root",
                    str(self.run_dir / "exec"),
                    "--pidfile",
                    str(self.run_dir / "dockerd.pid"),
                    "--config-file",
                    str(self.config),
                    f"--bridge={self.bridge}",
                    "--iptables=false",
                    "--ip-masq=false",
                    "--ip-forward=false",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=functools.partial(_die_with_parent, os.getpid()),
            )
        deadline = time.monotonic() + 60
        while not self.up():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise AssertionError(f"private dockerd did not come up:\n{tail}")
            time.sleep(0.2)

    def _clear_stale_containerd(self) -> None:
        # A SIGKILLed dockerd takes its containerd along, but here the dead containerd may
        # stay a zombie for a while: dockerd then takes it for alive, "containerd is still
        # running", and waits for its socket in vain. Drop the stale pid file, as an admin
        # restarting after a crash would.
        pidfile = self.run_dir / "exec" / "containerd" / "containerd.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            state = "gone"
        if state in ("Z", "X", "gone"):
            pidfile.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def leftovers(self) -> list[int]:
        """Processes this dockerd started (its containerd, shims), found by our paths."""
        return _processes_under(self.run_dir, self.data_dir)


_PR_SET_PDEATHSIG = 1
# Looked up here, not in the forked child: a lock another thread held at fork would hang it.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: SIGKILL when pytest dies, even by SIGKILL. (Linux sends
    it when the forking thread ends: the fixtures run in pytest's main thread.)"""
    if _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(127)
    if os.getppid() != parent:  # pytest died before the prctl took hold
        os._exit(127)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def _processes_under(*dirs: Path) -> list[int]:
    """Processes whose command line names one of these directories (ours, by our paths)."""
    mine = [str(d) for d in dirs]
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        cmdline = " ".join(_cmdline(int(entry.name)))
        if any(path in cmdline for path in mine):
            pids.append(int(entry.name))
    return pids


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def _free_subnet() -> ipaddress.IPv4Network:
    """A 10.x.y.0/24 that no address or route of this machine overlaps."""
    taken = []
    for line in _ip("-4", "-o", "addr", "show").stdout.splitlines():
        taken.append(ipaddress.ip_interface(line.split()[3]).network)
    for line in _ip("-4", "route", "show", "table", "all").stdout.splitlines():
        first = line.split()[0] if line.split() else ""
        with contextlib.suppress(ValueError):
            net = ipaddress.ip_network(first, strict=False)
            if net.prefixlen > 0:  # the default route overlaps everything
                taken.append(net)
    for _ in range(1000):
        net = ipaddress.ip_network(f"10.{uuid.uuid4().int % 127 + 128}.{os.urandom(1)[0]}.0/24")
        if not any(net.overlaps(other) for other in taken):
            return net
    raise AssertionError(f"no free 10.x.y.0/24 for the private dockerd's bridge: {taken}")


def _bridge_up(run_dir: Path) -> str:
    """A new bridge `dmaf<suffix>` (its name recorded in run_dir first) on a free subnet."""
    for _ in range(20):
        bridge = f"dmaf{uuid.uuid4().hex[:8]}"  # 12 characters: IFNAMSIZ allows 15
        owner = json.loads((run_dir / OWNER).read_text())
        (run_dir / OWNER).write_text(json.dumps({**owner, "bridge": bridge}))
        if _ip("link", "add", "name", bridge, "type", "bridge").returncode == 0:
            break
    else:
        raise AssertionError("could not create a bridge for the private dockerd")
    net = _free_subnet()
    subprocess.run(["ip", "addr", "add", f"{net[1]}/{net.prefixlen}", "dev", bridge], check=True)
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
    return bridge


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _is_live_pytest(pid: int) -> bool:
    return _pid_alive(pid) and any("pytest" in arg for arg in _cmdline(pid))


def _is_our_dockerd(pid: int, run_dir: Path) -> bool:
    args = _cmdline(pid)
    return bool(args) and args[0] == DOCKERD and f"unix://{run_dir}/docker.sock" in args


def _clean(run_dir: Path, data_dir: Path | None, bridge: str | None) -> None:
    """Everything a private dockerd leaves behind: processes, mounts, directories, bridge."""
    dirs = [run_dir, *([data_dir] if data_dir else [])]
    _kill_all(_processes_under(*dirs))  # containerd and shims left by a SIGKILLed dockerd
    time.sleep(0.5)
    _unmount_under(*dirs)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    if bridge:
        _ip("link", "del", bridge)


def _reap_stale() -> list[str]:
    """Reap what earlier runs, killed before their teardown, left: the directories named
    /run/dmafault-*, whose pytest is gone (another run that still lives is left alone)."""
    reaped = []
    for run_dir in sorted(Path("/run").glob(f"{RUN_PREFIX}*")):
        try:
            owner = json.loads((run_dir / OWNER).read_text())
        except (OSError, ValueError):
            owner = {}
        pytest_pid = owner.get("pytest_pid")
        if pytest_pid and pytest_pid != os.getpid() and _is_live_pytest(pytest_pid):
            continue
        try:
            pid = int((run_dir / "dockerd.pid").read_text().strip())
        except (OSError, ValueError):
            pid = 0
        if pid and _is_our_dockerd(pid, run_dir):
            _kill_all([pid])
        data_dir = owner.get("data_dir")
        _clean(run_dir, Path(data_dir) if data_dir else None, owner.get("bridge"))
        reaped.append(str(run_dir))
    return reaped


def _unmount_under(*roots: Path) -> None:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


@pytest.fixture(scope="module")
def private_dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateDockerd]:
    if os.geteuid() != 0 or not Path(DOCKERD).is_file():
        _unavailable("the fault tests need root and Debian's /usr/sbin/dockerd")
    for stale in _reap_stale():
        print(f"reaped {stale}, left by a killed run")
    run_dir = Path(tempfile.mkdtemp(prefix=RUN_PREFIX, dir="/run"))
    data_dir = tmp_path_factory.mktemp("dmafault")
    owner = {"pytest_pid": os.getpid(), "data_dir": str(data_dir)}
    (run_dir / OWNER).write_text(json.dumps(owner))
    bridge = None
    try:
        bridge = _bridge_up(run_dir)
        daemon = PrivateDockerd(run_dir, data_dir, bridge)
        try:
            daemon.start()
            yield daemon
        finally:
            daemon.stop()
    finally:
        _clean(run_dir, data_dir, bridge)


def _fresh_tmp(tmp_path: Path) -> Path:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    return tmpdir


def test_daemon_down_before_the_build(
    classic: Engine, private_dockerd: PrivateDockerd, tmp_path: Path
) -> None:
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64,arm64\nFROM {classic.base}\n")
    before = snapshot(ctx)
    tmpdir = _fresh_tmp(tmp_path)
    name = classic.name_for("daemon-down")
    private_dockerd.stop()
    args = ("--host", private_dockerd.host, "build", "-t", f"{name}:v1", str(ctx))
    res = classic.dockerma(*args, env={"TMPDIR": str(tmpdir)}, timeout=120)
    line = _refused(res, "docker engine does not answer", private_dockerd.host)
    assert "start dockerd" in line
    assert snapshot(ctx) == before
    assert list(tmpdir.iterdir()) == []

    private_dockerd.start()
    assert private_dockerd.docker("image", "ls", "-q", name).stdout.strip() == ""
    res = classic.dockerma(*args, env={"TMPDIR": str(tmpdir)}, timeout=120)
    assert res.returncode == 0, res.stderr + res.stdout
    doc = json.loads(private_dockerd.docker("image", "inspect", f"{name}:v1-arm64").stdout)
    assert doc[0]["Architecture"] == "arm64"
    assert snapshot(ctx) == before
    assert list(tmpdir.iterdir()) == []


def test_daemon_killed_during_the_build(
    classic: Engine, private_dockerd: PrivateDockerd, tmp_path: Path
) -> None:
    ctx = write(
        tmp_path / "ctx", f"# dockerma archs:amd64,arm64\nFROM {classic.base}\nRUN sleep 5\n"
    )
    before = snapshot(ctx)
    tmpdir = _fresh_tmp(tmp_path)
    name = classic.name_for("daemon-killed")
    if not private_dockerd.up():
        private_dockerd.start()
    args = ("--host", private_dockerd.host, "build", "-t", f"{name}:v1", str(ctx))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockerma", *args],
        env={**classic.env, "TMPDIR": str(tmpdir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    errors: list[str] = []
    threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True).start()
    seen: list[str] = []
    killed = False
    for line in proc.stdout:
        seen.append(line)
        if not killed and line.startswith("[arm64]") and "Running in" in line:
            time.sleep(1)  # inside `RUN sleep 5` under QEMU
            private_dockerd.kill()
            killed = True
    code = proc.wait(timeout=60)
    time.sleep(0.2)
    res = subprocess.CompletedProcess(proc.args, code, "".join(seen), "".join(errors))
    assert killed, res.stdout
    line = _refused(res, "architectures failed", "linux/arm64")
    assert "docker" in line
    assert snapshot(ctx) == before
    assert list(tmpdir.iterdir()) == []

    private_dockerd.start()
    # the interrupted build left no per-arch tag behind
    assert private_dockerd.docker("image", "ls", "-q", f"{name}:v1-arm64").stdout.strip() == ""
    res = classic.dockerma(*args, env={"TMPDIR": str(tmpdir)}, timeout=120)
    assert res.returncode == 0, res.stderr + res.stdout
    doc = json.loads(private_dockerd.docker("image", "inspect", f"{name}:v1-arm64").stdout)
    assert doc[0]["Architecture"] == "arm64"
    assert snapshot(ctx) == before
    assert list(tmpdir.iterdir()) == []


# --- registry faults ---------------------------------------------------------------------


@pytest.fixture
def proxy(bed: dict[str, str]) -> Iterator[Proxy]:
    # A free port: a probe pushed through this proxy on an unlisted port with the modern
    # (containerd-store) engine, and it fell back to plain HTTP like on its listed ports.
    p = Proxy(bed["DOCKERMA_REGISTRY"])
    p.release = threading.Event()  # type: ignore[attr-defined]
    yield p
    p.release.set()  # type: ignore[attr-defined]  # hung requests may end now
    p.stop()


def _hang(proxy: Proxy) -> str:
    """Accept the request, answer nothing; when the test ends, drop the connection."""
    proxy.release.wait(300)  # type: ignore[attr-defined]
    return "die"


def _built(engine: Engine, tmp_path: Path, proxy: Proxy, what: str) -> tuple[str, str]:
    """A two-arch build tagged for the proxy; (name through the proxy, same in the registry)."""
    name = engine.name_for(what).replace(engine.registry, proxy.address, 1)
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64,arm64\nFROM {engine.base}\n")
    res = engine.dockerma("build", "-t", f"{name}:v1", str(ctx))
    assert res.returncode == 0, res.stderr + res.stdout
    return name, name.replace(proxy.address, engine.registry, 1)


def _is_list_put(method: str, path: str) -> bool:
    return method == "PUT" and path.split("?")[0].endswith("/manifests/v1")


def _is_arch_put(method: str, path: str) -> bool:
    return method == "PUT" and "/manifests/v1-" in path


def test_registry_never_answers_the_per_arch_manifest_put(
    engine: Engine, tmp_path: Path, proxy: Proxy, registry_get
) -> None:
    name, real = _built(engine, tmp_path, proxy, "hang-arch")
    hung: list[str] = []

    def fault(method: str, path: str):
        if _is_arch_put(method, path):
            hung.append(path)
            return _hang(proxy)
        return None

    proxy.fault = fault
    started = time.monotonic()
    # docker push waits for ever here (dockerd has no response timeout): dockerma bounds it.
    res = engine.dockerma("push", f"{name}:v1", env={"DOCKERMA_PUSH_TIMEOUT": "3"}, timeout=120)
    assert time.monotonic() - started < 50
    line = _refused(res, "push failed", "no manifest list was pushed", "timed out")
    assert hung, res.stdout
    assert "retry 1/" in res.stdout
    _no_list(registry_get, f"{real}:v1")

    proxy.fault = lambda method, path: None
    res = engine.dockerma("push", f"{name}:v1", timeout=120)
    assert res.returncode == 0, res.stderr + res.stdout
    doc, _ = registry_get(f"{real}:v1")
    assert {m["platform"]["architecture"] for m in doc["manifests"]} == {"amd64", "arm64"}
    del line


def test_registry_hangs_once_on_the_list_put_then_answers(
    classic: Engine, tmp_path: Path, proxy: Proxy, registry_get
) -> None:
    # dockerma's own client: 30 s without an answer, then a retry that goes through.
    name, real = _built(classic, tmp_path, proxy, "hang-list")
    hung: list[str] = []

    def fault(method: str, path: str):
        if _is_list_put(method, path) and not hung:
            hung.append(path)
            return _hang(proxy)
        return None

    proxy.fault = fault
    res = classic.dockerma("push", f"{name}:v1", timeout=150)
    assert res.returncode == 0, res.stderr + res.stdout
    assert hung
    assert "did not answer (timed out)" in res.stderr and "retry 1/" in res.stderr, res.stderr
    doc, digest = registry_get(f"{real}:v1")
    assert {m["platform"]["architecture"] for m in doc["manifests"]} == {"amd64", "arm64"}
    assert digest in res.stdout


def test_registry_500s_on_the_list_put(
    engine: Engine, tmp_path: Path, proxy: Proxy, registry_get
) -> None:
    name, real = _built(engine, tmp_path, proxy, "list500")
    puts: list[str] = []

    def fault(method: str, path: str):
        if _is_list_put(method, path):
            puts.append(path)
            return 500
        return None

    proxy.fault = fault
    res = engine.dockerma("push", f"{name}:v1", timeout=120)
    _refused(res, "500", "PUT")
    assert len(puts) == 5, puts  # the first try and 4 retries
    assert "retry 4/4" in res.stderr, res.stderr
    _no_list(registry_get, f"{real}:v1")

    proxy.fault = lambda method, path: None
    res = engine.dockerma("push", f"{name}:v1", timeout=120)
    assert res.returncode == 0, res.stderr + res.stdout
    doc, _ = registry_get(f"{real}:v1")
    assert {m["platform"]["architecture"] for m in doc["manifests"]} == {"amd64", "arm64"}


# --- an image gone between build and push -------------------------------------------------


@pytest.mark.parametrize("slow", ["smoke test", "build"])
def test_per_arch_image_deleted_between_build_and_push(
    engine: Engine, tmp_path: Path, registry_get, slow: str
) -> None:
    # One architecture after the other (--jobs 1, arm64 first); each smoke test (or build)
    # takes 3 s. While amd64 is built (and smoke-tested), the arm64 image is deleted: the push
    # that follows must refuse and push nothing, not even amd64. Without smoke tests the
    # platform check of every image waits for the last build, and meets the deletion there.
    run = "RUN echo built > /built" + (" && sleep 3" if slow == "build" else "")
    ctx = write(tmp_path / "ctx", f"# dockerma archs:arm64,amd64\nFROM {engine.base}\n{run}\n")
    before = snapshot(ctx)
    tmpdir = _fresh_tmp(tmp_path)
    name = engine.name_for("vanished")
    args = ["build", "--jobs", "1", "--push", "-t", f"{name}:v1"]
    args[1:1] = ["--smoke-test", "sleep 3"] if slow == "smoke test" else ["--no-cache"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockerma", *args, str(ctx)],
        env={**engine.env, "TMPDIR": str(tmpdir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    errors: list[str] = []
    threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True).start()
    seen: list[str] = []
    deleted = False
    for line in proc.stdout:
        seen.append(line)
        if not deleted and line.startswith("[amd64]"):
            engine.docker("image", "rm", f"{name}:v1-arm64")
            deleted = True
    code = proc.wait(timeout=120)
    time.sleep(0.2)
    res = subprocess.CompletedProcess(proc.args, code, "".join(seen), "".join(errors))
    assert deleted, res.stdout
    _refused(res, f"{name}:v1-arm64", "no longer", "nothing was pushed")
    for tag in ("v1", "v1-amd64", "v1-arm64"):
        _no_list(registry_get, f"{name}:{tag}")
    assert snapshot(ctx) == before
    assert list(tmpdir.iterdir()) == []

    res = engine.dockerma("build", "--push", "-t", f"{name}:v1", str(ctx), timeout=180)
    assert res.returncode == 0, res.stderr + res.stdout
    doc, _ = registry_get(f"{name}:v1")
    assert {m["platform"]["architecture"] for m in doc["manifests"]} == {"amd64", "arm64"}


# --- a temp dir that cannot be used --------------------------------------------------------


@pytest.mark.parametrize("kind", ["a-file", "missing"])
def test_unusable_tmpdir(classic: Engine, tmp_path: Path, registry_get, kind: str) -> None:
    # Root ignores chmod, so "unwritable" is a path that is a file, or that does not exist.
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64,arm64\nFROM {classic.base}\n")
    before = snapshot(ctx)
    bad = tmp_path / "tmpdir"
    if kind == "a-file":
        bad.write_text("I am a file\n")
    name = classic.name_for("tmpdir")
    args = ("build", "--push", "-t", f"{name}:v1", str(ctx))
    res = classic.dockerma(*args, env={"TMPDIR": str(bad)})
    _refused(res, "temporary directory", str(bad), "TMPDIR")
    assert snapshot(ctx) == before
    assert classic.docker("image", "ls", "-q", name).stdout.strip() == ""
    _no_list(registry_get, f"{name}:v1")
    _no_list(registry_get, f"{name}:v1-amd64")

    good = _fresh_tmp(tmp_path)
    res = classic.dockerma(*args, env={"TMPDIR": str(good)})
    assert res.returncode == 0, res.stderr + res.stdout
    assert list(good.iterdir()) == []
    doc, _ = registry_get(f"{name}:v1")
    assert len(doc["manifests"]) == 2
