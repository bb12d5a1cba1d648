"""Registries with TLS and basic auth (issue 9): docker's credentials and CAs, end to end.

Every test gets a private docker config dir (DOCKER_CONFIG), so a login made here never leaks
into another test, and checks the registry itself with its own authenticated HTTPS requests,
verified against the test bed's CA.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import ACCEPT, Engine, _unavailable, unique, write

pytestmark = pytest.mark.e2e

PLATFORMS = {"amd64": "linux/amd64", "arm64": "linux/arm64"}


# -- the TLS registry, read independently of dockerma ------------------------------------------


class TLSRegistry:
    """127.0.0.1:5443 of the test bed, read with urllib, basic auth and the bed's CA."""

    def __init__(self, bed: dict[str, str]) -> None:
        if "DOCKERMA_TLS_REGISTRY" not in bed:
            _unavailable("the TLS registry is not in the test bed")
        self.host = bed["DOCKERMA_TLS_REGISTRY"]
        self.base = bed["DOCKERMA_TLS_BASE_IMAGE"]
        self.user = bed["DOCKERMA_TLS_USER"]
        self.password = Path(bed["DOCKERMA_TLS_PASSWORD_FILE"]).read_text().strip()
        ca = Path("/etc/docker/certs.d") / self.host / "ca.crt"
        self._tls = ssl.create_default_context(cafile=str(ca))
        self.basic = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()

    @property
    def secrets(self) -> dict[str, str]:
        """What must never be printed: the password and the Authorization header's value."""
        return {"the registry password": self.password, "user:password in base64": self.basic}

    def _get(self, path: str, accept: str = ACCEPT) -> tuple[int, bytes, str]:
        req = urllib.request.Request(
            f"https://{self.host}{path}",
            headers={"Accept": accept, "Authorization": f"Basic {self.basic}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=15, context=self._tls) as r:
                return r.status, r.read(), r.headers.get("Docker-Content-Digest", "")
        except urllib.error.HTTPError as e:
            return e.code, e.read(), ""

    def manifest(self, ref: str) -> tuple[int, dict | None, str]:
        """(status, manifest JSON or None, Docker-Content-Digest) of NAME:TAG on this registry."""
        host, _, rest = ref.partition("/")
        assert host == self.host, ref
        name, _, tag = rest.rpartition(":")
        status, body, digest = self._get(f"/v2/{name}/manifests/{tag}")
        return status, (json.loads(body) if status == 200 else None), digest

    def tags(self, name: str) -> list[str]:
        """The repository's tags; [] when the registry does not know the repository."""
        repo = name.partition("/")[2]
        status, body, _ = self._get(f"/v2/{repo}/tags/list", "application/json")
        if status == 404:
            return []
        assert status == 200, (status, body[:300])
        return json.loads(body).get("tags") or []


@pytest.fixture(scope="module")
def tls(bed: dict[str, str]) -> TLSRegistry:
    reg = TLSRegistry(bed)
    status, _, _ = reg._get("/v2/")
    if status != 200:
        pytest.fail(f"the TLS registry {reg.host} answers {status} to an authenticated /v2/")
    return reg


# -- docker configs ----------------------------------------------------------------------------


def _config_dir(engine: Engine, path: Path) -> Path:
    """A docker config dir that keeps logins in config.json; for a BuildKit engine with buildx
    reachable in it."""
    path.mkdir(parents=True)
    # A config without any auth entry makes the docker CLI pick a credential store by itself:
    # `pass` when pass and docker-credential-pass are installed (the bed installs them for the
    # credential-helper tests), and a login then fails on an uninitialised password store.
    # One (empty) entry keeps docker's file store, as on a machine without those packages.
    (path / "config.json").write_text('{"auths": {"file-store.invalid": {}}}\n')
    if engine.buildkit:
        (path / "cli-plugins").symlink_to(Path(engine.env["DOCKER_CONFIG"]) / "cli-plugins")
    return path


def _docker(
    engine: Engine, config: Path, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        ["docker", *args],
        env={**engine.env, "DOCKER_CONFIG": str(config)},
        input=input,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert res.returncode == 0, f"docker {' '.join(args)}: {res.stderr}{res.stdout}"
    return res


def _logged_in(engine: Engine, tls: TLSRegistry, path: Path) -> Path:
    config = _config_dir(engine, path)
    _docker(
        engine,
        config,
        "login",
        "--username",
        tls.user,
        "--password-stdin",
        tls.host,
        input=tls.password + "\n",
    )
    saved = json.loads((config / "config.json").read_text())
    assert tls.host in saved.get("auths", {}), saved  # a file login, no helper in the way
    return config


def _wrong_password(engine: Engine, tls: TLSRegistry, path: Path, wrong: str) -> Path:
    config = _config_dir(engine, path)
    auth = base64.b64encode(f"{tls.user}:{wrong}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {tls.host: {"auth": auth}}}))
    return config


# -- assertions --------------------------------------------------------------------------------


def _platforms(doc: dict) -> dict[str, str]:
    out = {}
    for m in doc["manifests"]:
        p = m["platform"]
        key = "/".join(x for x in (p["os"], p["architecture"], p.get("variant", "")) if x)
        out[key.replace("linux/arm64/v8", "linux/arm64")] = m["digest"]
    return out


def _tag_digest(tls: TLSRegistry, ref: str, platform: str) -> str:
    status, doc, digest = tls.manifest(ref)
    assert status == 200 and doc is not None, (ref, status)
    if "manifests" in doc:  # an index pushed by the containerd store: the image inside
        return _platforms(doc)[platform]
    return digest


def _assert_nothing_pushed(tls: TLSRegistry, name: str, tag: str = "v1") -> None:
    for ref in (f"{name}:{tag}", *(f"{name}:{tag}-{s}" for s in PLATFORMS)):
        status, _, _ = tls.manifest(ref)
        assert status == 404, f"{ref} is in the registry ({status})"
    assert tls.tags(name) == []


def _assert_clean_error(res: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert res.returncode != 0, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines, res.stdout
    last = lines[-1]
    assert last.startswith("dockerma: error: "), res.stderr
    for needle in needles:
        assert needle in last, res.stderr
    return last


def _assert_no_secrets(
    outputs: list[subprocess.CompletedProcess[str]], files: list[Path], hidden: dict[str, str]
) -> None:
    """Every leak at once: which secret, in which output, on which line."""
    assert all(len(s) >= 8 for s in hidden.values())
    texts = {}
    for r in outputs:
        shown = " ".join(r.args[3:])  # after python -m dockerma
        for what, secret in hidden.items():  # the report must not print them either
            shown = shown.replace(secret, f"<{what}>")
        texts[f"stdout of `dockerma {shown}`"] = r.stdout
        texts[f"stderr of `dockerma {shown}`"] = r.stderr
    texts.update({f"file {f}": f.read_text() for f in files if f.exists()})
    leaks = [
        f"{what} in {where}: {line.strip().replace(secret, f'<{what}>')[:160]!r}"
        for where, text in texts.items()
        for line in text.splitlines()
        for what, secret in hidden.items()
        if secret in line
    ]
    assert not leaks, "secrets in the output:\n" + "\n".join(dict.fromkeys(leaks))


def _no_local_images(engine: Engine, name: str) -> None:
    listed = engine.docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", name).stdout
    assert listed.strip() == "", listed


def _name(tls: TLSRegistry, engine: Engine, what: str) -> str:
    return f"{tls.host}/e2e-{engine.name}/{unique(what)}"


def _dockerfile(base: str, extra: str = "") -> str:
    return f"# dockerma archs:amd64,arm64\nFROM {base}\n{extra}RUN echo hi > /v\n"


# -- the tests ---------------------------------------------------------------------------------


def test_login_build_push_pull(engine, tmp_path, tls) -> None:
    config = _logged_in(engine, tls, tmp_path / "config")
    env = {"DOCKER_CONFIG": str(config)}
    ctx = write(tmp_path / "ctx", _dockerfile(tls.base))
    name = _name(tls, engine, "app")
    meta = tmp_path / "meta.json"
    res = engine.dockerma(
        "build", "--push", "--metadata-file", str(meta), "-t", f"{name}:v1", str(ctx), env=env
    )
    assert res.returncode == 0, res.stderr + res.stdout

    status, doc, list_digest = tls.manifest(f"{name}:v1")
    assert status == 200 and doc is not None
    plats = _platforms(doc)
    assert set(plats) == set(PLATFORMS.values()), doc
    assert len(doc["manifests"]) == 2, doc
    for suffix, platform in PLATFORMS.items():
        assert plats[platform] == _tag_digest(tls, f"{name}:v1-{suffix}", platform)
    assert list_digest in res.stdout
    written = json.loads(meta.read_text())
    assert written["manifest_lists"][f"{name}:v1"]["digest"] == list_digest
    for suffix, platform in PLATFORMS.items():
        assert written["architectures"][suffix]["digest"] == plats[platform]

    # the list as a user gets it: from the registry, by platform, with the login
    for suffix in PLATFORMS:
        engine.docker("image", "rm", "-f", f"{name}:v1-{suffix}")
    _docker(engine, config, "pull", "--platform", "linux/arm64", f"{name}:v1")
    ran = _docker(
        engine, config, "run", "--rm", "--platform", "linux/arm64", f"{name}:v1", "uname", "-m"
    )
    assert ran.stdout.strip() == "aarch64"
    _assert_no_secrets([res], [meta], tls.secrets)


def test_push_without_login_pushes_nothing(engine, tmp_path, tls) -> None:
    config = _config_dir(engine, tmp_path / "config")
    env = {"DOCKER_CONFIG": str(config)}
    ctx = write(tmp_path / "ctx", _dockerfile(engine.base))  # the plain registry: no auth
    name = _name(tls, engine, "nologin")
    meta = tmp_path / "meta.json"
    res = engine.dockerma(
        "build", "--push", "--metadata-file", str(meta), "-t", f"{name}:v1", str(ctx), env=env
    )
    _assert_clean_error(res, tls.host, "docker login")
    assert "Traceback" not in res.stderr
    _assert_nothing_pushed(tls, name)
    _assert_no_secrets([res], [meta], tls.secrets)


def test_push_without_login_names_the_login_for_the_config_given(engine, tmp_path, tls) -> None:
    # --config DIR: the fix must log in there (a plain `docker login` writes elsewhere)
    config = _config_dir(engine, tmp_path / "config")
    ctx = write(tmp_path / "ctx", _dockerfile(engine.base))
    name = _name(tls, engine, "nologincfg")
    res = engine.dockerma("--config", str(config), "build", "--push", "-t", f"{name}:v1", str(ctx))
    _assert_clean_error(res, tls.host, f"docker --config {config} login {tls.host}")
    _assert_nothing_pushed(tls, name)


def test_tls_base_without_login_fails_before_build(engine, tmp_path, tls) -> None:
    config = _config_dir(engine, tmp_path / "config")
    ctx = write(tmp_path / "ctx", _dockerfile(tls.base))
    name = _name(tls, engine, "nobase")
    res = engine.dockerma(
        "build", "--push", "-t", f"{name}:v1", str(ctx), env={"DOCKER_CONFIG": str(config)}
    )
    _assert_clean_error(res, tls.host, "docker login")
    assert "Traceback" not in res.stderr
    _no_local_images(engine, name)  # refused before any build
    _assert_nothing_pushed(tls, name)


def test_wrong_password_pushes_nothing(engine, tmp_path, tls) -> None:
    wrong = "wrong-" + secrets.token_hex(8)
    config = _wrong_password(engine, tls, tmp_path / "config", wrong)
    env = {"DOCKER_CONFIG": str(config)}
    wrong_basic = base64.b64encode(f"{tls.user}:{wrong}".encode()).decode()
    hidden = {**tls.secrets, "the wrong password": wrong, "user:wrong in base64": wrong_basic}

    ctx = write(tmp_path / "ctx", _dockerfile(engine.base))
    name = _name(tls, engine, "wrongpw")
    meta = tmp_path / "meta.json"
    res = engine.dockerma(
        "build", "--push", "--metadata-file", str(meta), "-t", f"{name}:v1", str(ctx), env=env
    )
    _assert_clean_error(res, tls.host, "docker login")
    assert "Traceback" not in res.stderr
    _assert_nothing_pushed(tls, name)

    base_ctx = write(tmp_path / "base-ctx", _dockerfile(tls.base))
    base_name = _name(tls, engine, "wrongpw-base")
    res_base = engine.dockerma("build", "--push", "-t", f"{base_name}:v1", str(base_ctx), env=env)
    _assert_clean_error(res_base, tls.host, "docker login")
    _no_local_images(engine, base_name)
    _assert_nothing_pushed(tls, base_name)
    _assert_no_secrets([res, res_base], [meta], hidden)


def test_secrets_never_printed(engine, tmp_path, tls) -> None:
    token = "tok" + secrets.token_hex(12)
    secret_text = "sec" + secrets.token_hex(12)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(secret_text)
    wrong = "wrong-" + secrets.token_hex(8)
    hidden = {
        **tls.secrets,
        "the SECRET_TOKEN build arg": token,
        "the --secret file's content": secret_text,
        "the wrong password": wrong,
        "user:wrong in base64": base64.b64encode(f"{tls.user}:{wrong}".encode()).decode(),
    }

    steps = 'ARG SECRET_TOKEN\nRUN test -n "$SECRET_TOKEN"\n'
    build_opts = ["--build-arg", f"SECRET_TOKEN={token}"]
    if engine.buildkit:  # --secret needs BuildKit
        steps += "RUN --mount=type=secret,id=s,required=true cat /run/secrets/s > /dev/null\n"
        build_opts += ["--secret", f"id=s,src={secret_file}"]
    ctx = write(tmp_path / "ctx", _dockerfile(tls.base, steps))
    plain_ctx = write(tmp_path / "plain-ctx", _dockerfile(engine.base, steps))
    name = _name(tls, engine, "secrets")

    good = {"DOCKER_CONFIG": str(_logged_in(engine, tls, tmp_path / "good"))}
    none = {"DOCKER_CONFIG": str(_config_dir(engine, tmp_path / "none"))}
    bad = {"DOCKER_CONFIG": str(_wrong_password(engine, tls, tmp_path / "bad", wrong))}
    metas = [tmp_path / f"meta{i}.json" for i in range(8)]
    runs: list[subprocess.CompletedProcess[str]] = []

    # --debug keeps the rendered Dockerfiles: here, not in /tmp, and checked for secrets too
    kept = tmp_path / "tmp"
    kept.mkdir()

    def dockerma(*args: str, env: dict[str, str], ok: bool) -> None:
        res = engine.dockerma(*args, env={**env, "TMPDIR": str(kept)})
        runs.append(res)
        if ok:
            assert res.returncode == 0, res.stderr + res.stdout
        else:
            _assert_clean_error(res, tls.host, "docker login")

    tag = ["-t", f"{name}:v1"]
    for debug in ([], ["--debug"]):
        dockerma(
            *debug, "build", "--dry-run", "--push", *build_opts, *tag, str(ctx), env=good, ok=True
        )
        assert "SECRET_TOKEN=***" in runs[-1].stdout  # the command is shown, its value not
    dockerma(
        "--debug", "build", "--push", "--metadata-file", str(metas[0]), *build_opts, *tag,
        str(ctx), env=good, ok=True,
    )  # fmt: skip
    status, doc, _ = tls.manifest(f"{name}:v1")
    assert status == 200 and doc is not None and set(_platforms(doc)) == set(PLATFORMS.values())
    dockerma(
        "build", "--push", "--metadata-file", str(metas[1]), *build_opts, *tag, str(ctx),
        env=good, ok=True,
    )  # fmt: skip
    for i, debug in enumerate(([], ["--debug"])):
        dockerma(
            *debug, "push", "--metadata-file", str(metas[2 + i]), f"{name}:v1", env=good, ok=True
        )

    # the failures, with and without --debug (a traceback must not carry a secret either)
    fresh = _name(tls, engine, "secrets-fail")
    # built locally first: `build --push` now refuses before building when the login is
    # missing, and `push` must have images to refuse to push
    dockerma("build", *build_opts, "-t", f"{fresh}:v1", str(plain_ctx), env=none, ok=True)
    for i, (env, debug) in enumerate(
        ((none, []), (none, ["--debug"]), (bad, []), (bad, ["--debug"]))
    ):
        dockerma(
            *debug, "build", "--push", "--metadata-file", str(metas[4 + i]), *build_opts,
            "-t", f"{fresh}:v1", str(plain_ctx), env=env, ok=False,
        )  # fmt: skip
        dockerma(*debug, "push", f"{fresh}:v1", env=env, ok=False)
        dockerma(
            *debug, "build", "--dry-run", "--push", *build_opts, *tag, str(ctx), env=env, ok=False
        )
    _assert_nothing_pushed(tls, fresh)

    assert any(m.exists() for m in metas)
    files = [f for f in kept.rglob("*") if f.is_file()]
    assert files  # what --debug kept
    _assert_no_secrets(runs, [*metas, *files], hidden)
