"""The build flow's steps on their own: per-phase records, the error line, builder checks,
tags and planning helpers (the whole flow runs through the CLI in test_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockerma.core import dockerfile
from dockerma.core.platforms import Platform
from dockerma.engine.probe import EngineInfo
from dockerma.errors import DockermaError, UsageError
from dockerma.flows import checks, inputs, plan, summary
from dockerma.flows.results import Arch, Built, Checked, Pushed
from dockerma.flows.smoke import SmokeResult
from dockerma.options import parse_build

AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64")


def test_arch_reads_each_phase_record() -> None:
    built = Built(AMD64, ("app:v1-amd64",), image_id="sha256:iid")
    arch = Arch(built, 1.5)
    assert (arch.image_id, arch.result, arch.digest, arch.ok) == ("sha256:iid", "ok", "", True)
    checked = Checked("sha256:inspected", AMD64, (SmokeResult("true", "failed", 1),))
    arch = Arch(built, 1.5, checked, Pushed(AMD64, "sha256:d"))
    assert (arch.image_id, arch.actual, arch.result, arch.digest, arch.ok) == (
        "sha256:inspected",
        AMD64,
        "failed (smoke)",
        "sha256:d",
        False,
    )
    assert Arch(built, checked=Checked(error="boom")).result == "failed"


def test_records_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Built(AMD64, ()).image_id = "x"  # type: ignore[misc]


def test_for_push_carries_what_publish_reads() -> None:
    arch = Arch(Built(ARM64, ("a:v1-arm64",), image_id="sha256:i"), checked=Checked(actual=ARM64))
    record = arch.for_push()
    assert (record.platform, record.tags, record.image_id, record.actual) == (
        ARM64,
        ["a:v1-arm64"],
        "sha256:i",
        ARM64,
    )


@pytest.mark.parametrize(
    ("archs", "pushing", "message"),
    [
        (
            [Arch(Built(AMD64, ("a:v1-amd64",), error="boom"))],
            False,
            "1 of 2 architectures failed: linux/amd64 (boom)",
        ),
        (
            [
                Arch(
                    Built(AMD64, ("a:v1-amd64",)),
                    checked=Checked(smoke=(SmokeResult("false", "failed", 1),)),
                )
            ],
            True,
            "1 of 2 architectures failed: linux/amd64 (failed (smoke)); the images stay local "
            "for a look: docker run --rm -it --platform linux/amd64 a:v1-amd64 sh; nothing was "
            "pushed",
        ),
    ],
)
def test_failure_line(archs: list[Arch], pushing: bool, message: str) -> None:
    assert str(summary.failure(archs, 2, pushing)) == message


def _info(buildkit: bool, containerd: bool = False) -> EngineInfo:
    return EngineInfo(AMD64, buildkit, containerd, ())


def test_builder_refuses_buildkit_options_on_the_legacy_builder() -> None:
    args = parse_build(["--secret=id=x", "."], environ={})
    checks.builder(_info(buildkit=True), [AMD64], args)
    with pytest.raises(UsageError, match="--secret needs BuildKit"):
        checks.builder(_info(buildkit=False), [AMD64], args)


def test_builder_refuses_foreign_platforms_on_legacy_containerd() -> None:
    args = parse_build(["."], environ={})
    checks.builder(_info(buildkit=False, containerd=True), [AMD64], args)
    with pytest.raises(DockermaError, match="moby/moby#47823"):
        checks.builder(_info(buildkit=False, containerd=True), [ARM64], args)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("app", "app:latest"), ("reg:5000/app:v1", "reg:5000/app:v1")],
)
def test_tags_get_latest_when_untagged(text: str, expected: str) -> None:
    assert str(inputs._parse_tag(text, [AMD64])) == expected


@pytest.mark.parametrize("text", ["", "app@sha256:" + "a" * 64, "UPPER:v1"])
def test_bad_tags_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        inputs._parse_tag(text, [AMD64])


def test_final_stage_by_target() -> None:
    df = dockerfile.parse("FROM alpine AS base\nFROM base AS app\nFROM app\n")
    assert inputs.final_stage(df, "BASE").alias == "base"
    assert inputs.final_stage(df, None) is df.stages[-1]
    with pytest.raises(DockermaError, match="no stage named nope"):
        inputs.final_stage(df, "nope")


def test_auto_args_only_those_declared_and_not_given() -> None:
    df = dockerfile.parse("ARG TARGETARCH\nARG BUILDOS\nFROM alpine\n")
    args = parse_build(["--build-arg", "BUILDOS=mine", "."], environ={})
    assert plan._auto_args(df, args, ARM64, AMD64) == ["--build-arg", "TARGETARCH=arm64"]


@pytest.mark.parametrize(
    ("buildkit", "passthrough", "expected"),
    [
        (True, (), ["--progress=plain"]),
        (True, ("--progress=tty",), []),
        (True, ("--progress", "auto"), []),
        (False, (), []),
    ],
)
def test_progress(buildkit: bool, passthrough: tuple[str, ...], expected: list[str]) -> None:
    assert plan._progress(buildkit, passthrough) == expected


def test_make_tmp_honours_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert inputs.make_tmp().parent == tmp_path
    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))
    with pytest.raises(DockermaError, match="point TMPDIR at a writable directory"):
        inputs.make_tmp()
