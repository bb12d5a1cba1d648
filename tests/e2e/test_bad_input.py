"""Bad input, table-driven: every case is refused with one clear line and leaves no trace.

Each case runs `python -m dockerma` as a subprocess against the test bed's classic engine
and checks dockerma's error contract: exit 2 for usage errors (bad options, option
values and arguments on the command line), 1 for everything else; stderr ends with exactly
one `dockerma: error: ` line and shows no traceback; the user's files are byte-identical;
no image is created (every build carries a unique --label, so even an image under an
unexpected name would show); TMPDIR, a fresh empty folder per case, is empty afterwards.

Unreadable files: the tests run as root, for whom chmod 000 changes nothing. A directory
named Dockerfile, a FIFO named Dockerfile (a naive read blocks for ever) and a symlink loop
stand in for them.

Huge Dockerfiles: 5 MB of garbage, of one instruction continued over 870 000 lines and of
520 000 unterminated heredocs are each refused within 30 s (the last two guard against
dockerfile.py becoming quadratic on them again).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.conftest import Engine, snapshot

pytestmark = pytest.mark.e2e

FIVE_MB = 5 * 1024 * 1024
DIGEST = "sha256:" + "ab" * 32
GOOD = "# dockerma archs:amd64,arm64\nFROM {base}\nRUN true\n"


# --- a registry that answers garbage -------------------------------------------------------

NOT_JSON = b"<html><body><h1>Welcome to nginx!</h1></body></html>"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def _garbage_answer(repo: str, kind: str) -> tuple[int, str, bytes, dict[str, str]]:
    """(status, content type, body, extra headers) for GET /v2/<repo>/<kind>/<ref>."""
    if kind == "blobs":
        return 200, "application/octet-stream", NOT_JSON, {}
    if repo == "html":
        return 200, "text/html", NOT_JSON, {}
    if repo == "jsonlist":
        return 200, "application/json", b"[1, 2, 3]", {}
    if repo == "strmanifests":
        return 200, OCI_INDEX, b'{"schemaVersion": 2, "manifests": "all of them"}', {}
    if repo == "nodigest":
        body = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"platform": {"os": "linux", "architecture": "amd64"}}],
        }
        return 200, OCI_INDEX, json.dumps(body).encode(), {}
    if repo == "badconfig":
        # A well-formed image manifest whose config blob is HTML (with the right digest).
        config = "sha256:" + hashlib.sha256(NOT_JSON).hexdigest()
        body = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "x", "digest": config, "size": len(NOT_JSON)},
            "layers": [],
        }
        return 200, DOCKER_MANIFEST, json.dumps(body).encode(), {}
    if repo == "liar":
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
        return 200, OCI_INDEX, body.encode(), {"Docker-Content-Digest": DIGEST}
    if repo == "err500":
        return 500, "text/html", b"<html>Internal Server Error</html>", {}
    return 404, "application/json", b'{"errors": [{"code": "NAME_UNKNOWN"}]}', {}


@pytest.fixture(scope="module")
def garbage() -> Iterator[str]:
    """A loopback 'registry' on 127.0.0.1:<free port> answering garbage, in-process."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # dockerma tries HTTPS first on loopback; a TLS hello must get an answer that starts
        # with "HTTP/" so the client sees a plain-HTTP server and falls back.
        default_request_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts == ["v2"]:
                status, ctype, body, extra = 200, "application/json", b"{}", {}
            elif len(parts) >= 4 and parts[0] == "v2" and parts[1] == "hangup":
                self.close_connection = True  # accept, read, answer nothing
                return
            elif len(parts) >= 4 and parts[0] == "v2":
                status, ctype, body, extra = _garbage_answer(parts[1], parts[-2])
            else:
                status, ctype, body, extra = 404, "text/plain", b"nope", {}
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_HEAD = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# --- the cases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input. Placeholders: {ctx} {name} {base} {garbage} {files} {tmp}."""

    id: str
    args: tuple[str, ...]
    dockerfile: str | bytes | None = GOOD  # None: no Dockerfile is written
    code: int = 1
    needles: tuple[str, ...] = ()
    setup: Callable[[Path, Path], None] | None = None  # (ctx, files)
    slow: float = 0.0  # expected upper bound in seconds when larger than the default

    def __str__(self) -> str:
        return self.id


