"""Platform: parse and normalise architectures the way containerd does, tag suffixes, qemu."""

from __future__ import annotations

import platform as _stdlib_platform
from dataclasses import dataclass

from dockerma.errors import DockermaError

# containerd's normalisation (platforms.Normalize), plus the original dockerma's meaning of
# bare `arm` (arm/v7).
_ARCH_ALIASES: dict[str, tuple[str, str]] = {
    "amd64": ("amd64", ""),
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv8": ("arm64", "v8"),
    "arm64v8": ("arm64", "v8"),
    "arm": ("arm", "v7"),
    "armhf": ("arm", "v7"),
    "armv7": ("arm", "v7"),
    "armv7l": ("arm", "v7"),
    "arm32v7": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "armv6": ("arm", "v6"),
    "armv6l": ("arm", "v6"),
    "arm32v6": ("arm", "v6"),
    "armv5": ("arm", "v5"),
    "arm32v5": ("arm", "v5"),
    "386": ("386", ""),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "x86": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "ppc64el": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
    "mips64le": ("mips64le", ""),
    "mips64el": ("mips64le", ""),
    "loong64": ("loong64", ""),
}

_OSES = ("linux", "windows", "freebsd", "darwin")  # the OS prefixes Platform.parse accepts
_VARIANTS: dict[str, frozenset[str]] = {
    "arm": frozenset({"v5", "v6", "v7", "v8"}),
    "arm64": frozenset({"v8", "v8.0", "v8.1", "v8.2", "v9"}),
}

# Names of the binfmt_misc handlers Debian's qemu-user-static (and tonistiigi/binfmt) register.
_QEMU = {
    "amd64": "qemu-x86_64",
    "arm64": "qemu-aarch64",
    "arm": "qemu-arm",
    "386": "qemu-i386",
    "ppc64le": "qemu-ppc64le",
    "s390x": "qemu-s390x",
    "riscv64": "qemu-riscv64",
    "mips64le": "qemu-mips64el",
    "loong64": "qemu-loongarch64",
}

# uname -m → docker architecture, for the build machine.
_MACHINES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm/v7",
    "armv6l": "arm/v6",
    "i686": "386",
    "i386": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}

KNOWN = (
    "amd64, arm (arm/v7), arm/v6, arm64, 386, ppc64le, s390x, riscv64, mips64le "
    "(aliases: x86_64, aarch64, armhf, armel, i386, …)"
)


