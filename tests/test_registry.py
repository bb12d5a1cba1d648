"""The registry client against a fake registry served in-process on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import ssl
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dockerma.core.manifests import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from dockerma.core.references import ImageRef
from dockerma.registry.client import (
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
    token_error: str = ""  # bearer: refuse every token, naming this error in the challenge


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
            granted = scope.startswith(f"repository:{repo}:") and needed in scope.split(":")[2]
            if granted and not state.token_error:
                return True
            challenge = (
                f'Bearer realm="{state.realm or state.base_url + "/token"}",'
                'service="fake-registry",'
                f'scope="repository:{repo}:{"pull,push" if push else "pull"}"'
            )
            if given and state.token_error:
                challenge += f',error="{state.token_error}"'

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
    for media_type in (DOCKER_LIST, OCI_INDEX, DOCKER_MANIFEST, OCI_MANIFEST):
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
