"""A minimal static Linux executable per architecture that only calls exit(0).

dockerma asks an engine whether it can run a platform by running this program in a container
of that platform (dockerma.engine.emulation): the kernel of the engine either runs it (natively
or through a binfmt_misc handler) or refuses it with "exec format error". One ELF header, one
loadable segment, the machine code of `exit(0)`: a few dozen bytes, hand-assembled here.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from dockerma.core import scratch
from dockerma.core.platforms import Platform

# The images that hold it, one per platform: dockerma's own name, never a user's image.
REPOSITORY = "dockerma-probe"
BASE = 0x400000  # load address: above any mmap_min_addr, aligned for 64 KiB pages


@dataclass(frozen=True)
class _Machine:
    bits: int  # 32 or 64
    little: bool
    machine: int  # e_machine
    flags: int  # e_flags
    code: bytes  # exit(0)


def _words(fmt: str, *words: int) -> bytes:
    return struct.pack(fmt + "I" * len(words), *words)


# exit(0) per architecture: the syscall number, the argument 0, the trap.
_MACHINES: dict[str, _Machine] = {
    # mov eax, 60 (exit); xor edi, edi; syscall
    "amd64": _Machine(64, True, 62, 0, bytes.fromhex("b83c00000031ff0f05")),
    # mov eax, 1 (exit); xor ebx, ebx; int 0x80
    "386": _Machine(32, True, 3, 0, bytes.fromhex("b80100000031dbcd80")),
    # movz x0, #0; movz x8, #93 (exit); svc #0
    "arm64": _Machine(64, True, 183, 0, _words("<", 0xD2800000, 0xD2800BA8, 0xD4000001)),
    # mov r0, #0; mov r7, #1 (exit, EABI); svc #0 -- ARMv4 instructions, so v5, v6 and v7 alike;
    # e_flags: EABI version 5
    "arm": _Machine(32, True, 40, 0x05000000, _words("<", 0xE3A00000, 0xE3A07001, 0xEF000000)),
    # li r0, 1 (exit); li r3, 0; sc -- e_flags 2: ELFv2, the entry is code, not a descriptor
    "ppc64le": _Machine(64, True, 21, 2, _words("<", 0x38000001, 0x38600000, 0x44000002)),
    # lghi %r2, 0; svc 1 (exit)
    "s390x": _Machine(64, False, 22, 0, bytes.fromhex("a72900000a01")),
    # li a0, 0; li a7, 93 (exit); ecall
    "riscv64": _Machine(64, True, 243, 0, _words("<", 0x00000513, 0x05D00893, 0x00000073)),
    # li v0, 5058 (exit, n64); move a0, zero; syscall -- e_flags: MIPS64r2
    "mips64le": _Machine(64, True, 8, 0x80000000, _words("<", 0x240213C2, 0x00002025, 0x0000000C)),
    # li.w a0, 0; li.w a7, 93 (exit); syscall 0 -- e_flags 0x43: LP64D, object ABI v1
    "loong64": _Machine(64, True, 258, 0x43, _words("<", 0x02800004, 0x0281740B, 0x002B0000)),
}


def supported(platform: Platform) -> bool:
    """Whether there is a probe program for this platform's architecture."""
    return platform.os == "linux" and platform.arch in _MACHINES


def program(platform: Platform) -> bytes:
    """The ELF executable that exits 0 on `platform` (KeyError for an unknown architecture)."""
    m = _MACHINES[platform.arch]
    end = "<" if m.little else ">"
    if m.bits == 64:
        ehsize, phsize = 64, 56
    else:
        ehsize, phsize = 52, 32
    entry = BASE + ehsize + phsize
    size = ehsize + phsize + len(m.code)
    ident = b"\x7fELF" + bytes([m.bits // 32, 1 if m.little else 2, 1, 0]) + bytes(8)
    # ELF header: type EXEC (2), version 1, entry, program headers right after it, none else.
    if m.bits == 64:
        header = ident + struct.pack(
            end + "HHIQQQIHHHHHH",
            2,
            m.machine,
            1,
            entry,
            ehsize,
            0,
            m.flags,
            ehsize,
            phsize,
            1,
            0,
            0,
            0,
        )
        # PT_LOAD (1), flags R+X (5), the whole file at BASE.
        segment = struct.pack(end + "IIQQQQQQ", 1, 5, 0, BASE, BASE, size, size, 0x10000)
    else:
        header = ident + struct.pack(
            end + "HHIIIIIHHHHHH",
            2,
            m.machine,
            1,
            entry,
            ehsize,
            0,
            m.flags,
            ehsize,
            phsize,
            1,
            0,
            0,
            0,
        )
        segment = struct.pack(end + "IIIIIIII", 1, 0, BASE, BASE, size, size, 5, 0x10000)
    return header + segment + m.code


def tag(platform: Platform) -> str:
    return f"{REPOSITORY}:{platform.suffix}"


def image_tar(platforms: Sequence[Platform]) -> bytes:
    """A `docker save` archive of one image per platform, tagged tag(platform), whose
    entrypoint is program(platform)."""
    return scratch.save_archive(
        [
            scratch.SavedImage(
                tag(p),
                p,
                {"exit0": (0o755, program(p))},
                "dockerma: exit(0), to ask an engine whether it runs this platform",
                entrypoint=("/exit0",),
            )
            for p in platforms
        ]
    )
