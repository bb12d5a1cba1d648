"""Trust boundaries with the real engine (issue 17, items 1, 4, 5, 9): what `--insecure` covers,
where credentials may go, what a hostile registry's answers end in, bad registry names.

The hostile registries are fakes served by this process (tests/test_registry.py's
FakeRegistry, tests/test_transport.py's raw servers); dockerma reaches them as a user's build
would, from a Dockerfile's FROM, with the test bed's engine and registry for the rest.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Engine, _unavailable, write
from tests.test_registry import INDEX_BODY, OCI_INDEX, PASSWORD, USER, FakeRegistry
from tests.test_transport import DEEP, MiB, head, hostile, stream
from tests.test_trust import pki, tls_registry  # noqa: F401 (pki is a fixture)

pytestmark = pytest.mark.e2e


def _outside_address() -> str:
    """An address of this machine that is not loopback (a registry there is no loopback one)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found = re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    if not found:
        _unavailable("this machine has no non-loopback IPv4 address")
    return found[0]


def _one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and "unexpected" not in res.stderr, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("dockerma: error: "), res.stderr
    for needle in needles:
        assert needle in last, res.stderr
    return last


def _config(tmp_path: Path, registry: str) -> dict[str, str]:
    """A docker config dir that holds USER:PASSWORD for `registry`."""
    folder = tmp_path / "docker-config"
    folder.mkdir()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {registry: {"auth": auth}}}))
    return {"DOCKER_CONFIG": str(folder)}


# -- item 1: --insecure is for one registry ----------------------------------------------------


def test_insecure_push_says_once_which_registry(classic: Engine, tmp_path: Path) -> None:
    ctx = write(tmp_path / "ctx", f"FROM {classic.base}\nRUN echo hi > /v\n")
    name = classic.name_for("insecure")
    res = classic.dockerma(
        "build", "--platform", "amd64", "--insecure", "--push", "-t", f"{name}:v1", str(ctx)
    )
    assert res.returncode == 0, res.stdout + res.stderr
    notices = [line for line in res.stderr.splitlines() if "insecure" in line]
    assert notices == [
        f"dockerma: warning: --insecure: registry {classic.registry} is treated as insecure "
        "(plain HTTP, or TLS without certificate checks); every other host is verified as usual"
    ], res.stderr


def test_insecure_does_not_cover_the_base_images_registry(
    classic: Engine,
    tmp_path: Path,
    pki,  # noqa: F811
) -> None:
    # build --insecure --push to the bed's plain registry; the base image lives on another
    # registry (not loopback) whose certificate no CA vouches for: refused before any build,
    # as docker would refuse to pull it. It used to be read without any TLS check.
    base = tls_registry(pki, host=_outside_address())
    try:
        base.add("library/base", "1", INDEX_BODY, OCI_INDEX)
        ctx = write(tmp_path / "ctx", f"FROM {base.address}/library/base:1\nRUN true\n")
        name = classic.name_for("insecurebase")
        res = classic.dockerma(
            "build", "--platform", "amd64", "--insecure", "--push", "-t", f"{name}:v1", str(ctx)
        )
        _one_line_error(res, f"cannot verify the TLS certificate of registry {base.address}")
        assert base.state.requests == []
        assert "Step 1/" not in res.stdout  # nothing built
    finally:
        base.close()


# -- item 4: no credentials over plain HTTP ----------------------------------------------------


def test_http_token_service_gets_no_credentials(
    classic: Engine,
    tmp_path: Path,
    pki,  # noqa: F811
) -> None:
    # An HTTPS registry (on loopback: its certificate is not checked, as docker does) whose
    # challenge names a plain-HTTP token service; the user has a login for the registry.
    token_server = FakeRegistry()
    base = tls_registry(pki)
    try:
        base.state.auth = "bearer"
        base.state.realm = f"{token_server.state.base_url}/token"
        token_server.state.tokens = base.state.tokens
        ctx = write(tmp_path / "ctx", f"FROM {base.address}/library/base:1\nRUN true\n")
        res = classic.dockerma(
            "build", "--platform", "amd64", str(ctx), env=_config(tmp_path, base.address)
        )
        _one_line_error(res, f"registry {base.address} names its token service at plain HTTP")
        assert token_server.state.token_requests == []
        assert PASSWORD not in res.stdout + res.stderr
    finally:
        base.close()
        token_server.close()


# -- item 5: hostile answers end in one line ---------------------------------------------------


@pytest.mark.parametrize("answer", ["600 MB manifest", "nested 200,000 deep"])
def test_hostile_base_registry_ends_in_one_line(
    classic: Engine, tmp_path: Path, answer: str
) -> None:
    def respond(conn: socket.socket, request: bytes) -> None:
        if answer == "600 MB manifest":
            conn.sendall(head(Content_Type=OCI_INDEX, Content_Length=str(600 * MiB)))
            stream(conn, 600 * MiB)
        else:
            conn.sendall(head(Content_Type=OCI_INDEX, Content_Length=str(len(DEEP))) + DEEP)

    with hostile(respond) as address:
        ctx = write(tmp_path / "ctx", f"FROM {address}/library/base:1\nRUN true\n")
        res, took, peak = _run_with_peak(
            classic, tmp_path, "build", "--platform", "amd64", str(ctx)
        )
    expected = "more than 4 MiB" if answer.startswith("600") else "nested more than 100 levels"
    _one_line_error(res, f"registry {address}", expected)
    assert took < 30
    assert peak < 150, f"peak RSS {peak} MiB"
    print(f"{answer}: exit {res.returncode} after {took:.1f} s, peak RSS {peak} MiB")


# Runs argv[2:], writes its peak RSS (KiB, wait4's rusage: it and every child it waited for)
# to argv[1]. A process of its own, small: a child's peak counts its parent's size at fork, and
# pytest's here can be hundreds of MiB.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _run_with_peak(
    engine: Engine, tmp_path: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """Run dockerma; (result, seconds, peak RSS in MiB of dockerma or any child it ran)."""
    peak = tmp_path / "peak-rss"
    started = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(peak), sys.executable, "-m", "dockerma", *args],
        env=engine.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return res, time.monotonic() - started, int(peak.read_text()) // 1024


# -- item 9: registry names are checked before anything else ----------------------------------


@pytest.mark.parametrize("where", ["push", "-t", "FROM"])
def test_invalid_registry_fails_before_any_request(
    classic: Engine, tmp_path: Path, where: str
) -> None:
    ctx = write(tmp_path / "ctx", f"FROM {classic.base}\nRUN true\n")
    if where == "push":
        args: tuple[str, ...] = ("push", "localhost:abc/x:v1")
    elif where == "-t":
        args = ("build", "--platform", "amd64", "-t", "localhost:abc/x:v1", str(ctx))
    else:
        write(ctx, "FROM localhost:abc/x:1\nRUN true\n")
        args = ("build", "--platform", "amd64", str(ctx))
    started = time.monotonic()
    res = classic.dockerma(*args)
    took = time.monotonic() - started
    assert res.returncode == (1 if where == "FROM" else 2), res.stdout + res.stderr
    assert "invalid registry 'localhost:abc'" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "retry" not in res.stderr and res.stdout == ""
    assert took < 10  # it used to be retried four times
