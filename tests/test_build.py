"""dockerma build against hostile registry answers and with secrets in its arguments.

A fake registry on 127.0.0.1 (tests/fakeregistry.py) serves the base images; the fake docker
(tests/fakedocker) stands in for the engine. Issue 17, items 2, 7 and 8.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeDocker, Run
from tests.fakeregistry import DOCKER_LIST, FakeRegistry

INFO = {
    "Architecture": "x86_64",
    "ClientInfo": {"Plugins": [{"Name": "buildx"}]},
    "DriverStatus": [["Backing Filesystem", "extfs"]],
    "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}},
}
INFO_RULE = {"match": ["info"], "stdout": json.dumps(INFO)}
GOOD = "sha256:" + "a" * 64
ESC = "\x1b"


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as reg:
        yield reg


def _list(*entries: tuple[str, dict[str, str]]) -> bytes:
    manifests = [
        {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "digest": digest,
            "size": 528,
            "platform": platform,
        }
        for digest, platform in entries
    ]
    return json.dumps(
        {"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": manifests}
    ).encode()


AMD64 = {"architecture": "amd64", "os": "linux"}


def _context(tmp_path: Path, base: str, archs: str = "amd64") -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"# dockerma archs:{archs}:\nFROM {base}\nRUN true\n")
    return ctx


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dockerma: error: "), err
    return lines[0]


# -- item 2: a digest from a registry never becomes a line of the Dockerfile ----------------

HOSTILE_DIGESTS = [
    GOOD + "\nRUN touch /pwned",  # the reproduction
    GOOD + "\r\nRUN touch /pwned",
    GOOD + " AS x\nRUN touch /pwned",
    "sha256:" + "A" * 64,  # upper case: not the registered form
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 65,
    "sha384:" + "a" * 96,  # not a registered algorithm
    "sha512:" + "a" * 64,  # sha512 with a sha256's length
    "md5:" + "a" * 32,
    "sha256:../../../etc/passwd",
    "",
]


@pytest.mark.parametrize("digest", HOSTILE_DIGESTS, ids=repr)
def test_hostile_list_entry_digest_is_refused_in_dry_run(
    fake_docker: FakeDocker,
    run_dockerma: Any,
    registry: FakeRegistry,
    tmp_path: Path,
    digest: str,
) -> None:
    fake_docker.script([INFO_RULE])
    registry.manifest("hostile/base", "1", _list((digest, AMD64)), DOCKER_LIST)
    base = f"{registry.address}/hostile/base:1"
    res = run_dockerma("build", "--dry-run", "-t", "app:v1", str(_context(tmp_path, base)))
    assert res.code == 1
    assert "pwned" not in res.out  # no rendered Dockerfile at all, so no extra instruction
    assert "FROM" not in res.out
    line = _one_error_line(res.err)
    assert "invalid digest" in line
    assert registry.address in line and "hostile/base:1" in line  # names registry and image
    # nothing was built: docker was asked what it is and which bases it has, no more
    assert [c[:2] for c in fake_docker.calls()][1:] == [["image", "inspect"]]


def test_valid_sha512_digest_is_pinned(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry, tmp_path: Path
) -> None:
    fake_docker.script([INFO_RULE])
    digest = "sha512:" + "b" * 128
    registry.manifest("ok/base", "1", _list((digest, AMD64)), DOCKER_LIST)
    base = f"{registry.address}/ok/base:1"
    res = run_dockerma("build", "--dry-run", "-t", "app:v1", str(_context(tmp_path, base)))
    assert res.code == 0, res.err
    assert f"FROM {registry.address}/ok/base@{digest}\nRUN true\n" in res.out


def test_hostile_config_digest_is_refused(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry, tmp_path: Path
) -> None:
    # One image (no list): its config digest goes into a blob URL; a bad one never does.
    fake_docker.script([INFO_RULE])
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": "sha256:../../../v2/_catalog?x=" + "a" * 40, "size": 2},
        "layers": [],
    }
    registry.manifest("one/base", "1", json.dumps(doc).encode())
    base = f"{registry.address}/one/base:1"
    res = run_dockerma("build", "--dry-run", "-t", "app:v1", str(_context(tmp_path, base)))
    assert res.code == 1
    line = _one_error_line(res.err)
    assert "invalid digest" in line and "one/base:1" in line
    assert res.out == ""


def test_hostile_content_digest_header_is_refused(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry, tmp_path: Path
) -> None:
    fake_docker.script([INFO_RULE])
    registry.manifest(
        "hdr/base", "1", _list((GOOD, AMD64)), DOCKER_LIST, digest=f"sha256:{ESC}[2Jx"
    )
    base = f"{registry.address}/hdr/base:1"
    res = run_dockerma("build", "--dry-run", "-t", "app:v1", str(_context(tmp_path, base)))
    assert res.code == 1
    line = _one_error_line(res.err)
    assert "invalid digest" in line and registry.address in line
    assert ESC not in res.err


# -- item 8: what a registry says reaches the terminal escaped --------------------------------


def test_registry_error_body_control_characters_are_escaped(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry, tmp_path: Path
) -> None:
    fake_docker.script([INFO_RULE])
    message = f"{ESC}]0;owned{chr(7)}{ESC}[2J{ESC}[31mred\rover\x9b1mcsi\u202eevil"
    body = json.dumps({"errors": [{"code": "DENIED", "message": message}]}).encode()
    registry.manifest("err/base", "1", body, "application/json", status=400)
    base = f"{registry.address}/err/base:1"
    res = run_dockerma("build", "--dry-run", "-t", "app:v1", str(_context(tmp_path, base)))
    assert res.code == 1
    line = _one_error_line(res.err)
    for raw in (ESC, "\x07", "\r", "\x9b", "\u202e"):
        assert raw not in res.err
    assert "\\x1b]0;owned\\x07\\x1b[2J" in line  # shown, escaped: the user sees what was sent


def test_registry_platform_strings_are_escaped(
    fake_docker: FakeDocker, run_dockerma: Any, registry: FakeRegistry, tmp_path: Path
) -> None:
    fake_docker.script([INFO_RULE])
    hostile = {"architecture": f"arm64{ESC}[2J{ESC}]0;t{chr(7)}", "os": "linux"}
    registry.manifest("plat/base", "1", _list((GOOD, hostile)), DOCKER_LIST)
    base = f"{registry.address}/plat/base:1"
    res = run_dockerma("build", "--dry-run", "-t", "app:v1", str(_context(tmp_path, base)))
    assert res.code == 1
    line = _one_error_line(res.err)
    assert "has no linux/amd64" in line
    assert ESC not in res.err and "\x07" not in res.err
    assert "\\x1b[2J" in line


def test_docker_output_escape_sequences_are_escaped(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("# dockerma archs:amd64:\nFROM scratch\nCOPY f /\n")
    fake_docker.script(
        [
            INFO_RULE,
            {"match": ["build"], "stdout": f"#1 {ESC}]0;title{chr(7)}step\n", "exit": 1},
        ]
    )
    res = run_dockerma("build", "-t", "app:v1", str(ctx))
    assert res.code == 1
    assert ESC not in res.out + res.err and "\x07" not in res.out + res.err
    assert "[amd64] #1 \\x1b]0;title\\x07step" in res.out


# -- item 7: build-arg values and URL passwords never in error and summary lines --------------

PAT = "ghp_S3cr3tT0kenValue0123456789"
DB = "postgres://u:pw-Secret-9@db.example:5432/app"


def test_build_arg_values_never_in_error_lines(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("# dockerma archs:amd64,386:\nFROM scratch\nCOPY f /\n")
    fake_docker.script([INFO_RULE, {"match": ["build"], "stderr": "ERROR: failed\n", "exit": 1}])
    args = ["--build-arg", f"GH_PAT={PAT}", f"--build-arg=DB_URL={DB}"]
    args += ["--build-arg", "VERSION=1.2.3-plain"]
    res = run_dockerma("build", *args, "-t", "app:v1", str(ctx))
    assert res.code == 1
    shown = res.out + res.err
    for secret in (PAT, "pw-Secret-9", "1.2.3-plain"):
        assert secret not in shown
    failed = [line for line in res.out.splitlines() if "FAILED:" in line]
    assert len(failed) == 2
    for line in failed:  # the names are there, their values are not
        assert "GH_PAT=***" in line and "DB_URL=***" in line and "VERSION=***" in line
    final = _one_error_line(res.err)
    assert "2 of 2 architectures failed" in final and "GH_PAT=***" in final


def test_debug_shows_plain_values_but_never_secrets(
    fake_docker: FakeDocker, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("# dockerma archs:amd64:\nFROM scratch\nCOPY f /\n")
    fake_docker.script([INFO_RULE, {"match": ["build"], "stderr": "ERROR: failed\n", "exit": 1}])
    args = ["--build-arg", f"GH_PAT={PAT}", "--build-arg", f"DB_URL={DB}"]
    args += ["--build-arg", "VERSION=1.2.3-plain"]
    # A process of its own: in-process, pytest's logging handlers keep the debug log.
    proc = subprocess.run(
        [sys.executable, "-m", "dockerma", "-D", "build", *args, "-t", "app:v1", str(ctx)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # --debug keeps the rendered files
    )
    res = Run(proc.returncode, proc.stdout, proc.stderr)
    assert res.code == 1
    shown = res.out + res.err
    assert PAT not in shown and "pw-Secret-9" not in shown
    assert "VERSION=1.2.3-plain" in res.err  # the debug log and details show plain values
    assert "DB_URL=postgres://u:***@db.example:5432/app" in res.err
    assert "GH_PAT=***" in res.err


def test_dry_run_masks_secrets_and_url_passwords(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("# dockerma archs:amd64:\nFROM scratch\nCOPY f /\n")
    fake_docker.script([INFO_RULE])
    args = ["--build-arg", f"GH_PAT={PAT}", "--build-arg", f"DB_URL={DB}"]
    res = run_dockerma("build", "--dry-run", *args, "-t", "app:v1", str(ctx))
    assert res.code == 0, res.err
    assert PAT not in res.out and "pw-Secret-9" not in res.out
    assert "'GH_PAT=***'" in res.out
    assert "DB_URL=postgres://u:***@db.example:5432/app" in res.out
