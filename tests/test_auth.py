"""Authentication against the fake registry: anonymous first, Basic, Bearer and identity
tokens, docker's credentials and helpers, and no secret in any message."""

from __future__ import annotations

import base64
import os
import stat
import sys
import urllib.parse
from pathlib import Path

import pytest

from dockerma.registry.client import (
    OCI_INDEX,
    AuthError,
    NotFound,
    RegistryError,
)
from tests.test_registry import (
    INDEX_BODY,
    PASSWORD,
    USER,
    FakeRegistry,
    client,
    docker_config,
    logged_in,
)

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


def test_a_token_the_registry_refuses_says_so(fake: FakeRegistry, tmp_path: Path) -> None:
    # distribution answers an expired (or foreign) token with error="invalid_token": that is
    # not a wrong password, and `docker login` would not help.
    fake.state.auth, fake.state.token_error = "bearer", "invalid_token"
    fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    registry = client(logged_in(tmp_path, fake.address))
    with pytest.raises(AuthError) as info:
        registry.get_manifest(fake.ref("team/app:v1"))
    message = str(info.value)
    assert message.startswith(
        f"registry {fake.address} refused the token its token service issued for team/app "
        "(invalid_token: expired"
    )
    assert "clock" in message and "\n" not in message
    assert len(fake.state.token_requests) == 1
    for token in fake.state.tokens:
        assert token not in message


def test_a_refused_identity_token_is_named(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.state.auth = "bearer"
    folder = docker_config(tmp_path, {"auths": {fake.address: {"identitytoken": "revoked-tok"}}})
    with pytest.raises(AuthError) as info:
        client(folder).get_manifest(fake.ref("team/app:v1"))
    message = str(info.value)
    assert message.startswith(
        f"registry {fake.address} rejected the identity token docker has for it (its token "
        "service answered 401); run `docker --config "
    )
    assert "revoked-tok" not in message


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
