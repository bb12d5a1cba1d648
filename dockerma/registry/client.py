"""A small client for the registry HTTP API (distribution v2): manifests, blobs, push access.

Why not `docker manifest`: it fails against TLS + auth registries ("connection reset by
peer"), refuses per-arch references that are OCI indexes (containerd image store) and keeps a
stale local cache. This client uses what the user's docker has instead: the credentials from
config.json and its helpers (auth.py, credentials.py), the CAs and client certificates in
certs.d (tls.py), and docker's rules for plain-HTTP ("insecure") registries (trust.py); the
requests themselves go through session.py and transport.py. Secrets never reach a message, a
log line or a repr.

Trust is per registry (host:port), never per run: `--insecure`, the daemon's insecure list
and loopback relax TLS for the registry an image lives in, and for no other host (its token
service, where it redirects, other images' registries). Credentials go over plain HTTP only
to a registry that is itself plain HTTP, and never follow a redirect to another origin.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockerma.core import manifests
from dockerma.core.manifests import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError
from dockerma.registry import hub, mirrors, transport
from dockerma.registry.auth import Auth
from dockerma.registry.errors import AuthError, NotFound, RegistryError, Secrets, registry_error
from dockerma.registry.session import Policy, Request, Session, path_of
from dockerma.registry.tls import DEFAULT_CERTS_DIR, Contexts
from dockerma.registry.transport import Response
from dockerma.registry.trust import TrustBook

__all__ = [
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "AuthError",
    "Manifest",
    "NotFound",
    "Registry",
    "RegistryError",
    "sha256_digest",
]

log = logging.getLogger("dockerma")

# Ask for every kind at once: an OCI index asked for with only the Docker list type answers
# 404, and a request without Accept gets a converted schema-1 manifest.
# One request, its retries and redirects included, gets this long in all: a per-read timeout
# alone let a server that sends a byte a second keep a request alive for hours.
_DEADLINE = 120.0


@dataclass(frozen=True)
class Manifest:
    """A manifest (or manifest list / OCI index) exactly as the registry stores it."""

    media_type: str
    digest: str
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        """The body parsed; RegistryError when it is not a JSON object."""
        try:
            data = json.loads(self.body)
        except ValueError as err:
            raise RegistryError(f"manifest {self.digest} is not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise RegistryError(f"manifest {self.digest} is not a JSON object")
        return data


def sha256_digest(data: bytes) -> str:
    """The content digest of `data`, "sha256:<hex>", as registries compute it."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """A registry client bound to the user's docker configuration; safe to share by threads."""

    def __init__(
        self,
        *,
        config_dir: str | None = None,
        insecure: Collection[str] = (),
        insecure_registries: Collection[str] = (),
        timeout: float = 30.0,
        deadline: float = _DEADLINE,
        retries: int = 4,
        on_retry: Callable[[str], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
        certs_dirs: Sequence[str] = (DEFAULT_CERTS_DIR,),
        backoff: float = 0.5,
        registry_mirrors: Sequence[str] = (),
    ) -> None:
        """`insecure`: the registries (host:port) `--insecure` applies to, the ones the run
        pushes to or looks up for the user; `insecure_registries`: the daemon's list (names
        and CIDRs); `registry_mirrors`: the daemon's (URLs), for Docker Hub's images (see
        mirrors.py). `timeout` bounds each read, `deadline` each request in all."""
        self._secrets = Secrets()
        self.mirrors = mirrors.parse(registry_mirrors)
        self._trust = TrustBook(
            insecure=insecure,
            # A mirror the daemon speaks plain HTTP to (its URL says so) is spoken to alike.
            insecure_registries=[*insecure_registries, *mirrors.plain_registries(self.mirrors)],
            on_warning=on_warning,
        )
        policy = Policy(timeout, deadline, max(0, retries), backoff, on_retry)
        self._session = Session(
            trust=self._trust, tls=Contexts(certs_dirs), secrets=self._secrets, policy=policy
        )
        self._auth = Auth(session=self._session, secrets=self._secrets, config_dir=config_dir)
        self._lock = threading.Lock()
        self._may_push: set[tuple[str, str]] = set()
        self._cleanups: list[threading.Thread] = []

    def __repr__(self) -> str:
        registries = ", ".join(self._trust.insecure_registries)
        forced = ", ".join(sorted(self._trust.insecure))
        return f"Registry(insecure=[{forced}], insecure_registries=[{registries}])"

    # -- the API -----------------------------------------------------------------------------

    def get_manifest(self, ref: ImageRef) -> Manifest:
        """The manifest, list or index `ref` names; NotFound when the registry has none."""
        path = f"/v2/{ref.repository}/manifests/{ref.reference}"
        headers = {"Accept": manifests.ACCEPT}
        resp = self._send(
            ref,
            actions="pull",
            method="GET",
            path=path,
            headers=headers,
            limit=transport.MAX_MANIFEST,
        )
        if resp.status == 404:
            raise self._not_found(ref, resp)
        self._expect(resp, 200, ref=ref, method="GET", path=path)
        self._secrets.check_depth(resp.body, registry=ref.registry, what=f"the manifest of {ref}")
        digest = sha256_digest(resp.body)
        self._check_digest(ref, path, actual=digest, expected=self._content_digest(ref, resp))
        if ref.digest.startswith("sha256:"):
            self._check_digest(ref, path, actual=digest, expected=ref.digest)
        media_type = resp.header("Content-Type").split(";")[0].strip()
        if not media_type or media_type in ("application/json", "text/plain"):
            with contextlib.suppress(ValueError, AttributeError):
                media_type = str(json.loads(resp.body).get("mediaType") or media_type)
        return Manifest(media_type, digest, resp.body)

    def get_blob(self, ref: ImageRef, digest: str) -> bytes:
        """A small JSON blob of ref's repository (an image config), checked against its digest
        (at most transport.MAX_CONFIG bytes; layers are docker's business)."""
        path = f"/v2/{ref.repository}/blobs/{digest}"
        resp = self._send(ref, actions="pull", method="GET", path=path, limit=transport.MAX_CONFIG)
        what = f"blob {digest} of {ref.name}"
        if resp.status == 404:
            raise self._not_found(ref, resp, what=what)
        self._expect(resp, 200, ref=ref, method="GET", path=path)
        self._secrets.check_depth(resp.body, registry=ref.registry, what=what)
        if digest.startswith("sha256:"):
            self._check_digest(ref, path, actual=sha256_digest(resp.body), expected=digest)
        return resp.body

    def put_manifest(self, ref: ImageRef, body: bytes, media_type: str) -> str:
        """Upload a manifest (list) as `ref`; returns its digest. Needs push access."""
        path = f"/v2/{ref.repository}/manifests/{ref.reference}"
        headers = {"Content-Type": media_type}
        resp = self._send(
            ref, actions="pull,push", method="PUT", path=path, headers=headers, body=body
        )
        self._expect(resp, 200, 201, 202, ref=ref, method="PUT", path=path)
        digest = sha256_digest(body)
        self._check_digest(ref, path, actual=digest, expected=self._content_digest(ref, resp))
        return digest

    def check_push_access(self, ref: ImageRef) -> None:
        """Raise AuthError now, before anything is pushed, if we may not push to ref's repository.

        Starts a blob upload (what `docker push` does first; only a push grant allows it) and
        cancels it at once: a token or password check alone cannot tell pull-only access apart.
        """
        key = (ref.registry, ref.repository)
        with self._lock:
            if key in self._may_push:
                return  # asked already in this run (build --push asks before the builds)
        path = f"/v2/{ref.repository}/blobs/uploads/"
        resp = self._send(ref, actions="pull,push", method="POST", path=path, body=b"")
        self._expect(resp, 200, 201, 202, ref=ref, method="POST", path=path)
        with self._lock:
            self._may_push.add(key)
        location = resp.header("Location")
        target = _same_registry_path(ref.registry, location) if location else None
        if target is None:
            return

        def cancel() -> None:
            try:
                self._send(ref, actions="pull,push", method="DELETE", path=target)
            except DockermaError as err:
                # An upload left open expires on its own (distribution purges them after a
                # week).
                log.debug("could not cancel the probe upload on %s: %s", ref.registry, err)

        # Nothing waits for the answer (deleting an upload is not instant, even on a local
        # registry); finish() does, before dockerma exits.
        thread = threading.Thread(target=cancel, daemon=True)
        thread.start()
        with self._lock:
            self._cleanups.append(thread)

    def finish(self, timeout: float = 2.0) -> None:
        """Wait (a little) for the background clean-ups: the probe uploads' cancellations."""
        with self._lock:
            threads, self._cleanups = self._cleanups, []
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def is_insecure(self, registry: str) -> bool:
        """Whether `registry` (host:port) may speak plain HTTP / unverified TLS."""
        return self._trust.of(registry).insecure

    def _send(
        self,
        ref: ImageRef,
        *,
        actions: str,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        limit: int = transport.MAX_ERROR,
    ) -> Response:
        req = Request(ref.registry, method, path, headers or {}, body, limit)
        return self._auth.send(req, repository=ref.repository, actions=actions)

    def _expect(self, resp: Response, *ok: int, ref: ImageRef, method: str, path: str) -> None:
        self._secrets.expect(resp, ok, registry=ref.registry, method=method, path=path)

    def _content_digest(self, ref: ImageRef, resp: Response) -> str:
        """The Docker-Content-Digest header ("" when absent), refused unless a valid digest."""
        digest = resp.header("Docker-Content-Digest")
        if not digest:
            return ""
        try:
            return manifests.check_digest(digest, f"registry {ref.registry} ({ref})")
        except DockermaError as err:
            raise self._secrets.error(RegistryError, str(err)) from None

    def _check_digest(self, ref: ImageRef, path: str, *, actual: str, expected: str) -> None:
        if not expected or not expected.startswith("sha256:") or expected == actual:
            return
        raise self._secrets.error(
            RegistryError,
            f"registry {ref.registry} sent content for {path} whose digest is "
            f"{actual}, not {expected}; the registry or a proxy altered it, try again",
        )

    def _not_found(self, ref: ImageRef, resp: Response, what: str = "") -> NotFound:
        return self._secrets.error(
            NotFound,
            f"{what or ref} not found in registry {ref.registry} ({registry_error(resp)}); "
            "check the name and tag, or push it first",
        )


def _same_registry_path(registry: str, location: str) -> str | None:
    url = urllib.parse.urlsplit(location)
    if url.netloc and url.netloc != hub.api_host(registry):
        return None
    return path_of(url)
