"""dockerma build end to end: real builds, checked with docker inspect and by running images."""

from __future__ import annotations

import json
import urllib.error

import pytest

from tests.e2e.conftest import snapshot, write

pytestmark = pytest.mark.e2e

MACHINE = {"amd64": "x86_64", "arm64": "aarch64", "arm": "armv7l"}
PLATFORM = {"amd64": "linux/amd64", "arm64": "linux/arm64", "arm": "linux/arm/v7"}


def test_three_arch_multistage_two_tags(engine, tmp_path) -> None:
    ctx = write(
        tmp_path / "ctx",
        f"""# dockerma archs:arm,amd64,arm64:
FROM {engine.base} AS builder
RUN uname -m > /machine.txt
FROM {engine.base}
COPY --from=builder /machine.txt /machine.txt
CMD ["cat", "/machine.txt"]
""",
    )
    before = snapshot(ctx)
    name = engine.name_for("multi")
    res = engine.dockerma("build", "-t", f"{name}:latest", "-t", f"{name}:v1.0", str(ctx))
    assert res.returncode == 0, res.stderr + res.stdout
    assert snapshot(ctx) == before
    for tag in ("latest", "v1.0"):
        for suffix, machine in MACHINE.items():
            ref = f"{name}:{tag}-{suffix}"
            info = engine.inspect(ref)
            assert info["Architecture"] == suffix
            if suffix == "arm":
                assert info.get("Variant") == "v7"
            assert engine.run(PLATFORM[suffix], ref) == machine
            assert engine.run(PLATFORM[suffix], ref, "uname", "-m") == machine
    # every line of the per-arch work is prefixed with its architecture, the summary closes
    assert "[arm64]" in res.stdout and "[amd64]" in res.stdout and "[arm]" in res.stdout
    assert "RESULT" in res.stdout


