"""Credential helpers, for real (issue 19, item 2): Debian's docker-credential-pass over `pass`
and a throw-away gpg key made here. `docker login` stores the password in the password store
(config.json keeps none); dockerma reads it from there, through the helper, and pushes to the
bed's token registry. A helper that fails or is missing is a one-line error naming it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Engine, _engine, _unavailable, remove_session_images, write
from tests.e2e.test_registries import _assert_clean_error, _config_dir
from tests.e2e.test_token_registry import (
    _assert_list,
    _dockerfile,
    _name,
    _no_secrets,
    _refused_before_build,
)
from tests.e2e.token_registry import TokenRegistry

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def reg(bed: dict[str, str]) -> TokenRegistry:
    return TokenRegistry(bed)


@pytest.fixture(scope="module", params=["classic", "current"])
def eng(request: pytest.FixtureRequest, bed: dict[str, str]) -> Iterator[Engine]:
    e = _engine(request.param, bed)
    yield e
    remove_session_images(["docker"], e.env)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A password store of its own, under a gpg key without passphrase made for this test."""
    for tool in ("gpg", "gpgconf", "pass", "docker-credential-pass"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is not installed (scripts/testbed-token installs it)")
    home, pass_dir = tmp_path / "gnupg", tmp_path / "password-store"
    home.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(home), "PASSWORD_STORE_DIR": str(pass_dir)}

    def run(*cmd: str) -> str:
        res = subprocess.run(cmd, env={**_base_env(), **env}, capture_output=True, text=True)
        assert res.returncode == 0, f"{' '.join(cmd)}: {res.stderr}"
        return res.stdout

    run("gpg", "--batch", "--passphrase", "", "--quick-gen-key", "dockerma-e2e@example.invalid",
        "future-default", "default", "never")  # fmt: skip
    fpr = next(
        line.split(":")[9]
        for line in run("gpg", "--list-keys", "--with-colons").splitlines()
        if line.startswith("fpr:")
    )
    run("pass", "init", fpr)
    yield env
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**_base_env(), **env}, check=False)


def _base_env() -> dict[str, str]:
    return dict(os.environ)


def _pass_ls(store: dict[str, str]) -> str:
    res = subprocess.run(
        ["pass", "ls"], env={**_base_env(), **store, "TERM": "dumb"}, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    return res.stdout


def _config(eng: Engine, path: Path, settings: dict) -> Path:
    config = _config_dir(eng, path)
    (config / "config.json").write_text(json.dumps(settings))
    return config


@pytest.mark.parametrize("how", ["credsStore", "credHelpers"])
def test_login_stores_in_pass_and_dockerma_reads_it(eng, reg, store, tmp_path, how) -> None:
    settings = (
        {"credsStore": "pass"} if how == "credsStore" else {"credHelpers": {reg.host: "pass"}}
    )
    config = _config(eng, tmp_path / "cfg", settings)
    env = {**store, "DOCKER_CONFIG": str(config)}
    login = subprocess.run(
        ["docker", "login", "-u", "alice", "--password-stdin", reg.host],
        env={**eng.env, **env}, input=reg.passwords["alice"] + "\n",
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    listed = _pass_ls(store)
    assert "docker-credential-helpers" in listed and "alice" in listed, listed
    saved = (config / "config.json").read_text()
    for secret in (reg.passwords["alice"], reg.basic("alice")):
        assert secret not in saved, saved
    assert '"auth"' not in saved, saved

    ctx = write(tmp_path / "ctx", _dockerfile(reg.base))
    name = _name(reg, eng, f"pass-{how.lower()}")
    mark = reg.log_mark()
    res = eng.dockerma("--debug", "build", "--push", "-t", f"{name}:v1", str(ctx), env=env)
    assert res.returncode == 0, res.stderr + res.stdout
    _assert_list(reg, f"{name}:v1", res.stdout)
    repo = name.partition("/")[2]
    log = reg.log_since(mark, f"{repo}:pull,push")
    # alice's password reached the token service: it came from pass, config.json has none
    assert any("GET user=alice" in line and f"{repo}:pull,push" in line for line in log), log
    _no_secrets([res], reg)


def test_missing_helper_is_named(reg, tmp_path, bed) -> None:
    eng = _engine("classic", bed)
    config = _config(eng, tmp_path / "cfg", {"credHelpers": {reg.host: "dockerma-nosuch"}})
    ctx = write(tmp_path / "ctx", _dockerfile(reg.base))
    name = _name(reg, eng, "nohelper")
    res = eng.dockerma(
        "build", "--push", "-t", f"{name}:v1", str(ctx), env={"DOCKER_CONFIG": str(config)}
    )
    _assert_clean_error(res, "docker-credential-dockerma-nosuch", "not installed", reg.host)
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    _refused_before_build(eng, reg, name)


def test_failing_helper_is_named(reg, store, tmp_path, bed) -> None:
    # The login is in pass, but the gpg key that decrypts it is gone (another GNUPGHOME):
    # docker-credential-pass fails, and dockerma says which helper and how to check it.
    eng = _engine("classic", bed)
    config = _config(eng, tmp_path / "cfg", {"credHelpers": {reg.host: "pass"}})
    env = {**store, "DOCKER_CONFIG": str(config)}
    login = subprocess.run(
        ["docker", "login", "-u", "alice", "--password-stdin", reg.host],
        env={**eng.env, **env}, input=reg.passwords["alice"] + "\n",
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    other = tmp_path / "other-gnupg"
    other.mkdir(mode=0o700)
    ctx = write(tmp_path / "ctx", _dockerfile(reg.base))
    name = _name(reg, eng, "badhelper")
    res = eng.dockerma(
        "build", "--push", "-t", f"{name}:v1", str(ctx), env={**env, "GNUPGHOME": str(other)}
    )
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**_base_env(), "GNUPGHOME": str(other)})
    _assert_clean_error(res, "docker-credential-pass", "failed", reg.host)
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    _refused_before_build(eng, reg, name)
    _no_secrets([res], reg)
