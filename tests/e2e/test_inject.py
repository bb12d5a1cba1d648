"""--strategy inject end to end, with the kernel's QEMU handlers switched off during the build.

The real cross-build image (monsonnl/qemu-wrap-build-files) lives on Docker Hub, out of reach
here, so a stand-in with the same layout, made of Debian packages (tests/e2e/crossbuild/), is
pushed to the test bed's registry once (again only when its content changes).
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockerma.core.inject import SUPPORTED
from tests.e2e.conftest import REQUIRE, Engine, snapshot, write
from tests.e2e.crossbuild import standin

pytestmark = pytest.mark.e2e

MACHINE = {"amd64": "x86_64", "arm64": "aarch64", "arm": "armv7l"}
PLATFORM = {"amd64": "linux/amd64", "arm64": "linux/arm64", "arm": "linux/arm/v7"}
QEMU = {"arm64": "aarch64", "arm": "arm"}
BINFMT = Path("/proc/sys/fs/binfmt_misc")
MANIFEST = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.manifest.v1+json"
)

# Only what the stand-in's QEMU can do without binfmt_misc (see standin.py): no `cat`, no pipes.
# Every stage gets the shim, the $BUILDPLATFORM one the build machine's (x86_64) no-op files.
DOCKERFILE = """\
# dockerma archs:amd64,arm64,arm
FROM {base} AS builder
RUN uname -m > /built-on
RUN mkdir -p /out && cp /built-on /out/machine
FROM --platform=$BUILDPLATFORM {base} AS native
RUN uname -m > /build-machine
FROM {base}
COPY --from=0 /out/machine /from-stage-0
COPY --from=native /build-machine /build-machine
RUN uname -m > /built-on
CMD ["cat", "/built-on"]
"""


def _unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"test bed required (DOCKERMA_E2E=require) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cross_build_image(classic: Engine, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The stand-in cross-build image, an amd64 image in the test bed's registry."""
    ref = f"{classic.registry}/dockerma/cross-build:test"
    try:
        ctx = standin.context(tmp_path_factory.mktemp("cross-build"))
    except standin.Missing as e:
        _unavailable(str(e))
    content = standin.content_hash(ctx)
    if _label(ref, standin.LABEL) != content:
        classic.docker(
            "build",
            "--platform",
            "linux/amd64",
            "--label",
            f"{standin.LABEL}={content}",
            "-t",
            ref,
            str(ctx),
        )
        classic.docker("push", ref)
        assert _label(ref, standin.LABEL) == content
    return ref


