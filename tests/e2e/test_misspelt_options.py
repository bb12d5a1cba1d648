"""A misspelt option is a usage error before anything starts, on every engine (issue 20):
exit 2, one line with a "did you mean", no image made; an option only buildx knows is
refused on the legacy builder and works on BuildKit."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import write

pytestmark = pytest.mark.e2e

DOCKERFILE = "# dockerma archs:amd64,arm64:\nFROM {base}\nRUN true\n"


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        (("--no-cahce",), "--no-cache"),
        (("--smoke-tset", "true"), "--smoke-test"),  # its value would read as the context
        (("--lod",), "--load"),
        (("--buld-arg=A=1",), "--build-arg"),
    ],
    ids=["docker-flag", "dockerma-option", "buildx-flag", "with-value"],
)
def test_misspelt_option_is_a_usage_error(engine, tmp_path, args, suggestion) -> None:
    ctx = write(tmp_path / "ctx", DOCKERFILE.format(base=engine.base))
    name = engine.name_for("misspelt")
    start = time.monotonic()
    res = engine.dockerma("build", *args, "-t", f"{name}:v1", str(ctx))
    took = time.monotonic() - start
    assert res.returncode == 2, res.stderr + res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"dockerma: error: unknown option {args[0].split('=')[0]}")
    assert lines[0].endswith(f"did you mean {suggestion}?")
    assert res.stdout == ""
    assert engine.docker("image", "ls", "-q", name).stdout.strip() == ""
    print(f"{engine.name} {args[0]}: refused in {took:.2f}s")


def test_buildx_only_option_by_engine(engine, tmp_path) -> None:
    ctx = write(tmp_path / "ctx", DOCKERFILE.format(base=engine.base))
    name = engine.name_for("load")
    res = engine.dockerma("build", "--load", "-t", f"{name}:v1", str(ctx))
    if not engine.buildkit:
        assert res.returncode == 2, res.stderr + res.stdout
        assert res.stderr.startswith("dockerma: error: --load needs BuildKit"), res.stderr
        assert engine.docker("image", "ls", "-q", name).stdout.strip() == ""
        return
    assert res.returncode == 0, res.stderr + res.stdout
    for suffix in ("amd64", "arm64"):
        assert engine.inspect(f"{name}:v1-{suffix}")["Architecture"] == suffix
