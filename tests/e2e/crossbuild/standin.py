"""A stand-in for the cross-build image (monsonnl/qemu-wrap-build-files), from Debian packages.

Same layout as the real one, `/cross-build/<dir>/bin/`, copied into a stage's /bin:

    arm64v8/bin, arm32v7/bin   cross-build-start, cross-build-end, cross-build-sh (scripts
                               from this folder), busybox.cross-build (Debian's x86_64
                               busybox-static, their interpreter), qemu-<arch>-static (Debian's
                               qemu-user-static, x86_64 binaries)
    x86_64/bin                 cross-build-start and cross-build-end, both the script
                               cross-build-native: no-ops run by the stage's own /bin/sh, for
                               the stages the build machine runs itself (the real image's
                               dummies are links to sh, which a busybox sh does not run)

Everything that runs while the shim is active is x86_64, so it works without binfmt_misc: the
kernel runs the scripts' interpreter natively, and QEMU runs the target's /bin/sh. Unlike the
real image's QEMU (patched with `-execve`), Debian's does not follow a foreign program's
execve(), so without binfmt_misc only what the target's shell does in-process works: shell
builtins and busybox applets it runs without exec (uname, cp, mkdir, …; not `cat` or pipes).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).parent
DEB_DIR = Path("/var/lib/dockerma-testbed/debs")
LABEL = "org.dockerma.test.content"
QEMU_BIN = Path("/usr/bin")
DIRS = {"arm64v8": "aarch64", "arm32v7": "arm"}  # directory → QEMU's name for it
SCRIPTS = ("cross-build-start", "cross-build-end", "cross-build-sh")
NATIVE = "x86_64"  # the build machine's directory: start and end do nothing
NATIVE_SCRIPT = "cross-build-native"


class Missing(Exception):
    """A Debian package the stand-in is made of is not there."""


def files(directory: str) -> list[str]:
    """The files of one directory, which `--strategy inject` leaves in an image's /bin."""
    if directory == NATIVE:
        return ["cross-build-end", "cross-build-start"]
    return sorted(["busybox.cross-build", *SCRIPTS, f"qemu-{DIRS[directory]}-static"])


def context(dest: Path) -> Path:
    """Write the stand-in's build context into `dest` (a new or empty folder)."""
    dest.mkdir(parents=True, exist_ok=True)
    busybox = _busybox(dest / "deb")
    for directory, qemu in DIRS.items():
        emulator = QEMU_BIN / f"qemu-{qemu}-static"
        if not emulator.is_file():
            raise Missing(f"{emulator} is missing; apt-get install qemu-user-static")
        bin_dir = dest / "cross-build" / directory / "bin"
        bin_dir.mkdir(parents=True)
        shutil.copyfile(busybox, bin_dir / "busybox.cross-build")
        shutil.copyfile(emulator, bin_dir / emulator.name)
        for name in SCRIPTS:
            text = (HERE / name).read_text().replace("@QEMU@", qemu)
            (bin_dir / name).write_text(text)
        for path in bin_dir.iterdir():
            path.chmod(0o755)
    native = dest / "cross-build" / NATIVE / "bin"
    native.mkdir(parents=True)
    for name in files(NATIVE):
        shutil.copyfile(HERE / NATIVE_SCRIPT, native / name)
        (native / name).chmod(0o755)
    shutil.copyfile(HERE / "Dockerfile", dest / "Dockerfile")
    shutil.rmtree(dest / "deb")
    return dest


def content_hash(ctx: Path) -> str:
    """A digest of the context's names, modes, link targets and contents."""
    digest = hashlib.sha256()
    for path in sorted(ctx.rglob("*")):
        digest.update(f"{path.relative_to(ctx)}\0{path.lstat().st_mode:o}\0".encode())
        if path.is_symlink():
            digest.update(os.readlink(path).encode())
        elif path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _busybox(work: Path) -> Path:
    """Debian's x86_64 busybox-static: from the test bed's cache, else `apt-get download`."""
    work.mkdir()
    debs = sorted(DEB_DIR.glob("busybox-static_*_amd64.deb"))
    if not debs:
        try:
            res = subprocess.run(
                [
                    "apt-get",
                    "download",
                    "-q",
                    "-o",
                    "APT::Sandbox::User=root",
                    "busybox-static:amd64",
                ],
                cwd=work,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise Missing(f"no busybox-static .deb and apt-get download failed: {e}") from None
        debs = sorted(work.glob("busybox-static_*_amd64.deb"))
        if not debs:
            raise Missing(f"no busybox-static .deb: apt-get download said {res.stderr.strip()}")
    subprocess.run(["dpkg", "-x", str(debs[-1]), str(work / "x")], check=True)
    busybox = work / "x" / "bin" / "busybox"
    if not busybox.is_file():
        raise Missing(f"{debs[-1]} has no /bin/busybox")
    return busybox
