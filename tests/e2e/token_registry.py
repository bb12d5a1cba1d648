"""The test bed's token-auth registry (scripts/testbed-token), read independently of dockerma:
tokens fetched here from its token service with urllib, TLS verified with the bed's CA."""

from __future__ import annotations

import base64
import json
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.e2e.conftest import ACCEPT, _unavailable

# A JSON web token as the token service signs them (header.claims.signature, base64url).
JWT = re.compile(r"eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}")


class TokenRegistry:
    def __init__(self, bed: dict[str, str]) -> None:
        if "DOCKERMA_TOKEN_REGISTRY" not in bed:
            _unavailable("the token registry is not in the test bed (DOCKERMA_TOKEN_REGISTRY)")
        self.host = bed["DOCKERMA_TOKEN_REGISTRY"]
        self.realm = bed["DOCKERMA_TOKEN_SERVICE"]
        self.service = bed["DOCKERMA_TOKEN_SERVICE_NAME"]
        self.base = bed["DOCKERMA_TOKEN_BASE_IMAGE"]
        self.service_log = Path(bed["DOCKERMA_TOKEN_SERVICE_LOG"])
        self.passwords = dict(
            line.split("=", 1)
            for line in Path(bed["DOCKERMA_TOKEN_PASSWORDS"]).read_text().split()
            if "=" in line
        )
        ca = Path("/etc/docker/certs.d") / self.host / "ca.crt"
        # the registry's CA from certs.d; the token service's CA is in the system's store
        self._tls = ssl.create_default_context()
        self._tls.load_verify_locations(cafile=str(ca))
        try:
            self.token("public/busybox", "pull")
        except OSError as e:
            _unavailable(f"the token service {self.realm} does not answer ({e})")

    def basic(self, user: str) -> str:
        return base64.b64encode(f"{user}:{self.passwords[user]}".encode()).decode()

    @property
    def secrets(self) -> dict[str, str]:
        """Every password of the bed's users, and their Basic headers."""
        out = {}
        for user, password in self.passwords.items():
            out[f"{user}'s password"] = password
            out[f"{user}:password in base64"] = self.basic(user)
        return out

    def token(self, repo: str, actions: str, user: str | None = None) -> str:
        query = urllib.parse.urlencode(
            {"service": self.service, "scope": f"repository:{repo}:{actions}"}
        )
        headers = {"Authorization": f"Basic {self.basic(user)}"} if user else {}
        req = urllib.request.Request(f"{self.realm}?{query}", headers=headers)
        with urllib.request.urlopen(req, timeout=10, context=self._tls) as r:
            return str(json.loads(r.read())["token"])

    def get(self, path: str, repo: str, accept: str = ACCEPT) -> tuple[int, bytes, str]:
        """GET a registry path with an admin token for `repo` (what every test may read)."""
        req = urllib.request.Request(
            f"https://{self.host}{path}",
            headers={
                "Accept": accept,
                "Authorization": f"Bearer {self.token(repo, 'pull', 'admin')}",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=15, context=self._tls) as r:
                return r.status, r.read(), r.headers.get("Docker-Content-Digest", "")
        except urllib.error.HTTPError as e:
            return e.code, e.read(), ""

    def manifest(self, ref: str) -> tuple[int, dict | None, str]:
        host, _, rest = ref.partition("/")
        assert host == self.host, ref
        name, _, tag = rest.rpartition(":")
        status, body, digest = self.get(f"/v2/{name}/manifests/{tag}", name)
        return status, (json.loads(body) if status == 200 else None), digest

    def tags(self, name: str) -> list[str]:
        repo = name.partition("/")[2]
        status, body, _ = self.get(f"/v2/{repo}/tags/list", repo, "application/json")
        if status == 404:
            return []
        assert status == 200, (status, body[:300])
        return json.loads(body).get("tags") or []

    def log_mark(self) -> int:
        return self.service_log.stat().st_size

    def log_since(self, mark: int, wait_for: str = "") -> list[str]:
        """The token service's log lines written after `mark`."""
        for _ in range(20):
            with self.service_log.open("rb") as f:
                f.seek(mark)
                lines = f.read().decode(errors="replace").splitlines()
            if not wait_for or any(wait_for in line for line in lines):
                break
            time.sleep(0.1)
        return lines
