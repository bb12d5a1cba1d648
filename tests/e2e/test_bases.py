"""Every image a build starts from, pinned per architecture, end to end (issue 19, items 5
and 6): local bases of an earlier dockerma build, COPY --from and RUN --mount from= images,
--build-context overrides. Checked by docker image inspect, by running the images, and by
the ELF header of files copied out of them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Engine, unique, write

pytestmark = pytest.mark.e2e

MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}
PLATFORM = {"amd64": "linux/amd64", "arm64": "linux/arm64"}
ELF_MACHINE = {"amd64": 62, "arm64": 183}  # e_machine: EM_X86_64, EM_AARCH64


def _local_name(engine: Engine, what: str) -> str:
    """A name in no registry that answers (Docker Hub is out of reach here): only the engine
    can have it. ("/e2e-" and the session in it: removed at the session's end.)"""
    return f"dockerma-local/e2e-{engine.name}/{unique(what)}"


def _ok(res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == 0, res.stderr + res.stdout


def _elf_machine(engine: Engine, ref: str, platform: str, path: str, tmp: Path) -> int:
    """e_machine of a file in an image, read on the host from a copy (`docker cp`)."""
    created = engine.docker("create", "--platform", platform, ref, "/none").stdout.strip()
    try:
        out = tmp / f"elf-{created[:12]}"
        engine.docker("cp", f"{created}:{path}", str(out))
        data = out.read_bytes()
    finally:
        engine.docker("rm", created, check=False)
    assert data[:4] == b"\x7fELF", f"{path} in {ref} is no ELF file"
    return int.from_bytes(data[18:20], "little")


def _base(engine: Engine, tmp_path: Path, name: str, archs: str, marker: str) -> None:
    ctx = write(
        tmp_path / f"base-{marker}",
        f"# dockerma archs:{archs}:\nFROM {engine.base}\n"
        f"RUN echo {marker} > /marker && uname -m > /base-arch\n",
    )
    _ok(engine.dockerma("build", "-t", f"{name}:1", str(ctx)))


def _app(tmp_path: Path, base: str, archs: str = "amd64,arm64") -> Path:
    return write(
        tmp_path / "app",
        f"# dockerma archs:{archs}:\nFROM {base}\n"
        'RUN cat /base-arch > /from-base && uname -m > /app-arch\nCMD ["cat", "/from-base"]\n',
    )


def test_chained_local_build(engine, tmp_path) -> None:
    base = _local_name(engine, "base")
    _base(engine, tmp_path, base, "amd64,arm64", "local")
    ctx = _app(tmp_path, f"{base}:1")
    dry = engine.dockerma("build", "--dry-run", "-t", "app:1", str(ctx))
    _ok(dry)
    for suffix in MACHINE:
        image_id = engine.inspect(f"{base}:1-{suffix}")["Id"]
        # what each builder takes as that local image (see engine/local_bases): the id for
        # the classic builder and docker 28's BuildKit, the per-arch tag for docker 26's
        pinned = {
            "classic": image_id,
            "modern": f"{base}:1-{suffix}",
            "current": f"{base}:1-{suffix}@{image_id}",
        }[engine.name]
        assert f"FROM {pinned}\n" in dry.stdout
    app = f"{_local_name(engine, 'app')}:1"
    _ok(engine.dockerma("build", "-t", app, str(ctx)))
    for suffix, machine in MACHINE.items():
        ref = f"{app}-{suffix}"
        assert engine.inspect(ref)["Architecture"] == suffix
        # the base's own file, written when the base was built for that architecture
        assert engine.run(PLATFORM[suffix], ref) == machine
        assert engine.run(PLATFORM[suffix], ref, "cat", "/marker") == "local"


def test_missing_architecture_stops_before_building(engine, tmp_path) -> None:
    base = _local_name(engine, "half")
    _base(engine, tmp_path, base, "amd64", "half")
    app = _local_name(engine, "none")
    res = engine.dockerma("build", "-t", f"{app}:1", str(_app(tmp_path, f"{base}:1")))
    assert res.returncode == 1, res.stderr + res.stdout
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith("dockerma: error: "), res.stderr
    assert f"no {base}:1-arm64 for linux/arm64" in lines[-1]
    assert f"dockerma build --platform linux/arm64 -t {base}:1 " in lines[-1]
    # nothing was built: no per-arch image, not even the architecture that had its base
    assert "RESULT" not in res.stdout
    for suffix in MACHINE:
        assert engine.docker("image", "inspect", f"{app}:1-{suffix}", check=False).returncode
    assert engine.docker("image", "ls", "-q", app).stdout.strip() == ""


def test_local_base_wins_over_its_registry_unless_pull(engine, tmp_path) -> None:
    base = engine.name_for("both")  # in the registry AND in the engine, with other content
    _base(engine, tmp_path, base, "amd64,arm64", "pushed")
    _ok(engine.dockerma("push", f"{base}:1"))
    _base(engine, tmp_path, base, "amd64,arm64", "local")
    ctx = _app(tmp_path, f"{base}:1")
    for args, marker in (((), "local"), (("--pull",), "pushed")):
        app = f"{_local_name(engine, 'app')}:1"
        _ok(engine.dockerma("build", *args, "-t", app, str(ctx)))
        for suffix in MACHINE:
            ref = f"{app}-{suffix}"
            assert engine.run(PLATFORM[suffix], ref, "cat", "/marker") == marker
            assert engine.run(PLATFORM[suffix], ref) == MACHINE[suffix]


def test_copy_from_an_image_is_pinned_per_architecture(engine, tmp_path, registry_get) -> None:
    # The engine's own tag of the base is one architecture (a pull leaves that): the classic
    # builder took it for every --platform before COPY --from was pinned (moby/moby#36552).
    engine.docker("pull", "--platform", "linux/amd64", engine.base)
    ctx = write(
        tmp_path / "copy",
        f"# dockerma archs:amd64,arm64:\nFROM {engine.base}\n"
        f"COPY --from={engine.base} /bin/busybox /copied-busybox\n",
    )
    dry = engine.dockerma("build", "--dry-run", "-t", "x:1", str(ctx))
    _ok(dry)
    listed, _ = registry_get(engine.base)
    name = engine.base.rsplit(":", 1)[0]
    for m in listed["manifests"]:
        if m["platform"]["architecture"] in MACHINE and not m["platform"].get("variant"):
            assert f"COPY --from={name}@{m['digest']} /bin/busybox" in dry.stdout
    app = f"{engine.name_for('copy')}:1"
    _ok(engine.dockerma("build", "-t", app, str(ctx)))
    for suffix, expected in ELF_MACHINE.items():
        got = _elf_machine(engine, f"{app}-{suffix}", PLATFORM[suffix], "/copied-busybox", tmp_path)
        assert got == expected, f"{suffix}: copied busybox is for e_machine {got}"


def test_copy_from_a_local_base(engine, tmp_path) -> None:
    base = _local_name(engine, "tools")
    _base(engine, tmp_path, base, "amd64,arm64", "tools")
    ctx = write(
        tmp_path / "copylocal",
        f"# dockerma archs:amd64,arm64:\nFROM {engine.base}\n"
        f'COPY --from={base}:1 /base-arch /from-tools\nCMD ["cat", "/from-tools"]\n',
    )
    app = f"{engine.name_for('copylocal')}:1"
    _ok(engine.dockerma("build", "-t", app, str(ctx)))
    for suffix, machine in MACHINE.items():
        assert engine.run(PLATFORM[suffix], f"{app}-{suffix}") == machine


def test_run_mount_from_an_image(engine, tmp_path) -> None:
    if not engine.buildkit:
        pytest.skip("RUN --mount is BuildKit's; the classic builder has none")
    ctx = write(
        tmp_path / "mount",
        f"# dockerma archs:amd64,arm64:\nFROM {engine.base}\n"
        f"RUN --mount=type=bind,from={engine.base},target=/m cp /m/bin/busybox /mounted\n",
    )
    dry = engine.dockerma("build", "--dry-run", "-t", "x:1", str(ctx))
    _ok(dry)
    name = engine.base.rsplit(":", 1)[0]
    assert dry.stdout.count(f"RUN --mount=type=bind,from={name}@sha256:") == 2
    app = f"{engine.name_for('mount')}:1"
    _ok(engine.dockerma("build", "-t", app, str(ctx)))
    for suffix, expected in ELF_MACHINE.items():
        assert _elf_machine(engine, f"{app}-{suffix}", PLATFORM[suffix], "/mounted", tmp_path) == (
            expected
        )


def test_build_context_overrides_from_and_copy_from(engine, tmp_path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "note.txt").write_text("from the tools context\n")
    ctx = write(
        tmp_path / "override",
        "# dockerma archs:amd64,arm64:\nFROM mybase\n"
        'COPY --from=tools note.txt /note.txt\nCMD ["cat", "/note.txt"]\n',
    )
    args = (
        "--build-context",
        f"mybase=docker-image://{engine.base}",
        "--build-context",
        f"tools={tools}",
    )
    app = f"{engine.name_for('override')}:1"
    res = engine.dockerma("build", *args, "-t", app, str(ctx))
    if not engine.buildkit:
        assert res.returncode == 2, res.stderr + res.stdout
        assert "--build-context needs BuildKit" in res.stderr
        return
    _ok(res)
    dry = engine.dockerma("build", "--dry-run", *args, "-t", app, str(ctx))
    _ok(dry)
    assert dry.stdout.count("FROM mybase\nCOPY --from=tools note.txt /note.txt\n") == 2
    for suffix, machine in MACHINE.items():
        ref = f"{app}-{suffix}"
        assert engine.run(PLATFORM[suffix], ref) == "from the tools context"
        assert engine.run(PLATFORM[suffix], ref, "uname", "-m") == machine