@dataclass(frozen=True, order=True)
class Platform:
    """An OS/architecture/variant triple as registries record it (`linux/arm/v7`)."""

    os: str
    arch: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse `arm64`, `linux/arm/v7`, `aarch64`, `armhf`, … into the normal form."""
        raw = text.strip()
        parts = [p.strip().lower() for p in raw.split("/")]
        os_name = "linux"
        if len(parts) >= 2 and parts[0] in _OSES:
            os_name, parts = parts[0], parts[1:]
        if not parts or len(parts) > 2 or not parts[0]:
            raise DockermaError(f"unknown architecture {raw!r}; use one of {KNOWN}")
        arch, default_variant = _ARCH_ALIASES.get(parts[0], ("", ""))
        if not arch:
            raise DockermaError(f"unknown architecture {raw!r}; use one of {KNOWN}")
        variant = parts[1] if len(parts) == 2 else default_variant
        if variant and variant not in _VARIANTS.get(arch, frozenset()):
            raise DockermaError(f"unknown variant {variant!r} in {raw!r}; use one of {KNOWN}")
        if arch == "arm" and variant == "v8":
            arch = "arm64"  # containerd: arm/v8 is arm64
        if arch == "arm64" and variant in ("", "v8.0"):
            variant = "v8"
        return cls(os_name, arch, variant)

    @classmethod
    def from_registry(cls, os: str, arch: str, variant: str = "") -> Platform:
        """A platform as a manifest list or image config records it; never raises."""
        os = os or "linux"
        try:
            p = cls.parse(f"{os}/{arch}/{variant}" if variant else f"{os}/{arch}")
        except DockermaError:
            return cls(os, arch, variant)
        return p

    def __str__(self) -> str:
        return "/".join(x for x in (self.os, self.arch, self.docker_variant) if x)

    @property
    def docker_variant(self) -> str:
        """The variant as docker's --platform and registries show it (arm64's v8 is implied)."""
        return "" if self.arch == "arm64" and self.variant == "v8" else self.variant

    @property
    def docker(self) -> str:
        """The value for `docker build --platform`."""
        return str(self)

    @property
    def suffix(self) -> str:
        """The tag suffix: `myapp:v1-arm` for arm/v7 (the list is in the README, Usage)."""
        if self.arch == "arm":
            arch = "arm" if self.variant == "v7" else f"arm{self.variant}"
        elif self.arch == "arm64" and self.variant not in ("", "v8"):
            arch = f"arm64{self.variant}"
        else:
            arch = self.arch
        return arch if self.os == "linux" else f"{self.os}-{arch}"

    @property
    def qemu(self) -> str:
        """The binfmt_misc handler that runs this architecture's binaries."""
        return _QEMU.get(self.arch, f"qemu-{self.arch}")

    def matches(self, other: Platform) -> bool:
        """Same platform as registries compare them: arm64 with or without v8 is one."""
        return (self.os, self.arch, self.docker_variant) == (
            other.os,
            other.arch,
            other.docker_variant,
        )

    def buildargs(self, prefix: str) -> dict[str, str]:
        """buildx's automatic args: TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT."""
        return {
            f"{prefix}PLATFORM": str(self),
            f"{prefix}OS": self.os,
            f"{prefix}ARCH": self.arch,
            f"{prefix}VARIANT": self.docker_variant,
        }


def parse_list(text: str) -> list[Platform]:
    """A comma separated list, normalised, duplicates dropped, order kept."""
    out: list[Platform] = []
    for item in text.split(","):
        if not item.strip():
            continue
        p = Platform.parse(item)
        if not any(p.matches(q) for q in out):
            out.append(p)
    return out


def host_platform(machine: str | None = None) -> Platform:
    """This machine's platform (uname -m); the engine's own is asked of docker elsewhere."""
    m = (machine or _stdlib_platform.machine()).lower()
    return Platform.parse(_MACHINES.get(m, m))


_KNOWN_PLATFORMS = (
    "amd64",
    "arm/v7",
    "arm/v6",
    "arm64",
    "386",
    "ppc64le",
    "s390x",
    "riscv64",
    "mips64le",
    "arm/v5",
)
# Every platform dockerma knows, by its tag suffix, for finding `NAME:TAG-SUFFIX` images.
BY_SUFFIX: dict[str, Platform] = {
    p.suffix: p for p in (Platform.parse(s) for s in _KNOWN_PLATFORMS)
}


def _every_platform() -> dict[str, Platform]:
    """Every platform Platform.parse accepts, by tag suffix (the usual ones first)."""
    found = dict(BY_SUFFIX)
    for os_name in _OSES:
        for arch in dict.fromkeys(a for a, _ in _ARCH_ALIASES.values()):
            for variant in ("", *sorted(_VARIANTS.get(arch, ()))):
                p = Platform.parse(
                    f"{os_name}/{arch}/{variant}" if variant else f"{os_name}/{arch}"
                )
                found.setdefault(p.suffix, p)
    return found


_BY_ANY_SUFFIX = _every_platform()
# A finite set (4 OSes × the architectures × their variants), so push can ask docker for each
# NAME:TAG-SUFFIX by name instead of listing every image.
ALL_SUFFIXES: tuple[str, ...] = tuple(_BY_ANY_SUFFIX)


def from_suffix(suffix: str) -> Platform | None:
    """The platform a tag suffix stands for, or None if it is not one of ours.

    Every platform `parse` accepts has a suffix (arm64/v9 → arm64v9, loong64): push must
    find those images too, not publish a list without them.
    """
    return _BY_ANY_SUFFIX.get(suffix)