CASES = {
    "arg_base": (
        '# dockerma archs:amd64,arm64\nARG BASE={base}\nFROM ${{BASE}}\nRUN uname -m > /m\nCMD ["cat", "/m"]\n',
        [],
    ),
    "lowercase": (
        '# dockerma archs: amd64 , aarch64 :\nfrom {base} as first\nrun uname -m > /m\nfrom {base}\ncopy --from=first /m /m\ncmd ["cat", "/m"]\n',
        [],
    ),
    "scratch_final": (
        '# dockerma archs:amd64,arm64\nFROM {base}\nRUN uname -m > /m\nFROM scratch\nCOPY --from=0 /bin/busybox /bin/busybox\nCOPY --from=0 /m /m\nCMD ["/bin/busybox", "cat", "/m"]\n',
        [],
    ),
    "escape_directive": (
        '# escape=`\n# dockerma archs:x86_64,arm64:\nFROM {base}\nRUN uname -m `\n    > /m\nCMD ["cat", "/m"]\n',
        [],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_dockerfiles_people_write(engine, tmp_path, case: str) -> None:
    text, extra = CASES[case]
    ctx = write(tmp_path / "ctx", text.format(base=engine.base))
    name = engine.name_for(case.replace("_", "-"))
    res = engine.dockerma("build", *extra, "-t", f"{name}:t", str(ctx))
    assert res.returncode == 0, res.stderr + res.stdout
    for suffix in ("amd64", "arm64"):
        ref = f"{name}:t-{suffix}"
        assert engine.inspect(ref)["Architecture"] == suffix
        assert engine.run(PLATFORM[suffix], ref) == MACHINE[suffix]


def test_buildplatform_stage_and_targetarch(engine, tmp_path) -> None:
    ctx = write(
        tmp_path / "ctx",
        f"""# dockerma archs:amd64,arm64
FROM --platform=$BUILDPLATFORM {engine.base} AS tools
ARG TARGETARCH
RUN uname -m > /build-machine && echo "$TARGETARCH" > /targetarch
FROM {engine.base}
ARG TARGETARCH
ARG TARGETPLATFORM
COPY --from=tools /build-machine /targetarch /
RUN echo "$TARGETARCH $TARGETPLATFORM" > /final-args
CMD ["cat", "/build-machine", "/targetarch", "/final-args"]
""",
    )
    name = engine.name_for("buildplatform")
    res = engine.dockerma("build", "-t", name, str(ctx))
    assert res.returncode == 0, res.stderr + res.stdout
    for suffix in ("amd64", "arm64"):
        ref = f"{name}:latest-{suffix}"
        lines = engine.run(PLATFORM[suffix], ref).splitlines()
        assert lines == ["x86_64", suffix, f"{suffix} {PLATFORM[suffix]}"]
        assert engine.run(PLATFORM[suffix], ref, "uname", "-m") == MACHINE[suffix]


def test_docker_options_pass_through(engine, tmp_path) -> None:
    ctx = write(tmp_path / "ctx", "unused\n")
    sub = ctx / "sub"
    sub.mkdir()
    (sub / "Other.Dockerfile").write_text(
        f"""# dockerma archs:amd64,arm64
FROM {engine.base} AS first
ARG GREETING=hello
RUN echo "$GREETING" > /greeting
FROM first AS second
RUN echo second > /stage
FROM first AS third
RUN echo third > /stage
"""
    )
    name = engine.name_for("options")
    res = engine.dockerma(
        "build",
        "--build-arg",
        "GREETING=bonjour",
        "--label",
        "org.example.team=dockerma",
        "--target",
        "second",
        "-f",
        str(sub / "Other.Dockerfile"),
        "--no-cache",
        "-t",
        name,
        str(ctx),
    )
    assert res.returncode == 0, res.stderr + res.stdout
    for suffix in ("amd64", "arm64"):
        ref = f"{name}:latest-{suffix}"
        info = engine.inspect(ref)
        assert info["Config"]["Labels"]["org.example.team"] == "dockerma"
        assert engine.run(PLATFORM[suffix], ref, "cat", "/greeting", "/stage").split() == [
            "bonjour",
            "second",
        ]


def test_metadata_file_and_dry_run(engine, tmp_path, registry_get) -> None:
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64,arm64\nFROM {engine.base}\nRUN true\n")
    name = engine.name_for("meta")
    dry = engine.dockerma("build", "--dry-run", "-t", name, str(ctx))
    assert dry.returncode == 0, dry.stderr
    assert "@sha256:" in dry.stdout and "docker build --platform linux/arm64" in dry.stdout.replace(
        "docker --", "docker"
    )
    assert engine.docker("image", "inspect", f"{name}:latest-amd64", check=False).returncode != 0
    # with --push and a smoke test: every docker command shown, none run
    dry = engine.dockerma(
        "build", "--dry-run", "--push", "--smoke-test", "uname -m", "-t", name, str(ctx)
    )
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    for suffix in ("amd64", "arm64"):
        # the build command follows its header directly, as before (scripts read it there)
        header = lines.index(f"# {PLATFORM[suffix]}: command")
        assert lines[header + 1].split()[:2] == ["docker", "build"], dry.stdout
        smoke = f"--platform {PLATFORM[suffix]} --network none --entrypoint uname {name}:latest-{suffix} -m"
        assert any(
            line.startswith("docker run --rm --name ") and line.endswith(smoke) for line in lines
        )
        assert f"docker push {name}:latest-{suffix}" in lines
    assert engine.docker("image", "inspect", f"{name}:latest-amd64", check=False).returncode != 0
    with pytest.raises(urllib.error.HTTPError):
        registry_get(f"{name}:latest")
    meta = tmp_path / "meta.json"
    res = engine.dockerma("build", "--metadata-file", str(meta), "-t", name, str(ctx))
    assert res.returncode == 0, res.stderr
    doc = json.loads(meta.read_text())
    for suffix in ("amd64", "arm64"):
        entry = doc["architectures"][suffix]
        assert entry["platform"] == PLATFORM[suffix]
        assert entry["tags"] == [f"{name}:latest-{suffix}"]
        assert entry["image_id"] == engine.inspect(f"{name}:latest-{suffix}")["Id"]


def test_dockerfile_on_stdin(engine, tmp_path) -> None:
    # docker build -f - CONTEXT: the Dockerfile from stdin, the files from the directory
    ctx = write(tmp_path / "ctx", "FROM scratch\n")  # a Dockerfile that must not be used
    (ctx / "greeting").write_text("hello\n")
    before = snapshot(ctx)
    name = engine.name_for("stdin")
    dockerfile = f"# dockerma archs:amd64,arm64\nFROM {engine.base}\nCOPY greeting /greeting\n"
    res = engine.dockerma("build", "-f", "-", "-t", name, str(ctx), input=dockerfile)
    assert res.returncode == 0, res.stderr + res.stdout
    for suffix in ("amd64", "arm64"):
        ref = f"{name}:latest-{suffix}"
        assert engine.inspect(ref)["Architecture"] == suffix
        assert engine.run(PLATFORM[suffix], ref, "cat", "/greeting") == "hello"
    assert snapshot(ctx) == before


def test_legacy_builder_on_containerd_store_refused(bed, tmp_path) -> None:
    from tests.e2e.conftest import _engine

    modern = _engine("modern", bed)
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64,arm64\nFROM {modern.base}\nRUN true\n")
    name = modern.name_for("legacy")
    res = modern.dockerma("build", "-t", name, str(ctx), env={"DOCKER_BUILDKIT": "0"})
    assert res.returncode != 0
    assert "BuildKit" in res.stderr and "linux/arm64" in res.stderr
    for suffix in ("amd64", "arm64"):
        assert (
            modern.docker("image", "inspect", f"{name}:latest-{suffix}", check=False).returncode
            != 0
        )
    # native-only still works with the legacy builder, and the image is what its tag says
    res = modern.dockerma(
        "build", "--platform", "amd64", "-t", name, str(ctx), env={"DOCKER_BUILDKIT": "0"}
    )
    assert res.returncode == 0, res.stderr
    assert modern.inspect(f"{name}:latest-amd64")["Architecture"] == "amd64"


def test_buildkit_flags(engine, tmp_path) -> None:
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64,arm64\nFROM {engine.base}\nRUN true\n")
    name = engine.name_for("bkflags")
    res = engine.dockerma("build", "--provenance=false", "-t", name, str(ctx))
    if engine.name == "classic":
        assert res.returncode == 2
        assert "--provenance needs BuildKit" in res.stderr
    else:
        assert res.returncode == 0, res.stderr
        assert engine.inspect(f"{name}:latest-arm64")["Architecture"] == "arm64"


def test_cross_compile_pattern_buildplatform_stage_and_scratch_final(engine, tmp_path) -> None:
    # The Go-style Dockerfile: tools run on the build machine, the result lands in scratch.
    ctx = write(
        tmp_path / "ctx",
        f"""# dockerma archs:amd64,arm64,arm
FROM --platform=$BUILDPLATFORM {engine.base} AS build
ARG TARGETARCH
RUN mkdir /out && uname -m > /out/built-on && echo "$TARGETARCH" > /out/target
FROM scratch
COPY --from=build /out /
""",
    )
    name = engine.name_for("crosscompile")
    res = engine.dockerma("build", "-t", name, str(ctx))
    assert res.returncode == 0, res.stderr + res.stdout
    for suffix in ("amd64", "arm64", "arm"):
        ref = f"{name}:latest-{suffix}"
        info = engine.inspect(ref)
        assert info["Architecture"] == suffix
        if suffix == "arm":
            assert info.get("Variant") == "v7"
        # read the files back through a busybox container of the same platform
        out = engine.docker("create", "--platform", PLATFORM[suffix], ref, "x").stdout.strip()
        try:
            built_on = engine.docker("cp", f"{out}:/built-on", "-").stdout
            target = engine.docker("cp", f"{out}:/target", "-").stdout
        finally:
            engine.docker("rm", out)
        assert "x86_64" in built_on and suffix in target


def test_base_given_by_digest_with_port(engine, tmp_path, registry_get) -> None:
    _, list_digest = registry_get(engine.base)
    ctx = write(
        tmp_path / "ctx",
        f'# dockerma archs:amd64,arm64\nFROM {engine.base}@{list_digest}\nRUN uname -m > /m\nCMD ["cat", "/m"]\n',
    )
    name = engine.name_for("bydigest")
    res = engine.dockerma("build", "-t", f"{name}:v1", str(ctx))
    assert res.returncode == 0, res.stderr + res.stdout
    for suffix in ("amd64", "arm64"):
        assert engine.run(PLATFORM[suffix], f"{name}:v1-{suffix}") == MACHINE[suffix]


def test_quiet_build_two_archs(engine, tmp_path) -> None:
    # issue 20: BuildKit refuses -q beside the --progress=plain dockerma adds for its prefixes
    ctx = write(
        tmp_path / "ctx",
        f'# dockerma archs:amd64,arm64\nFROM {engine.base}\nRUN uname -m > /m\nCMD ["cat", "/m"]\n',
    )
    name = engine.name_for("quiet")
    res = engine.dockerma("build", "-q", "-t", f"{name}:v1", str(ctx))
    assert res.returncode == 0, res.stderr + res.stdout
    assert "failed" not in res.stdout + res.stderr
    for suffix in ("amd64", "arm64"):
        ref = f"{name}:v1-{suffix}"
        assert engine.inspect(ref)["Architecture"] == suffix
        assert f"{name}:v1-{suffix}" in res.stdout  # the summary
        assert engine.run(PLATFORM[suffix], ref) == MACHINE[suffix]


def test_classic_deprecated_notice_once_per_run(classic, tmp_path) -> None:
    ctx = write(tmp_path / "ctx", f"# dockerma archs:amd64,arm64\nFROM {classic.base}\nRUN true\n")
    name = classic.name_for("notice")
    res = classic.dockerma("build", "-t", f"{name}:v1", str(ctx))
    assert res.returncode == 0, res.stderr + res.stdout
    shown = res.stdout + res.stderr
    assert shown.count("DEPRECATED: The legacy builder is deprecated") == 1, shown
    assert shown.count("Install the buildx component") == 1  # its full text, the first time
    assert shown.count("https://docs.docker.com/go/buildx/") == 1
    assert shown.count("Successfully built") == 2  # each build's own output is all there
