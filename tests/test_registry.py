"""The registry client against a fake registry served in-process on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dockerma.core import references
from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError
from dockerma.registry import client as registry_module
from dockerma.registry import hub, session
from dockerma.registry.client import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    AuthError,
    Manifest,
    NotFound,
    Registry,
    RegistryError,
)

USER = "alice"
PASSWORD = "pa55-w0rd-never-shown"
INDEX_BODY = json.dumps(
    {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}, indent=3
).encode()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeState:
    auth: str = ""  # "", "basic" or "bearer"
    anonymous_pull: bool = False  # bearer: tokens without credentials may pull
    token_field: str = "token"
    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    failures: list[int] = field(default_factory=list)
    digest_override: str = ""
    redirect_blobs_to: str = ""
    requests: list[Seen] = field(default_factory=list)
    token_requests: list[Seen] = field(default_factory=list)
    storage_requests: list[Seen] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    tls_probes: int = 0
    base_url: str = ""
    realm: str = ""  # the token service named in challenges; base_url/token when empty


class Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle_one_request(self) -> None:
        # Like the real registry on a plain port: answer a TLS ClientHello with a plain 400
        # at once (the client then sees "wrong version number").
        if not self.server.tls and self.rfile.peek(1)[:1] == b"\x16":
            self.server.state.tls_probes += 1
            self.wfile.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            self.close_connection = True
            return
        super().handle_one_request()

    def do_GET(self) -> None:
        self.route("GET")

    def do_HEAD(self) -> None:
        self.route("HEAD")

    def do_PUT(self) -> None:
        self.route("PUT")

    def do_POST(self) -> None:
        self.route("POST")

    def do_DELETE(self) -> None:
        self.route("DELETE")

    def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status: int, code: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"errors": [{"code": code, "message": code.lower()}]}).encode()
        self.answer(status, body, {"Content-Type": "application/json", **(headers or {})})

    def route(self, method: str) -> None:
        state: FakeState = self.server.state
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(
            method,
            url.path,
            urllib.parse.parse_qs(url.query),
            dict(self.headers.items()),
            self.rfile.read(length) if length else b"",
        )
        if url.path == "/token":
            state.token_requests.append(seen)
            return self.token(seen)
        if url.path.startswith("/storage/"):
            state.storage_requests.append(seen)
            return self.answer(200, state.blobs[url.path.split("/")[-1]])
        state.requests.append(seen)
        if state.failures:
            return self.error(state.failures.pop(0), "UNAVAILABLE")
        match = re.match(r"^/v2/(.+)/(manifests|blobs)/([^/]+)$", url.path)
        upload = re.match(r"^/v2/(.+)/blobs/uploads/(.*)$", url.path)
        repo = (upload or match).group(1) if (upload or match) else ""
        push = method in ("PUT", "POST", "DELETE")
        if not self.authorized(seen, repo, push):
            return None
        if upload and method == "POST":
            return self.answer(202, headers={"Location": f"{url.path}{uuid.uuid4()}?_state=x"})
        if upload and method == "DELETE":
            return self.answer(204)
        if url.path == "/v2/":
            return self.answer(200, b"{}")
        if not match:
            return self.error(404, "NOT_FOUND")
        kind, ref = match.group(2), match.group(3)
        if kind == "blobs":
            if ref not in state.blobs:
                return self.error(404, "BLOB_UNKNOWN")
            if state.redirect_blobs_to:
                return self.answer(307, headers={"Location": state.redirect_blobs_to + ref})
            return self.answer(200, state.blobs[ref])
        if method == "PUT":
            digest = digest_of(seen.body)
            entry = (seen.headers["Content-Type"], seen.body)
            state.manifests[(repo, ref)] = state.manifests[(repo, digest)] = entry
            return self.answer(201, headers={"Docker-Content-Digest": digest})
        if (repo, ref) not in state.manifests:
            return self.error(404, "MANIFEST_UNKNOWN")
        media_type, body = state.manifests[(repo, ref)]
        if media_type not in self.headers.get("Accept", ""):
            # distribution does this for an OCI index asked for with only the Docker type.
            return self.error(404, "MANIFEST_UNKNOWN")
        digest = state.digest_override or digest_of(body)
        return self.answer(200, body, {"Content-Type": media_type, "Docker-Content-Digest": digest})

    def authorized(self, seen: Seen, repo: str, push: bool) -> bool:
        state: FakeState = self.server.state
        given = seen.headers.get("Authorization", "")
        if state.auth == "basic":
            if given == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode():
                return True
            self.error(401, "UNAUTHORIZED", {"WWW-Authenticate": 'Basic realm="fake"'})
            return False
        if state.auth == "bearer":
            scope = state.tokens.get(given.removeprefix("Bearer "), "")
            needed = "push" if push else "pull"
            if scope.startswith(f"repository:{repo}:") and needed in scope.split(":")[2]:
                return True
            challenge = (
                f'Bearer realm="{state.realm or state.base_url + "/token"}",'
                'service="fake-registry",'
                f'scope="repository:{repo}:{"pull,push" if push else "pull"}"'
            )
            self.error(401, "UNAUTHORIZED", {"WWW-Authenticate": challenge})
            return False
        return True

    def token(self, seen: Seen) -> None:
        state: FakeState = self.server.state
        given = seen.headers.get("Authorization", "")
        if seen.method == "POST":
            form = urllib.parse.parse_qs(seen.body.decode())
            ok = form.get("refresh_token") == ["refresh-tok"]
            scope = form["scope"][0]
        else:
            good = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if given and given != good:
                return self.error(401, "UNAUTHORIZED")
            ok = bool(given) or state.anonymous_pull
            scope = seen.query["scope"][0]
        if not ok:
            return self.error(401, "UNAUTHORIZED")
        if not given and seen.method == "GET":
            scope = scope.rsplit(":", 1)[0] + ":pull"  # anonymous: pull only
        token = uuid.uuid4().hex
        state.tokens[token] = scope
        body = json.dumps({state.token_field: token, "expires_in": 300}).encode()
        return self.answer(200, body, {"Content-Type": "application/json"})


class DualServer(ThreadingHTTPServer):
    """Plain HTTP and TLS on one port (the first byte tells): the same origin but for the
    scheme, to redirect from one to the other."""

    context: ssl.SSLContext | None = None

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self.context is not None and sock.recv(1, socket.MSG_PEEK) == b"\x16":
            sock = self.context.wrap_socket(sock, server_side=True)
        return sock, addr


class FakeRegistry:
    def __init__(
        self,
        tls: ssl.SSLContext | None = None,
        *,
        both: bool = False,
        host: str = "127.0.0.1",
        **state: Any,
    ) -> None:
        self.server = DualServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.server.tls = tls is not None  # type: ignore[attr-defined]
        if both:
            self.server.context = tls
        elif tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.state = FakeState(**state)
        self.server.state = self.state  # type: ignore[attr-defined]
        self.address = f"{host}:{self.server.server_address[1]}"
        self.state.base_url = f"{'https' if tls and not both else 'http'}://{self.address}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def ref(self, text: str) -> ImageRef:
        return ImageRef.parse(f"{self.address}/{text}")

    def add(self, repo: str, tag: str, body: bytes, media_type: str) -> str:
        digest = digest_of(body)
        self.state.manifests[(repo, tag)] = self.state.manifests[(repo, digest)] = (
            media_type,
            body,
        )
        return digest

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    server = FakeRegistry()
    yield server
    server.close()


def docker_config(folder: Path, config: dict[str, Any]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def logged_in(folder: Path, address: str, password: str = PASSWORD) -> str:
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    return docker_config(folder, {"auths": {address: {"auth": auth}}})


def client(config_dir: str | None = None, **kwargs: Any) -> Registry:
    kwargs.setdefault("backoff", 0)
    kwargs.setdefault("certs_dirs", ())
    return Registry(config_dir=config_dir or "/nonexistent-dockerma-config", **kwargs)


# -- reading ---------------------------------------------------------------------------------


def test_anonymous_get_manifest_sends_every_accept_type(fake: FakeRegistry) -> None:
    digest = fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    manifest = client().get_manifest(fake.ref("team/app:v1"))
    assert manifest == Manifest(OCI_INDEX, digest, INDEX_BODY)
    assert manifest.json["mediaType"] == OCI_INDEX
    accept = fake.state.requests[0].headers["Accept"]
    for media_type in (DOCKER_LIST, OCI_INDEX, DOCKER_MANIFEST, registry_module.OCI_MANIFEST):
        assert media_type in accept


def test_get_manifest_by_digest(fake: FakeRegistry) -> None:
    digest = fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    ref = fake.ref(f"team/app@{digest}")
    assert client().get_manifest(ref).body == INDEX_BODY
    assert fake.state.requests[0].path == f"/v2/team/app/manifests/{digest}"


def test_missing_manifest_is_not_found(fake: FakeRegistry) -> None:
    with pytest.raises(NotFound) as info:
        client().get_manifest(fake.ref("team/app:nope"))
    assert f"{fake.address}/team/app:nope" in str(info.value)
    assert "MANIFEST_UNKNOWN" in str(info.value)


def test_digest_mismatch_is_an_error(fake: FakeRegistry) -> None:
    fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    fake.state.digest_override = "sha256:" + "0" * 64
    with pytest.raises(RegistryError, match="digest"):
        client().get_manifest(fake.ref("team/app:v1"))


def test_get_blob_checks_its_digest(fake: FakeRegistry) -> None:
    config = b'{"architecture": "arm64"}'
    fake.state.blobs[digest_of(config)] = config
    registry = client()
    assert registry.get_blob(fake.ref("team/app:v1"), digest_of(config)) == config
    with pytest.raises(NotFound):
        registry.get_blob(fake.ref("team/app:v1"), digest_of(b"other"))
    fake.state.blobs[digest_of(b"other")] = b"tampered"
    with pytest.raises(RegistryError, match="digest"):
        registry.get_blob(fake.ref("team/app:v1"), digest_of(b"other"))


def test_blob_redirect_elsewhere_drops_credentials(fake: FakeRegistry, tmp_path: Path) -> None:
    config = b'{"architecture": "amd64"}'
    fake.state.auth = "basic"
    fake.state.blobs[digest_of(config)] = config
    port = fake.address.split(":")[1]
    # Another host name for the same server: a different origin for the client.
    fake.state.redirect_blobs_to = f"http://localhost:{port}/storage/"
    registry = client(logged_in(tmp_path, fake.address))
    assert registry.get_blob(fake.ref("team/app:v1"), digest_of(config)) == config
    assert fake.state.requests[-1].headers["Authorization"].startswith("Basic ")
    assert "Authorization" not in fake.state.storage_requests[0].headers


# -- writing ---------------------------------------------------------------------------------


def test_put_manifest_returns_the_digest(fake: FakeRegistry) -> None:
    ref = fake.ref("dockerma-scratch/app:v1")
    digest = client().put_manifest(ref, INDEX_BODY, OCI_INDEX)
    assert digest == digest_of(INDEX_BODY)
    assert fake.state.manifests[("dockerma-scratch/app", "v1")] == (OCI_INDEX, INDEX_BODY)
    put = fake.state.requests[0]
    assert (put.method, put.headers["Content-Type"], put.body) == ("PUT", OCI_INDEX, INDEX_BODY)


def test_check_push_access_opens_and_cancels_an_upload(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.state.auth = "bearer"
    registry = client(logged_in(tmp_path, fake.address))
    registry.check_push_access(fake.ref("dockerma-scratch/a:1"))
    registry.finish()  # the cancellation runs in the background
    post, delete = fake.state.requests[-2:]
    assert post.method == "POST" and post.path == "/v2/dockerma-scratch/a/blobs/uploads/"
    assert delete.method == "DELETE" and delete.path.startswith(post.path)
    assert fake.state.token_requests[-1].query["scope"] == [
        "repository:dockerma-scratch/a:pull,push"
    ]
    # asked once per run: a second check (build --push checks before the builds and again
    # before the first push) sends nothing
    count = len(fake.state.requests)
    registry.check_push_access(fake.ref("dockerma-scratch/a:2"))
    assert len(fake.state.requests) == count


def test_check_push_access_without_login_fails(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.state.auth, fake.state.anonymous_pull = "bearer", True
    with pytest.raises(AuthError) as info:
        client(docker_config(tmp_path, {})).check_push_access(fake.ref("dockerma-scratch/a:1"))
    # the login that writes where this run reads: the same --config
    assert f"docker --config {tmp_path} login {fake.address}" in str(info.value)
    assert not any(r.method == "PUT" for r in fake.state.requests)


# -- authentication --------------------------------------------------------------------------


def test_bearer_flow_sends_credentials_only_to_the_realm(
    fake: FakeRegistry, tmp_path: Path
) -> None:
    fake.state.auth = "bearer"
    fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    registry = client(logged_in(tmp_path, fake.address))
    registry.get_manifest(fake.ref("team/app:v1"))
    registry.get_manifest(fake.ref("team/app:v1"))  # the token is cached
    assert len(fake.state.token_requests) == 1
    token_request = fake.state.token_requests[0]
    assert token_request.query["scope"] == ["repository:team/app:pull"]
    assert token_request.query["service"] == ["fake-registry"]
    assert token_request.headers["Authorization"].startswith("Basic ")
    for seen in fake.state.requests:
        assert not seen.headers.get("Authorization", "").startswith("Basic")
    assert fake.state.requests[-1].headers["Authorization"].startswith("Bearer ")


def test_bearer_push_scope_for_put(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.state.auth, fake.state.token_field = "bearer", "access_token"
    registry = client(logged_in(tmp_path, fake.address))
    registry.put_manifest(fake.ref("dockerma-scratch/app:v1"), INDEX_BODY, OCI_INDEX)
    assert registry.get_manifest(fake.ref("dockerma-scratch/app:v1")).body == INDEX_BODY
    scopes = [t.query["scope"][0] for t in fake.state.token_requests]
    assert scopes == [
        "repository:dockerma-scratch/app:pull,push",
        "repository:dockerma-scratch/app:pull",
    ]


def test_bearer_anonymous_pull_without_credentials(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.state.auth, fake.state.anonymous_pull = "bearer", True
    fake.add("library/busybox", "1", INDEX_BODY, OCI_INDEX)
    client(docker_config(tmp_path, {})).get_manifest(fake.ref("library/busybox:1"))
    assert "Authorization" not in fake.state.token_requests[0].headers


def test_identity_token_is_exchanged_with_oauth(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.state.auth = "bearer"
    fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    folder = docker_config(tmp_path, {"auths": {fake.address: {"identitytoken": "refresh-tok"}}})
    client(folder).get_manifest(fake.ref("team/app:v1"))
    post = fake.state.token_requests[0]
    assert post.method == "POST"
    form = urllib.parse.parse_qs(post.body.decode())
    assert form["grant_type"] == ["refresh_token"]
    assert form["scope"] == ["repository:team/app:pull"]


def test_basic_flow(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.state.auth = "basic"
    fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    registry = client(logged_in(tmp_path, fake.address))
    registry.get_manifest(fake.ref("team/app:v1"))
    registry.put_manifest(fake.ref("team/app:v2"), INDEX_BODY, OCI_INDEX)
    # One anonymous probe, then basic auth up front.
    assert [r.headers.get("Authorization", "")[:6] for r in fake.state.requests] == [
        "",
        "Basic ",
        "Basic ",
    ]
    assert fake.state.token_requests == []


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_no_credentials_asks_for_docker_login(
    fake: FakeRegistry, tmp_path: Path, auth: str
) -> None:
    fake.state.auth = auth
    with pytest.raises(AuthError) as info:
        client(docker_config(tmp_path, {})).get_manifest(fake.ref("team/app:v1"))
    assert f"run `docker --config {tmp_path} login {fake.address}`" in str(info.value)


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_wrong_password_is_an_auth_error_without_secrets(
    fake: FakeRegistry, tmp_path: Path, auth: str
) -> None:
    fake.state.auth = auth
    wrong = "wr0ng-s3cret-value"
    registry = client(logged_in(tmp_path, fake.address, password=wrong))
    for call in (
        lambda: registry.get_manifest(fake.ref("team/app:v1")),
        lambda: registry.check_push_access(fake.ref("team/app:v1")),
    ):
        with pytest.raises(AuthError) as info:
            call()
        message = str(info.value)
        assert f"docker --config {tmp_path} login {fake.address}" in message
        assert wrong not in message
        assert base64.b64encode(f"{USER}:{wrong}".encode()).decode() not in message
        assert "\n" not in message


def test_credentials_from_a_helper(
    fake: FakeRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stdin_log = tmp_path / "stdin.txt"
    helper = bin_dir / "docker-credential-fake"
    helper.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "server = sys.stdin.read()\n"
        f"open({str(stdin_log)!r}, 'a').write(server + '\\n')\n"
        f"print(json.dumps({{'Username': {USER!r}, 'Secret': {PASSWORD!r}}}))\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    fake.state.auth = "basic"
    fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    folder = docker_config(tmp_path / "cfg", {"credsStore": "fake"})
    client(folder).get_manifest(fake.ref("team/app:v1"))
    assert stdin_log.read_text() == f"{fake.address}\n"


def test_no_secret_in_any_error_or_repr(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.state.auth = "bearer"
    registry = client(logged_in(tmp_path, fake.address), retries=0)
    messages = [repr(registry)]
    with pytest.raises(NotFound) as info:
        registry.get_manifest(fake.ref("team/app:missing"))
    messages.append(str(info.value))
    fake.state.failures = [503]
    with pytest.raises(RegistryError) as info2:
        registry.put_manifest(fake.ref("team/app:v1"), INDEX_BODY, OCI_INDEX)
    messages.append(str(info2.value))
    secrets = [PASSWORD, *fake.state.tokens]
    for message in messages:
        for secret in secrets:
            assert secret not in message


# -- retries and failures --------------------------------------------------------------------


def test_503_twice_then_success(fake: FakeRegistry) -> None:
    fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    fake.state.failures = [503, 503]
    reports: list[str] = []
    manifest = client(on_retry=reports.append).get_manifest(fake.ref("team/app:v1"))
    assert manifest.body == INDEX_BODY
    assert reports == [
        f"registry {fake.address} answered 503 for GET /v2/team/app/manifests/v1; retry 1/4 in 0 s",
        f"registry {fake.address} answered 503 for GET /v2/team/app/manifests/v1; retry 2/4 in 0 s",
    ]


def test_backoff_doubles(fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(session.time, "sleep", sleeps.append)
    fake.state.failures = [500, 502, 504, 429]
    registry = client(backoff=0.5, retries=4)
    registry.put_manifest(fake.ref("dockerma-scratch/a:1"), INDEX_BODY, OCI_INDEX)
    assert sleeps == [0.5, 1.0, 2.0, 4.0]


def test_retries_exhausted_names_status_and_hint(fake: FakeRegistry) -> None:
    fake.state.failures = [503] * 3
    reports: list[str] = []
    with pytest.raises(RegistryError) as info:
        client(retries=2, on_retry=reports.append).put_manifest(
            fake.ref("dockerma-scratch/a:1"), INDEX_BODY, OCI_INDEX
        )
    assert len(reports) == 2
    message = str(info.value)
    assert fake.address in message and "503" in message and "PUT" in message
    assert "try again later" in message


def test_other_client_errors_are_not_retried(fake: FakeRegistry) -> None:
    fake.state.failures = [400]
    reports: list[str] = []
    with pytest.raises(RegistryError, match="400"):
        client(on_retry=reports.append).put_manifest(
            fake.ref("dockerma-scratch/a:1"), INDEX_BODY, OCI_INDEX
        )
    assert reports == []


def test_unreachable_registry(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    reports: list[str] = []
    with pytest.raises(RegistryError) as info:
        client(retries=3, on_retry=reports.append).get_manifest(
            ImageRef.parse(f"127.0.0.1:{port}/team/app:v1")
        )
    assert "is the registry running? check its address" in str(info.value)
    assert "1 try" in str(info.value)
    assert reports == []  # nothing listening: no retry, as docker


def test_unknown_registry_host_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", no_such_host)
    reports: list[str] = []
    with pytest.raises(RegistryError) as info:
        client(retries=3, on_retry=reports.append).get_manifest(
            ImageRef.parse("registry.invalid/team/app:v1")
        )
    assert "registry.invalid" in str(info.value) and "no such host" in str(info.value)
    assert reports == []


def test_timeout_is_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # accepts connections, never answers
        port = sock.getsockname()[1]
        with pytest.raises(RegistryError, match="timed out"):
            client(retries=1, timeout=0.2).get_manifest(
                ImageRef.parse(f"127.0.0.1:{port}/team/app:v1")
            )


# -- plain HTTP and TLS ----------------------------------------------------------------------


def test_loopback_speaks_plain_http_first_and_remembers(fake: FakeRegistry) -> None:
    fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    registry = client()
    registry.get_manifest(fake.ref("team/app:v1"))
    registry.get_manifest(fake.ref("team/app:v1"))
    assert fake.state.tls_probes == 0  # no TLS handshake tried against a loopback registry
    assert len(fake.state.requests) == 2
    assert registry._session.schemes == {fake.address: "http"}


def seems_remote(monkeypatch: pytest.MonkeyPatch, address: str = "192.0.2.1") -> None:
    """Every registry name resolves to `address` (TEST-NET-1: not loopback) for the client's
    trust decisions; the connection itself still goes to the fake registry on loopback."""
    found = (ipaddress.ip_address(address),)
    monkeypatch.setattr(references, "addresses", lambda registry: found)


def test_insecure_remote_registry_tries_https_first(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docker's order for a listed insecure registry that is not loopback: HTTPS, then HTTP.
    seems_remote(monkeypatch)
    fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    registry = client(insecure_registries=[fake.address])
    registry.get_manifest(fake.ref("team/app:v1"))
    registry.get_manifest(fake.ref("team/app:v1"))
    assert fake.state.tls_probes == 1
    assert len(fake.state.requests) == 2


def test_secure_registry_never_falls_back(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    seems_remote(monkeypatch)
    with pytest.raises(RegistryError, match="does not speak HTTPS.*insecure-registries"):
        client().get_manifest(fake.ref("team/app:v1"))
    assert fake.state.requests == []


def go_like_tls_port(
    on_tls: Callable[[socket.socket], None], seen: list[str] | None = None
) -> tuple[socket.socket, int]:
    """A loopback port that answers plain HTTP as Go's TLS server does (400 "Client sent an
    HTTP request to an HTTPS server"; "http" added to seen) and hands each TLS connection to
    on_tls."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                if conn.recv(1, socket.MSG_PEEK) == b"\x16":
                    on_tls(conn)
                else:
                    conn.recv(65536)
                    if seen is not None:
                        seen.append("http")
                    conn.sendall(
                        b"HTTP/1.0 400 Bad Request\r\n\r\n"
                        b"Client sent an HTTP request to an HTTPS server.\n"
                    )

    threading.Thread(target=serve, daemon=True).start()
    return listener, listener.getsockname()[1]


