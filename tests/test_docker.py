"""engine/docker.py: global options, the environment, errors, output decoding, redaction, read-ahead."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dockerma.core.manifests import DOCKER_MANIFEST
from dockerma.core.masking import redact
from dockerma.engine.docker import Docker, GlobalOptions
from dockerma.engine.process import running_children
from dockerma.engine.readahead import ReadAhead
from dockerma.errors import DockerError, DockerNotFound
from dockerma.registry.client import Manifest

from .conftest import FakeDocker

INFO = {
    "Architecture": "x86_64",
    "ClientInfo": {"Plugins": [{"Name": "buildx"}]},
    "DriverStatus": [["Backing Filesystem", "extfs"]],
    "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}},
}
INFO_RULE = {"match": ["info"], "stdout": json.dumps(INFO)}

GLOBAL_ARGS = [
    "-H",
    "tcp://x:1",
    "--tlsverify",
    "--tlscacert",
    "ca",
    "--tlscert",
    "c",
    "--tlskey",
    "k",
    "--config",
    "D",
]
# The same options as GlobalOptions.argv() renders them.
GLOBAL_PREFIX = [
    "--config",
    "D",
    "--host",
    "tcp://x:1",
    "--tlscacert",
    "ca",
    "--tlscert",
    "c",
    "--tlskey",
    "k",
    "--tlsverify",
]


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (GlobalOptions(), []),
        (GlobalOptions(hosts=("tcp://x:1",)), ["--host", "tcp://x:1"]),
        (
            GlobalOptions(hosts=("unix:///a.sock", "tcp://b:2")),
            ["--host", "unix:///a.sock", "--host", "tcp://b:2"],
        ),
        (GlobalOptions(context="arm-box"), ["--context", "arm-box"]),
        (GlobalOptions(config="/etc/dc"), ["--config", "/etc/dc"]),
        (GlobalOptions(debug=True), ["--debug"]),
        (GlobalOptions(log_level="warn"), ["--log-level", "warn"]),
        (GlobalOptions(tls=True), ["--tls"]),
        (GlobalOptions(tlscacert="ca.pem"), ["--tlscacert", "ca.pem"]),
        (GlobalOptions(tlscert="cert.pem"), ["--tlscert", "cert.pem"]),
        (GlobalOptions(tlskey="key.pem"), ["--tlskey", "key.pem"]),
        (GlobalOptions(tlsverify=True), ["--tlsverify"]),
        (
            GlobalOptions(
                hosts=("tcp://x:1",),
                config="D",
                tlsverify=True,
                tlscacert="ca",
                tlscert="c",
                tlskey="k",
            ),
            GLOBAL_PREFIX,
        ),
    ],
)
def test_global_options_argv(options: GlobalOptions, expected: list[str]) -> None:
    assert options.argv() == expected
    assert Docker(options).argv(["ps"]) == ["docker", *expected, "ps"]


@pytest.mark.parametrize(
    ("endpoint", "hosts", "context"),
    [
        ("ssh://ci@arm-box", ("ssh://ci@arm-box",), None),
        ("unix:///run/arm.sock", ("unix:///run/arm.sock",), None),
        ("tcp://10.0.0.2:2376", ("tcp://10.0.0.2:2376",), None),
        ("arm-box", (), "arm-box"),
    ],
)
def test_for_host(endpoint: str, hosts: tuple[str, ...], context: str | None) -> None:
    base = Docker(GlobalOptions(hosts=("tcp://x:1",), context="old", tlsverify=True))
    moved = base.for_host(endpoint)
    assert (moved.options.hosts, moved.options.context) == (hosts, context)
    assert moved.options.tlsverify


def test_environment_sets_experimental(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CLI_EXPERIMENTAL", "disabled")
    monkeypatch.setenv("DOCKER_HOST", "tcp://y:2")
    env = Docker().environ()
    assert env["DOCKER_CLI_EXPERIMENTAL"] == "enabled"
    assert env["DOCKER_HOST"] == "tcp://y:2"


def test_every_call_gets_experimental_env(
    fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://y:2")
    d = Docker()
    d.run("version")
    d.capture("image", "ls")
    d.stream("ps", on_line=lambda line: None)
    records = fake_docker.records()
    assert [r["argv"] for r in records] == [["version"], ["image", "ls"], ["ps"]]
    assert all(r["env"]["DOCKER_CLI_EXPERIMENTAL"] == "enabled" for r in records)
    assert all(r["env"]["DOCKER_HOST"] == "tcp://y:2" for r in records)


def _assert_prefixed(fake: FakeDocker, expected_commands: list[str]) -> None:
    records = fake.records()
    assert records, "dockerma made no docker call"
    for record in records:
        assert record["argv"][: len(GLOBAL_PREFIX)] == GLOBAL_PREFIX, record["argv"]
        assert record["env"]["DOCKER_CLI_EXPERIMENTAL"] == "enabled", record["argv"]
    commands = [r["argv"][len(GLOBAL_PREFIX)] for r in records]
    missing = [c for c in expected_commands if c not in commands]
    assert not missing, f"no docker {missing} call among {commands}"


def test_global_options_reach_every_build_call(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("# dockerma archs:amd64,386:\nFROM scratch\nCOPY hello /\n")
    (ctx / "hello").write_text("hi\n")
    monkeypatch.chdir(tmp_path)
    iid = {"amd64": sha("amd64"), "386": sha("386")}
    tag = "localhost:5000/team/app:v1"
    rules: list[dict[str, Any]] = [INFO_RULE]
    for arch, image_id in iid.items():
        rules.append({"match": ["build", "--platform", f"linux/{arch}"], "iid": image_id})
        inspected = json.dumps([{"Id": image_id, "Os": "linux", "Architecture": arch}])
        # By id or by per-arch tag: either is how dockerma may look at what it built.
        for ref in (image_id, f"{tag}-{arch}"):
            rules.append({"match": ["image", "inspect", ref], "stdout": inspected})
    fake_docker.script(rules)
    res = run_dockerma(*GLOBAL_ARGS, "build", "-t", tag, "ctx")
    assert res.code == 0, res.err
    _assert_prefixed(fake_docker, ["info", "build", "image"])
    builds = [c[len(GLOBAL_PREFIX) :] for c in fake_docker.calls() if "build" in c]
    assert sorted(b[:3] for b in builds) == [
        ["build", "--platform", "linux/386"],
        ["build", "--platform", "linux/amd64"],
    ]
    assert all(b[-1] == "ctx" for b in builds)


class FakeRegistry:
    """Stands in for the registry dockerma talks to directly (the fake docker cannot)."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.stored: dict[str, Manifest] = {}

    def check_push_access(self, ref: Any) -> None:
        pass

    def finish(self) -> None:
        pass

    def get_manifest(self, ref: Any) -> Manifest:
        if str(ref) in self.stored:
            return self.stored[str(ref)]
        body = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST}).encode()
        return Manifest(DOCKER_MANIFEST, sha(str(ref)), body)

    def put_manifest(self, ref: Any, body: bytes, media_type: str) -> str:
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        self.stored[str(ref)] = Manifest(media_type, digest, body)
        return digest


