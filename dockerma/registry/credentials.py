"""The user's docker credentials for a registry, found where and how the docker CLI finds them.

Only `lookup` reads them; nothing here prints, logs or puts a secret in an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shlex
from collections.abc import Mapping
from typing import Any

from dockerma.engine import process
from dockerma.errors import DockermaError
from dockerma.registry import hub

HUB_KEY = hub.CREDENTIALS_KEY
# The user name docker records with an identity token (an OAuth refresh token) instead of a
# password, in config.json and in credential helpers alike.
TOKEN_USER = "<token>"
_HELPER_TIMEOUT = 60.0


class CredentialsError(DockermaError):
    """config.json or a credential helper is broken (not: there are no credentials)."""


def config_path(config_dir: str | None) -> str:
    """config.json in `--config DIR`, else $DOCKER_CONFIG, else ~/.docker, as docker reads it."""
    base = config_dir or os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker")
    return os.path.join(base, "config.json")


def login_command(registry: str, config_dir: str | None) -> str:
    """The `docker login` that stores credentials where this run reads them (`--config DIR`
    when the user gave one: a plain `docker login` would write to another file)."""
    config = ["--config", config_dir] if config_dir else []
    return shlex.join(["docker", *config, "login", registry])


def server_address(registry: str) -> str:
    """The key docker files a registry's credentials under (and hands to credential helpers)."""
    return HUB_KEY if hub.is_hub(registry) else registry


def lookup(registry: str, *, config_dir: str | None) -> tuple[str, str] | None:
    """(username, secret) docker would use for `registry` (host[:port]); None when it has none.

    The order is docker's: `credHelpers[registry]`, else `credsStore`, else the `auths` entry.
    An identity token comes back as ("<token>", token), the way docker represents it.
    """
    path = config_path(config_dir)
    config = _load(path)
    if config is None:
        return None
    helper = _entry(config.get("credHelpers"), registry)
    if not helper:
        helper = config.get("credsStore")
    if helper:
        # Like docker: with a helper configured, its answer is final; an `auth` left in the
        # `auths` entry is ignored (docker login writes an empty entry there).
        return _from_helper(str(helper), server_address(registry), path)
    entry = _entry(config.get("auths"), registry)
    if not isinstance(entry, Mapping):
        return None
    return _from_auths(
        entry, registry=registry, path=path, login=login_command(registry, config_dir)
    )


def _load(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise CredentialsError(
            f"cannot read docker's config {path}: {type(err).__name__}: {_first_line(str(err))}; "
            "fix the file or run `docker login` again"
        ) from None
    if not isinstance(data, dict):
        raise CredentialsError(f"docker's config {path} is not a JSON object; fix or remove it")
    return data


def _hostname(key: str) -> str:
    # docker's ConvertToHostname: keys may be written as URLs ("https://reg:5000/v1/").
    for prefix in ("http://", "https://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    return key.split("/", 1)[0]


def _entry(section: object, registry: str) -> Any:
    if not isinstance(section, Mapping):
        return None
    wanted_hub = hub.is_hub(registry)
    exact = server_address(registry)
    if exact in section:
        return section[exact]
    for key, value in section.items():
        host = _hostname(str(key))
        if hub.is_hub(host) if wanted_hub else (host == registry):
            return value
    return None


def _from_auths(
    entry: Mapping[str, Any], *, registry: str, path: str, login: str
) -> tuple[str, str] | None:
    token = entry.get("identitytoken")
    if token:
        return TOKEN_USER, str(token)
    auth = entry.get("auth")
    if auth:
        try:
            decoded = base64.b64decode(str(auth), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            decoded = ""
        user, sep, secret = decoded.partition(":")
        if not sep or not user:
            raise CredentialsError(
                f"the `auth` entry for {registry} in {path} is not base64 of user:password; "
                f"run `{login}` again"
            )
        return user, secret
    username, password = entry.get("username"), entry.get("password")
    if username and password:
        return str(username), str(password)
    return None


def _from_helper(helper: str, server: str, path: str) -> tuple[str, str] | None:
    program = f"docker-credential-{helper}"
    hint = f"check `echo {server} | {program} get`, or fix the helper named in {path}"
    try:
        # The protocol: the server address on stdin, JSON {ServerURL, Username, Secret} on stdout.
        res = process.run_process([program, "get"], input=server, timeout=_HELPER_TIMEOUT)
    except DockermaError:
        raise CredentialsError(
            f"credential helper `{program}` (named in {path}) is not installed or not on PATH; "
            f"install it or remove it from {path}"
        ) from None
    if res.returncode != 0:
        said = f"{res.stdout}\n{res.stderr}"
        if "credentials not found" in said.lower():
            return None
        raise CredentialsError(
            f"credential helper `{program}` failed with exit code {res.returncode}: "
            f"{_first_line(res.stderr or res.stdout)[:200]}; {hint}"
        )
    try:
        data = json.loads(res.stdout)
        user, secret = data.get("Username") or "", data.get("Secret") or ""
    except (ValueError, AttributeError):
        # Never quote the output: it may hold the secret.
        raise CredentialsError(
            f"credential helper `{program}` did not answer JSON; {hint}"
        ) from None
    if not secret:
        return None
    return str(user), str(secret)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "(no output)"
