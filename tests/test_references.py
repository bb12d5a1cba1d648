"""references.py: image references with registry ports and digests, per-arch tags, loopback."""

from __future__ import annotations

import socket

import pytest

from dockerma.core.references import MAX_TAG, ImageRef
from dockerma.errors import DockermaError
from dockerma.registry.trust import is_loopback

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest", "registry", "repository"),
    [
        (
            "localhost:5000/team/app:v1",
            "localhost:5000",
            "team/app",
            "v1",
            "",
            "localhost:5000",
            "team/app",
        ),
        (f"name@{DIGEST}", "", "name", "", DIGEST, "docker.io", "library/name"),
        (f"ghcr.io/a/b:1@{DIGEST}", "ghcr.io", "a/b", "1", DIGEST, "ghcr.io", "a/b"),
        ("busybox", "", "busybox", "", "", "docker.io", "library/busybox"),
        ("busybox:1.36", "", "busybox", "1.36", "", "docker.io", "library/busybox"),
        ("127.0.0.1:5000/x/y", "127.0.0.1:5000", "x/y", "", "", "127.0.0.1:5000", "x/y"),
        ("team/app:v2", "", "team/app", "v2", "", "docker.io", "team/app"),
        (
            "docker.io/library/busybox:1",
            "docker.io",
            "library/busybox",
            "1",
            "",
            "docker.io",
            "library/busybox",
        ),
        ("docker.io/busybox", "docker.io", "busybox", "", "", "docker.io", "library/busybox"),
        ("localhost/app", "localhost", "app", "", "", "localhost", "app"),
        ("[::1]:5000/app:1", "[::1]:5000", "app", "1", "", "[::1]:5000", "app"),
        ("a/b/c:d", "", "a/b/c", "d", "", "docker.io", "a/b/c"),
        (
            "reg.example.com/a__b/c-d.e:V_1.0-x",
            "reg.example.com",
            "a__b/c-d.e",
            "V_1.0-x",
            "",
            "reg.example.com",
            "a__b/c-d.e",
        ),
    ],
)
def test_parse(
    text: str, domain: str, path: str, tag: str, digest: str, registry: str, repository: str
) -> None:
    ref = ImageRef.parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert (ref.registry, ref.repository) == (registry, repository)
    assert str(ref) == text


@pytest.mark.parametrize(
    ("text", "repository"),
    [
        # docker normalises the legacy Hub name to docker.io (distribution/reference).
        ("index.docker.io/busybox", "library/busybox"),
        ("index.docker.io/team/app", "team/app"),
    ],
)
def test_hub_repository(text: str, repository: str) -> None:
    assert ImageRef.parse(text).repository == repository


@pytest.mark.parametrize(
    ("text", "name", "reference"),
    [
        ("busybox", "busybox", "latest"),
        ("localhost:5000/team/app:v1", "localhost:5000/team/app", "v1"),
        (f"app:v1@{DIGEST}", "app", DIGEST),
    ],
)
def test_name_and_reference(text: str, name: str, reference: str) -> None:
    ref = ImageRef.parse(text)
    assert (ref.name, ref.reference) == (name, reference)


@pytest.mark.parametrize(
    ("text", "suffix", "expected"),
    [
        ("localhost:5000/team/app:v1", "arm64", "localhost:5000/team/app:v1-arm64"),
        ("app", "arm", "app:latest-arm"),
        ("app:1.0", "armv6", "app:1.0-armv6"),
        (f"app:v1@{DIGEST}", "amd64", "app:v1-amd64"),
        ("127.0.0.1:5000/x/y:t", "386", "127.0.0.1:5000/x/y:t-386"),
    ],
)
def test_suffixed(text: str, suffix: str, expected: str) -> None:
    assert str(ImageRef.parse(text).suffixed(suffix)) == expected


def test_tag_length_limit() -> None:
    ok = ImageRef.parse("app:" + "a" * (MAX_TAG - len("-arm64")))
    assert len(ok.suffixed("arm64").tag) == MAX_TAG
    ref = ImageRef.parse("localhost:5000/app:" + "t" * 125)
    with pytest.raises(DockermaError) as info:
        ref.suffixed("arm64")
    assert "128" in str(info.value)
    assert "131" in str(info.value)