def test_global_options_reach_every_push_call(
    fake_docker: FakeDocker, run_dockerma: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dockerma.flows.push.Registry", FakeRegistry)
    name = "localhost:5000/team/app"
    rows = [
        {"ID": "aaaaaaaaaaaa", "Repository": name, "Tag": "v1-amd64"},
        {"ID": "bbbbbbbbbbbb", "Repository": name, "Tag": "v1-arm64"},
    ]
    inspected = [
        {"Id": sha("a"), "Os": "linux", "Architecture": "amd64", "RepoTags": [f"{name}:v1-amd64"]},
        {
            "Id": sha("b"),
            "Os": "linux",
            "Architecture": "arm64",
            "Variant": "v8",
            "RepoTags": [f"{name}:v1-arm64"],
        },
    ]
    fake_docker.script(
        [
            INFO_RULE,
            {"match": ["image", "ls"], "stdout": "".join(json.dumps(r) + "\n" for r in rows)},
            {"match": ["image", "inspect"], "stdout": json.dumps(inspected)},
            # what docker push reports it uploaded: what FakeRegistry then holds for the tag
            *(
                {
                    "match": ["push", f"{name}:v1-{arch}"],
                    "stdout": f"v1-{arch}: digest: {sha(f'{name}:v1-{arch}')} size: 528\n",
                }
                for arch in ("amd64", "arm64")
            ),
        ]
    )
    res = run_dockerma(*GLOBAL_ARGS, "push", f"{name}:v1")
    assert res.code == 0, res.err
    _assert_prefixed(fake_docker, ["info", "image", "push"])
    pushed = sorted(c[-1] for c in fake_docker.calls() if "push" in c)
    assert pushed == [f"{name}:v1-amd64", f"{name}:v1-arm64"]


def test_missing_binary_is_one_line() -> None:
    with pytest.raises(DockerNotFound) as info:
        Docker(binary="/nonexistent/docker").capture("version")
    message = str(info.value)
    assert "\n" not in message
    assert "/nonexistent/docker" in message
    assert "install" in message


def test_missing_binary_through_run_and_stream() -> None:
    d = Docker(binary="/nonexistent/docker")
    with pytest.raises(DockerNotFound):
        d.run("version")
    with pytest.raises(DockerNotFound):
        d.stream("version", on_line=lambda line: None)


def test_failing_capture_raises_docker_error(fake_docker: FakeDocker) -> None:
    fake_docker.script(
        [
            {
                "match": ["pull", "app"],
                "stdout": "pulling\n",
                "stderr": "step 1\nError response from daemon: manifest unknown\n\n",
                "exit": 3,
            }
        ]
    )
    with pytest.raises(DockerError) as info:
        Docker(GlobalOptions(context="c1")).capture("pull", "app", platform="linux/arm64")
    err = info.value
    assert err.argv == ("docker", "--context", "c1", "pull", "app")
    assert err.returncode == 3
    message = str(err)
    assert "\n" not in message
    assert "docker --context c1 pull app" in message
    assert "exit code 3" in message
    assert "linux/arm64" in message
    assert message.endswith("Error response from daemon: manifest unknown")
    assert err.details().splitlines() == [
        "command: docker --context c1 pull app",
        "return code: 3",
        "output:",
        "    step 1",
        "    Error response from daemon: manifest unknown",
    ]


def test_failing_stream_raises_with_last_line(fake_docker: FakeDocker) -> None:
    fake_docker.script(
        [{"match": ["build"], "stdout": "#1 load\n", "stderr": "ERROR: boom\n", "exit": 1}]
    )
    lines: list[str] = []
    with pytest.raises(DockerError) as info:
        Docker().stream("build", ".", on_line=lines.append, platform="linux/arm/v7")
    assert lines == ["#1 load", "ERROR: boom"]
    assert info.value.returncode == 1
    assert str(info.value).endswith("ERROR: boom")
    assert "for linux/arm/v7" in str(info.value)


def test_stream_without_check_returns_the_code(fake_docker: FakeDocker) -> None:
    fake_docker.script([{"match": ["run"], "stdout": "out\n", "exit": 7}])
    assert Docker().stream("run", "img", on_line=lambda line: None, check=False) == 7


def test_secret_build_args_never_in_errors(fake_docker: FakeDocker) -> None:
    fake_docker.script([{"match": ["build"], "stderr": "failed\n", "exit": 1}])
    with pytest.raises(DockerError) as info:
        Docker().capture("build", "--build-arg", "PASSWORD=hunter2", ".")
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in info.value.details()
    assert "PASSWORD=***" in str(info.value)


# A "docker" that is the Python interpreter, to produce exact bytes.
PYTHON = Docker(binary=sys.executable)


def test_non_utf8_capture_and_run_use_replacement() -> None:
    code = "import sys; sys.stdout.buffer.write(b'a\\xffb\\n'); sys.stderr.buffer.write(b'e\\xfe')"
    assert PYTHON.capture("-c", code) == "a\ufffdb\n"
    res = PYTHON.run("-c", code)
    assert (res.returncode, res.stdout, res.stderr) == (0, "a\ufffdb\n", "e\ufffd")


def test_stream_hands_whole_decoded_lines() -> None:
    code = (
        "import sys, time\n"
        "w = sys.stdout.buffer\n"
        "w.write(b'one \\xff\\n'); w.write(b'hal'); w.flush(); time.sleep(0.1)\n"
        "w.write(b'f line\\r\\n'); w.flush(); time.sleep(0.1)\n"
        "sys.stderr.buffer.write(b'err \\xfe\\n'); sys.stderr.flush()\n"
        "w.write(b'no newline at end'); w.flush()\n"
    )
    lines: list[str] = []
    assert PYTHON.stream("-c", code, on_line=lines.append) == 0
    assert lines == ["one \ufffd", "half line", "err \ufffd", "no newline at end"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["build", "--build-arg", "PASSWORD=x", "."],
            ["build", "--build-arg", "PASSWORD=***", "."],
        ),
        (["build", "--build-arg=API_TOKEN=y", "."], ["build", "--build-arg=API_TOKEN=***", "."]),
        (["build", "--build-arg", "VERSION=1", "."], ["build", "--build-arg", "VERSION=1", "."]),
        (["build", "--build-arg=VERSION=1"], ["build", "--build-arg=VERSION=1"]),
        (["build", "--build-arg", "db_password=a=b"], ["build", "--build-arg", "db_password=***"]),
        (["build", "--build-arg", "SSH_KEY=k"], ["build", "--build-arg", "SSH_KEY=***"]),
        (["build", "--build-arg", "AWS_SECRET"], ["build", "--build-arg", "AWS_SECRET"]),
        (["build", "--label", "PASSWORD=x"], ["build", "--label", "PASSWORD=x"]),
        (["build", "--build-arg"], ["build", "--build-arg"]),
    ],
)
def test_redact(argv: list[str], expected: list[str]) -> None:
    assert redact(argv) == expected


