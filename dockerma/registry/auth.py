"""Authentication as docker does it: anonymous first, then the scheme the registry's 401
challenge names: Basic with docker's credentials, or a Bearer token from its token service.

Credentials come from credentials.py; every secret handled is kept by `Secrets`, so no
message, log line or repr shows it.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from dockerma.errors import DockermaError
from dockerma.registry import credentials, transport
from dockerma.registry.errors import AuthError, RegistryError, Secrets, registry_error
from dockerma.registry.session import Request, Session
from dockerma.registry.transport import Response

# Token servers may omit expires_in; the token spec says to assume 60 s then.
_MIN_TOKEN_LIFE = 60.0
_CLIENT_ID = "dockerma"
_AUTH_PARAM = re.compile(r'([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))')


@dataclass(frozen=True)
class Login:
    username: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer"
    realm: str = ""
    service: str = ""
    error: str = ""


def pick_challenge(headers: Sequence[str]) -> Challenge | None:
    """The challenge to answer among WWW-Authenticate headers: Bearer before Basic."""
    found: dict[str, Challenge] = {}
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
                Challenge(
                    kind,
                    params.get("realm", ""),
                    params.get("service", ""),
                    params.get("error", ""),
                ),
            )
    return found.get("bearer") or found.get("basic")


def _challenge_of(resp: Response) -> Challenge | None:
    return pick_challenge(resp.headers.get_all("WWW-Authenticate") or [])


class Auth:
    """Authorizes requests to registries with docker's credentials; safe to share by threads."""

    def __init__(self, *, session: Session, secrets: Secrets, config_dir: str | None) -> None:
        self._session = session
        self._secrets = secrets
        self._config_dir = config_dir
        self._lock = threading.Lock()
        self._logins: dict[str, Login | None] = {}
        self._login_problems: dict[str, str] = {}
        self._challenges: dict[str, Challenge] = {}
        self._headers: dict[tuple[str, str], tuple[str, float]] = {}

    def send(self, req: Request, *, repository: str, actions: str) -> Response:
        """`req` (a path on its registry) with the authorization `actions` ("pull",
        "pull,push") on `repository` need; AuthError when the registry refuses it."""
        registry = req.registry
        scope = f"repository:{repository}:{actions}"
        headers = dict(req.headers)
        known = self._known(registry, scope)
        if known:
            headers["Authorization"] = known
        resp = self._session.send(replace(req, headers=headers))
        if resp.status == 401:
            # Anonymous first, as docker does; a cached token may also have expired early.
            with self._lock:
                self._headers.pop((registry, scope), None)
            headers["Authorization"] = self._authorize(registry, scope, _challenge_of(resp))
            resp = self._session.send(replace(req, headers=headers))
        if resp.status in (401, 403):
            raise self._denied(registry, scope, resp)
        return resp

    def _known(self, registry: str, scope: str) -> str | None:
        with self._lock:
            cached = self._headers.get((registry, scope))
            challenge = self._challenges.get(registry)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        if challenge is None:
            return None
        # The registry told us its auth scheme before: skip the anonymous round trip.
        return self._authorize(registry, scope, challenge)

    def _authorize(self, registry: str, scope: str, challenge: Challenge | None) -> str:
        if challenge is None:
            raise self._secrets.error(
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
            header, life = self._basic(login), float("inf")
        else:
            token, life = self._fetch_token(registry, challenge=challenge, scope=scope, login=login)
            header = f"Bearer {token}"
        with self._lock:
            self._headers[(registry, scope)] = (header, time.monotonic() + life)
        return header

    def _basic(self, login: Login) -> str:
        value = base64.b64encode(f"{login.username}:{login.secret}".encode()).decode("ascii")
        self._secrets.keep(value)
        return f"Basic {value}"

    def _fetch_token(
        self, registry: str, *, challenge: Challenge, scope: str, login: Login | None
    ) -> tuple[str, float]:
        realm = challenge.realm
        if not realm.startswith(("https://", "http://")):  # the session checks which of them
            raise self._secrets.error(
                RegistryError,
                f"registry {registry} names no usable token service (realm {realm!r}); "
                "check the registry's auth configuration",
            )
        resp = self._ask_token(registry, challenge=challenge, scope=scope, login=login)
        if resp.status in (401, 403):
            if login is None:
                raise self._no_login(registry, scope)
            # An identity token (docker login against an OAuth token service) is refused
            # when it was revoked or expired: only a new login makes another.
            what = "identity token" if login.username == credentials.TOKEN_USER else "credentials"
            raise self._secrets.error(
                AuthError,
                f"registry {registry} rejected the {what} docker has for it (its token "
                f"service answered {resp.status}); run `{self._login_cmd(registry)}`",
            )
        self._secrets.expect(resp, (200,), registry=registry, method="GET", path=realm)
        what = "the answer of its token service"
        self._secrets.check_depth(resp.body, registry=registry, what=what)
        try:
            data = json.loads(resp.body)
            token = str(data.get("token") or data.get("access_token") or "")
            life = float(data.get("expires_in") or _MIN_TOKEN_LIFE)
        except (ValueError, AttributeError, TypeError):
            token, life = "", 0.0
        if not token:
            raise self._secrets.error(
                RegistryError,
                f"the token service of registry {registry} answered without a token; "
                "check the registry's auth configuration",
            )
        self._secrets.keep(token)
        # Renew a little early, so a token does not expire between our check and its use.
        return token, max(life, _MIN_TOKEN_LIFE) - 10.0

    def _ask_token(
        self, registry: str, *, challenge: Challenge, scope: str, login: Login | None
    ) -> Response:
        params = {"scope": scope}
        if challenge.service:
            params["service"] = challenge.service
        realm, limit = challenge.realm, transport.MAX_TOKEN
        if login is not None and login.username == credentials.TOKEN_USER:
            # An identity token is an OAuth refresh token: exchange it the way docker does.
            form = dict(params, grant_type="refresh_token", refresh_token=login.secret)
            form["client_id"] = _CLIENT_ID
            resp = self._session.send(
                Request(
                    registry,
                    "POST",
                    realm,
                    {"Content-Type": "application/x-www-form-urlencoded"},
                    urllib.parse.urlencode(form).encode(),
                    limit=limit,
                )
            )
            if resp.status not in (404, 405):  # a token server without OAuth: basic auth below
                return resp
        sep = "&" if urllib.parse.urlsplit(realm).query else "?"
        url = realm + sep + urllib.parse.urlencode(params)
        headers = {"Authorization": self._basic(login)} if login is not None else {}
        return self._session.send(Request(registry, "GET", url, headers, limit=limit))

    def _login(self, registry: str) -> Login | None:
        with self._lock:
            if registry in self._logins:
                return self._logins[registry]
        login: Login | None = None
        try:
            found = credentials.lookup(registry, config_dir=self._config_dir)
        except DockermaError as err:
            # A broken helper must not break anonymous pulls; it is named if a login is needed.
            found = None
            with self._lock:
                self._login_problems[registry] = str(err)
        if found is not None:
            login = Login(*found)
            self._secrets.keep(login.secret)
        with self._lock:
            self._logins[registry] = login
        return login

    def _no_login(self, registry: str, scope: str) -> AuthError:
        verb = "push to" if scope.endswith("push") else "pull from"
        repo = scope.split(":")[1]
        with self._lock:
            problem = self._login_problems.get(registry)
        if problem:
            return self._secrets.error(
                AuthError,
                f"registry {registry} needs a login to {verb} {repo}, and docker's credentials "
                f"could not be read: {problem}",
            )
        return self._secrets.error(
            AuthError,
            f"registry {registry} needs a login to {verb} {repo} and docker has no "
            f"credentials for it; run `{self._login_cmd(registry)}`",
        )

    def _login_cmd(self, registry: str) -> str:
        return credentials.login_command(registry, self._config_dir)

    def _denied(self, registry: str, scope: str, resp: Response) -> AuthError:
        _, repository, actions = scope.split(":")
        verb = "push" if "push" in actions else "pull"
        if self._login(registry) is None:
            return self._no_login(registry, scope)
        challenge = _challenge_of(resp)
        if resp.status == 401 and challenge and challenge.error == "invalid_token":
            # The registry refused a token its token service has just signed (a cached one is
            # fetched anew first): expired on arrival, not yet valid, or for another registry.
            return self._secrets.error(
                AuthError,
                f"registry {registry} refused the token its token service issued for "
                f"{repository} (invalid_token: expired, not yet valid or not signed for this "
                "registry); check this machine's clock, then the registry's token auth "
                "configuration (issuer, service, root certificate)",
            )
        if resp.status == 401 and not (challenge and challenge.error == "insufficient_scope"):
            return self._secrets.error(
                AuthError,
                f"registry {registry} rejected the credentials docker has for it (401 "
                f"{registry_error(resp)}); run `{self._login_cmd(registry)}`",
            )
        return self._secrets.error(
            AuthError,
            f"registry {registry} denied {verb} access to {repository} ({resp.status} "
            f"{registry_error(resp)}); run `{self._login_cmd(registry)}` as a user allowed to "
            f"{verb} there",
        )
