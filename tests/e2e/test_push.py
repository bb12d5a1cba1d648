"""dockerma push end to end, checked through the registry's HTTP API and by pulling."""

from __future__ import annotations

import json
import subprocess
import urllib.error

import pytest

from dockerma.core import scratch
from dockerma.core.platforms import Platform
from tests.e2e.conftest import write

pytestmark = pytest.mark.e2e

PLATFORM = {"amd64": "linux/amd64", "arm64": "linux/arm64", "arm": "linux/arm/v7"}
MACHINE = {"amd64": "x86_64", "arm64": "aarch64", "arm": "armv7l"}


def _platforms(doc: dict) -> dict[str, str]:
    out = {}
    for m in doc["manifests"]:
        p = m["platform"]
        key = "/".join(x for x in (p["os"], p["architecture"], p.get("variant", "")) if x)
        out[key.replace("linux/arm64/v8", "linux/arm64")] = m["digest"]
    return out


def _tag_digest(registry_get, ref: str, platform: str) -> str:
    doc, digest = registry_get(ref)
    if "manifests" in doc:  # an index pushed by the containerd store: the image inside
        return _platforms(doc)[platform]
    return digest


def _build(engine, ctx, name, *extra):
    res = engine.dockerma("build", *extra, "-t", name, str(ctx))
    assert res.returncode == 0, res.stderr + res.stdout
    return res


def test_push_three_arch_list(engine, tmp_path, registry_get) -> None:
    ctx = write(
        tmp_path / "ctx",
        f"# dockerma archs:arm,amd64,arm64\nFROM {engine.base}\nRUN echo one > /v\n",
    )
    name = engine.name_for("push")
    _build(engine, ctx, f"{name}:v1")
    res = engine.dockerma("push", f"{name}:v1")
    assert res.returncode == 0, res.stderr + res.stdout
    doc, list_digest = registry_get(f"{name}:v1")
    plats = _platforms(doc)
    assert set(plats) == set(PLATFORM.values())
    arm = next(m for m in doc["manifests"] if m["platform"]["architecture"] == "arm")
    assert arm["platform"]["variant"] == "v7"
    for suffix, platform in PLATFORM.items():
        assert plats[platform] == _tag_digest(registry_get, f"{name}:v1-{suffix}", platform)
    assert list_digest in res.stdout
    # pull by platform after deleting the local copies
    for suffix in PLATFORM:
        engine.docker("image", "rm", "-f", f"{name}:v1-{suffix}")
    engine.docker("pull", "--platform", "linux/arm64", f"{name}:v1")
    assert engine.run("linux/arm64", f"{name}:v1", "uname", "-m") == "aarch64"


def test_repush_after_rebuild_points_at_new_images(engine, tmp_path, registry_get) -> None:
    ctx = write(
        tmp_path / "ctx", f"# dockerma archs:amd64,arm64\nFROM {engine.base}\nRUN echo one > /v\n"
    )
    name = engine.name_for("repush")
    _build(engine, ctx, f"{name}:v1")
    assert engine.dockerma("push", f"{name}:v1").returncode == 0
    first = _platforms(registry_get(f"{name}:v1")[0])
    write(ctx, f"# dockerma archs:amd64,arm64\nFROM {engine.base}\nRUN echo two > /v\n")
    _build(engine, ctx, f"{name}:v1")
    res = engine.dockerma("push", f"{name}:v1")
    assert res.returncode == 0, res.stderr
    second = _platforms(registry_get(f"{name}:v1")[0])
    assert set(second) == {"linux/amd64", "linux/arm64"}
    for platform, suffix in (("linux/amd64", "amd64"), ("linux/arm64", "arm64")):
        assert second[platform] != first[platform]
        assert second[platform] == _tag_digest(registry_get, f"{name}:v1-{suffix}", platform)


def test_repush_of_unchanged_images_pushes_nothing(engine, tmp_path, registry_get) -> None:
    ctx = write(
        tmp_path / "ctx", f"# dockerma archs:amd64,arm64\nFROM {engine.base}\nRUN echo one > /v\n"
    )
    name = engine.name_for("unchanged")
    _build(engine, ctx, f"{name}:v1")
    first = engine.dockerma("push", f"{name}:v1")
    assert first.returncode == 0, first.stderr + first.stdout
    assert "not pushed again" not in first.stdout
    doc, list_digest = registry_get(f"{name}:v1")
    # The registry holds exactly these images: no docker push runs, the list stays the same.
    again = engine.dockerma("push", f"{name}:v1")
    assert again.returncode == 0, again.stderr + again.stdout
    for suffix in ("amd64", "arm64"):
        assert f"{name}:v1-{suffix}: already in the registry" in again.stdout, again.stdout
    assert "The push refers to repository" not in again.stdout
    assert registry_get(f"{name}:v1") == (doc, list_digest)
    assert list_digest in again.stdout
    # The same images under tags the registry lacks are pushed.
    for suffix in ("amd64", "arm64"):
        engine.docker("tag", f"{name}:v1-{suffix}", f"{name}:v2-{suffix}")
    other = engine.dockerma("push", f"{name}:v2")
    assert other.returncode == 0, other.stderr + other.stdout
    assert "not pushed again" not in other.stdout
    assert other.stdout.count("The push refers to repository") == 2
    assert _platforms(registry_get(f"{name}:v2")[0]) == _platforms(doc)