def test_a_silent_docker_stub_still_builds_with_a_warning(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A docker stand-in that records argv and answers nothing: the build runs, the platform
    # check says it could not look, and the argv of each per-arch build is as documented.
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("# dockerma archs:amd64,arm64:\nFROM scratch\nCOPY hello /\n")
    (ctx / "hello").write_text("hi\n")
    monkeypatch.chdir(tmp_path)
    fake_docker.script([])
    res = run_dockerma("build", "--build-arg", "A=1", "-t", "app:v1", "ctx")
    assert res.code == 0, res.err
    assert "platform was not checked" in res.out
    builds = [c for c in fake_docker.calls() if c[0] == "build"]
    assert len(builds) == 2
    for call in builds:
        platform = call[call.index("--platform") + 1]
        suffix = platform.split("/")[1]
        assert call[call.index("-t") + 1] == f"app:v1-{suffix}"
        assert call[-3:] == ["--build-arg", "A=1", "ctx"]


def test_read_ahead_call_is_taken_once(fake_docker: FakeDocker) -> None:
    fake_docker.script([{"match": ["info"], "stdout": "answer\n"}])
    ahead = ReadAhead()
    d = Docker(GlobalOptions(context="c1"), read_ahead=ahead)
    ahead.start(d, "info", "--format", "{{json .}}")
    ahead.start(d, "info", "--format", "{{json .}}")  # started once
    assert d.capture("info", "--format", "{{json .}}") == "answer\n"
    assert len(fake_docker.calls()) == 1
    # taken: the next call runs docker again; another engine's call never takes it
    ahead.start(d, "info", "--format", "{{json .}}")
    assert d.for_host("c2").capture("info", "--format", "{{json .}}") == "answer\n"
    assert d.capture("info", "--format", "{{json .}}") == "answer\n"
    assert len(fake_docker.calls()) == 3


def test_read_ahead_failure_is_raised_by_the_capture(fake_docker: FakeDocker) -> None:
    fake_docker.script([{"match": ["info"], "stderr": "no daemon\n", "exit": 1}])
    ahead = ReadAhead()
    ahead.start(Docker(), "info")
    with pytest.raises(DockerError, match="no daemon"):
        Docker(read_ahead=ahead).capture("info")


def test_unused_read_ahead_is_stopped(fake_docker: FakeDocker) -> None:
    fake_docker.script([{"match": ["info"], "sleep": 30}])
    ahead = ReadAhead()
    ahead.start(Docker(), "info")
    assert running_children() == 1
    start = time.monotonic()
    ahead.drop()
    assert time.monotonic() - start < 5
    assert running_children() == 0
