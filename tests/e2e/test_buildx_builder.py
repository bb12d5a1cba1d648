"""A buildx builder whose driver keeps its images (the bed's `remote` driver builder,
scripts/testbed-remote-builder): `--builder NAME` reaches docker, BUILDX_BUILDER is honoured,
and the per-arch images land in the engine (--load), checked by docker image inspect and by
running them (issue 20)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import _unavailable, write

pytestmark = pytest.mark.e2e

# (arm64, not arm/v7: docker 26's BuildKit leaves arm/v7 out of its platforms while it runs
# it, and the emulation check trusts a remote driver's list)
DOCKERFILE = """# dockerma archs:amd64,arm64:
FROM {base}
RUN uname -m > /m
CMD ["cat", "/m"]
"""
MACHINE = {"amd64": ("linux/amd64", "x86_64"), "arm64": ("linux/arm64", "aarch64")}


def _builder(engine) -> str:
    name = engine.bed.get("DOCKERMA_REMOTE_BUILDER")
    if not name:
        _unavailable("the remote-driver builder is not in the test bed (DOCKERMA_REMOTE_BUILDER)")
    return name


def _check_images(engine, name: str) -> None:
    for suffix, (platform, machine) in MACHINE.items():
        ref = f"{name}:v1-{suffix}"
        assert engine.inspect(ref)["Architecture"] == suffix
        assert engine.run(platform, ref) == machine


@pytest.mark.parametrize("bake", ["1", "0"])
def test_named_remote_builder_loads_images(engine, tmp_path, bake: str) -> None:
    builder = _builder(engine)
    ctx = write(tmp_path / "ctx", DOCKERFILE.format(base=engine.base))
    name = engine.name_for("remote-builder")
    res = engine.dockerma(
        "build", "--builder", builder, "-t", f"{name}:v1", str(ctx), env={"DOCKERMA_BAKE": bake}
    )
    if not engine.buildkit:
        assert res.returncode == 2, res.stderr + res.stdout
        assert f"--builder {builder} names a buildx builder" in res.stderr
        return
    assert res.returncode == 0, res.stderr + res.stdout
    assert f"buildx builder {builder} (remote driver)" in res.stdout
    _check_images(engine, name)


def test_buildx_builder_env_is_honoured(engine, tmp_path) -> None:
    builder = _builder(engine)
    ctx = write(tmp_path / "ctx", DOCKERFILE.format(base=engine.base))
    name = engine.name_for("remote-env")
    engine.env["BUILDX_BUILDER"] = builder
    try:
        if engine.buildkit:  # what dockerma guards against: this builder keeps the image
            bare = engine.docker(
                "build", "--platform", "linux/amd64", "-t", f"{name}:bare", str(ctx), check=False
            )
            assert bare.returncode == 0, bare.stderr
            assert engine.docker("image", "inspect", f"{name}:bare", check=False).returncode != 0
        res = engine.dockerma("build", "-t", f"{name}:v1", str(ctx))
    finally:
        del engine.env["BUILDX_BUILDER"]
    assert res.returncode == 0, res.stderr + res.stdout
    if engine.buildkit:
        assert f"buildx builder {builder} (remote driver)" in res.stdout
    else:  # the legacy builder has no buildx builders: nothing to load, nothing said
        assert "buildx builder" not in res.stdout
    _check_images(engine, name)
