"""Requests to a registry as docker makes them: which scheme, which TLS, retries within one
deadline, redirects and the hop to its token service.

Trust is the registry's own (host:port): where it sends dockerma (its token service, a
redirect) is verified as usual, is never plain HTTP from an HTTPS registry, and gets no
credentials from another origin. Nothing here chooses credentials (auth.py does).
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from dockerma.registry import hub, transport
from dockerma.registry.errors import RegistryError, Secrets, describe, strip_query
from dockerma.registry.proxies import Proxies
from dockerma.registry.tls import Contexts
from dockerma.registry.transport import Response
from dockerma.registry.trust import VERIFIED, Trust, TrustBook

log = logging.getLogger("dockerma")

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_MAX_DELAY = 10.0
# How a message names where a registry sends us, and what to fix.
_HOPS = {
    "token": ("names its token service at", "token realm (auth configuration)"),
    "redirect": ("redirects to", "redirects"),
}


@dataclass(frozen=True)
class Request:
    registry: str  # whose request it is: the trust and the wording are that registry's
    method: str
    target: str  # a path on the registry, or an absolute URL (its token service)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    limit: int = transport.MAX_ERROR  # the largest body kept of a successful answer


@dataclass(frozen=True)
class Policy:
    """`timeout` bounds each read, `deadline` each request in all, its retries included."""

    timeout: float
    deadline: float
    retries: int
    backoff: float
    on_retry: Callable[[str], None] | None = None


class Session:
    """Sends requests to registries with their trust and TLS; safe to share by threads."""

    def __init__(
        self,
        *,
        trust: TrustBook,
        tls: Contexts,
        secrets: Secrets,
        policy: Policy,
        proxies: Proxies | None = None,
    ) -> None:
        self.trust = trust
        self.proxies = Proxies() if proxies is None else proxies
        for secret in self.proxies.secrets():
            secrets.keep(secret)
        self.tls = tls
        self._secrets = secrets
        self._policy = policy
        self._lock = threading.Lock()
        self.schemes: dict[str, str] = {}

    def send(self, req: Request) -> Response:
        """One request with retries, all within the deadline."""
        policy, shown = self._policy, strip_query(req.target)
        deadline = time.monotonic() + policy.deadline
        attempt = 0
        while True:
            failure: Exception | None = None
            try:
                resp = self._follow(req, deadline)
            except (transport.Expired, transport.TooLarge) as err:
                raise self._unbounded(req, err, attempt + 1) from None
            except ssl.SSLError as err:
                if not isinstance(err, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
                    raise self._tls_error(req.registry, err) from None
                if attempt >= policy.retries:
                    raise self._unreachable(req, err, attempt + 1) from None
                failure, problem = err, f"dropped the connection ({describe(err)})"
            except (OSError, http.client.HTTPException) as err:
                # Nothing listening, or no such host: waiting does not mend an address, and
                # docker itself gives up at once there. Drops and timeouts are retried.
                # A proxy that refuses is the user's to fix, not a passing drop.
                if attempt >= policy.retries or isinstance(
                    err,
                    (
                        ConnectionRefusedError,
                        socket.gaierror,
                        http.client.InvalidURL,
                        transport.ProxyFailed,
                    ),
                ):
                    raise self._unreachable(req, err, attempt + 1) from None
                failure, problem = err, f"did not answer ({describe(err)})"
            else:
                if resp.status not in _RETRY_STATUSES or attempt >= policy.retries:
                    return resp
                problem = f"answered {resp.status}"
            delay = min(policy.backoff * 2**attempt, _MAX_DELAY)
            if time.monotonic() + delay >= deadline:  # no time left for another try
                if failure is None:
                    return resp
                raise self._unreachable(req, failure, attempt + 1)
            attempt += 1
            if policy.on_retry is not None:
                policy.on_retry(
                    self._secrets.scrub(
                        f"registry {req.registry} {problem} for {req.method} {shown}; "
                        f"retry {attempt}/{policy.retries} in {delay:g} s"
                    )
                )
            if delay > 0:
                time.sleep(delay)

    def _follow(self, req: Request, deadline: float) -> Response:
        if req.target.startswith("/"):
            scheme, netloc, resp = self._to_registry(req, deadline)
            current = f"{scheme}://{netloc}{req.target}"
        else:
            current = req.target
            scheme, netloc, resp = self._hop(req, "token", deadline)
        headers, hops = req.headers, 0
        # Blob downloads are often redirected to storage elsewhere (S3, a CDN).
        while resp.status in _REDIRECTS and req.method in ("GET", "HEAD") and hops < _MAX_REDIRECTS:
            location = resp.header("Location")
            if not location:
                break
            current = urllib.parse.urljoin(current, location)
            url = urllib.parse.urlsplit(current)
            if (url.scheme.lower(), url.netloc.lower()) != (scheme, netloc.lower()):
                # Our credentials are for the registry's own origin only, never for where it
                # sends us (another host, another port, or the same one without TLS).
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            hop = replace(req, target=current, headers=headers, body=None)
            scheme, netloc, resp = self._hop(hop, "redirect", deadline)
            hops += 1
        return resp

    def _hop(self, req: Request, kind: str, deadline: float) -> tuple[str, str, Response]:
        """A request to where the registry sends us (`req.target`, a URL; `kind` "token" or
        "redirect"): never plain HTTP from an HTTPS registry; TLS relaxed only for the
        registry's own host:port."""
        registry = req.registry
        parts = urllib.parse.urlsplit(req.target)
        scheme, netloc, shown = parts.scheme.lower(), parts.netloc, strip_query(req.target)
        what, fix = _HOPS[kind]
        if scheme not in ("http", "https") or not netloc:
            raise self._secrets.error(
                RegistryError,
                f"registry {registry} {what} {shown}, not an http(s) URL; fix the registry's {fix}",
            )
        with self._lock:
            plain = self.schemes.get(registry) == "http"
        if scheme == "http" and not plain:
            raise self._secrets.error(
                RegistryError,
                f"registry {registry} {what} plain HTTP ({shown}) though it speaks HTTPS "
                "itself; dockerma leaves TLS (and sends credentials without it) only for a "
                f"plain-HTTP registry: fix the registry's {fix}",
            )
        own = netloc.lower() == hub.api_host(registry).lower()
        # docker reaches the token service and redirect targets with the registry's own TLS
        # configuration: the registry's certs.d CA vouches for them too (besides their own).
        names = tuple(dict.fromkeys((netloc, registry, hub.api_host(registry))))
        try:
            resp = self._exchange(
                replace(req, target=path_of(parts)),
                scheme=scheme,
                netloc=netloc,
                names=names,
                trust=self.trust.of(registry) if own else VERIFIED,
                deadline=deadline,
            )
        except ssl.SSLError as err:
            if own or isinstance(err, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
                raise
            raise self._tls_error(registry, err, host=netloc) from None
        return scheme, netloc, resp

    def _to_registry(self, req: Request, deadline: float) -> tuple[str, str, Response]:
        registry = req.registry
        netloc = hub.api_host(registry)
        names = (registry, netloc) if netloc != registry else (registry,)
        trust = self.trust.of(registry)

        def exchange(scheme: str) -> Response:
            return self._exchange(
                req, scheme=scheme, netloc=netloc, names=names, trust=trust, deadline=deadline
            )

        with self._lock:
            scheme = self.schemes.get(registry)
        if scheme is None and not trust.insecure:
            scheme = "https"  # secure registries never fall back to plain HTTP
        if scheme is not None:
            return scheme, netloc, self._remember(registry, scheme, exchange(scheme))
        if trust.loopback and not self.tls.has_files(names):
            return self._loopback_first(registry, netloc, exchange)
        # docker's way for insecure registries: HTTPS first, plain HTTP when TLS is not spoken.
        try:
            return "https", netloc, self._remember(registry, "https", exchange("https"))
        except ssl.SSLCertVerificationError:
            raise  # it speaks TLS, with a certificate our CA does not vouch for
        except (ssl.SSLError, ConnectionRefusedError, ConnectionResetError) as err:
            tls_failure: OSError = err
            log.debug("%s: HTTPS failed (%s); trying plain HTTP", registry, describe(err))
        resp = exchange("http")
        if _speaks_tls(resp):
            # It does speak TLS; the handshake failed for another reason (a reset, a client
            # certificate required).
            raise tls_failure
        return "http", netloc, self._remember(registry, "http", resp)

    def _loopback_first(
        self, registry: str, netloc: str, exchange: Callable[[str], Response]
    ) -> tuple[str, str, Response]:
        # A loopback registry without certs.d files is asked in plain HTTP first, the reverse
        # of docker's order: nothing leaves the machine, and the usual local registry speaks
        # HTTP, so a run saves a failed TLS handshake and loading the system's CA store.
        # A TLS server answers plain HTTP with a 400 (_speaks_tls) or hangs up.
        try:
            resp = exchange("http")
        except (ConnectionResetError, BrokenPipeError, http.client.BadStatusLine) as err:
            log.debug("%s: plain HTTP failed (%s); trying HTTPS", registry, describe(err))
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

    def _remember(self, registry: str, scheme: str, resp: Response) -> Response:
        with self._lock:
            self.schemes.setdefault(registry, scheme)
        return resp

    def _exchange(
        self,
        req: Request,
        *,
        scheme: str,
        netloc: str,
        names: tuple[str, ...],
        trust: Trust,
        deadline: float,
    ) -> Response:
        """`req` to `netloc`, its target a path; `names`: the registry's, for certs.d."""
        context = self.tls.get(names, insecure=trust.insecure) if scheme == "https" else None
        proxy = self.proxies.for_url(scheme, netloc)
        resp = transport.exchange(
            scheme=scheme,
            netloc=netloc,
            method=req.method,
            target=req.target,
            headers=req.headers,
            body=req.body,
            context=context,
            deadline=deadline,
            timeout=self._policy.timeout,
            limit=req.limit,
            addresses=trust.addresses,
            proxy=proxy,
        )
        # Method, URL and status only: headers carry credentials, queries carry signatures.
        shown = strip_query(req.target)
        via = f" (via proxy {proxy.shown})" if proxy is not None else ""
        log.debug("%s %s://%s%s -> %d%s", req.method, scheme, netloc, shown, resp.status, via)
        return resp

    # -- errors ------------------------------------------------------------------------------

    def _tls_error(self, registry: str, err: ssl.SSLError, host: str = "") -> RegistryError:
        """`host`: where the registry sent us (its token service, a redirect), when not the
        registry itself."""
        error = self._secrets.error
        if isinstance(err, ssl.SSLCertVerificationError):
            what = f"{host} (where registry {registry} sends dockerma)" if host else registry
            return error(
                RegistryError,
                f"cannot verify the TLS certificate of {'' if host else 'registry '}{what}: "
                f"{err.verify_message or describe(err)}; put the CA that signed it in "
                f"{self.tls.shown_dir}/{host or hub.api_host(registry)}/ca.crt, where docker "
                "looks for it",
            )
        if host:
            return error(
                RegistryError,
                f"TLS with {host} (where registry {registry} sends dockerma) failed: "
                f"{describe(err)}; check that server's certificate",
            )
        if err.reason == "WRONG_VERSION_NUMBER" and not self.trust.of(registry).insecure:
            return error(
                RegistryError,
                f"registry {registry} does not speak HTTPS; if it is a plain-HTTP registry, "
                "list it in the daemon's insecure-registries or pass --insecure",
            )
        return error(
            RegistryError,
            f"TLS with registry {registry} failed: {describe(err)}; check its certificates "
            "and the client certificate in certs.d",
        )

    def _unbounded(self, req: Request, err: Exception, tries: int) -> RegistryError:
        what = f"{req.method} {strip_query(req.target)}"
        if isinstance(err, transport.TooLarge):
            return self._secrets.error(
                RegistryError,
                f"registry {req.registry} answered {what} with {err}, more than dockerma "
                "reads (manifests and configs: 4 MiB, docker's own limit; token answers: "
                "1 MiB); the registry is broken or hostile",
            )
        return self._secrets.error(
            RegistryError,
            f"registry {req.registry} gave no complete answer to {what} within "
            f"{self._policy.deadline:g} s ({_tries(tries)}); it or the network is too slow "
            "or stuck, try again later",
        )

    def _unreachable(self, req: Request, err: Exception, tries: int) -> RegistryError:
        if isinstance(err, transport.ProxyFailed):
            return self._secrets.error(
                RegistryError,
                f"cannot reach registry {req.registry} for {req.method} "
                f"{strip_query(req.target)} through {err}; check that proxy, or set NO_PROXY "
                f"(or unset {err.proxy.variable}) if the registry needs no proxy",
            )
        if isinstance(err, (TimeoutError, socket.timeout)):
            hint = (
                f"no answer within {self._policy.timeout:g} s; is the registry up? "
                "check its address"
            )
        elif isinstance(err, socket.gaierror):
            hint = "no such host; check the registry's name"
        else:
            hint = "is the registry running? check its address"
        return self._secrets.error(
            RegistryError,
            f"cannot reach registry {req.registry} for {req.method} {strip_query(req.target)} "
            f"({describe(err)}, {_tries(tries)}); {hint}",
        )


def _tries(count: int) -> str:
    return f"{count} {'try' if count == 1 else 'tries'}"


def _speaks_tls(resp: Response) -> bool:
    """A TLS server's answer to plain HTTP: 400 "Client sent an HTTP request to an HTTPS
    server" (Go: docker-registry), "The plain HTTP request was sent to HTTPS port" (nginx)."""
    return resp.status == 400 and b"HTTPS" in resp.body[:500]


def path_of(url: urllib.parse.SplitResult) -> str:
    """The request target of a URL: its path and query."""
    return (url.path or "/") + (f"?{url.query}" if url.query else "")
