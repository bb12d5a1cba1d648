"""Token authentication as Docker Hub, GHCR and GitLab do it (issue 19, item 1), against the
bed's token registry (distribution with `auth: token`, TLS) and its token service: the
registry checks every token itself; each test checks the registry with tokens of its own.

Users (scripts/testbed-token): alice pushes and pulls team/*, bob only pulls, olivia is alice
with an identity token (OAuth), eve only gets expired tokens; anonymous pulls public/*.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Engine, _engine, remove_session_images, unique, write
from tests.e2e.test_registries import (
    PLATFORMS,
    _assert_clean_error,
    _assert_no_secrets,
    _config_dir,
    _docker,
    _no_local_images,
    _platforms,
)
from tests.e2e.token_registry import JWT, TokenRegistry

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def reg(bed: dict[str, str]) -> TokenRegistry:
    return TokenRegistry(bed)


# The classic builder and a BuildKit engine (docker 28.5): both push with docker's login.
@pytest.fixture(scope="module", params=["classic", "current"])
def eng(request: pytest.FixtureRequest, bed: dict[str, str]) -> Iterator[Engine]:
    e = _engine(request.param, bed)
    yield e
    remove_session_images(["docker"], e.env)


def _name(reg: TokenRegistry, eng: Engine, what: str) -> str:
    return f"{reg.host}/team/e2e-{eng.name}/{unique(what)}"


def _dockerfile(base: str) -> str:
    return f"# dockerma archs:amd64,arm64\nFROM {base}\nRUN echo hi > /v\n"


def _login(eng: Engine, reg: TokenRegistry, path: Path, user: str) -> Path:
    config = _config_dir(eng, path)
    _docker(
        eng, config, "login", "-u", user, "--password-stdin", reg.host,
        input=reg.passwords[user] + "\n",
    )  # fmt: skip
    return config


def _hand_written(eng: Engine, path: Path, entry: dict[str, str], host: str) -> Path:
    config = _config_dir(eng, path)
    (config / "config.json").write_text(json.dumps({"auths": {host: entry}}))
    return config


def _no_secrets(runs: list[subprocess.CompletedProcess[str]], reg: TokenRegistry, **more: str):
    _assert_no_secrets(runs, [], {**reg.secrets, **more})
    for r in runs:
        assert not JWT.search(r.stdout + r.stderr), "a token in the output"


def _assert_list(reg: TokenRegistry, ref: str, out: str) -> None:
    """The list is in the registry, names both platforms with the per-arch tags' digests, and
    its digest is what dockerma printed."""
    status, doc, digest = reg.manifest(ref)
    assert status == 200 and doc is not None, status
    plats = _platforms(doc)
    assert set(plats) == set(PLATFORMS.values()), doc
    for suffix, platform in PLATFORMS.items():
        st, tag_doc, tag_digest = reg.manifest(f"{ref}-{suffix}")
        assert st == 200 and tag_doc is not None
        if "manifests" in tag_doc:  # the containerd store pushes an index per arch
            tag_digest = _platforms(tag_doc)[platform]
        assert plats[platform] == tag_digest
    assert digest in out


def _refused_before_build(eng: Engine, reg: TokenRegistry, name: str) -> None:
    _no_local_images(eng, name)
    assert reg.tags(name) == []


def test_login_then_build_push_with_tokens(eng, reg, tmp_path) -> None:
    config = _login(eng, reg, tmp_path / "cfg", "alice")
    ctx = write(tmp_path / "ctx", _dockerfile(reg.base))
    name = _name(reg, eng, "app")
    mark = reg.log_mark()
    env = {"DOCKER_CONFIG": str(config)}
    res = eng.dockerma("--debug", "build", "--push", "-t", f"{name}:v1", str(ctx), env=env)
    assert res.returncode == 0, res.stderr + res.stdout
    _assert_list(reg, f"{name}:v1", res.stdout)
    repo = name.partition("/")[2]
    log = reg.log_since(mark, f"{repo}:pull,push")
    # dockerma's own look-ups and checks went through the token service as alice
    assert any("user=alice" in line and f"{repo}:pull,push" in line for line in log), log
    assert any("public/busybox:pull" in line for line in log), log
    # the list as a user gets it: by platform, from the registry, with the login
    eng.docker("image", "rm", "-f", *(f"{name}:v1-{s}" for s in PLATFORMS))
    _docker(eng, config, "pull", "--platform", "linux/arm64", f"{name}:v1")
    ran = _docker(
        eng, config, "run", "--rm", "--platform", "linux/arm64", f"{name}:v1", "uname", "-m"
    )
    assert ran.stdout.strip() == "aarch64"
    _no_secrets([res], reg)


def test_anonymous_base_lookup_of_a_public_repository(eng, reg, tmp_path) -> None:
    config = _config_dir(eng, tmp_path / "cfg")  # no login at all
    ctx = write(tmp_path / "ctx", _dockerfile(reg.base))
    name = _name(reg, eng, "anon")
    mark = reg.log_mark()
    env = {"DOCKER_CONFIG": str(config)}
    dry = eng.dockerma("build", "--dry-run", "-t", f"{name}:v1", str(ctx), env=env)
    assert dry.returncode == 0, dry.stderr + dry.stdout
    _, doc, _ = reg.manifest(reg.base)
    assert doc is not None
    for platform, digest in _platforms(doc).items():
        if platform in PLATFORMS.values():  # each build pinned to its platform's image
            assert digest in dry.stdout, (platform, dry.stdout)
    res = eng.dockerma("build", "-t", f"{name}:v1", str(ctx), env=env)
    assert res.returncode == 0, res.stderr + res.stdout
    assert eng.run("linux/arm64", f"{name}:v1-arm64", "uname", "-m") == "aarch64"
    log = reg.log_since(mark, "public/busybox:pull")
    assert any("GET user=- granted=[public/busybox:pull]" in line for line in log), log
    assert not any("user=alice" in line or "POST" in line for line in log), log


def test_pull_only_user_is_refused_before_anything_is_built(eng, reg, tmp_path) -> None:
    config = _login(eng, reg, tmp_path / "cfg", "bob")
    ctx = write(tmp_path / "ctx", _dockerfile(reg.base))
    name = _name(reg, eng, "bob")
    env = {"DOCKER_CONFIG": str(config)}
    runs = []
    for debug in ([], ["--debug"]):
        res = eng.dockerma(*debug, "build", "--push", "-t", f"{name}:v1", str(ctx), env=env)
        runs.append(res)
        line = _assert_clean_error(res, reg.host, name.partition("/")[2], "push")
        if not debug:
            assert "Traceback" not in res.stderr
            assert res.stderr.strip() == line and res.stdout.strip() == "", res.stderr
        assert "Step 1/" not in res.stdout + res.stderr  # no build ran
    _refused_before_build(eng, reg, name)
    _no_secrets(runs, reg)


def test_expired_token_is_a_clear_error(reg, tmp_path, bed) -> None:
    eng = _engine("classic", bed)
    config = _hand_written(eng, tmp_path / "cfg", {"auth": reg.basic("eve")}, reg.host)
    ctx = write(tmp_path / "ctx", _dockerfile(reg.base))
    name = _name(reg, eng, "eve")
    runs = []
    for debug in ([], ["--debug"]):
        res = eng.dockerma(
            *debug, "build", "--push", "-t", f"{name}:v1", str(ctx),
            env={"DOCKER_CONFIG": str(config)},
        )  # fmt: skip
        runs.append(res)
        _assert_clean_error(res, reg.host, "invalid_token", "expired", "clock")
    _refused_before_build(eng, reg, name)
    _no_secrets(runs, reg)


def test_refused_identity_token_is_a_clear_error(reg, tmp_path, bed) -> None:
    eng = _engine("classic", bed)
    revoked = base64.urlsafe_b64encode(b"olivia").decode().rstrip("=") + ".0123456789abcdef"
    config = _hand_written(eng, tmp_path / "cfg", {"identitytoken": revoked}, reg.host)
    ctx = write(tmp_path / "ctx", _dockerfile(reg.base))
    name = _name(reg, eng, "revoked")
    mark = reg.log_mark()
    res = eng.dockerma(
        "--debug", "build", "--push", "-t", f"{name}:v1", str(ctx),
        env={"DOCKER_CONFIG": str(config)},
    )  # fmt: skip
    _assert_clean_error(res, reg.host, "identity token", f"docker login {reg.host}")
    assert any("POST refresh_token: refused" in line for line in reg.log_since(mark, "refused"))
    _refused_before_build(eng, reg, name)
    _no_secrets([res], reg, revoked=revoked)


def test_identity_token_from_docker_login_is_refreshed(eng, reg, tmp_path) -> None:
    # olivia's login gets a refresh token from the token service: docker keeps it as
    # `identitytoken` (no password in config.json); dockerma trades it for access tokens.
    config = _login(eng, reg, tmp_path / "cfg", "olivia")
    saved = (config / "config.json").read_text()
    identity = json.loads(saved)["auths"][reg.host]["identitytoken"]
    assert identity and reg.passwords["olivia"] not in saved
    ctx = write(tmp_path / "ctx", _dockerfile(reg.base))
    name = _name(reg, eng, "olivia")
    mark = reg.log_mark()
    env = {"DOCKER_CONFIG": str(config)}
    res = eng.dockerma("--debug", "build", "--push", "-t", f"{name}:v1", str(ctx), env=env)
    assert res.returncode == 0, res.stderr + res.stdout
    _assert_list(reg, f"{name}:v1", res.stdout)
    repo = name.partition("/")[2]
    log = reg.log_since(mark, f"{repo}:pull,push")
    assert any(
        "POST refresh_token user=olivia" in line and f"{repo}:pull,push" in line for line in log
    ), log
    assert not any("GET user=olivia" in line for line in log), log  # never the password
    _no_secrets([res], reg, identity=identity)
