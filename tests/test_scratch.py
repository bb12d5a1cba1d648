from __future__ import annotations

import io
import json
import tarfile

import pytest

from dockerma.core import scratch
from dockerma.core.dockerfile import parse, render
from dockerma.core.platforms import Platform


@pytest.mark.parametrize(
    ("text", "arch", "variant"),
    [
        ("arm64", "arm64", "v8"),
        ("arm", "arm", "v7"),
        ("amd64", "amd64", None),
        ("arm/v6", "arm", "v6"),
    ],
)
def test_empty_image_records_the_platform(text: str, arch: str, variant: str | None) -> None:
    platform = Platform.parse(text)
    data = scratch.image_tar(platform)
    assert data == scratch.image_tar(platform)  # deterministic
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(t.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        layer = t.extractfile("layer.tar").read()  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == [scratch.tag(platform)]
    assert config["architecture"] == arch and config["os"] == "linux"
    assert config.get("variant") == variant
    with tarfile.open(fileobj=io.BytesIO(layer)) as t:
        assert t.getnames() == []


def test_render_replaces_only_scratch_stages() -> None:
    text = "FROM --platform=$BUILDPLATFORM busybox AS b\nRUN true\nFROM scratch AS final\nCOPY --from=b /x /x\n"
    df = parse(text)
    out = render(
        df,
        target=Platform.parse("arm64"),
        build=Platform.parse("amd64"),
        build_args={},
        pin=lambda ref, p: f"{ref}@sha256:{'a' * 64}",
        scratch="dockerma-scratch:arm64",
    )
    lines = out.splitlines()
    assert lines[0] == f"FROM --platform=linux/amd64 busybox@sha256:{'a' * 64} AS b"
    assert lines[2] == "FROM dockerma-scratch:arm64 AS final"
    assert lines[1] == "RUN true" and lines[3] == "COPY --from=b /x /x"
    # without the stand-in, scratch stays as written
    plain = render(
        df,
        target=Platform.parse("arm64"),
        build=Platform.parse("amd64"),
        build_args={},
        pin=lambda ref, p: f"{ref}@sha256:{'a' * 64}",
    )
    assert plain.splitlines()[2] == "FROM scratch AS final"
