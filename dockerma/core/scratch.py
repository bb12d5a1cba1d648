"""An empty base image per platform, standing in for `FROM scratch` on the classic builder.

The classic builder labels a scratch stage with the host's architecture unless a build-wide
`--platform` is given, and with one it refuses `COPY --from` a stage of another platform
(a `FROM --platform=$BUILDPLATFORM` tool stage). The cross-compiling pattern needs both, so
such a scratch stage starts from `dockerma-scratch:<suffix>` instead: no files, one empty
layer, its config saying the target's platform. dockerma.engine.scratch loads it with
`docker load` (from the tar written here), since `docker import --platform` is ignored by
docker 20.10.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dockerma.core.platforms import Platform

REPOSITORY = "dockerma-scratch"


def tag(platform: Platform) -> str:
    return f"{REPOSITORY}:{platform.suffix}"


def image_tar(platform: Platform) -> bytes:
    """A `docker save` archive of the empty image for `platform` (deterministic bytes)."""
    return save_archive(
        [
            SavedImage(
                tag(platform), platform, {}, "dockerma: empty base standing in for FROM scratch"
            )
        ]
    )


@dataclass(frozen=True)
class SavedImage:
    """One image of a `docker save` archive: its tag, platform, files (path: (mode, bytes)) in
    one layer, and the config's Entrypoint."""

    tag: str
    platform: Platform
    files: Mapping[str, tuple[int, bytes]]
    created_by: str
    entrypoint: tuple[str, ...] = ()


def save_archive(images: Sequence[SavedImage]) -> bytes:
    """A `docker save` archive of the images, loadable with `docker load` (deterministic)."""
    files: dict[str, bytes] = {}
    manifest = []
    for image in images:
        layer = _tar({name: data for name, data in image.files.items()})
        digest = hashlib.sha256(layer).hexdigest()
        config: dict[str, object] = {
            "architecture": image.platform.arch,
            "os": image.platform.os,
            "config": {"Entrypoint": list(image.entrypoint)} if image.entrypoint else {},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + digest]},
            "history": [{"created_by": image.created_by}],
        }
        if image.platform.variant:
            config["variant"] = image.platform.variant
        config_bytes = json.dumps(config, sort_keys=True).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        layer_name = "layer.tar" if len(images) == 1 else f"{digest}/layer.tar"
        files[config_name] = config_bytes
        files[layer_name] = layer
        manifest.append({"Config": config_name, "RepoTags": [image.tag], "Layers": [layer_name]})
    files["manifest.json"] = json.dumps(manifest).encode()
    return _tar({name: (0o644, data) for name, data in files.items()})


def _tar(files: Mapping[str, tuple[int, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, (mode, data) in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()