def _huge_garbage() -> bytes:
    line = b"this is not a Dockerfile, just a very long text file\n"
    return line * (FIVE_MB // len(line))


def _huge_continuation() -> bytes:
    head = b"# dockerma archs:amd64,vax\nFROM scratch\nRUN echo \\\n"
    return head + b"  x \\\n" * (FIVE_MB // 6) + b"  end\n"


def _huge_heredocs() -> bytes:
    head = b"# dockerma archs:amd64,vax\nFROM scratch\n"
    return head + b"RUN <<EOF\n" * (FIVE_MB // 10)


def _dockerfile_dir(ctx: Path, files: Path) -> None:
    (ctx / "Dockerfile").mkdir()
    (ctx / "Dockerfile" / "inside").write_text("FROM scratch\n")


def _dockerfile_fifo(ctx: Path, files: Path) -> None:
    os.mkfifo(ctx / "Dockerfile")


def _dockerfile_loop(ctx: Path, files: Path) -> None:
    (ctx / "Dockerfile").symlink_to("Dockerfile.loop")
    (ctx / "Dockerfile.loop").symlink_to("Dockerfile")


def _file_context(ctx: Path, files: Path) -> None:
    (files / "ctx-file").write_text("not a directory\n")


BUILD = ("build", "-t", "{name}")
USAGE = 2

CASES = [
    # -- the command line: options and arguments (usage errors, exit 2) --
    Case("jobs-zero", ("build", "--jobs", "0", "{ctx}"), code=USAGE, needles=("--jobs",)),
    Case(
        "jobs-not-a-number",
        ("build", "--jobs", "many", "{ctx}"),
        code=USAGE,
        needles=("--jobs",),
    ),
    Case(
        "strategy-unknown", ("build", "--strategy", "nope", "{ctx}"), code=USAGE, needles=("nope",)
    ),
    Case(
        "log-level-unknown",
        ("--log-level", "loud", "build", "{ctx}"),
        code=USAGE,
        needles=("loud",),
    ),
    Case("no-such-command", ("bulid", "{ctx}"), code=USAGE, needles=("bulid",)),
    Case("global-H-after-build", ("build", "-H", "x", "{ctx}"), code=USAGE, needles=("-H ",)),
    Case(
        "global-tlsverify-after-build",
        ("build", "--tlsverify", "-t", "{name}", "{ctx}"),
        code=USAGE,
        needles=("--tlsverify",),
    ),
    Case("global-D-after-push", ("push", "-D", "{name}"), code=USAGE, needles=("-D ",)),
    Case("no-context", BUILD, code=USAGE, needles=("no build context",)),
    Case("two-contexts", (*BUILD, "{ctx}", "extra"), code=USAGE, needles=("one build context",)),
    Case(
        "option-without-value",
        (*BUILD, "{ctx}", "--build-arg"),
        code=USAGE,
        needles=("--build-arg",),
    ),
    Case("output-to-stdout", (*BUILD, "-o", "-", "{ctx}"), code=USAGE, needles=("-o -",)),
    Case("dockerfile-on-stdin-empty", (*BUILD, "-f", "-", "{ctx}"), needles=("empty",)),
    Case("url-context", (*BUILD, "https://example.invalid/repo.git"), code=USAGE, needles=("URL",)),
    Case(
        "metadata-file-in-missing-dir",
        ("build", "--metadata-file", "{files}/missing/meta.json", "-t", "{name}", "{ctx}"),
        code=USAGE,
        needles=("missing", "--metadata-file"),
    ),
    Case(
        "metadata-file-is-a-directory",
        ("build", "--metadata-file", "{files}", "-t", "{name}", "{ctx}"),
        code=USAGE,
        needles=("--metadata-file",),
    ),
    Case(
        "smoke-test-empty",
        ("build", "--smoke-test", "", "-t", "{name}", "{ctx}"),
        code=USAGE,
        needles=("empty smoke test",),
    ),
    Case(
        "smoke-test-bad-quoting",
        ("build", "--smoke-test", "sh -c 'echo", "-t", "{name}", "{ctx}"),
        code=USAGE,
        needles=("quoting",),
    ),
    Case(
        "builder-without-endpoint",
        ("build", "--builder", "arm64", *BUILD[1:], "{ctx}"),
        code=USAGE,
        needles=("ARCH=ENDPOINT",),
    ),
    Case("push-option-without-tag", ("build", "--push", "{ctx}"), code=USAGE, needles=("-t",)),
    Case(
        "platform-unknown",
        ("build", "--platform", "amd64,pdp11", *BUILD[1:], "{ctx}"),
        code=USAGE,
        needles=("pdp11",),
    ),
    Case(
        "platform-bad-variant",
        ("build", "--platform", "linux/arm/v9", *BUILD[1:], "{ctx}"),
        code=USAGE,
        needles=("v9",),
    ),
    Case(
        "platform-too-many-parts",
        ("build", "--platform", "linux/arm/v7/x", *BUILD[1:], "{ctx}"),
        code=USAGE,
        needles=("linux/arm/v7/x",),
    ),
    Case(
        "platform-empty",
        ("build", "--platform", ",", *BUILD[1:], "{ctx}"),
        needles=("no architectures",),
    ),
    # -- tags --
    Case("tag-empty", ("build", "-t", "", "{ctx}"), code=USAGE, needles=("-t",)),
    Case(
        "tag-bad-chars", ("build", "-t", "app:v1!", "{ctx}"), code=USAGE, needles=("invalid tag",)
    ),
    Case(
        "tag-uppercase-name",
        ("build", "-t", "Team/App:v1", "{ctx}"),
        code=USAGE,
        needles=("invalid image name",),
    ),
    Case(
        "tag-space",
        ("build", "-t", "app:v 1", "{ctx}"),
        code=USAGE,
        needles=("invalid image reference",),
    ),
    Case(
        "tag-empty-after-colon",
        ("build", "-t", "app:", "{ctx}"),
        code=USAGE,
        needles=("invalid tag",),
    ),
    Case(
        "tag-starts-with-dot",
        ("build", "-t", "app:.v1", "{ctx}"),
        code=USAGE,
        needles=("invalid tag",),
    ),
    Case(
        "tag-overflows-with-suffix",
        ("build", "-t", "{name}:" + "v" * 124, "{ctx}"),  # 124 + "-arm64" > 128
        code=USAGE,
        needles=("128",),
    ),
    Case(
        "tag-with-digest",
        ("build", "-t", "app@" + DIGEST, "{ctx}"),
        code=USAGE,
        needles=("digest",),
    ),
    # -- push --
    Case("push-no-name", ("push",), code=USAGE, needles=("one image name",)),
    Case("push-two-names", ("push", "{name}:a", "{name}:b"), code=USAGE, needles=("got 2",)),
    Case("push-digest", ("push", "{name}@" + DIGEST), code=USAGE, needles=("digest",)),
    Case("push-bad-name", ("push", "team/UPPER:v1"), code=USAGE, needles=("invalid image name",)),
    Case(
        "push-smoke-test-empty",
        ("push", "--smoke-test", "", "{name}:v1"),
        code=USAGE,
        needles=("empty smoke test",),
    ),
    Case("push-nothing-built", ("push", "{name}:v1"), needles=("no per-arch images",)),
    # -- the directive --
    Case("directive-missing", (*BUILD, "{ctx}"), "FROM {base}\n", needles=("no architectures",)),
    Case(
        "directive-garbled-keyword",
        (*BUILD, "{ctx}"),
        "# dockerma arch:amd64\nFROM {base}\n",
        needles=("not a dockerma directive",),
    ),
    Case(
        "directive-no-colon",
        (*BUILD, "{ctx}"),
        "# dockerma archs amd64,arm64\nFROM {base}\n",
        needles=("not a dockerma directive",),
    ),
    Case(
        "directive-empty",
        (*BUILD, "{ctx}"),
        "# dockerma archs:\nFROM {base}\n",
        needles=("names no architecture",),
    ),
    Case(
        "directive-duplicate",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\n# dockerma archs:arm64\nFROM {base}\n",
        needles=("second archs directive",),
    ),
    Case(
        "directive-unknown-arch",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64,sparc\nFROM {base}\n",
        needles=("sparc",),
    ),
    Case(
        "directive-after-from",
        (*BUILD, "{ctx}"),
        "FROM {base}\n# dockerma archs:amd64\n",
        needles=("no architectures given", "line 2", "after the first instruction", "--platform"),
    ),
    Case(
        "directive-smoke-empty",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\n# dockerma smoke:\nFROM {base}\n",
        needles=("names no command",),
    ),
    Case(
        "directive-smoke-bad-quoting",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\n# dockerma smoke:sh -c 'x\nFROM {base}\n",
        needles=("quoting",),
    ),
    # -- the Dockerfile --
    Case(
        "dockerfile-binary",
        (*BUILD, "{ctx}"),
        b"\x7fELF\x02\x01\x01\x00\x00\x00" * 50,
        needles=("binary",),
    ),
    Case("dockerfile-empty", (*BUILD, "{ctx}"), "", needles=("empty",)),
    Case("dockerfile-blank", (*BUILD, "{ctx}"), " \n\t\n\r\n", needles=("empty",)),
    Case(
        "dockerfile-comments-only",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\n# nothing else\n",
        needles=("no FROM",),
    ),
    Case(
        "dockerfile-latin1",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\n# café\nFROM {base}\n".encode("latin-1"),
        needles=("not UTF-8",),
    ),
    Case(
        "dockerfile-utf16",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nFROM {base}\n".encode("utf-16"),
        needles=("binary",),
    ),
    Case(
        "dockerfile-huge-garbage",
        (*BUILD, "{ctx}"),
        _huge_garbage(),
        needles=("before the first FROM",),
        slow=30,
    ),
    Case(
        "dockerfile-huge-continuation",
        (*BUILD, "{ctx}"),
        _huge_continuation(),
        needles=("vax",),
        slow=30,
    ),
    Case(
        "dockerfile-huge-heredocs", (*BUILD, "{ctx}"), _huge_heredocs(), needles=("vax",), slow=30
    ),
    Case(
        "instruction-before-from",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nRUN true\nFROM {base}\n",
        needles=("before the first FROM",),
    ),
    Case(
        "from-dangling-as",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nFROM {base} AS\n",
        needles=("FROM [--platform",),
    ),
    Case(
        "from-undeclared-arg",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nFROM $NOPE\n",
        needles=("$NOPE",),
    ),
    Case(
        "from-arg-without-value",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nARG BASE\nFROM ${{BASE}}\n",
        needles=("has no value",),
    ),
    Case(
        "from-arg-chain-unresolved",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nARG A\nARG B=$A/x\nFROM $B\n",
        needles=("$A", "needed by B"),
    ),
    Case(
        "from-unclosed-brace",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nARG B=x\nFROM ${{B\n",
        needles=("closing }",),
    ),
    Case(
        "from-unterminated-quote",
        (*BUILD, "{ctx}"),
        '# dockerma archs:amd64\nFROM "{base}\n',
        needles=("unterminated",),
    ),
    Case(
        "from-empty-after-args",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nARG B=\nFROM $B\n",
        needles=("empty image name",),
    ),
    Case(
        "from-bad-reference",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nFROM Not/Valid:x\n",
        needles=("invalid image name",),
    ),
    Case(
        "from-platform-unknown",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nFROM --platform=linux/vax {base}\n",
        needles=("vax",),
    ),
    Case(
        "escape-directive-bad",
        (*BUILD, "{ctx}"),
        "# escape=x\n# dockerma archs:amd64\nFROM {base}\n",
        needles=("escape",),
    ),
    Case("target-missing", (*BUILD, "--target", "nosuch", "{ctx}"), needles=("nosuch",)),
    Case(
        "base-not-in-registry",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nFROM {registry}/dockerma/nosuch:1\n",
        needles=("not found",),
    ),
    Case(
        "base-lacks-arch",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64,riscv64\nFROM {base}\n",
        needles=("riscv64", "linux/arm64"),
    ),
    # -- the context and -f --
    Case("context-missing", (*BUILD, "{files}/nope"), needles=("does not exist",)),
    Case(
        "context-is-a-file",
        (*BUILD, "{files}/ctx-file"),
        setup=_file_context,
        needles=("not a directory",),
    ),
    Case("dockerfile-missing", (*BUILD, "{ctx}"), None, needles=("Dockerfile not found",)),
    Case(
        "f-points-nowhere",
        (*BUILD, "-f", "{files}/nope/Dockerfile", "{ctx}"),
        needles=("not found",),
    ),
    Case("f-is-a-directory", (*BUILD, "-f", "{files}", "{ctx}"), needles=("is a directory",)),
    Case(
        "dockerfile-is-a-directory",
        (*BUILD, "{ctx}"),
        None,
        setup=_dockerfile_dir,
        needles=("is a directory",),
    ),
    Case(
        "dockerfile-is-a-fifo",
        (*BUILD, "{ctx}"),
        None,
        setup=_dockerfile_fifo,
        needles=("not a regular file",),
    ),
    Case(
        "dockerfile-symlink-loop",
        (*BUILD, "{ctx}"),
        None,
        setup=_dockerfile_loop,
        needles=("cannot read",),
    ),
    # -- a base image in a registry that answers garbage --
    Case(
        "registry-html",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nFROM {garbage}/html/base:1\n",
        needles=("cannot read",),
    ),
    Case(
        "registry-json-list",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nFROM {garbage}/jsonlist/base:1\n",
        needles=("cannot read",),
    ),
    Case(
        "registry-manifests-string",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nFROM {garbage}/strmanifests/base:1\n",
        needles=("cannot read",),
    ),
    Case(
        "registry-entry-without-digest",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nFROM {garbage}/nodigest/base:1\n",
        needles=("cannot read",),
    ),
    Case(
        "registry-config-not-json",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nFROM {garbage}/badconfig/base:1\n",
        needles=("cannot read",),
    ),
    Case(
        "registry-lying-digest",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nFROM {garbage}/liar/base:1\n",
        needles=("altered",),
    ),
    Case(
        "registry-500",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nFROM {garbage}/err500/base:1\n",
        needles=("500",),
        slow=40,
    ),
    Case(
        "registry-hangs-up",
        (*BUILD, "{ctx}"),
        "# dockerma archs:amd64\nFROM {garbage}/hangup/base:1\n",
        needles=("cannot reach",),
        slow=40,
    ),
]


def _entries(root: Path, skip: Path) -> dict[str, str]:
    """Every path under root (but skip) and its kind: new, removed or replaced ones show."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p == skip or skip in p.parents:
            continue
        mode = p.lstat().st_mode
        kind = "dir" if stat.S_ISDIR(mode) else "link" if stat.S_ISLNK(mode) else "fifo"
        out[str(p.relative_to(root))] = "file" if stat.S_ISREG(mode) else kind
    return out


def _images_with_label(engine: Engine, label: str) -> list[str]:
    res = engine.docker("image", "ls", "-a", "-q", "--filter", f"label={label}")
    return res.stdout.split()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_refused_cleanly(classic: Engine, garbage: str, tmp_path: Path, case: Case) -> None:
    ctx, files, tmpdir = tmp_path / "ctx", tmp_path / "files", tmp_path / "tmp"
    for d in (ctx, files, tmpdir):
        d.mkdir()
    name = classic.name_for("badinput")
    values = {
        "ctx": str(ctx),
        "files": str(files),
        "name": name,
        "base": classic.base,
        "registry": classic.registry,
        "garbage": garbage,
    }
    if case.dockerfile is not None:
        text = case.dockerfile
        data = text if isinstance(text, bytes) else text.format(**values).encode()
        (ctx / "Dockerfile").write_bytes(data)
    if case.setup is not None:
        case.setup(ctx, files)
    args = [a.format(**values) for a in case.args]
    label = f"dockerma.test.badinput={uuid.uuid4().hex}"
    if "build" in args:  # any image made, under whatever name, carries this label
        at = args.index("build") + 1
        args[at:at] = ["--label", label]
    before = snapshot(tmp_path)
    entries = _entries(tmp_path, tmpdir)

    started = time.monotonic()
    res = classic.dockerma(*args, cwd=files, env={"TMPDIR": str(tmpdir)}, timeout=120)
    elapsed = time.monotonic() - started

    shown = f"args={args}\nstdout:\n{res.stdout[-2000:]}\nstderr:\n{res.stderr[-3000:]}"
    assert res.returncode == case.code, shown
    lines = res.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("dockerma: error: "), shown
    assert sum(line.startswith("dockerma: error: ") for line in lines) == 1, shown
    assert "Traceback" not in res.stderr, shown
    assert "unexpected" not in lines[-1], shown
    for needle in case.needles:
        assert needle in lines[-1], shown
    assert elapsed < (case.slow or 20), f"took {elapsed:.1f}s\n{shown}"
    assert snapshot(tmp_path) == before
    assert _entries(tmp_path, tmpdir) == entries
    assert list(tmpdir.iterdir()) == []
    assert _images_with_label(classic, label) == []
    listed = classic.docker("image", "ls", "-q", name).stdout
    assert listed.strip() == "", listed


def test_case_count() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize(
    ("directive", "cli", "expected"),
    [
        ("amd64,x86_64,AMD64,linux/amd64,x86-64", (), ["amd64"]),
        ("arm,armhf,arm/v7,armv7l,arm32v7,amd64", (), ["arm", "amd64"]),
        ("amd64", ("--platform", "arm64,aarch64,arm64/v8,linux/arm64,armv8"), ["arm64"]),
    ],
    ids=["amd64-aliases", "arm-aliases", "cli-arm64-aliases"],
)
def test_duplicate_architectures_are_built_once(
    classic: Engine, tmp_path: Path, directive: str, cli: tuple[str, ...], expected: list[str]
) -> None:
    # No RUN: nothing runs under emulation, so this stays quick.
    ctx, tmpdir = tmp_path / "ctx", tmp_path / "tmp"
    ctx.mkdir()
    tmpdir.mkdir()
    (ctx / "Dockerfile").write_text(
        f"# dockerma archs:{directive}\nFROM {classic.base}\nLABEL dup=1\n"
    )
    before = snapshot(ctx)
    name = classic.name_for("dups")
    res = classic.dockerma("build", *cli, "-t", f"{name}:v1", str(ctx), env={"TMPDIR": str(tmpdir)})
    try:
        assert res.returncode == 0, res.stderr + res.stdout
        tags = classic.docker("image", "ls", "--format", "{{.Tag}}", name).stdout.split()
        assert sorted(tags) == sorted(f"v1-{s}" for s in expected)
        # one summary row, and one docker build, per architecture
        rows = [line.split()[0] for line in res.stdout.splitlines() if line.endswith(" ok")]
        assert rows == expected, res.stdout
        builds = [line for line in res.stdout.splitlines() if "Successfully built" in line]
        assert len(builds) == len(expected), res.stdout
        assert snapshot(ctx) == before
        assert list(tmpdir.iterdir()) == []
    finally:
        made = classic.docker("image", "ls", "--format", "{{.Tag}}", name).stdout.split()
        for tag in made:
            classic.docker("image", "rm", f"{name}:{tag}", check=False)


@pytest.mark.parametrize(
    ("dockerfile", "cli", "expected"),
    [
        (
            "# dockerma archs:amd64\nFROM {base}\n# dockerma archs:sparc\nLABEL late=1\n",
            (),
            "amd64",
        ),
        ("FROM {base}\n# dockerma archs:arm64\nLABEL late=1\n", ("--platform", "amd64"), "amd64"),
    ],
    ids=["earlier-comment-rules", "platform-overrides"],
)
def test_archs_comment_after_the_first_instruction_is_not_read(
    classic: Engine, tmp_path: Path, dockerfile: str, cli: tuple[str, ...], expected: str
) -> None:
    # The comment is read before the first instruction (README); a later one is an
    # ordinary comment, neither an error nor a second list.
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile.format(base=classic.base))
    name = classic.name_for("late")
    res = classic.dockerma("build", *cli, "-t", f"{name}:v1", str(ctx))
    try:
        assert res.returncode == 0, res.stderr + res.stdout
        tags = classic.docker("image", "ls", "--format", "{{.Tag}}", name).stdout.split()
        assert tags == [f"v1-{expected}"]
    finally:
        for tag in classic.docker("image", "ls", "--format", "{{.Tag}}", name).stdout.split():
            classic.docker("image", "rm", f"{name}:{tag}", check=False)
