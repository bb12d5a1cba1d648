"""platforms.py: every form of architecture the README names, the suffix table, qemu names, matching."""

from __future__ import annotations

import pytest

from dockerma.core.platforms import BY_SUFFIX, Platform, from_suffix, host_platform, parse_list
from dockerma.errors import DockermaError

AMD64 = Platform("linux", "amd64")
I386 = Platform("linux", "386")
ARM64 = Platform("linux", "arm64", "v8")
ARMV7 = Platform("linux", "arm", "v7")
ARMV6 = Platform("linux", "arm", "v6")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amd64", AMD64),
        ("arm", ARMV7),
        ("arm64", ARM64),
        ("386", I386),
        ("ppc64le", Platform("linux", "ppc64le")),
        ("s390x", Platform("linux", "s390x")),
        ("riscv64", Platform("linux", "riscv64")),
        ("mips64le", Platform("linux", "mips64le")),
        ("arm/v6", ARMV6),
        ("arm/v7", ARMV7),
        ("arm64/v8", ARM64),
        ("linux/arm64", ARM64),
        ("linux/amd64", AMD64),
        ("linux/arm/v7", ARMV7),
        ("linux/arm/v6", ARMV6),
        ("arm/v8", ARM64),
        ("x86_64", AMD64),
        ("x86-64", AMD64),
        ("aarch64", ARM64),
        ("armv8", ARM64),
        ("armhf", ARMV7),
        ("armv7l", ARMV7),
        ("arm32v7", ARMV7),
        ("armel", ARMV6),
        ("arm32v6", ARMV6),
        ("armv6l", ARMV6),
        ("i386", I386),
        ("i686", I386),
        (" amd64 ", AMD64),
        ("\tarm64\n", ARM64),
        ("AMD64", AMD64),
        (" AArch64 ", ARM64),
        ("Linux/ARM/V7", ARMV7),
        ("ARMHF", ARMV7),
        ("X86_64", AMD64),
        ("linux / arm / v6", ARMV6),
    ],
)
def test_parse(text: str, expected: Platform) -> None:
    assert Platform.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "docker"),
    [
        ("linux/arm/v7", "linux/arm/v7"),
        ("arm", "linux/arm/v7"),
        ("armhf", "linux/arm/v7"),
        ("arm/v6", "linux/arm/v6"),
        ("linux/arm64", "linux/arm64"),
        ("arm64/v8", "linux/arm64"),
        ("aarch64", "linux/arm64"),
        ("amd64", "linux/amd64"),
        ("i686", "linux/386"),
        ("s390x", "linux/s390x"),
    ],
)
def test_docker_string(text: str, docker: str) -> None:
    p = Platform.parse(text)
    assert p.docker == docker
    assert str(p) == docker


# The suffix table of the README, exactly.
SUFFIXES = [
    ("linux/amd64", "amd64"),
    ("linux/arm/v7", "arm"),
    ("linux/arm/v6", "armv6"),
    ("linux/arm64", "arm64"),
    ("linux/386", "386"),
    ("linux/ppc64le", "ppc64le"),
    ("linux/s390x", "s390x"),
    ("linux/riscv64", "riscv64"),
]


@pytest.mark.parametrize(("text", "suffix"), SUFFIXES)
def test_suffix(text: str, suffix: str) -> None:
    assert Platform.parse(text).suffix == suffix


@pytest.mark.parametrize(("text", "suffix"), SUFFIXES)
def test_from_suffix_round_trip(text: str, suffix: str) -> None:
    p = from_suffix(suffix)
    assert p is not None
    assert p == Platform.parse(text)
    assert p.suffix == suffix


def test_by_suffix_is_consistent() -> None:
    assert all(p.suffix == s for s, p in BY_SUFFIX.items())
    assert len(set(BY_SUFFIX.values())) == len(BY_SUFFIX)


@pytest.mark.parametrize("suffix", ["", "latest", "v1", "armv7", "aarch64", "x86_64", "arm-v7"])
def test_from_suffix_unknown(suffix: str) -> None:
    assert from_suffix(suffix) is None


