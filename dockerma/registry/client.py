"""A small client for the registry HTTP API (distribution v2): manifests, blobs, push access.

Why not `docker manifest`: it fails against TLS + auth registries ("connection reset by
peer"), refuses per-arch references that are OCI indexes (containerd image store) and keeps a
stale local cache. This client uses what the user's docker has instead: the credentials from
config.json and its helpers, the CAs and client certificates in certs.d, and docker's rules
for plain-HTTP ("insecure") registries. Secrets never reach a message, a log line or a repr.

Trust is per registry (host:port), never per run: `--insecure`, the daemon's insecure list
and loopback relax TLS for the registry an image lives in, and for no other host (its token
service, where it redirects, other images' registries). Credentials go over plain HTTP only
to a registry that is itself plain HTTP, and never follow a redirect to another origin.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dockerma.core import manifests, references
from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError
from dockerma.registry import credentials, transport
from dockerma.registry.transport import Response as _Response

log = logging.getLogger("dockerma")

DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# Ask for every kind at once: an OCI index asked for with only the Docker list type answers
# 404, and a request without Accept gets a converted schema-1 manifest.
_ACCEPT = ", ".join((DOCKER_LIST, OCI_INDEX, DOCKER_MANIFEST, OCI_MANIFEST))

# Docker Hub's API lives on another host than its name (and its credentials key).
_HUB_API = "registry-1.docker.io"
_HUB_NAMES = ("docker.io", "index.docker.io")

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_MAX_DELAY = 10.0
# One request, its retries and redirects included, gets this long in all: a per-read timeout
# alone let a server that sends a byte a second keep a request alive for hours.
_DEADLINE = 120.0
# docker's default insecure-registries (daemon.json can only add to them).
_LOOPBACK_NETS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
# Token servers may omit expires_in; the token spec says to assume 60 s then.
_MIN_TOKEN_LIFE = 60.0
_USER_AGENT = "dockerma"
# How a message names where a registry sends us, and what to fix.
_HOPS = {
    "token": ("names its token service at", "token realm (auth configuration)"),
    "redirect": ("redirects to", "redirects"),
}
_AUTH_PARAM = re.compile(r'([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))')


class RegistryError(DockermaError):
    """A registry request that failed; the message names the registry and what to do."""


class NotFound(RegistryError):
    """The manifest or blob does not exist (404)."""


class AuthError(RegistryError):
    """The registry wants credentials docker does not have, or refused the ones it has."""


_E = TypeVar("_E", bound=RegistryError)


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


@dataclass(frozen=True)
class _Login:
    username: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class _Trust:
    """How dockerma may speak to one registry's own host:port (never to any other host)."""

    insecure: bool = False  # plain HTTP, or TLS without verification, is allowed
    loopback: bool = False  # plain HTTP is tried first: nothing leaves the machine
    # When the decision was made from resolved addresses: the connections go to these only
    # (a name that resolved to 127.0.0.1 once must not reach another host the next time).
    addresses: tuple[str, ...] = ()


_VERIFIED = _Trust()