def test_pinned_and_with_tag_drops_the_digest() -> None:
    ref = ImageRef.parse("localhost:5000/team/app:v1")
    assert ref.pinned(DIGEST) == f"localhost:5000/team/app@{DIGEST}"
    digested = ImageRef.parse(f"localhost:5000/team/app:v1@{DIGEST}")
    assert str(digested) == f"localhost:5000/team/app:v1@{DIGEST}"
    assert str(digested.with_tag("v2")) == "localhost:5000/team/app:v2"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "app name",
        "App",
        "app:",
        "app:-bad",
        "app:.bad",
        "app:" + "t" * 129,
        "app@sha256:xyz",
        "app@md5",
        "app:v1:v2",
        "team//app",
        "team/app/",
        "/app",
        "reg:5000/",
        "app..x",
        "app-",
        "_app",
    ],
)
def test_invalid_references(text: str) -> None:
    with pytest.raises(DockermaError):
        ImageRef.parse(text)


@pytest.mark.parametrize("tag", ["", "-x", ".x", "a b", "a/b", "é", "t" * 129])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(DockermaError):
        ImageRef.parse("app").with_tag(tag)


@pytest.mark.parametrize(
    "text",
    [
        # docker: "invalid reference format" for each; dockerma used to retry them on the
        # network (issue 17, item 9)
        "localhost:abc/x",
        "localhost:/x",
        "localhost:5000:1/x",
        "localhost:99999/x",
        "localhost:0/x",
        "-reg.example/x",
        "reg-.example/x",
        "reg..example/x",
        "reg_x.example/x",
        "[::1/x",
        "[zz]:5000/x",
        "[::1]:abc/x",
        "[::ffff:127.0.0.1]:5000/x",  # docker leaves IPv4-mapped addresses out too
    ],
)
def test_invalid_registry_is_one_line_naming_it(text: str) -> None:
    with pytest.raises(DockermaError) as info:
        ImageRef.parse(text)
    message = str(info.value)
    assert message.startswith(f"invalid registry {text.split('/')[0]!r}")
    assert "\n" not in message and "HOST[:PORT]" in message


@pytest.mark.parametrize(
    ("text", "registry"),
    [
        ("Registry.Example.COM:443/x", "Registry.Example.COM:443"),
        ("a-b.c-d.example/x", "a-b.c-d.example"),
        ("localhost:1/x", "localhost:1"),
        ("localhost:65535/x:v1", "localhost:65535"),
        ("[2001:db8::1]:5000/x", "[2001:db8::1]:5000"),
        ("[::1]/x", "[::1]"),
        ("1.2.3.4:5000/x", "1.2.3.4:5000"),
    ],
)
def test_valid_registries(text: str, registry: str) -> None:
    assert ImageRef.parse(text).registry == registry


# What the fake resolver below answers: a name missing here does not resolve.
RESOLVES = {
    "localhost": ["127.0.0.1", "::1"],
    "dev.example": ["127.0.0.1"],  # any name may point at loopback
    "evil.localhost": ["203.0.113.5"],  # and a *.localhost name elsewhere
    "mixed.example": ["127.0.0.1", "203.0.113.5"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "docker.io": ["203.0.113.9"],
}


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []

    def getaddrinfo(host: str, port: object, *args: object, **kwargs: object) -> list[tuple]:
        asked.append(host)
        if host not in RESOLVES:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0))
            for a in RESOLVES[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize(
    ("registry", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("dev.example:5000", True),
        # Decided by the address, never by the name: issue 17, item 9.
        ("registry.localhost:5000", False),  # does not resolve
        ("evil.localhost:5000", False),
        ("mixed.example:5000", False),  # every address must be loopback
        ("mapped.example:5000", True),
        ("127.0.0.1", True),
        ("127.0.0.1:5000", True),
        ("127.1.2.3:443", True),
        ("[::1]:5000", True),
        ("[::1]", True),
        ("docker.io", False),
        ("registry.example.com:5000", False),
        ("localhost.example.com", False),
        ("mylocalhost:5000", False),
        ("10.0.0.1:5000", False),
        ("128.0.0.1", False),
        ("[::2]:5000", False),
        # A name that merely starts with "127." is not an address in 127.0.0.0/8.
        ("127.example.com:5000", False),
    ],
)
def test_is_loopback(registry: str, loopback: bool, resolver: list[str]) -> None:
    assert is_loopback(registry) is loopback


def test_addresses_are_not_looked_up(resolver: list[str]) -> None:
    assert is_loopback("127.0.0.1:5000") and is_loopback("[::1]:5000")
    assert resolver == []