@pytest.mark.parametrize(
    ("text", "qemu"),
    [
        ("amd64", "qemu-x86_64"),
        ("arm64", "qemu-aarch64"),
        ("arm", "qemu-arm"),
        ("arm/v6", "qemu-arm"),
        ("386", "qemu-i386"),
        ("ppc64le", "qemu-ppc64le"),
        ("s390x", "qemu-s390x"),
        ("riscv64", "qemu-riscv64"),
        ("mips64le", "qemu-mips64el"),
    ],
)
def test_qemu(text: str, qemu: str) -> None:
    assert Platform.parse(text).qemu == qemu


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (ARM64, Platform("linux", "arm64", ""), True),
        (Platform("linux", "arm64", ""), ARM64, True),
        (ARM64, Platform.parse("aarch64"), True),
        (ARMV6, ARMV7, False),
        (ARMV7, Platform("linux", "arm", ""), False),
        (AMD64, I386, False),
        (AMD64, Platform("windows", "amd64"), False),
        (AMD64, AMD64, True),
        (Platform("linux", "arm64", "v9"), ARM64, False),
    ],
)
def test_matches(a: Platform, b: Platform, same: bool) -> None:
    assert a.matches(b) is same


@pytest.mark.parametrize(
    ("os_name", "arch", "variant", "expected"),
    [
        ("linux", "arm64", "", ARM64),
        ("linux", "arm64", "v8", ARM64),
        ("linux", "arm", "v7", ARMV7),
        ("linux", "arm", "", ARMV7),
        ("linux", "arm", "v6", ARMV6),
        ("linux", "amd64", "", AMD64),
        ("", "amd64", "", AMD64),
        ("unknown", "unknown", "", Platform("unknown", "unknown")),
        ("linux", "sparc64", "", Platform("linux", "sparc64")),
    ],
)
def test_from_registry(os_name: str, arch: str, variant: str, expected: Platform) -> None:
    assert Platform.from_registry(os_name, arch, variant) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("arm,armhf,arm/v7", [ARMV7]),
        ("arm64, aarch64 ,arm64/v8,linux/arm64,armv8", [ARM64]),
        (" amd64 , arm ", [AMD64, ARMV7]),
        ("arm/v6,arm/v7,armel", [ARMV6, ARMV7]),
        ("arm,amd64,arm64", [ARMV7, AMD64, ARM64]),
        ("amd64,,x86_64,", [AMD64]),
        ("i386,386,i686,x86_64", [I386, AMD64]),
        ("", []),
    ],
)
def test_parse_list(text: str, expected: list[Platform]) -> None:
    assert parse_list(text) == expected


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("sparc", "'sparc'"),
        ("  mips ", "'mips'"),
        ("linux/powerpc", "'linux/powerpc'"),
        ("arm/v9", "'arm/v9'"),
        ("amd64/v2", "'amd64/v2'"),
        ("linux/arm/v7/x", "'linux/arm/v7/x'"),
        ("", "''"),
        ("linux/", "'linux/'"),
    ],
)
def test_unknown_architecture(text: str, shown: str) -> None:
    with pytest.raises(DockermaError) as info:
        Platform.parse(text)
    message = str(info.value)
    assert shown in message
    assert "amd64" in message  # names what is known
    assert "\n" not in message


def test_unknown_in_list_names_the_item() -> None:
    with pytest.raises(DockermaError, match="'sparc'"):
        parse_list("amd64, sparc ,arm64")


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("x86_64", AMD64),
        ("amd64", AMD64),
        ("aarch64", ARM64),
        ("arm64", ARM64),
        ("armv7l", ARMV7),
        ("armv6l", ARMV6),
        ("i686", I386),
        ("ppc64le", Platform("linux", "ppc64le")),
        ("s390x", Platform("linux", "s390x")),
        ("riscv64", Platform("linux", "riscv64")),
    ],
)
def test_host_platform(machine: str, expected: Platform) -> None:
    assert host_platform(machine) == expected


@pytest.mark.parametrize(
    ("text", "prefix", "expected"),
    [
        (
            "arm/v7",
            "TARGET",
            {
                "TARGETPLATFORM": "linux/arm/v7",
                "TARGETOS": "linux",
                "TARGETARCH": "arm",
                "TARGETVARIANT": "v7",
            },
        ),
        (
            "arm64",
            "BUILD",
            {
                "BUILDPLATFORM": "linux/arm64",
                "BUILDOS": "linux",
                "BUILDARCH": "arm64",
                "BUILDVARIANT": "",
            },
        ),
        (
            "amd64",
            "TARGET",
            {
                "TARGETPLATFORM": "linux/amd64",
                "TARGETOS": "linux",
                "TARGETARCH": "amd64",
                "TARGETVARIANT": "",
            },
        ),
    ],
)
def test_buildargs(text: str, prefix: str, expected: dict[str, str]) -> None:
    assert Platform.parse(text).buildargs(prefix) == expected
