"""The --metadata-file JSON: per architecture its platform, tags, image id, digests, smoke."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dockerma.errors import DockermaError, UsageError
from dockerma.flows.results import Report


def document(results: Sequence[Report], lists: Mapping[str, str]) -> dict[str, Any]:
    archs: dict[str, Any] = {}
    for r in results:
        entry: dict[str, Any] = {
            "platform": str(r.platform),
            "tags": list(r.tags),
            "image_id": r.image_id or None,
            "result": r.result,
            "engine": r.engine,
        }
        if r.error:
            entry["error"] = r.error
        if r.smoke:
            entry["smoke"] = [s.as_dict() for s in r.smoke]
        if r.digest:
            entry["digest"] = r.digest
        archs[r.platform.suffix] = entry
    doc: dict[str, Any] = {"architectures": archs}
    if lists:
        doc["manifest_lists"] = {name: {"digest": d} for name, d in lists.items()}
    return doc


def check(path: str) -> None:
    """Fail before any build or push when the file could not be written afterwards."""
    parent = Path(path).parent
    if not parent.is_dir():
        raise UsageError(
            f"--metadata-file {path}: {parent} is not an existing directory; create it first"
        )


def write(path: str, results: Sequence[Report], lists: Mapping[str, str]) -> None:
    """Write atomically: a reader never sees half a file."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dockerma-", dir=target.parent or ".")
        with os.fdopen(fd, "w") as f:
            json.dump(document(results, lists), f, indent=2)
            f.write("\n")
        os.replace(tmp, target)
    except OSError as e:
        raise DockermaError(
            f"cannot write metadata file {path}: {e.strerror}; check the path"
        ) from None
