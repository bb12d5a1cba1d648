"""engine/early.py: the emulation probes the CLI starts beside docker info (issue 21), and
core.dockerfile_directives.head_archs, the guess they are made from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dockerma.core.dockerfile_directives import head_archs
from dockerma.core.platforms import Platform, parse_list
from dockerma.engine import early

from .conftest import FakeDocker

AMD64 = Platform.parse("amd64")


@pytest.mark.parametrize(
    ("text", "archs"),
    [
        ("# dockerma archs:arm,amd64:\nFROM scratch\n", "arm,amd64"),
        ("\ufeff# escape=`\n\n# dockerma archs: arm64 \nFROM scratch\n", "arm64"),
        ("# a comment\n#   DOCKERMA ARCHS:s390x\nFROM scratch\n", "s390x"),
        ("FROM scratch\n# dockerma archs:arm64\n", None),  # after the first instruction
        ("# dockerma archs:nonsense\nFROM scratch\n", None),  # the flow says what is wrong
        ("# dockerma smoke:true\nFROM scratch\n", None),
        ("", None),
    ],
)
def test_head_archs(text: str, archs: str | None) -> None:
    assert head_archs(text) == (tuple(parse_list(archs)) if archs else None)


def _dockerfile(tmp_path: Path, archs: str = "amd64,arm64,arm") -> Path:
    (tmp_path / "Dockerfile").write_text(f"# dockerma archs:{archs}\nFROM scratch\n")
    return tmp_path


def _platforms(calls: list[tuple[str, ...]]) -> list[str]:
    return [c[c.index("--platform") + 1] for c in calls]


@pytest.fixture(autouse=True)
def _amd64_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(early, "host_platform", lambda: AMD64)


def test_the_probes_of_the_dockerfiles_foreign_targets(tmp_path: Path) -> None:
    calls = early.probes(None, str(_dockerfile(tmp_path)), None, {})
    assert _platforms(calls) == ["linux/arm64", "linux/arm/v7"]
    assert calls[0][:2] == ("run", "--rm") and calls[0][-1] == "dockerma-probe:arm64"


def test_platform_option_and_dockerfile_option(tmp_path: Path) -> None:
    ctx = _dockerfile(tmp_path)
    assert _platforms(early.probes(None, str(ctx), "amd64,386,s390x", {})) == ["linux/s390x"]
    other = tmp_path / "other.Dockerfile"
    other.write_text("# dockerma archs:ppc64le\nFROM scratch\n")
    assert _platforms(early.probes(str(other), str(ctx), None, {})) == ["linux/ppc64le"]


@pytest.mark.parametrize(
    ("dockerfile", "platforms", "environ"),
    [
        ("-", None, {}),  # stdin: the flow's to read
        ("missing", None, {}),
        (None, "not-an-arch", {}),
        (None, None, {"DOCKERMA_BUILDERS": "arm64=ssh://box"}),  # another engine decides
        (None, None, {"BUILDX_BUILDER": "ci"}),  # maybe a builder that answers for itself
    ],
)
def test_no_guess(
    tmp_path: Path, dockerfile: str | None, platforms: str | None, environ: dict[str, str]
) -> None:
    assert early.probes(dockerfile, str(_dockerfile(tmp_path)), platforms, environ) == []


def test_a_fifo_is_not_read(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "Dockerfile")
    assert early.probes(None, str(tmp_path), None, {}) == []


def test_build_starts_its_probes_beside_docker_info(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an engine that does not answer, the probes were already sent: they do not wait
    for docker info; the error is still docker info's one line, and nothing is built."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("# dockerma archs:amd64,arm64,s390x\nFROM scratch\n")
    monkeypatch.setattr("dockerma.core.platforms._stdlib_platform.machine", lambda: "x86_64")
    down = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock\n"
    # (info answers late enough for every probe's fake docker to have logged its call)
    fake_docker.script([{"match": ["info"], "exit": 1, "stderr": down, "sleep": 1.0}])
    res = run_dockerma("build", "-t", "app:v1", str(ctx))
    assert res.code == 1
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "the docker engine does not answer" in lines[0], res.err
    runs = [c for c in fake_docker.calls() if c[0] == "run"]
    assert sorted(c[c.index("--platform") + 1] for c in runs) == ["linux/arm64", "linux/s390x"]
    assert not [c for c in fake_docker.calls() if c[0] in ("build", "buildx")]


@pytest.mark.parametrize(
    "options",
    [["--dry-run"], ["--strategy", "inject"], ["--builder", "ci"], ["--builder", "arm64=ssh://a"]],
)
def test_no_probe_ahead_where_the_flow_asks_otherwise(
    fake_docker: FakeDocker,
    run_dockerma: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: list[str],
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("# dockerma archs:amd64,arm64\nFROM scratch\n")
    monkeypatch.setattr("dockerma.core.platforms._stdlib_platform.machine", lambda: "x86_64")
    down = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock\n"
    fake_docker.script([{"match": ["info"], "exit": 1, "stderr": down, "sleep": 1.0}])
    res = run_dockerma("build", *options, "-t", "app:v1", str(ctx))
    assert res.code != 0
    assert not [c for c in fake_docker.calls() if c[0] == "run"]
