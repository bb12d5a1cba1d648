"""Checks before anything is built: one clear line, non-zero exit, nothing created or changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import snapshot, write

pytestmark = pytest.mark.e2e


def _assert_refused(engine, res, name: str, *needles: str) -> None:
    assert res.returncode != 0
    err = res.stderr.strip().splitlines()
    assert err and err[-1].startswith("dockerma: error: "), res.stderr
    for needle in needles:
        assert needle in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    listed = engine.docker(
        "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", name.split(":")[0]
    ).stdout
    assert listed.strip() == ""


@pytest.mark.parametrize(
    ("dockerfile", "extra", "needles"),
    [
        ("FROM {base}\n", [], ["no architectures", "dockerma archs"]),
        ("# dockerma archs:amd64,sparc\nFROM {base}\n", [], ["sparc", "unknown architecture"]),
        ("# dockerma archs:amd64\nFROM {base}\n", ["--platform", "amd64,pdp11"], ["pdp11"]),
        ("# dockerma archs:\nFROM {base}\n", [], ["# dockerma archs:"]),
        (
            "# dockerma archs:amd64,riscv64\nFROM {base}\n",
            [],
            ["riscv64", "linux/amd64", "linux/arm64"],
        ),
    ],
    ids=["no-archs", "unknown-arch", "unknown-cli-arch", "empty-directive", "base-lacks-arch"],
)
def test_refused_before_build(engine, tmp_path, dockerfile, extra, needles) -> None:
    ctx = write(tmp_path / "ctx", dockerfile.format(base=engine.base))
    before = snapshot(ctx)
    name = engine.name_for("refused")
    res = engine.dockerma("build", *extra, "-t", name, str(ctx))
    _assert_refused(engine, res, name, *needles)
    assert snapshot(ctx) == before


def test_missing_dockerfile_and_context(engine, tmp_path) -> None:
    name = engine.name_for("missing")
    (tmp_path / "empty").mkdir()
    res = engine.dockerma("build", "-t", name, str(tmp_path / "empty"))
    _assert_refused(engine, res, name, "Dockerfile not found")
    res = engine.dockerma("build", "-t", name, str(tmp_path / "nope"))
    _assert_refused(engine, res, name, "does not exist")
    assert list((tmp_path / "empty").iterdir()) == []


def test_docker_not_reachable(engine, tmp_path) -> None:
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64\nFROM {engine.base}\n")
    res = engine.dockerma(
        "build", "-t", "x", str(ctx), env={"DOCKER_HOST": "unix:///nonexistent.sock"}
    )
    assert res.returncode != 0
    assert (
        res.stderr.strip()
        .splitlines()[-1]
        .startswith("dockerma: error: the docker engine does not answer")
    )


def test_docker_not_installed(engine, tmp_path) -> None:
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64\nFROM {engine.base}\n")
    import sys

    res = engine.dockerma(
        "build", "-t", "x", str(ctx), env={"PATH": str(Path(sys.executable).parent)}
    )
    assert res.returncode != 0
    assert "docker is not installed" in res.stderr


def test_no_emulation_for_a_foreign_arch(engine, tmp_path) -> None:
    handler = Path("/proc/sys/fs/binfmt_misc/qemu-mips64el")
    if not handler.exists():
        pytest.fail("the test bed should register qemu-mips64el (qemu-user-static)")
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64,mips64le\nFROM {engine.base}\n")
    name = engine.name_for("noemu")
    handler.write_text("0")
    try:
        res = engine.dockerma("build", "-t", name, str(ctx))
    finally:
        handler.write_text("1")
    _assert_refused(engine, res, name, "cannot run linux/mips64le", "qemu-user-static")


def test_failing_arch_named_others_kept(engine, tmp_path) -> None:
    ctx = write(
        tmp_path / "ctx",
        f'# dockerma archs:amd64,arm64\nFROM {engine.base}\nRUN [ "$(uname -m)" = x86_64 ]\n',
    )
    before = snapshot(ctx)
    name = engine.name_for("onefails")
    res = engine.dockerma("build", "-t", name, str(ctx))
    assert res.returncode != 0
    assert "linux/arm64" in res.stderr and "failed" in res.stderr
    assert engine.inspect(f"{name}:latest-amd64")["Architecture"] == "amd64"
    assert engine.docker("image", "inspect", f"{name}:latest-arm64", check=False).returncode != 0
    assert snapshot(ctx) == before