def test_mislabelled_image_refused(engine, tmp_path, registry_get) -> None:
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64\nFROM {engine.base}\nRUN true\n")
    name = engine.name_for("mislabel")
    _build(engine, ctx, f"{name}:v1")
    engine.docker("tag", f"{name}:v1-amd64", f"{name}:v1-arm64")
    res = engine.dockerma("push", f"{name}:v1")
    assert res.returncode != 0
    assert "linux/amd64" in res.stderr and "linux/arm64" in res.stderr
    for ref in (f"{name}:v1", f"{name}:v1-amd64", f"{name}:v1-arm64"):
        with pytest.raises(urllib.error.HTTPError):
            registry_get(ref)


def test_no_per_arch_images(engine) -> None:
    name = engine.name_for("none")
    res = engine.dockerma("push", f"{name}:v1")
    assert res.returncode != 0
    assert res.stderr.strip().startswith("dockerma: error: no per-arch images")


def test_build_push_same_as_build_then_push(engine, tmp_path, registry_get) -> None:
    # (listed against the usual order: the list must not depend on which command wrote it)
    ctx = write(
        tmp_path / "ctx", f"# dockerma archs:arm,amd64\nFROM {engine.base}\nRUN echo x > /v\n"
    )
    name = engine.name_for("buildpush")
    meta = tmp_path / "meta.json"
    res = engine.dockerma(
        "build",
        "--push",
        "--metadata-file",
        str(meta),
        "-t",
        f"{name}:a",
        "-t",
        f"{name}:b",
        str(ctx),
    )
    assert res.returncode == 0, res.stderr + res.stdout
    doc = json.loads(meta.read_text())
    for tag in ("a", "b"):
        lst, digest = registry_get(f"{name}:{tag}")
        assert set(_platforms(lst)) == {"linux/amd64", "linux/arm/v7"}
        assert doc["manifest_lists"][f"{name}:{tag}"]["digest"] == digest
    for suffix, platform in (("amd64", "linux/amd64"), ("arm", "linux/arm/v7")):
        assert doc["architectures"][suffix]["digest"] == _tag_digest(
            registry_get, f"{name}:b-{suffix}", platform
        )
    # dockerma push of what build --push published finds it all there: the same list
    before = registry_get(f"{name}:a")
    again = engine.dockerma("push", f"{name}:a")
    assert again.returncode == 0, again.stderr + again.stdout
    assert again.stdout.count("already in the registry") == 2, again.stdout
    assert registry_get(f"{name}:a") == before


def _load_empty(engine, platform: str, ref: str) -> None:
    """An image of one file-less layer whose config says `platform`, tagged ref."""
    p = Platform.parse(platform)
    res = subprocess.run(
        ["docker", "load"], input=scratch.image_tar(p), env=engine.env, capture_output=True
    )
    assert res.returncode == 0, res.stderr
    engine.docker("tag", scratch.tag(p), ref)


def test_push_finds_the_per_arch_tags_of_uncommon_platforms(engine, registry_get) -> None:
    # push asks docker for NAME:TAG-SUFFIX by name: the usual suffixes and every other one
    name = engine.name_for("uncommon")
    wanted = {"amd64": "linux/amd64", "armv5": "linux/arm/v5", "arm64v9": "linux/arm64/v9"}
    for suffix, platform in wanted.items():
        _load_empty(engine, platform, f"{name}:v1-{suffix}")
    res = engine.dockerma("push", f"{name}:v1")
    assert res.returncode == 0, res.stderr + res.stdout
    assert set(_platforms(registry_get(f"{name}:v1")[0])) == set(wanted.values())
    # a mislabelled one among them is refused, and nothing of that tag is published
    _load_empty(engine, "linux/amd64", f"{name}:v2-amd64")
    _load_empty(engine, "linux/arm/v5", f"{name}:v2-arm64v9")
    res = engine.dockerma("push", f"{name}:v2")
    assert res.returncode == 1
    assert f"{name}:v2-arm64v9 is a linux/arm/v5 image" in res.stderr
    for ref in (f"{name}:v2", f"{name}:v2-amd64", f"{name}:v2-arm64v9"):
        with pytest.raises(urllib.error.HTTPError) as err:
            registry_get(ref)
        assert err.value.code == 404


def test_push_of_fewer_architectures_warns_of_the_ones_dropped(engine, tmp_path, registry_get):
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64,arm64\nFROM {engine.base}\nLABEL a=1\n")
    name = engine.name_for("fewer")
    _build(engine, ctx, f"{name}:v1")
    res = engine.dockerma("push", f"{name}:v1")
    assert res.returncode == 0, res.stderr + res.stdout
    assert "warning" not in res.stderr
    engine.docker("image", "rm", f"{name}:v1-arm64")
    res = engine.dockerma("push", f"{name}:v1")
    assert res.returncode == 0, res.stderr + res.stdout
    warnings = [line for line in res.stderr.splitlines() if line.startswith("dockerma: warning:")]
    assert len(warnings) == 1, res.stderr
    assert f"{name}:v1: the registry's list also had linux/arm64" in warnings[0]
    assert set(_platforms(registry_get(f"{name}:v1")[0])) == {"linux/amd64"}
