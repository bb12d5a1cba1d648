"""A small registry served in-process on 127.0.0.1, to play a hostile one.

It stores manifests and blobs as given and answers them as given: bodies, Content-Type and
Docker-Content-Digest may be anything a test wants a registry to send. Uploads are accepted
(and cancelled) without storing anything; a PUT of a manifest stores it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class State:
    answers: dict[tuple[str, str, str], Answer] = field(default_factory=dict)  # kind, repo, ref
    puts: list[tuple[str, bytes]] = field(default_factory=list)  # path, body


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._answer(Answer(202, b"", {"Location": self.path + "upload-1"}))

    def do_DELETE(self) -> None:
        self._answer(Answer(204, b""))

    def do_PUT(self) -> None:
        state: State = self.server.state
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        state.puts.append((self.path, body))
        match = re.match(r"^/v2/(.+)/manifests/([^/]+)$", self.path)
        if match:
            answer = Answer(200, body, {"Content-Type": self.headers.get("Content-Type", "")})
            answer.headers["Docker-Content-Digest"] = digest_of(body)
            state.answers[("manifests", match.group(1), match.group(2))] = answer
            state.answers[("manifests", match.group(1), digest_of(body))] = answer
        self._answer(Answer(201, b"", {"Docker-Content-Digest": digest_of(body)}))

    def _route(self) -> None:
        state: State = self.server.state
        if self.path == "/v2/":
            return self._answer(Answer(200, b"{}"))
        match = re.match(r"^/v2/(.+)/(manifests|blobs)/([^/?]+)$", self.path)
        answer = None
        if match:
            repo, kind, ref = match.groups()
            answer = state.answers.get((kind, repo, ref))
        if answer is None:
            body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]})
            answer = Answer(404, body.encode(), {"Content-Type": "application/json"})
        self._answer(answer)

    def _answer(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)


class FakeRegistry:
    """Start with `with FakeRegistry() as reg:`; reg.address is its host:port."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.state = State()
        self.server.state = self.state  # type: ignore[attr-defined]
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def __enter__(self) -> FakeRegistry:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def manifest(
        self,
        repo: str,
        ref: str,
        body: bytes,
        media_type: str = DOCKER_MANIFEST,
        *,
        status: int = 200,
        digest: str | None = None,
    ) -> str:
        """Answer GET/HEAD of repo's manifest ref (and of its digest) with body; the
        Docker-Content-Digest header is body's digest unless given. Returns body's digest."""
        headers = {"Content-Type": media_type, "Docker-Content-Digest": digest or digest_of(body)}
        answer = Answer(status, body, headers)
        self.state.answers[("manifests", repo, ref)] = answer
        self.state.answers[("manifests", repo, digest_of(body))] = answer
        return digest_of(body)

    def blob(self, repo: str, body: bytes) -> str:
        self.state.answers[("blobs", repo, digest_of(body))] = Answer(200, body)
        return digest_of(body)

    def image(self, repo: str, ref: str, config: dict[str, Any]) -> tuple[str, str]:
        """An image manifest with this config (and no layers): (manifest digest, config
        digest)."""
        data = json.dumps(config).encode()
        config_digest = self.blob(repo, data)
        doc = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": config_digest,
                "size": len(data),
            },
            "layers": [],
        }
        return self.manifest(repo, ref, json.dumps(doc).encode()), config_digest
