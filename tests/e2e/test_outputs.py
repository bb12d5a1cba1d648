"""Per-architecture destinations for -o/--output, --cache-to, --cache-from and --iidfile, on
every engine of the bed (issue 20): checked in the files written, the registry's HTTP API and
docker image inspect."""

from __future__ import annotations

import tarfile
import urllib.request

import pytest

from tests.e2e.conftest import write

pytestmark = pytest.mark.e2e

DOCKERFILE = """# dockerma archs:amd64,arm:
FROM {base}
RUN uname -m > /m
CMD ["cat", "/m"]
"""
DIRS = {"amd64": ("linux_amd64", "x86_64"), "arm": ("linux_arm_v7", "armv7l")}
PLATFORM = {"amd64": "linux/amd64", "arm": "linux/arm/v7"}


def test_local_output_cache_and_iidfile_per_arch(engine, tmp_path) -> None:
    ctx = write(tmp_path / "ctx", DOCKERFILE.format(base=engine.base))
    name = engine.name_for("outputs")
    out, cache, iid = tmp_path / "out", tmp_path / "cache", tmp_path / "iid.txt"
    args = ["-o", f"type=local,dest={out}", "--cache-to", f"type=local,dest={cache}"]
    res = engine.dockerma("build", "-t", f"{name}:v1", *args, "--iidfile", str(iid), str(ctx))
    if not engine.buildkit:  # the classic builder has no exporters: refused before building
        assert res.returncode == 2, res.stderr + res.stdout
        assert res.stderr.startswith("dockerma: error: -o needs BuildKit"), res.stderr
        assert not out.exists()
        return
    assert res.returncode == 0, res.stderr + res.stdout
    for suffix, (folder, machine) in DIRS.items():
        assert (out / folder / "m").read_text().strip() == machine
        assert (cache / folder / "index.json").is_file()
        info = engine.inspect(f"{name}:v1-{suffix}")  # -t with -o: loaded and checked too
        assert info["Architecture"] == suffix
        assert (tmp_path / f"iid-{folder}.txt").read_text() == info["Id"]
    assert sorted(p.name for p in out.iterdir()) == ["linux_amd64", "linux_arm_v7"]
    assert not iid.exists()


def test_tar_output_and_registry_cache_per_arch(engine, tmp_path) -> None:
    ctx = write(tmp_path / "ctx", DOCKERFILE.format(base=engine.base))
    name = engine.name_for("tarcache")
    res = engine.dockerma(
        "build",
        "--cache-to",
        f"type=registry,ref={name}:cache",
        "-o",
        f"type=tar,dest={tmp_path / 'img.tar'}",
        str(ctx),
    )
    if not engine.buildkit:  # the classic builder exports no cache: refused before building
        assert res.returncode == 2, res.stderr + res.stdout
        assert res.stderr.startswith("dockerma: error: --cache-to needs BuildKit"), res.stderr
        return
    assert res.returncode == 0, res.stderr + res.stdout
    for suffix, (folder, machine) in DIRS.items():
        with tarfile.open(tmp_path / f"img-{folder}.tar") as tar:
            member = tar.extractfile("m")
            assert member is not None and member.read().decode().strip() == machine
        host, _, repo = name.partition("/")
        req = urllib.request.Request(
            f"http://{host}/v2/{repo}/manifests/cache-{suffix}",
            method="HEAD",
            headers={
                "Accept": "application/vnd.oci.image.index.v1+json,"
                "application/vnd.oci.image.manifest.v1+json"
            },
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
    assert not (tmp_path / "img.tar").exists()


def test_iidfile_and_cache_from_per_arch(engine, tmp_path) -> None:
    """On every engine, the classic builder included: --iidfile per architecture, and
    --cache-from NAME:TAG reads each architecture's own image NAME:TAG-ARCH."""
    ctx = write(tmp_path / "ctx", DOCKERFILE.format(base=engine.base))
    name = engine.name_for("iid")
    first = engine.dockerma("build", "-t", f"{name}:v1", str(ctx))
    assert first.returncode == 0, first.stderr + first.stdout
    iid = tmp_path / "ids" / "iid"
    iid.parent.mkdir()
    res = engine.dockerma(
        "build", "-t", f"{name}:v2", "--cache-from", f"{name}:v1", "--iidfile", str(iid), str(ctx)
    )
    assert res.returncode == 0, res.stderr + res.stdout
    for suffix, (folder, machine) in DIRS.items():
        info = engine.inspect(f"{name}:v2-{suffix}")
        assert info["Architecture"] == suffix
        assert (tmp_path / "ids" / f"iid-{folder}").read_text() == info["Id"]
        assert engine.run(PLATFORM[suffix], f"{name}:v2-{suffix}") == machine