def _label(ref: str, name: str) -> str | None:
    """A label of a single-platform image in a plain-HTTP registry; None when it is not there."""
    host, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    try:
        req = urllib.request.Request(
            f"http://{host}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            digest = json.loads(r.read())["config"]["digest"]
        with urllib.request.urlopen(f"http://{host}/v2/{repo}/blobs/{digest}", timeout=10) as r:
            config = json.loads(r.read())
    except (urllib.error.URLError, KeyError, ValueError):
        return None
    return ((config.get("config") or {}).get("Labels") or {}).get(name)


@contextlib.contextmanager
def binfmt_disabled(*handlers: str) -> Iterator[None]:
    """The QEMU binfmt_misc handlers off, and on again afterwards, whatever happens.

    Machine-wide: anything else emulating meanwhile fails (CI runs no other test then).
    """
    enabled = []
    for name in handlers:
        path = BINFMT / name
        if not path.exists():
            continue  # not registered: the machine already has no such handler
        if not os.access(path, os.W_OK):
            _unavailable(f"cannot switch {path} off (needs root)")
        if path.read_text().startswith("enabled"):
            enabled.append(path)
    try:
        for path in enabled:
            path.write_text("0")
        for path in enabled:
            assert path.read_text().startswith("disabled")
        yield
    finally:
        for path in enabled:
            path.write_text("1")


def test_three_arch_build_without_binfmt(
    engine: Engine, cross_build_image: str, tmp_path: Path
) -> None:
    ctx = write(tmp_path / "ctx", DOCKERFILE.format(base=engine.base))
    before = snapshot(ctx)
    name = engine.name_for("inject")
    with binfmt_disabled(*(f"qemu-{q}" for q in QEMU.values())):
        res = engine.dockerma(
            "build",
            "--strategy",
            "inject",
            "--cross-build-image",
            cross_build_image,
            "-t",
            f"{name}:v1",
            str(ctx),
        )
    assert res.returncode == 0, res.stderr + res.stdout
    assert snapshot(ctx) == before

    for suffix, machine in MACHINE.items():  # binfmt_misc is back: the images run
        ref = f"{name}:v1-{suffix}"
        platform = PLATFORM[suffix]
        info = engine.inspect(ref)
        assert info["Architecture"] == suffix
        if suffix == "arm":
            assert info.get("Variant") == "v7"
        assert engine.run(platform, ref, "uname", "-m") == machine
        # RUN uname -m ran in the target's machine (QEMU reports the one it emulates) ...
        assert engine.run(platform, ref) == machine
        # ... and COPY --from=0, now --from=1 past the added stage, took the builder's file
        assert engine.run(platform, ref, "cat", "/from-stage-0") == machine
        # the $BUILDPLATFORM stage ran on the build machine, with its no-op start and end
        assert engine.run(platform, ref, "cat", "/build-machine") == "x86_64"
        # the real shell is back, the shim is not active in the final image
        assert engine.run(platform, ref, "readlink", "/bin/sh") == "/bin/busybox"
        in_bin = set(engine.run(platform, ref, "ls", "-a", "/bin").split())
        assert "sh.real" not in in_bin
        # what stays behind: the cross-build files of the target's directory, copied into
        # /bin, amd64's (native here) too
        own = set(standin.files(SUPPORTED[suffix]))
        assert own <= in_bin
        others = {f for d in SUPPORTED.values() for f in standin.files(d)} - own
        assert not in_bin & others  # e.g. no QEMU in amd64's


def test_dry_run_shows_the_injected_dockerfile(
    engine: Engine, cross_build_image: str, tmp_path: Path
) -> None:
    ctx = write(tmp_path / "ctx", DOCKERFILE.format(base=engine.base))
    name = engine.name_for("inject-dry")
    res = engine.dockerma(
        "build",
        "--dry-run",
        "--strategy",
        "inject",
        "--cross-build-image",
        cross_build_image,
        "-t",
        name,
        str(ctx),
    )
    assert res.returncode == 0, res.stderr
    out = res.stdout
    repo = cross_build_image.rsplit(":", 1)[0]
    # every architecture, amd64 (native here) too, and every stage of each
    assert out.count(f"FROM {repo}@sha256:") == 3
    assert out.count(" AS dockerma_build_files") == 3
    copy = "COPY --from=dockerma_build_files /cross-build/{}/bin /bin"
    assert out.count(copy.format("arm64v8")) == 2
    assert out.count(copy.format("arm32v7")) == 2
    assert out.count(copy.format("x86_64")) == 5  # amd64's 3, the $BUILDPLATFORM stage's 2
    assert out.count('RUN ["cross-build-start"]') == out.count('RUN ["cross-build-end"]') == 9
    assert out.count("COPY --from=1 /out/machine /from-stage-0") == 3
    assert "COPY --from=0 " not in out
    assert engine.docker("image", "inspect", f"{name}:latest-arm64", check=False).returncode != 0


def test_unsupported_architecture_is_refused(engine: Engine, tmp_path: Path) -> None:
    ctx = write(tmp_path / "ctx", DOCKERFILE.format(base=engine.base))
    name = engine.name_for("inject-s390x")
    res = engine.dockerma(
        "build", "--strategy", "inject", "--platform", "amd64,s390x", "-t", name, str(ctx)
    )
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("dockerma: error: --strategy inject cannot build linux/s390x")
    assert "monsonnl/qemu-wrap-build-files" in last and "--strategy emulate" in last
    assert "Traceback" not in res.stderr
    assert engine.docker("image", "inspect", f"{name}:latest-amd64", check=False).returncode != 0


def test_non_root_user_stages_with_binfmt_present(
    engine: Engine, cross_build_image: str, tmp_path: Path
) -> None:
    """The shim also works beside binfmt_misc, and a stage's USER gets root back only around
    the shim's own steps: the images keep the user, and their real /bin/sh."""
    ctx = write(
        tmp_path / "ctx",
        f"""# dockerma archs:amd64,arm64,arm
FROM {engine.base} AS base
RUN mkdir -p /home/app && chown 1000:1000 /home/app
USER 1000:1000
RUN uname -m > /home/app/machine
FROM base
RUN id -u > /home/app/uid
""",
    )
    name = engine.name_for("inject-user")
    res = engine.dockerma(
        "build",
        "--strategy",
        "inject",
        "--cross-build-image",
        cross_build_image,
        "-t",
        name,
        str(ctx),
    )
    assert res.returncode == 0, res.stderr + res.stdout
    for suffix in ("amd64", "arm64", "arm"):
        ref = f"{name}:latest-{suffix}"
        platform = PLATFORM[suffix]
        assert engine.inspect(ref)["Config"]["User"] == "1000:1000"
        assert engine.run(platform, ref, "cat", "/home/app/machine") == MACHINE[suffix]
        assert engine.run(platform, ref, "cat", "/home/app/uid") == "1000"
        assert engine.run(platform, ref, "readlink", "/bin/sh") == "/bin/busybox"