def test_tls_port_answering_http_is_not_taken_for_plain_http() -> None:
    # Like docker-registry with TLS when the handshake breaks: a reset on TLS, and a plain
    # 400 "Client sent an HTTP request to an HTTPS server" to plain HTTP.
    def reset(conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")

    listener, port = go_like_tls_port(reset)
    registry = client(retries=0)
    try:
        with pytest.raises(RegistryError) as info:
            registry.get_manifest(ImageRef.parse(f"127.0.0.1:{port}/team/app:v1"))
    finally:
        listener.close()
    assert "answered 400" not in str(info.value)
    assert registry._session.schemes == {}


@pytest.mark.parametrize(
    ("registry", "insecure_registries", "insecure", "expected"),
    [
        ("127.0.0.1:5000", (), (), True),
        ("localhost:5000", (), (), True),
        ("reg.example:5000", (), (), False),
        ("reg.example:5000", ("reg.example:5000",), (), True),
        ("reg.example:5000", ("reg.example:5001",), (), False),
        ("10.1.2.3:5000", ("10.0.0.0/8",), (), True),
        ("192.168.1.2:5000", ("10.0.0.0/8", "127.0.0.0/8"), (), False),
        ("reg.example:5000", (), ("reg.example:5000",), True),
        # --insecure names one registry (host:port): not another port, not another host
        ("reg.example:5001", (), ("reg.example:5000",), False),
        ("docker.io", (), ("reg.example:5000",), False),
    ],
)
def test_which_registries_are_insecure(
    registry: str,
    insecure_registries: tuple[str, ...],
    insecure: tuple[str, ...],
    expected: bool,
) -> None:
    client_ = client(insecure=insecure, insecure_registries=insecure_registries)
    assert client_.is_insecure(registry) is expected


def test_docker_hub_is_reached_on_its_api_host() -> None:
    assert hub.api_host("docker.io") == "registry-1.docker.io"
    assert hub.api_host("127.0.0.1:5000") == "127.0.0.1:5000"


@dataclass(frozen=True)
class Pki:
    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        if os.environ.get("DOCKERMA_E2E") == "require":  # the test bed installs openssl
            pytest.fail("the openssl CLI is needed to make a throwaway CA")
        pytest.skip("the openssl CLI is needed to make a throwaway CA")
    folder = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for name in ("ca", "other-ca"):
        _openssl(
            "req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.crt",
            "-days", "2", "-subj", f"/CN=dockerma test {name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=folder,
        )  # fmt: skip
    (folder / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    (folder / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl(
            "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN=dockerma test {name}", cwd=folder,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
            "-extfile", f"{name}.ext", cwd=folder,
        )  # fmt: skip
    return Pki(
        folder / "ca.crt",
        folder / "other-ca.crt",
        folder / "server.crt",
        folder / "server.key",
        folder / "client.crt",
        folder / "client.key",
    )


def tls_registry(pki: Pki, client_ca: Path | None = None, host: str = "127.0.0.1") -> FakeRegistry:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return FakeRegistry(tls=context, host=host)


def certs_d(tmp_path: Path, address: str, files: dict[str, Path]) -> str:
    folder = tmp_path / "certs.d" / address
    folder.mkdir(parents=True)
    for name, source in files.items():
        shutil.copy(source, folder / name)
    return str(tmp_path / "certs.d")


def test_tls_registry_verified_with_the_certs_d_ca(pki: Pki, tmp_path: Path) -> None:
    server = tls_registry(pki)
    try:
        server.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
        certs = certs_d(tmp_path, server.address, {"ca.crt": pki.ca})
        registry = client(certs_dirs=[certs])
        assert registry.get_manifest(server.ref("team/app:v1")).body == INDEX_BODY
        assert registry._session.schemes[server.address] == "https"
    finally:
        server.close()


def test_tls_registry_with_a_foreign_ca_fails_without_fallback(pki: Pki, tmp_path: Path) -> None:
    server = tls_registry(pki)
    try:
        certs = certs_d(tmp_path, server.address, {"ca.crt": pki.other_ca})
        with pytest.raises(RegistryError) as info:
            client(certs_dirs=[certs]).get_manifest(server.ref("team/app:v1"))
        assert "cannot verify the TLS certificate" in str(info.value)
        assert f"{server.address}/ca.crt" in str(info.value)
        assert server.state.requests == []
    finally:
        server.close()


def test_loopback_tls_without_a_ca_is_not_verified(pki: Pki) -> None:
    server = tls_registry(pki)
    try:
        server.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
        assert client().get_manifest(server.ref("team/app:v1")).body == INDEX_BODY
    finally:
        server.close()


def test_tls_client_certificate_from_certs_d(pki: Pki, tmp_path: Path) -> None:
    server = tls_registry(pki, client_ca=pki.ca)
    try:
        server.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
        certs = certs_d(
            tmp_path,
            server.address,
            {"ca.crt": pki.ca, "client.cert": pki.client_cert, "client.key": pki.client_key},
        )
        assert client(certs_dirs=[certs]).get_manifest(server.ref("team/app:v1"))
    finally:
        server.close()


def test_tls_bearer_flow_with_credentials(pki: Pki, tmp_path: Path) -> None:
    server = tls_registry(pki)
    try:
        server.state.auth = "bearer"
        certs = certs_d(tmp_path, server.address, {"ca.crt": pki.ca})
        registry = client(logged_in(tmp_path / "cfg", server.address), certs_dirs=[certs])
        ref = server.ref("dockerma-scratch/app:v1")
        registry.check_push_access(ref)
        digest = registry.put_manifest(ref, INDEX_BODY, OCI_INDEX)
        assert registry.get_manifest(ref).digest == digest
    finally:
        server.close()


def test_client_certificate_without_key_is_an_error(pki: Pki, tmp_path: Path) -> None:
    certs = certs_d(tmp_path, "127.0.0.1:1", {"client.cert": pki.client_cert})
    with pytest.raises(DockermaError, match="has no key"):
        client(certs_dirs=[certs]).get_manifest(ImageRef.parse("127.0.0.1:1/a:b"))


def test_loopback_tls_registry_answering_plain_http_with_400_is_spoken_to_in_https(
    pki: Pki,
) -> None:
    # Like docker-registry with TLS (Go): plain HTTP gets 400 "Client sent an HTTP request to
    # an HTTPS server"; dockerma then speaks HTTPS to it (no CA given: a loopback registry's
    # certificate is not verified, as docker does) and remembers that.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    seen: list[str] = []

    def answer(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)
            seen.append("https")
            tls.sendall(
                b"HTTP/1.0 200 OK\r\nContent-Type: " + OCI_INDEX.encode() + b"\r\n"
                b"Content-Length: " + str(len(INDEX_BODY)).encode() + b"\r\n\r\n" + INDEX_BODY
            )

    listener, port = go_like_tls_port(answer, seen)
    registry = client(retries=0)
    try:
        ref = ImageRef.parse(f"127.0.0.1:{port}/team/app:v1")
        assert registry.get_manifest(ref).body == INDEX_BODY
        assert registry.get_manifest(ref).body == INDEX_BODY
    finally:
        listener.close()
    assert seen == ["http", "https", "https"]
    assert registry._session.schemes == {f"127.0.0.1:{port}": "https"}


# -- trust boundaries (issue 17, items 1 and 4) ------------------------------------------------
# --insecure, the daemon's list and loopback relax TLS for one registry (host:port) only;
# credentials never go over plain HTTP to anything but a plain-HTTP registry, and never follow
# a redirect to another origin.


def bearer_pair(registry: FakeRegistry, token_server: FakeRegistry) -> None:
    """`registry` names `token_server`'s /token in its challenges and accepts its tokens."""
    registry.state.auth = "bearer"
    registry.state.realm = f"{token_server.state.base_url}/token"
    token_server.state.tokens = registry.state.tokens


def test_insecure_does_not_reach_the_token_service(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --insecure names a plain-HTTP registry; its token service is another host:port whose
    # certificate nothing vouches for: it must be verified (and fail), never trusted blindly.
    seems_remote(monkeypatch)
    token_server = tls_registry(pki)
    fake = FakeRegistry()
    try:
        bearer_pair(fake, token_server)
        fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
        registry = client(logged_in(tmp_path, fake.address), insecure=[fake.address])
        with pytest.raises(RegistryError) as info:
            registry.get_manifest(fake.ref("team/app:v1"))
        assert str(info.value).startswith(
            f"cannot verify the TLS certificate of {token_server.address} (where registry "
            f"{fake.address} sends dockerma)"
        )
        # the hint names where dockerma looks for the token service's CA, not the registry's
        assert f"certs.d/{token_server.address}/ca.crt" in str(info.value)
        assert token_server.state.token_requests == []  # the credentials never left
    finally:
        fake.close()
        token_server.close()


def test_loopback_registry_does_not_make_its_token_service_unverified(
    pki: Pki, tmp_path: Path
) -> None:
    # The same for the automatic rule: a loopback registry may speak plain HTTP; a token
    # service on another port of the machine is still verified.
    token_server = tls_registry(pki)
    fake = FakeRegistry()
    try:
        bearer_pair(fake, token_server)
        registry = client(logged_in(tmp_path, fake.address))
        with pytest.raises(RegistryError, match="cannot verify the TLS certificate"):
            registry.get_manifest(fake.ref("team/app:v1"))
        # ... and with its CA in certs.d the same flow works
        certs = certs_d(tmp_path, token_server.address, {"ca.crt": pki.ca})
        fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
        registry = client(logged_in(tmp_path, fake.address), certs_dirs=[certs])
        assert registry.get_manifest(fake.ref("team/app:v1")).body == INDEX_BODY
    finally:
        fake.close()
        token_server.close()


def test_insecure_does_not_reach_a_redirect_elsewhere(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seems_remote(monkeypatch)
    storage = tls_registry(pki)
    fake = FakeRegistry()
    try:
        config = b'{"architecture": "amd64"}'
        fake.state.blobs[digest_of(config)] = storage.state.blobs[digest_of(config)] = config
        fake.state.redirect_blobs_to = f"https://localhost:{storage.address.split(':')[1]}/storage/"
        registry = client(insecure=[fake.address])
        with pytest.raises(RegistryError) as info:
            registry.get_blob(fake.ref("team/app:v1"), digest_of(config))
        assert str(info.value).startswith("cannot verify the TLS certificate of localhost:")
        assert storage.state.storage_requests == []
    finally:
        fake.close()
        storage.close()


def test_insecure_does_not_reach_other_images_registries(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    # build --insecure -t A/app: a base image on registry B is verified as usual.
    seems_remote(monkeypatch)
    base_registry = tls_registry(pki)
    fake = FakeRegistry()
    try:
        base_registry.add("library/base", "1", INDEX_BODY, OCI_INDEX)
        fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
        warnings: list[str] = []
        registry = client(insecure=[fake.address], on_warning=warnings.append)
        assert registry.get_manifest(fake.ref("team/app:v1")).body == INDEX_BODY
        with pytest.raises(RegistryError, match="cannot verify the TLS certificate"):
            registry.get_manifest(base_registry.ref("library/base:1"))
        assert base_registry.state.requests == []
        registry.get_manifest(fake.ref("team/app:v1"))
        # said once, naming the one registry
        assert len(warnings) == 1
        assert f"registry {fake.address} is treated as insecure" in warnings[0]
    finally:
        fake.close()
        base_registry.close()


def test_daemon_cidr_pins_the_connection_to_the_matching_address(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A name is plain HTTP because it resolved into an insecure network: the connections go
    # to that address, even when the name resolves elsewhere by then (DNS rebinding).
    fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    port = fake.address.split(":")[1]
    real = socket.getaddrinfo
    answers = iter([["127.0.0.1", "192.0.2.1"]])  # the first answer; later ones go elsewhere

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        if host != "dev.example":
            return real(host, *args, **kwargs)
        addresses = next(answers, ["192.0.2.1"])
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    registry = client(timeout=2, retries=0)
    ref = ImageRef.parse(f"dev.example:{port}/team/app:v1")
    assert registry.is_insecure(ref.registry)
    assert registry.get_manifest(ref).body == INDEX_BODY
    assert fake.state.requests[0].headers["Host"] == f"dev.example:{port}"


def test_http_realm_is_refused_for_an_https_registry(pki: Pki, tmp_path: Path) -> None:
    token_server = FakeRegistry()
    server = tls_registry(pki)
    try:
        bearer_pair(server, token_server)
        certs = certs_d(tmp_path, server.address, {"ca.crt": pki.ca})
        registry = client(logged_in(tmp_path / "cfg", server.address), certs_dirs=[certs])
        with pytest.raises(RegistryError) as info:
            registry.get_manifest(server.ref("team/app:v1"))
        message = str(info.value)
        assert f"registry {server.address} names its token service at plain HTTP" in message
        assert "\n" not in message and PASSWORD not in message
        assert token_server.state.token_requests == []  # no credentials in clear text
    finally:
        server.close()
        token_server.close()


def test_http_realm_elsewhere_is_used_for_a_plain_http_registry(tmp_path: Path) -> None:
    # The registry itself is plain HTTP: its credentials cross in clear text anyway.
    token_server, fake = FakeRegistry(), FakeRegistry()
    try:
        bearer_pair(fake, token_server)
        fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
        registry = client(logged_in(tmp_path, fake.address))
        assert registry.get_manifest(fake.ref("team/app:v1")).body == INDEX_BODY
        assert len(token_server.state.token_requests) == 1
    finally:
        fake.close()
        token_server.close()


def dual_registry(pki: Pki) -> FakeRegistry:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    return FakeRegistry(context, both=True)


def test_redirect_from_https_to_http_is_refused(pki: Pki, tmp_path: Path) -> None:
    server = dual_registry(pki)
    try:
        config = b'{"architecture": "amd64"}'
        server.state.auth = "basic"
        server.state.blobs[digest_of(config)] = config
        # the same host and port, without TLS
        server.state.redirect_blobs_to = f"http://{server.address}/storage/"
        certs = certs_d(tmp_path, server.address, {"ca.crt": pki.ca})
        registry = client(logged_in(tmp_path / "cfg", server.address), certs_dirs=[certs])
        with pytest.raises(RegistryError, match="redirects to plain HTTP"):
            registry.get_blob(server.ref("team/app:v1"), digest_of(config))
        assert registry._session.schemes == {server.address: "https"}
        assert server.state.storage_requests == []
    finally:
        server.close()


def test_redirect_to_another_scheme_drops_credentials(pki: Pki, tmp_path: Path) -> None:
    # A plain-HTTP registry sending us to TLS on its own host and port: allowed, but the
    # Authorization header was for http://host:port, another origin.
    server = dual_registry(pki)
    try:
        config = b'{"architecture": "amd64"}'
        server.state.auth = "basic"
        server.state.blobs[digest_of(config)] = config
        server.state.redirect_blobs_to = f"https://{server.address}/storage/"
        registry = client(logged_in(tmp_path, server.address))
        assert registry.get_blob(server.ref("team/app:v1"), digest_of(config)) == config
        assert registry._session.schemes == {server.address: "http"}
        assert server.state.requests[-1].headers["Authorization"].startswith("Basic ")
        assert "Authorization" not in server.state.storage_requests[0].headers
    finally:
        server.close()


def test_redirect_to_http_elsewhere_is_refused_for_an_https_registry(
    pki: Pki, tmp_path: Path
) -> None:
    server, storage = tls_registry(pki), FakeRegistry()
    try:
        config = b'{"architecture": "amd64"}'
        server.state.blobs[digest_of(config)] = storage.state.blobs[digest_of(config)] = config
        server.state.redirect_blobs_to = f"http://{storage.address}/storage/"
        certs = certs_d(tmp_path, server.address, {"ca.crt": pki.ca})
        with pytest.raises(RegistryError, match="redirects to plain HTTP"):
            client(certs_dirs=[certs]).get_blob(server.ref("team/app:v1"), digest_of(config))
        assert storage.state.storage_requests == []
    finally:
        server.close()
        storage.close()
