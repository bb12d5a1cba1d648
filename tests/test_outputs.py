"""One destination per architecture for -o/--output, --cache-to, --cache-from and --iidfile
(core/outputs.py), and what the build command makes of them (issue 20)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dockerma.core import outputs
from dockerma.core.platforms import Platform
from dockerma.errors import UsageError
from tests.conftest import FakeDocker
from tests.test_build import INFO_RULE

ARM64 = Platform.parse("arm64")
ARMV7 = Platform.parse("arm")


@pytest.mark.parametrize(
    ("platform", "expected"),
    [(ARM64, "linux_arm64"), (ARMV7, "linux_arm_v7"), (Platform.parse("arm/v6"), "linux_arm_v6")],
)
def test_platform_dir_is_buildx_naming(platform: Platform, expected: str) -> None:
    assert outputs.platform_dir(platform) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("out", "out/linux_arm_v7"),
        ("out/", "out/linux_arm_v7"),
        ("type=local,dest=out", "type=local,dest=out/linux_arm_v7"),
        ("type=tar,dest=dir/img.tar", "type=tar,dest=dir/img-linux_arm_v7.tar"),
        ("type=oci,dest=img.tar.gz", "type=oci,dest=img-linux_arm_v7.tar.gz"),
        ("type=docker,dest=.hidden", "type=docker,dest=.hidden-linux_arm_v7"),
        (
            "type=image,name=reg:5000/app:v1,push=true",
            "type=image,name=reg:5000/app:v1-arm,push=true",
        ),
        ('type=image,"name=a:1,b"', 'type=image,"name=a:1-arm,b:latest-arm"'),
        ("type=registry", "type=registry"),
        ("type=cacheonly", "type=cacheonly"),
    ],
)
def test_output_per_arch(value: str, expected: str) -> None:
    assert outputs.output(value, ARMV7) == expected


@pytest.mark.parametrize("value", ["-", "type=tar,dest=-"])
def test_output_to_stdout_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError, match="same stdout"):
        outputs.output(value, ARM64)


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--cache-to", "type=local,dest=c", "type=local,dest=c/linux_arm64"),
        ("--cache-from", "type=local,src=c", "type=local,src=c/linux_arm64"),
        (
            "--cache-to",
            "type=registry,ref=r:5000/app:cache,mode=max",
            "type=registry,ref=r:5000/app:cache-arm64,mode=max",
        ),
        ("--cache-from", "r:5000/app:cache", "r:5000/app:cache-arm64"),
        ("--cache-from", "app", "app:latest-arm64"),
        ("--cache-from", "app@sha256:" + "a" * 64, "app@sha256:" + "a" * 64),
        ("--cache-to", "type=gha", "type=gha,scope=buildkit-linux_arm64"),
        ("--cache-to", "type=gha,scope=main,mode=max", "type=gha,mode=max,scope=main-linux_arm64"),
        ("--cache-to", "type=inline", "type=inline"),
    ],
)
def test_cache_per_arch(option: str, value: str, expected: str) -> None:
    assert outputs.cache(option, value, ARM64) == expected


def test_per_arch_reports_what_the_outputs_mean() -> None:
    plain = outputs.per_arch(["--pull", "--cache-to", "type=local,dest=c"], ARM64)
    assert plain.args == ("--pull", "--cache-to", "type=local,dest=c/linux_arm64")
    assert (plain.exports_files, plain.loads_image, plain.iidfile_refused) == (False, True, False)
    local = outputs.per_arch(["-o", "out"], ARM64)
    assert (local.exports_files, local.loads_image, local.iidfile_refused) == (True, False, True)
    both = outputs.per_arch(["--output", "type=tar,dest=a.tar", "--load"], ARM64)
    assert (both.exports_files, both.loads_image) == (True, True)
    docker_file = outputs.per_arch(["-o", "type=docker,dest=a.tar"], ARM64)
    assert (docker_file.loads_image, docker_file.iidfile_refused) == (False, False)


def _arch_builds(fake: FakeDocker) -> dict[str, list[str]]:
    builds = [c for c in fake.calls() if c[0] == "build"]
    return {c[c.index("--platform") + 1]: c for c in builds}


def _value(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


def test_build_gives_each_arch_its_output_and_loads_tagged_images(
    fake_docker: FakeDocker, run_dockerma: Any, two_arch: Path, tmp_path: Path
) -> None:
    fake_docker.script([INFO_RULE])
    out, cache = tmp_path / "out", tmp_path / "cache"
    res = run_dockerma(
        "build",
        "-t",
        "app:v1",
        "-o",
        f"type=local,dest={out}",
        "--cache-to",
        f"type=local,dest={cache}",
        "--cache-from",
        "app:v1",
        str(two_arch),
    )
    assert res.code == 0, res.err
    builds = _arch_builds(fake_docker)
    assert set(builds) == {"linux/amd64", "linux/arm64"}
    for platform, argv in builds.items():
        d = platform.replace("/", "_")
        assert _value(argv, "-o") == [f"type=local,dest={out}/{d}"]
        assert _value(argv, "--cache-to") == [f"type=local,dest={cache}/{d}"]
        assert _value(argv, "--cache-from") == [f"app:v1-{platform.split('/')[1]}"]
        assert "--load" in argv  # the tagged image lands in the engine too, and is checked
        assert "--iidfile" not in argv  # buildx refuses it beside a local export


def test_build_without_tags_exports_only(
    fake_docker: FakeDocker, run_dockerma: Any, two_arch: Path, tmp_path: Path
) -> None:
    fake_docker.script([INFO_RULE])
    res = run_dockerma("build", "-o", str(tmp_path / "out"), str(two_arch))
    assert res.code == 0, res.err
    for argv in _arch_builds(fake_docker).values():
        assert "--load" not in argv
    inspected = [a for c in fake_docker.calls() if c[:2] == ["image", "inspect"] for a in c]
    assert not [a for a in inspected if a.startswith("sha256:")]  # no built image is checked
    assert "told nothing" not in res.err + res.out


def test_build_writes_one_iidfile_per_arch(
    fake_docker: FakeDocker, run_dockerma: Any, two_arch: Path, tmp_path: Path
) -> None:
    fake_docker.script([INFO_RULE])
    iid = tmp_path / "iid.txt"
    res = run_dockerma("build", "--iidfile", str(iid), str(two_arch))
    assert res.code == 0, res.err
    written = {p.name: p.read_text() for p in tmp_path.glob("iid-*")}
    assert set(written) == {"iid-linux_amd64.txt", "iid-linux_arm64.txt"}
    for platform, argv in _arch_builds(fake_docker).items():
        own = Path(_value(argv, "--iidfile")[0])  # dockerma's own, not the user's
        assert own != iid
        name = f"iid-{platform.replace('/', '_')}.txt"
        assert written[name].startswith("sha256:")
    assert len(set(written.values())) == 2
    assert not iid.exists()


def test_dry_run_shows_per_arch_outputs(
    fake_docker: FakeDocker, run_dockerma: Any, two_arch: Path
) -> None:
    fake_docker.script([INFO_RULE])
    res = run_dockerma(
        "build", "--dry-run", "-t", "a:1", "-o", "type=tar,dest=x.tar", str(two_arch)
    )
    assert res.code == 0, res.err
    assert "type=tar,dest=x-linux_amd64.tar" in res.out
    assert "type=tar,dest=x-linux_arm64.tar" in res.out
    assert "--load" in res.out