@dataclass(frozen=True)
class _Challenge:
    scheme: str  # "basic" or "bearer"
    realm: str = ""
    service: str = ""
    error: str = ""


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
        certs_dirs: Sequence[str] = ("/etc/docker/certs.d",),
        backoff: float = 0.5,
    ) -> None:
        """`insecure`: the registries (host:port) `--insecure` applies to, the ones the run
        pushes to or looks up for the user; `insecure_registries`: the daemon's list (names
        and CIDRs). `timeout` bounds each read, `deadline` each request in all."""
        self._config_dir = config_dir
        self._insecure = frozenset(r.lower() for r in insecure)
        self._insecure_registries = tuple(insecure_registries)
        self._timeout = timeout
        self._deadline = deadline
        self._retries = max(0, retries)
        self._on_retry = on_retry
        self._on_warning = on_warning
        self._certs_dirs = tuple(certs_dirs)
        self._backoff = backoff
        self._lock = threading.Lock()
        self._schemes: dict[str, str] = {}
        self._trust: dict[str, _Trust] = {}
        self._tls: dict[tuple[tuple[str, ...], bool], ssl.SSLContext] = {}
        self._logins: dict[str, _Login | None] = {}
        self._login_problems: dict[str, str] = {}
        self._challenges: dict[str, _Challenge] = {}
        self._auth: dict[tuple[str, str], tuple[str, float]] = {}
        self._secrets: set[str] = set()
        self._may_push: set[tuple[str, str]] = set()
        self._cleanups: list[threading.Thread] = []

    def __repr__(self) -> str:
        registries = ", ".join(self._insecure_registries)
        forced = ", ".join(sorted(self._insecure))
        return f"Registry(insecure=[{forced}], insecure_registries=[{registries}])"

    # -- the API -----------------------------------------------------------------------------

    def get_manifest(self, ref: ImageRef) -> Manifest:
        """The manifest, list or index `ref` names; NotFound when the registry has none."""
        path = f"/v2/{ref.repository}/manifests/{ref.reference}"
        resp = self._request(
            ref, "pull", "GET", path, {"Accept": _ACCEPT}, limit=transport.MAX_MANIFEST
        )
        if resp.status == 404:
            raise self._not_found(ref, resp)
        self._expect(ref.registry, "GET", path, resp, 200)
        self._check_depth(ref.registry, f"the manifest of {ref}", resp.body)
        digest = sha256_digest(resp.body)
        self._check_digest(ref.registry, path, digest, self._content_digest(ref, resp))
        if ref.digest.startswith("sha256:"):
            self._check_digest(ref.registry, path, digest, ref.digest)
        media_type = resp.header("Content-Type").split(";")[0].strip()
        if not media_type or media_type in ("application/json", "text/plain"):
            with contextlib.suppress(ValueError, AttributeError):
                media_type = str(json.loads(resp.body).get("mediaType") or media_type)
        return Manifest(media_type, digest, resp.body)

    def manifest_digest(self, ref: ImageRef) -> str | None:
        """The digest of what `ref` names (a HEAD request); None when it does not exist."""
        path = f"/v2/{ref.repository}/manifests/{ref.reference}"
        resp = self._request(ref, "pull", "HEAD", path, {"Accept": _ACCEPT})
        if resp.status == 404:
            return None
        self._expect(ref.registry, "HEAD", path, resp, 200)
        digest = self._content_digest(ref, resp)
        if digest:
            return digest
        # Some registries leave the header out of HEAD answers; hash the body instead.
        try:
            return self.get_manifest(ref).digest
        except NotFound:
            return None

    def get_blob(self, ref: ImageRef, digest: str) -> bytes:
        """A small JSON blob of ref's repository (an image config), checked against its digest
        (at most transport.MAX_CONFIG bytes; layers are docker's business)."""
        path = f"/v2/{ref.repository}/blobs/{digest}"
        resp = self._request(ref, "pull", "GET", path, {}, limit=transport.MAX_CONFIG)
        if resp.status == 404:
            raise self._not_found(ref, resp, what=f"blob {digest} of {ref.name}")
        self._expect(ref.registry, "GET", path, resp, 200)
        self._check_depth(ref.registry, f"blob {digest} of {ref.name}", resp.body)
        if digest.startswith("sha256:"):
            self._check_digest(ref.registry, path, sha256_digest(resp.body), digest)
        return resp.body

    def put_manifest(self, ref: ImageRef, body: bytes, media_type: str) -> str:
        """Upload a manifest (list) as `ref`; returns its digest. Needs push access."""
        path = f"/v2/{ref.repository}/manifests/{ref.reference}"
        headers = {"Content-Type": media_type}
        resp = self._request(ref, "pull,push", "PUT", path, headers, body)
        self._expect(ref.registry, "PUT", path, resp, 200, 201, 202)
        digest = sha256_digest(body)
        self._check_digest(ref.registry, path, digest, self._content_digest(ref, resp))
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
        resp = self._request(ref, "pull,push", "POST", path, {}, b"")
        self._expect(ref.registry, "POST", path, resp, 200, 201, 202)
        with self._lock:
            self._may_push.add(key)
        location = resp.header("Location")
        target = self._same_registry_path(ref.registry, location) if location else None
        if target is None:
            return

        def cancel() -> None:
            try:
                self._request(ref, "pull,push", "DELETE", target, {})
            except DockermaError as err:
                # An upload left open expires on its own (distribution purges them after a
                # week).
                log.debug("could not cancel the probe upload on %s: %s", ref.registry, err)

        # Nothing waits for the answer (a local registry takes up to tens of ms to delete an
        # upload); finish() does, before dockerma exits.
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
        return self._trust_of(registry).insecure

    def _trust_of(self, registry: str) -> _Trust:
        with self._lock:
            known = self._trust.get(registry)
        if known is None:
            known = self._decide_trust(registry)
            with self._lock:
                fresh = registry not in self._trust
                known = self._trust.setdefault(registry, known)
            if fresh and registry.lower() in self._insecure and self._on_warning is not None:
                self._on_warning(
                    f"--insecure: registry {registry} is treated as insecure (plain HTTP, or "
                    "TLS without certificate checks); every other host is verified as usual"
                )
        return known

    # -- authentication ----------------------------------------------------------------------

    def _request(
        self,
        ref: ImageRef,
        actions: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        *,
        limit: int = transport.MAX_ERROR,
    ) -> _Response:
        registry = ref.registry
        scope = f"repository:{ref.repository}:{actions}"
        hdrs = dict(headers)
        auth = self._known_auth(registry, scope)
        if auth:
            hdrs["Authorization"] = auth
        resp = self._send(registry, method, path, hdrs, body, limit=limit)
        if resp.status == 401:
            # Anonymous first, as docker does; a cached token may also have expired early.
            with self._lock:
                self._auth.pop((registry, scope), None)
            hdrs["Authorization"] = self._authorize(registry, scope, resp)
            resp = self._send(registry, method, path, hdrs, body, limit=limit)
        if resp.status in (401, 403):
            raise self._denied(registry, ref.repository, actions, resp)
        return resp

    def _known_auth(self, registry: str, scope: str) -> str | None:
        with self._lock:
            cached = self._auth.get((registry, scope))
            challenge = self._challenges.get(registry)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        if challenge is None:
            return None
        # The registry told us its auth scheme before: skip the anonymous round trip.
        return self._authorize(registry, scope, None, challenge)

    def _authorize(
        self,
        registry: str,
        scope: str,
        resp: _Response | None,
        challenge: _Challenge | None = None,
    ) -> str:
        if challenge is None:
            assert resp is not None
            challenge = _pick_challenge(resp.headers.get_all("WWW-Authenticate") or [])
            if challenge is None:
                raise self._error(
                    RegistryError,
                    f"registry {registry} answered 401 without a Basic or Bearer "
                    "WWW-Authenticate challenge; check the registry's auth configuration",
                )
            with self._lock:
                self._challenges[registry] = challenge
        login = self._login(registry)
        if challenge.scheme == "basic":
            if login is None:
                raise self._no_login(registry, scope)
            pair = f"{login.username}:{login.secret}".encode()
            value = base64.b64encode(pair).decode("ascii")
            self._keep_secret(value)
            header, life = f"Basic {value}", float("inf")
        else:
            token, life = self._fetch_token(registry, challenge, scope, login)
            header = f"Bearer {token}"
        with self._lock:
            self._auth[(registry, scope)] = (header, time.monotonic() + life)
        return header

    def _fetch_token(
        self, registry: str, challenge: _Challenge, scope: str, login: _Login | None
    ) -> tuple[str, float]:
        params = {"scope": scope}
        if challenge.service:
            params["service"] = challenge.service
        realm = challenge.realm
        if not realm.startswith(("https://", "http://")):  # _follow checks which of them
            raise self._error(
                RegistryError,
                f"registry {registry} names no usable token service (realm {realm!r}); "
                "check the registry's auth configuration",
            )
        resp: _Response | None = None
        if login is not None and login.username == credentials.TOKEN_USER:
            # An identity token is an OAuth refresh token: exchange it the way docker does.
            form = dict(params, grant_type="refresh_token", refresh_token=login.secret)
            form["client_id"] = _USER_AGENT
            resp = self._send(
                registry,
                "POST",
                realm,
                {"Content-Type": "application/x-www-form-urlencoded"},
                urllib.parse.urlencode(form).encode(),
                limit=transport.MAX_TOKEN,
            )
            if resp.status in (404, 405):  # a token server without OAuth: basic auth below
                resp = None
        if resp is None:
            sep = "&" if urllib.parse.urlsplit(realm).query else "?"
            url = realm + sep + urllib.parse.urlencode(params)
            headers = {}
            if login is not None:
                pair = f"{login.username}:{login.secret}".encode()
                value = base64.b64encode(pair).decode("ascii")
                self._keep_secret(value)
                headers["Authorization"] = f"Basic {value}"
            resp = self._send(registry, "GET", url, headers, limit=transport.MAX_TOKEN)
        if resp.status in (401, 403):
            if login is None:
                raise self._no_login(registry, scope)
            raise self._error(
                AuthError,
                f"registry {registry} rejected the credentials docker has for it (its token "
                f"service answered {resp.status}); run `{self._login_cmd(registry)}`",
            )
        self._expect(registry, "GET", _strip_query(realm), resp, 200)
        self._check_depth(registry, "the answer of its token service", resp.body)
        try:
            data = json.loads(resp.body)
            token = str(data.get("token") or data.get("access_token") or "")
            life = float(data.get("expires_in") or _MIN_TOKEN_LIFE)
        except (ValueError, AttributeError, TypeError):
            token, life = "", 0.0
        if not token:
            raise self._error(
                RegistryError,
                f"the token service of registry {registry} answered without a token; "
                "check the registry's auth configuration",
            )
        self._keep_secret(token)
        # Renew a little early, so a token does not expire between our check and its use.
        return token, max(life, _MIN_TOKEN_LIFE) - 10.0

    def _login(self, registry: str) -> _Login | None:
        with self._lock:
            if registry in self._logins:
                return self._logins[registry]
        login: _Login | None = None
        try:
            found = credentials.lookup(registry, config_dir=self._config_dir)
        except DockermaError as err:
            # A broken helper must not break anonymous pulls; it is named if a login is needed.
            found = None
            with self._lock:
                self._login_problems[registry] = str(err)
        if found is not None:
            login = _Login(*found)
            self._keep_secret(login.secret)
        with self._lock:
            self._logins[registry] = login
        return login

    def _no_login(self, registry: str, scope: str) -> AuthError:
        verb = "push to" if scope.endswith("push") else "pull from"
        repo = scope.split(":")[1]
        with self._lock:
            problem = self._login_problems.get(registry)
        if problem:
            return self._error(
                AuthError,
                f"registry {registry} needs a login to {verb} {repo}, and docker's credentials "
                f"could not be read: {problem}",
            )
        return self._error(
            AuthError,
            f"registry {registry} needs a login to {verb} {repo} and docker has no "
            f"credentials for it; run `{self._login_cmd(registry)}`",
        )

    def _login_cmd(self, registry: str) -> str:
        return credentials.login_command(registry, self._config_dir)

    def _denied(self, registry: str, repository: str, actions: str, resp: _Response) -> AuthError:
        verb = "push" if "push" in actions else "pull"
        if self._login(registry) is None:
            return self._no_login(registry, f"repository:{repository}:{actions}")
        challenge = _pick_challenge(resp.headers.get_all("WWW-Authenticate") or [])
        if resp.status == 401 and not (challenge and challenge.error == "insufficient_scope"):
            return self._error(
                AuthError,
                f"registry {registry} rejected the credentials docker has for it (401 "
                f"{_registry_error(resp)}); run `{self._login_cmd(registry)}`",
            )
        return self._error(
            AuthError,
            f"registry {registry} denied {verb} access to {repository} ({resp.status} "
            f"{_registry_error(resp)}); run `{self._login_cmd(registry)}` as a user allowed to "
            f"{verb} there",
        )

    # -- transport ---------------------------------------------------------------------------

    def _send(
        self,
        registry: str,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        *,
        limit: int = transport.MAX_ERROR,
    ) -> _Response:
        """One request with retries, all within the deadline; target is a path on `registry`
        or an absolute URL (its token service)."""
        shown = _strip_query(target)
        deadline = time.monotonic() + self._deadline
        attempt = 0
        while True:
            failure: Exception | None = None
            try:
                resp = self._follow(registry, method, target, headers, body, limit, deadline)
            except (transport.Expired, transport.TooLarge) as err:
                raise self._unbounded(registry, method, shown, err, attempt + 1) from None
            except ssl.SSLError as err:
                if not isinstance(err, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
                    raise self._tls_error(registry, err) from None
                if attempt >= self._retries:
                    raise self._unreachable(registry, method, shown, err, attempt + 1) from None
                failure, problem = err, f"dropped the connection ({_describe(err)})"
            except (OSError, http.client.HTTPException) as err:
                # Nothing listening, or no such host: waiting does not mend an address, and
                # docker itself gives up at once there. Drops and timeouts are retried.
                if attempt >= self._retries or isinstance(
                    err, (ConnectionRefusedError, socket.gaierror, http.client.InvalidURL)
                ):
                    raise self._unreachable(registry, method, shown, err, attempt + 1) from None
                failure, problem = err, f"did not answer ({_describe(err)})"
            else:
                if resp.status not in _RETRY_STATUSES or attempt >= self._retries:
                    return resp
                problem = f"answered {resp.status}"
            delay = min(self._backoff * 2**attempt, _MAX_DELAY)
            if time.monotonic() + delay >= deadline:  # no time left for another try
                if failure is None:
                    return resp
                raise self._unreachable(registry, method, shown, failure, attempt + 1)
            attempt += 1
            if self._on_retry is not None:
                self._on_retry(
                    self._scrub(
                        f"registry {registry} {problem} for {method} {shown}; "
                        f"retry {attempt}/{self._retries} in {delay:g} s"
                    )
                )
            if delay > 0:
                time.sleep(delay)

    def _follow(
        self,
        registry: str,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
        limit: int,
        deadline: float,
    ) -> _Response:
        if target.startswith("/"):
            scheme, netloc, resp = self._to_registry(
                registry, method, target, headers, body, limit, deadline
            )
            current = f"{scheme}://{netloc}{target}"
        else:
            current = target
            scheme, netloc, resp = self._hop(
                registry, "token", current, method, headers, body, limit, deadline
            )
        hops = 0
        # Blob downloads are often redirected to storage elsewhere (S3, a CDN).
        while resp.status in _REDIRECTS and method in ("GET", "HEAD") and hops < _MAX_REDIRECTS:
            location = resp.header("Location")
            if not location:
                break
            current = urllib.parse.urljoin(current, location)
            url = urllib.parse.urlsplit(current)
            if (url.scheme.lower(), url.netloc.lower()) != (scheme, netloc.lower()):
                # Our credentials are for the registry's own origin only, never for where it
                # sends us (another host, another port, or the same one without TLS).
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            scheme, netloc, resp = self._hop(
                registry, "redirect", current, method, headers, None, limit, deadline
            )
            hops += 1
        return resp

    def _hop(
        self,
        registry: str,
        kind: str,
        url: str,
        method: str,
        headers: Mapping[str, str],
        body: bytes | None,
        limit: int,
        deadline: float,
    ) -> tuple[str, str, _Response]:
        """A request to where the registry sends us (its token service: kind "token", or a
        redirect): never plain HTTP from an HTTPS registry; TLS relaxed only for the
        registry's own host:port."""
        parts = urllib.parse.urlsplit(url)
        scheme, netloc, shown = parts.scheme.lower(), parts.netloc, _strip_query(url)
        what, fix = _HOPS[kind]
        if scheme not in ("http", "https") or not netloc:
            raise self._error(
                RegistryError,
                f"registry {registry} {what} {shown}, not an http(s) URL; fix the registry's {fix}",
            )
        with self._lock:
            plain = self._schemes.get(registry) == "http"
        if scheme == "http" and not plain:
            raise self._error(
                RegistryError,
                f"registry {registry} {what} plain HTTP ({shown}) though it speaks HTTPS "
                "itself; dockerma leaves TLS (and sends credentials without it) only for a "
                f"plain-HTTP registry: fix the registry's {fix}",
            )
        own = netloc.lower() == _api_host(registry).lower()
        try:
            resp = self._exchange(
                scheme,
                netloc,
                (netloc,),
                method,
                _path(parts),
                headers,
                body,
                trust=self._trust_of(registry) if own else _VERIFIED,
                limit=limit,
                deadline=deadline,
            )
        except ssl.SSLError as err:
            if own or isinstance(err, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
                raise
            raise self._tls_error(registry, err, host=netloc) from None
        return scheme, netloc, resp

    def _to_registry(
        self,
        registry: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | None,
        limit: int,
        deadline: float,
    ) -> tuple[str, str, _Response]:
        netloc = _api_host(registry)
        names = (registry, netloc) if netloc != registry else (registry,)
        trust = self._trust_of(registry)

        def exchange(scheme: str) -> _Response:
            return self._exchange(
                scheme,
                netloc,
                names,
                method,
                path,
                headers,
                body,
                trust=trust,
                limit=limit,
                deadline=deadline,
            )

        with self._lock:
            scheme = self._schemes.get(registry)
        if scheme is None and not trust.insecure:
            scheme = "https"  # secure registries never fall back to plain HTTP
        if scheme is not None:
            return scheme, netloc, self._remember(registry, scheme, exchange(scheme))
        if trust.loopback and self._certs_for(names) == ([], []):
            return self._loopback_first(registry, netloc, exchange)
        # docker's way for insecure registries: HTTPS first, plain HTTP when TLS is not spoken.
        try:
            return "https", netloc, self._remember(registry, "https", exchange("https"))
        except ssl.SSLCertVerificationError:
            raise  # it speaks TLS, with a certificate our CA does not vouch for
        except (ssl.SSLError, ConnectionRefusedError, ConnectionResetError) as err:
            tls_failure: OSError = err
            log.debug("%s: HTTPS failed (%s); trying plain HTTP", registry, _describe(err))
        resp = exchange("http")
        if _speaks_tls(resp):
            # It does speak TLS; the handshake failed for another reason (a reset, a client
            # certificate required).
            raise tls_failure
        return "http", netloc, self._remember(registry, "http", resp)

    def _loopback_first(
        self, registry: str, netloc: str, exchange: Callable[[str], _Response]
    ) -> tuple[str, str, _Response]:
        # A loopback registry without certs.d files is asked in plain HTTP first, the reverse
        # of docker's order: nothing leaves the machine, and the usual local registry speaks
        # HTTP, so a run saves a failed TLS handshake and loading the system's CA store
        # (~25 ms of every command).
        # A TLS server answers plain HTTP with a 400 (_speaks_tls) or hangs up.
        try:
            resp = exchange("http")
        except (ConnectionResetError, BrokenPipeError, http.client.BadStatusLine) as err:
            log.debug("%s: plain HTTP failed (%s); trying HTTPS", registry, _describe(err))
            try:
                resp = exchange("https")
            except ssl.SSLCertVerificationError:
                raise
            except ssl.SSLError:
                # It does not speak TLS either (an HTTP server answers the handshake in
                # plain text: "wrong version number"): it is an HTTP server that hung up.
                raise err from None
            return "https", netloc, self._remember(registry, "https", resp)
        if not _speaks_tls(resp):
            return "http", netloc, self._remember(registry, "http", resp)
        return "https", netloc, self._remember(registry, "https", exchange("https"))

    def _remember(self, registry: str, scheme: str, resp: _Response) -> _Response:
        with self._lock:
            self._schemes.setdefault(registry, scheme)
        return resp

    def _exchange(
        self,
        scheme: str,
        netloc: str,
        names: tuple[str, ...],
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        trust: _Trust,
        limit: int,
        deadline: float,
    ) -> _Response:
        context = self._tls_context(names, trust.insecure) if scheme == "https" else None
        resp = transport.exchange(
            scheme,
            netloc,
            method,
            target,
            headers,
            body,
            context=context,
            deadline=deadline,
            timeout=self._timeout,
            limit=limit,
            addresses=trust.addresses,
        )
        # Method, URL and status only: headers carry credentials, queries carry signatures.
        log.debug("%s %s://%s%s -> %d", method, scheme, netloc, _strip_query(target), resp.status)
        return resp

    def _tls_context(self, names: tuple[str, ...], insecure: bool) -> ssl.SSLContext:
        key = (names, insecure)
        with self._lock:
            context = self._tls.get(key)
        if context is not None:
            return context
        cas, pairs = self._certs_for(names)
        context = ssl.create_default_context()  # the system's CAs, as docker keeps them
        try:
            for ca in cas:
                context.load_verify_locations(cafile=ca)
            for cert, key_file in pairs:
                context.load_cert_chain(cert, key_file)
        except (OSError, ssl.SSLError) as err:
            raise RegistryError(
                f"cannot load the certificates for {names[0]} from certs.d: {_describe(err)}; "
                "fix or remove the broken file"
            ) from None
        if insecure and not cas:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        with self._lock:
            self._tls[key] = context
        return context

    def _certs_for(self, names: tuple[str, ...]) -> tuple[list[str], list[tuple[str, str]]]:
        # docker's certs.d layout: <dir>/<host:port>/*.crt are CAs, *.cert + *.key client pairs.
        cas: list[str] = []
        pairs: list[tuple[str, str]] = []
        for base in self._certs_dirs:
            for name in dict.fromkeys(names):
                folder = os.path.join(base, name)
                try:
                    files = sorted(os.listdir(folder))
                except OSError:
                    continue
                for file in files:
                    full = os.path.join(folder, file)
                    if file.endswith(".crt"):
                        cas.append(full)
                    elif file.endswith(".cert"):
                        key_file = full[: -len(".cert")] + ".key"
                        if not os.path.exists(key_file):
                            raise RegistryError(
                                f"client certificate {full} has no key {key_file}; "
                                "add the key or remove the certificate (docker refuses it too)"
                            )
                        pairs.append((full, key_file))
        return cas, pairs

    def _decide_trust(self, registry: str) -> _Trust:
        named = registry.lower() in self._insecure  # --insecure
        networks = list(_LOOPBACK_NETS)
        for entry in self._insecure_registries:
            item = entry.strip().lower()
            for prefix in ("http://", "https://"):
                item = item.removeprefix(prefix)
            if "/" in item:
                with contextlib.suppress(ValueError):
                    networks.append(ipaddress.ip_network(item, strict=False))
            elif item == registry.lower():
                named = True
        # docker matches CIDR entries (127.0.0.0/8 always among them) against the addresses
        # the name resolves to; the connections then go to the matching addresses only.
        found = references.addresses(_api_host(registry))
        if named:  # by its name: whatever it resolves to
            return _Trust(True, bool(found) and all(a.is_loopback for a in found))
        matching = [a for a in found if any(a in net for net in networks)]
        if matching:
            loopback = all(a.is_loopback for a in matching)
            return _Trust(True, loopback, tuple(str(a) for a in matching))
        return _VERIFIED

    # -- errors ------------------------------------------------------------------------------

    def _expect(self, registry: str, method: str, path: str, resp: _Response, *ok: int) -> None:
        if resp.status in ok:
            return
        if resp.status >= 500:
            hint = "the registry failed; check its logs or try again later"
        elif resp.status == 429:
            hint = "too many requests; wait a while and try again"
        elif resp.status == 405:
            hint = "the registry does not allow this (read-only, or a pull-through cache?)"
        elif "BLOB_UNKNOWN" in _registry_error(resp) and method == "PUT":
            # distribution only accepts a list whose entries are in the same repository.
            hint = "push the images it names to the same repository first, then retry"
        elif resp.status == 400:
            hint = "the registry refused the request; check the image and the manifest"
        else:
            hint = "check the registry address and the repository name"
        raise self._error(
            RegistryError,
            f"registry {registry} answered {resp.status} {_registry_error(resp)} for "
            f"{method} {_strip_query(path)}; {hint}",
        )

    def _content_digest(self, ref: ImageRef, resp: _Response) -> str:
        """The Docker-Content-Digest header ("" when absent), refused unless a valid digest."""
        digest = resp.header("Docker-Content-Digest")
        if not digest:
            return ""
        try:
            return manifests.check_digest(digest, f"registry {ref.registry} ({ref})")
        except DockermaError as err:
            raise self._error(RegistryError, str(err)) from None

    def _check_depth(self, registry: str, what: str, body: bytes) -> None:
        if transport.json_too_deep(body):
            raise self._error(
                RegistryError,
                f"registry {registry} sent {what} nested more than "
                f"{transport.MAX_JSON_DEPTH} levels deep, which no manifest, config or token "
                "answer is; the registry is broken or hostile, nothing of it was used",
            )

    def _check_digest(self, registry: str, path: str, actual: str, expected: str) -> None:
        if not expected or not expected.startswith("sha256:") or expected == actual:
            return
        raise self._error(
            RegistryError,
            f"registry {registry} sent content for {_strip_query(path)} whose digest is "
            f"{actual}, not {expected}; the registry or a proxy altered it, try again",
        )

    def _not_found(self, ref: ImageRef, resp: _Response, what: str = "") -> NotFound:
        return self._error(
            NotFound,
            f"{what or ref} not found in registry {ref.registry} ({_registry_error(resp)}); "
            "check the name and tag, or push it first",
        )

    def _tls_error(self, registry: str, err: ssl.SSLError, host: str = "") -> RegistryError:
        """`host`: where the registry sent us (its token service, a redirect), when not the
        registry itself."""
        if isinstance(err, ssl.SSLCertVerificationError):
            what = f"{host} (where registry {registry} sends dockerma)" if host else registry
            where = self._certs_dirs[0] if self._certs_dirs else "/etc/docker/certs.d"
            return self._error(
                RegistryError,
                f"cannot verify the TLS certificate of {'' if host else 'registry '}{what}: "
                f"{err.verify_message or _describe(err)}; put the CA that signed it in "
                f"{where}/{host or _api_host(registry)}/ca.crt, where docker looks for it",
            )
        if host:
            return self._error(
                RegistryError,
                f"TLS with {host} (where registry {registry} sends dockerma) failed: "
                f"{_describe(err)}; check that server's certificate",
            )
        if err.reason == "WRONG_VERSION_NUMBER" and not self.is_insecure(registry):
            return self._error(
                RegistryError,
                f"registry {registry} does not speak HTTPS; if it is a plain-HTTP registry, "
                "list it in the daemon's insecure-registries or pass --insecure",
            )
        return self._error(
            RegistryError,
            f"TLS with registry {registry} failed: {_describe(err)}; check its certificates "
            "and the client certificate in certs.d",
        )

    def _unbounded(
        self, registry: str, method: str, path: str, err: Exception, tries: int
    ) -> RegistryError:
        if isinstance(err, transport.TooLarge):
            return self._error(
                RegistryError,
                f"registry {registry} answered {method} {path} with {err}, more than dockerma "
                "reads (manifests and configs: 4 MiB, docker's own limit; token answers: "
                "1 MiB); the registry is broken or hostile",
            )
        return self._error(
            RegistryError,
            f"registry {registry} gave no complete answer to {method} {path} within "
            f"{self._deadline:g} s ({tries} {'try' if tries == 1 else 'tries'}); it or the "
            "network is too slow or stuck, try again later",
        )

    def _unreachable(
        self, registry: str, method: str, path: str, err: Exception, tries: int
    ) -> RegistryError:
        if isinstance(err, (TimeoutError, socket.timeout)):
            hint = f"no answer within {self._timeout:g} s; is the registry up? check its address"
        elif isinstance(err, socket.gaierror):
            hint = "no such host; check the registry's name"
        else:
            hint = "is the registry running? check its address"
        return self._error(
            RegistryError,
            f"cannot reach registry {registry} for {method} {path} ({_describe(err)}, "
            f"{tries} {'try' if tries == 1 else 'tries'}); {hint}",
        )

    def _error(self, kind: type[_E], message: str) -> _E:
        return kind(self._scrub(message))

    def _keep_secret(self, secret: str) -> None:
        if secret:
            with self._lock:
                self._secrets.add(secret)

    def _scrub(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    def _same_registry_path(self, registry: str, location: str) -> str | None:
        url = urllib.parse.urlsplit(location)
        if url.netloc and url.netloc != _api_host(registry):
            return None
        return _path(url)


def _speaks_tls(resp: _Response) -> bool:
    """A TLS server's answer to plain HTTP: 400 "Client sent an HTTP request to an HTTPS
    server" (Go: docker-registry), "The plain HTTP request was sent to HTTPS port" (nginx)."""
    return resp.status == 400 and b"HTTPS" in resp.body[:500]


def _api_host(registry: str) -> str:
    return _HUB_API if registry.lower() in _HUB_NAMES else registry


def _path(url: urllib.parse.SplitResult) -> str:
    return (url.path or "/") + (f"?{url.query}" if url.query else "")


def _strip_query(target: str) -> str:
    return target.split("?", 1)[0]


def _describe(err: BaseException) -> str:
    if isinstance(err, ssl.SSLError) and err.reason:
        return str(err.reason).replace("_", " ").lower()
    if isinstance(err, (TimeoutError, socket.timeout)):
        return "timed out"
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return str(text)


def _pick_challenge(headers: Sequence[str]) -> _Challenge | None:
    found: dict[str, _Challenge] = {}
    for header in headers:
        scheme, _, rest = header.strip().partition(" ")
        params = {}
        for match in _AUTH_PARAM.finditer(rest):
            quoted, bare = match.group(2), match.group(3)
            value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            params[match.group(1).lower()] = value
        kind = scheme.lower()
        if kind in ("basic", "bearer"):
            found.setdefault(
                kind,
                _Challenge(
                    kind,
                    params.get("realm", ""),
                    params.get("service", ""),
                    params.get("error", ""),
                ),
            )
    return found.get("bearer") or found.get("basic")


def _registry_error(resp: _Response) -> str:
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
