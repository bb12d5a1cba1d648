"""docker push of one per-arch tag: retried when the registry failed, bounded in time, and the
digest docker reported read from its last line."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence

from dockerma.core import manifests
from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.engine.docker import Docker
from dockerma.errors import DockerError, DockermaError, UsageError
from dockerma.output import Output
from dockerma.registry import credentials

# The last line of a docker push: `v1-amd64: digest: sha256:… size: 528` (the tag, the digest
# of the manifest or index it uploaded, its size).
_PUSHED = re.compile(r"^(\S+): digest: (\S+) size: \d+\s*$")

RETRIES = 3
# docker push output that means "try again": registry 5xx, throttling, dropped connections.
_TRANSIENT = (
    " 500",
    " 502",
    " 503",
    " 504",
    " 429",
    "status: 5",
    "timeout",
    "timed out",
    "connection reset",
    "connection refused",
    "broken pipe",
    "eof",
    "temporarily unavailable",
    "too many requests",
)
_AUTH = ("denied", "unauthorized", "no basic auth credentials", "authentication required")


def push_tag(
    docker: Docker,
    out: Output,
    tag: str,
    p: Platform,
    passthrough: Sequence[str],
    timeout: float | None = None,
) -> str | None:
    """docker push of one tag, retried when the registry failed; the digest docker reported
    (its last line), None when it printed none (-q prints the name only)."""
    label = p.suffix
    name = ImageRef.parse(tag).tag
    digests: list[str] = []

    def on_line(line: str) -> None:
        found = _PUSHED.match(line)
        if found and found.group(1) == name:
            digests.append(found.group(2))
        out.line(label, line)

    for attempt in range(RETRIES + 1):
        digests.clear()
        try:
            docker.stream(
                "push", *passthrough, tag, on_line=on_line, platform=str(p), timeout=timeout
            )
            if not digests:
                return None
            return manifests.check_digest(digests[-1], f"docker push {tag}")
        except DockerError as e:
            if not _retry(e, docker, tag, attempt):
                raise
            wait = 2.0**attempt
            out.line(
                label,
                f"push failed ({e.tail(1)[0].strip() if e.tail(1) else e.returncode}); "
                f"retry {attempt + 1}/{RETRIES} in {wait:.0f}s",
            )
            time.sleep(wait)
    raise AssertionError("unreachable")


def _retry(e: DockerError, docker: Docker, tag: str, attempt: int) -> bool:
    """Whether a failed push is tried again; a refusal for want of access is a DockermaError
    that says how to log in."""
    text = "\n".join(e.tail(10)).lower()
    if any(a in text for a in _AUTH):
        registry = ImageRef.parse(tag).registry
        raise DockermaError(
            f"{registry} refused the push of {tag} (not logged in or no access); run "
            f"`{credentials.login_command(registry, docker.options.config)}`"
        ) from None
    return attempt < RETRIES and any(t in text for t in _TRANSIENT)


def push_timeout() -> float | None:
    """The bound of each docker push, from DOCKERMA_PUSH_TIMEOUT (seconds); None: no bound.

    dockerd sets no response timeout: against a registry that accepts the connection and never
    answers, docker push waits for ever. A push that runs out is retried like a dropped
    connection.
    """
    value = os.environ.get("DOCKERMA_PUSH_TIMEOUT", "").strip()
    try:
        seconds = float(value) if value else None
    except ValueError:
        seconds = -1.0
    if seconds is not None and seconds <= 0:
        raise UsageError(f"DOCKERMA_PUSH_TIMEOUT={value!r}: give a number of seconds, e.g. 600")
    return seconds
