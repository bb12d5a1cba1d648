"""core/exit_elf.py: the exit(0) programs and the images that hold them."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from dockerma.core import exit_elf
from dockerma.core.platforms import Platform

# Debian qemu-user-static's interpreter for each architecture (None: runs on x86_64 itself).
QEMU = {
    "amd64": None,
    "386": None,
    "arm64": "qemu-aarch64-static",
    "arm/v7": "qemu-arm-static",
    "arm/v6": "qemu-arm-static",
    "ppc64le": "qemu-ppc64le-static",
    "s390x": "qemu-s390x-static",
    "riscv64": "qemu-riscv64-static",
    "mips64le": "qemu-mips64el-static",
    "loong64": "qemu-loongarch64-static",
}
# (ELF class, data encoding, e_machine) as `file` and the kernel read them.
HEADERS = {
    "amd64": (2, 1, 62),
    "386": (1, 1, 3),
    "arm64": (2, 1, 183),
    "arm/v7": (1, 1, 40),
    "ppc64le": (2, 1, 21),
    "s390x": (2, 2, 22),
    "riscv64": (2, 1, 243),
    "mips64le": (2, 1, 8),
    "loong64": (2, 1, 258),
}


@pytest.mark.parametrize(("arch", "header"), HEADERS.items())
def test_header_names_the_architecture(arch: str, header: tuple[int, int, int]) -> None:
    data = exit_elf.program(Platform.parse(arch))
    assert data[:4] == b"\x7fELF"
    end = "<" if data[5] == 1 else ">"
    assert (data[4], data[5], struct.unpack(end + "H", data[18:20])[0]) == header
    assert len(data) < 160  # a few dozen bytes of code after the headers


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the table is for an x86_64 host")
@pytest.mark.parametrize(("arch", "qemu"), QEMU.items())
def test_program_exits_zero(arch: str, qemu: str | None, tmp_path: Path) -> None:
    """Each program really runs and exits 0: natively, or under Debian's QEMU user mode
    (which a wrong header or a wrong syscall would make fail or crash)."""
    if qemu is not None and shutil.which(qemu) is None:
        pytest.skip(f"{qemu} is not installed (Debian: qemu-user-static)")
    exe = tmp_path / "exit0"
    exe.write_bytes(exit_elf.program(Platform.parse(arch)))
    exe.chmod(0o755)
    argv = [str(exe)] if qemu is None else [qemu, str(exe)]
    res = subprocess.run(argv, capture_output=True, timeout=30, check=False)
    assert (res.returncode, res.stderr) == (0, b"")


def test_unknown_architectures_have_none() -> None:
    assert exit_elf.supported(Platform.parse("arm64"))
    assert not exit_elf.supported(Platform.parse("windows/amd64"))


def test_image_tar_holds_one_image_per_platform() -> None:
    platforms = [Platform.parse(p) for p in ("arm/v7", "arm/v6", "s390x")]
    data = exit_elf.image_tar(platforms)
    assert data == exit_elf.image_tar(platforms)  # deterministic
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert [m["RepoTags"] for m in manifest] == [
            ["dockerma-probe:arm"],
            ["dockerma-probe:armv6"],
            ["dockerma-probe:s390x"],
        ]
        for entry, p in zip(manifest, platforms):
            config = json.load(t.extractfile(entry["Config"]))  # type: ignore[arg-type]
            assert (config["architecture"], config.get("variant", "")) == (p.arch, p.variant)
            assert config["config"]["Entrypoint"] == ["/exit0"]
            layer = t.extractfile(entry["Layers"][0]).read()  # type: ignore[union-attr]
            with tarfile.open(fileobj=io.BytesIO(layer)) as lt:
                member = lt.getmember("exit0")
                assert member.mode == 0o755
                assert lt.extractfile(member).read() == exit_elf.program(p)  # type: ignore[union-attr]
