from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from dockerma.errors import DockermaError
from dockerma.registry import credentials

PASSWORD = "pa55-w0rd-never-shown"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_config(folder: Path, config: dict[str, Any]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """make(name, store, fail=None) puts docker-credential-NAME on PATH; calls() reads its log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "helper-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")

    class Helpers:
        def make(self, name: str, store: dict[str, tuple[str, str]], fail: str = "") -> None:
            script = bin_dir / f"docker-credential-{name}"
            script.write_text(
                f"#!{sys.executable}\n"
                "import json, sys\n"
                "server = sys.stdin.read()\n"
                f"with open({str(log)!r}, 'a') as f:\n"
                f"    f.write(json.dumps({{'helper': {name!r}, 'argv': sys.argv[1:], "
                "'stdin': server}) + '\\n')\n"
                f"store = {json.dumps(store)}\n"
                f"if {fail!r}:\n"
                f"    sys.stderr.write({fail!r} + '\\n'); sys.exit(3)\n"
                "if server not in store:\n"
                "    print('credentials not found in native keychain'); sys.exit(1)\n"
                "user, secret = store[server]\n"
                "print(json.dumps({'ServerURL': server, 'Username': user, 'Secret': secret}))\n"
            )
            script.chmod(script.stat().st_mode | stat.S_IXUSR)

        def calls(self) -> list[dict[str, Any]]:
            if not log.exists():
                return []
            return [json.loads(line) for line in log.read_text().splitlines()]

    return Helpers()


def test_missing_config_means_no_credentials(tmp_path: Path) -> None:
    assert credentials.lookup("reg:5000", config_dir=str(tmp_path / "nothing")) is None


def test_config_dir_option_wins_over_docker_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_dir = write_config(tmp_path / "env", {"auths": {"reg:5000": {"auth": b64("env:x1")}}})
    opt_dir = write_config(tmp_path / "opt", {"auths": {"reg:5000": {"auth": b64("opt:x2")}}})
    monkeypatch.setenv("DOCKER_CONFIG", env_dir)
    assert credentials.lookup("reg:5000", config_dir=None) == ("env", "x1")
    assert credentials.lookup("reg:5000", config_dir=opt_dir) == ("opt", "x2")


def test_home_docker_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    write_config(tmp_path / ".docker", {"auths": {"reg:5000": {"auth": b64("home:x")}}})
    assert credentials.lookup("reg:5000", config_dir=None) == ("home", "x")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"auth": b64("alice:" + PASSWORD)}, ("alice", PASSWORD)),
        ({"auth": b64("alice:with:colons")}, ("alice", "with:colons")),
        ({"username": "bob", "password": PASSWORD}, ("bob", PASSWORD)),
        ({"auth": b64("alice:x"), "identitytoken": "tok-123"}, ("<token>", "tok-123")),
        ({}, None),
        ({"email": "a@b.c"}, None),
    ],
)
def test_auths_entry(tmp_path: Path, entry: dict[str, str], expected: Any) -> None:
    folder = write_config(tmp_path, {"auths": {"reg:5000": entry}})
    assert credentials.lookup("reg:5000", config_dir=folder) == expected


@pytest.mark.parametrize(
    "key",
    ["reg:5000", "https://reg:5000", "http://reg:5000", "reg:5000/v1/", "https://reg:5000/v2/"],
)
def test_auths_keys_match_like_docker(tmp_path: Path, key: str) -> None:
    folder = write_config(tmp_path, {"auths": {key: {"auth": b64("u:p")}}})
    assert credentials.lookup("reg:5000", config_dir=folder) == ("u", "p")
    assert credentials.lookup("reg:5001", config_dir=folder) is None
    assert credentials.lookup("reg", config_dir=folder) is None


def test_docker_hub_uses_the_v1_index_key(tmp_path: Path) -> None:
    folder = write_config(
        tmp_path,
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": b64("hub:p")},
                "other.io": {"auth": b64("o:p")},
            }
        },
    )
    assert credentials.lookup("docker.io", config_dir=folder) == ("hub", "p")
    assert credentials.lookup("index.docker.io", config_dir=folder) == ("hub", "p")


def test_broken_auth_entry_is_an_error_without_the_value(tmp_path: Path) -> None:
    folder = write_config(tmp_path, {"auths": {"reg:5000": {"auth": PASSWORD}}})
    with pytest.raises(DockermaError) as info:
        credentials.lookup("reg:5000", config_dir=folder)
    assert f"docker --config {folder} login reg:5000" in str(info.value)
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize(
    ("config_dir", "expected"),
    [
        (None, "docker login reg:5000"),
        ("/etc/my docker", "docker --config '/etc/my docker' login reg:5000"),
    ],
)
def test_login_command_names_the_config_the_run_reads(
    config_dir: str | None, expected: str
) -> None:
    assert credentials.login_command("reg:5000", config_dir) == expected


def test_unreadable_config_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"auths": ')
    with pytest.raises(DockermaError, match="config.json"):
        credentials.lookup("reg:5000", config_dir=str(tmp_path))


def test_creds_store_helper_gets_the_server_on_stdin(tmp_path: Path, helpers: Any) -> None:
    helpers.make("fake", {"reg:5000": ("alice", PASSWORD)})
    folder = write_config(tmp_path / "cfg", {"credsStore": "fake", "auths": {"reg:5000": {}}})
    assert credentials.lookup("reg:5000", config_dir=folder) == ("alice", PASSWORD)
    assert helpers.calls() == [{"helper": "fake", "argv": ["get"], "stdin": "reg:5000"}]


def test_helper_for_docker_hub_gets_the_index_url(tmp_path: Path, helpers: Any) -> None:
    helpers.make("fake", {"https://index.docker.io/v1/": ("hub", PASSWORD)})
    folder = write_config(tmp_path / "cfg", {"credsStore": "fake"})
    assert credentials.lookup("docker.io", config_dir=folder) == ("hub", PASSWORD)
    assert helpers.calls()[0]["stdin"] == "https://index.docker.io/v1/"


def test_cred_helpers_win_over_creds_store_and_auths(tmp_path: Path, helpers: Any) -> None:
    helpers.make("special", {"reg:5000": ("special", "s")})
    helpers.make("store", {"reg:5000": ("store", "t"), "other:1": ("store", "u")})
    folder = write_config(
        tmp_path / "cfg",
        {
            "credHelpers": {"reg:5000": "special"},
            "credsStore": "store",
            "auths": {"reg:5000": {"auth": b64("file:v")}, "third:2": {"auth": b64("f:w")}},
        },
    )
    assert credentials.lookup("reg:5000", config_dir=folder) == ("special", "s")
    assert credentials.lookup("other:1", config_dir=folder) == ("store", "u")
    # With a credsStore docker ignores what is left in auths: so do we.
    assert credentials.lookup("third:2", config_dir=folder) is None
    assert [c["helper"] for c in helpers.calls()] == ["special", "store", "store"]


def test_auths_used_without_any_helper(tmp_path: Path, helpers: Any) -> None:
    helpers.make("special", {"reg:5000": ("special", "s")})
    folder = write_config(
        tmp_path / "cfg",
        {"credHelpers": {"reg:5000": "special"}, "auths": {"other:1": {"auth": b64("f:w")}}},
    )
    assert credentials.lookup("other:1", config_dir=folder) == ("f", "w")
    assert helpers.calls() == []


def test_helper_without_credentials_means_none(tmp_path: Path, helpers: Any) -> None:
    helpers.make("fake", {})
    folder = write_config(tmp_path / "cfg", {"credsStore": "fake"})
    assert credentials.lookup("reg:5000", config_dir=folder) is None


def test_helper_identity_token_is_kept_as_docker_marks_it(tmp_path: Path, helpers: Any) -> None:
    helpers.make("fake", {"reg:5000": ("<token>", "refresh-tok")})
    folder = write_config(tmp_path / "cfg", {"credsStore": "fake"})
    assert credentials.lookup("reg:5000", config_dir=folder) == ("<token>", "refresh-tok")


def test_failing_helper_is_an_error_naming_it(tmp_path: Path, helpers: Any) -> None:
    helpers.make("fake", {"reg:5000": ("alice", PASSWORD)}, fail="keychain is locked")
    folder = write_config(tmp_path / "cfg", {"credsStore": "fake"})
    with pytest.raises(credentials.CredentialsError) as info:
        credentials.lookup("reg:5000", config_dir=folder)
    message = str(info.value)
    assert "docker-credential-fake" in message and "keychain is locked" in message
    assert PASSWORD not in message and "\n" not in message


def test_missing_helper_is_an_error_naming_it(tmp_path: Path, helpers: Any) -> None:
    folder = write_config(tmp_path / "cfg", {"credsStore": "absent"})
    with pytest.raises(credentials.CredentialsError, match="docker-credential-absent"):
        credentials.lookup("reg:5000", config_dir=folder)
