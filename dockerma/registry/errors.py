"""The registry side's errors, and the wording every part of it shares.

Secrets never reach a message: each error is built through `Secrets.error`, which replaces
every password, token and Basic value the run has handled by `***`.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Collection
from typing import TypeVar

from dockerma.errors import DockermaError
from dockerma.registry import transport


class RegistryError(DockermaError):
    """A registry request that failed; the message names the registry and what to do."""


class NotFound(RegistryError):
    """The manifest or blob does not exist (404)."""


class AuthError(RegistryError):
    """The registry wants credentials docker does not have, or refused the ones it has."""


_E = TypeVar("_E", bound=RegistryError)


class Secrets:
    """The secrets handled so far, and errors with them blanked out; safe to share by threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: set[str] = set()

    def keep(self, secret: str) -> None:
        if secret:
            with self._lock:
                self._known.add(secret)

    def scrub(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._known, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    def error(self, kind: type[_E], message: str) -> _E:
        return kind(self.scrub(message))

    def expect(
        self,
        resp: transport.Response,
        ok: Collection[int],
        *,
        registry: str,
        method: str,
        path: str,
    ) -> None:
        """RegistryError, with a hint at what to do, unless the answer's status is in `ok`."""
        if resp.status in ok:
            return
        if resp.status >= 500:
            hint = "the registry failed; check its logs or try again later"
        elif resp.status == 429:
            hint = "too many requests; wait a while and try again"
        elif resp.status == 405:
            hint = "the registry does not allow this (read-only, or a pull-through cache?)"
        elif "BLOB_UNKNOWN" in registry_error(resp) and method == "PUT":
            # distribution only accepts a list whose entries are in the same repository.
            hint = "push the images it names to the same repository first, then retry"
        elif resp.status == 400:
            hint = "the registry refused the request; check the image and the manifest"
        else:
            hint = "check the registry address and the repository name"
        raise self.error(
            RegistryError,
            f"registry {registry} answered {resp.status} {registry_error(resp)} for "
            f"{method} {strip_query(path)}; {hint}",
        )

    def check_depth(self, body: bytes, *, registry: str, what: str) -> None:
        if transport.json_too_deep(body):
            raise self.error(
                RegistryError,
                f"registry {registry} sent {what} nested more than "
                f"{transport.MAX_JSON_DEPTH} levels deep, which no manifest, config or token "
                "answer is; the registry is broken or hostile, nothing of it was used",
            )


def registry_error(resp: transport.Response) -> str:
    """The first `errors` entry of a registry's JSON answer ("MANIFEST_UNKNOWN: …")."""
    try:
        if transport.json_too_deep(resp.body):
            raise ValueError("nested too deep")
        errors = json.loads(resp.body).get("errors") or []
        first = errors[0]
        text = f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
    except (ValueError, AttributeError, IndexError, TypeError):
        text = ""
    text = " ".join(text.split())[:200]
    return text or resp.reason or "no details"


def strip_query(target: str) -> str:
    """A path or URL as messages and logs show it: queries may carry signatures."""
    return target.split("?", 1)[0]


def describe(err: BaseException) -> str:
    if isinstance(err, ssl.SSLError) and err.reason:
        return str(err.reason).replace("_", " ").lower()
    if isinstance(err, (TimeoutError, socket.timeout)):
        return "timed out"
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return str(text)
