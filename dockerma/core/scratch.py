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

from dockerma.core.platforms import Platform

REPOSITORY = "dockerma-scratch"


def tag(platform: Platform) -> str:
    return f"{REPOSITORY}:{platform.suffix}"


def image_tar(platform: Platform) -> bytes:
    """A `docker save` archive of the empty image for `platform` (deterministic bytes)."""
    layer = _tar({})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config: dict[str, object] = {
        "architecture": platform.arch,
        "os": platform.os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "dockerma: empty base standing in for FROM scratch"}],
    }
    if platform.variant:
        config["variant"] = platform.variant
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [tag(platform)], "Layers": ["layer.tar"]}]
    return _tar(
        {
            config_name: config_bytes,
            "layer.tar": layer,
            "manifest.json": json.dumps(manifest).encode(),
        }
    )


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()
