"""Shared fixtures: a fake `docker` on PATH, and dockerma's entry point run in-process."""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dockerma import cli

FAKE_DIR = Path(__file__).parent / "fakedocker"


@dataclass
class FakeDocker:
    """The fake docker of tests/fakedocker: script its answers, read back its calls."""

    log: Path
    rules_file: Path

    def script(self, rules: Sequence[dict[str, Any]]) -> None:
        """Answers, first match wins: {"match": [sub-command, words…], "stdout", "stderr",
        "exit", "iid"}."""
        self.rules_file.write_text(json.dumps(list(rules)))

    def records(self) -> list[dict[str, Any]]:
        """Every call so far: {"argv": [...], "env": {...}}, in the order they happened."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def calls(self) -> list[list[str]]:
        """The argv of every call so far, without the program name."""
        return [r["argv"] for r in self.records()]


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    exe = FAKE_DIR / "docker"
    assert os.access(exe, os.X_OK), f"{exe} must be executable (chmod +x)"
    monkeypatch.setenv("PATH", f"{FAKE_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
    fake = FakeDocker(tmp_path / "fake-docker.log", tmp_path / "fake-docker.json")
    fake.script([])
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(fake.log))
    monkeypatch.setenv("FAKE_DOCKER_SCRIPT", str(fake.rules_file))
    # The user's engine selection must not leak into what the tests assert.
    for name in (
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_BUILDKIT",
        "DOCKER_CLI_EXPERIMENTAL",
        "BUILDX_BUILDER",
    ):
        monkeypatch.delenv(name, raising=False)
    # One docker build per architecture, the calls these tests script; tests/test_bake.py
    # scripts the one `docker buildx bake` of a BuildKit engine.
    monkeypatch.setenv("DOCKERMA_BAKE", "0")
    return fake


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def run_dockerma(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `dockerma ARGS` in-process through cli.main (so monkeypatches apply)."""

    def run(*args: str) -> Run:
        sigterm = signal.getsignal(signal.SIGTERM)
        handlers = list(logging.getLogger().handlers)
        capsys.readouterr()
        try:
            with pytest.raises(SystemExit) as exit_info:
                cli.main(list(args))
        finally:
            signal.signal(signal.SIGTERM, sigterm)
            logging.getLogger().handlers[:] = handlers
        captured = capsys.readouterr()
        code = exit_info.value.code
        return Run(code if isinstance(code, int) else 1, captured.out, captured.err)

    return run


@pytest.fixture
def fake() -> Iterator[Any]:
    """A fake registry on loopback (tests.test_registry.FakeRegistry), closed after the test."""
    from tests.test_registry import FakeRegistry

    server = FakeRegistry()
    yield server
    server.close()


@pytest.fixture
def two_arch(tmp_path: Path) -> Iterator[Path]:
    """A build context for amd64 and arm64 from a base image in a fake registry."""
    from tests.fakeregistry import DOCKER_LIST, FakeRegistry
    from tests.test_build import _list

    with FakeRegistry() as reg:
        reg.manifest(
            "base/img",
            "1",
            _list(
                ("sha256:" + "a" * 64, {"architecture": "amd64", "os": "linux"}),
                ("sha256:" + "b" * 64, {"architecture": "arm64", "os": "linux"}),
            ),
            DOCKER_LIST,
        )
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(
            f"# dockerma archs:amd64,arm64:\nFROM {reg.address}/base/img:1\nRUN true\n"
        )
        yield ctx
