from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dockerma.core.dockerfile import (
    Dockerfile,
    external_images,
    is_external,
    parse,
    render,
    resolve_base,
    stage_platform,
)
from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError

DATA = Path(__file__).parent / "data" / "dockerfiles"
AMD64 = Platform.parse("amd64")
ARM = Platform.parse("arm")
ARM64 = Platform.parse("arm64")
BUILD = AMD64


def digest(name: str, platform: Platform) -> str:
    """A fake, deterministic digest per (repository, platform)."""
    return "sha256:" + hashlib.sha256(f"{name}|{platform}".encode()).hexdigest()


def pin(ref: str, platform: Platform) -> str:
    name = ImageRef.parse(ref).name
    return f"{name}@{digest(name, platform)}"


def sample(name: str) -> str:
    return (DATA / name).read_text()


def render_for(df: Dockerfile, target: Platform, **build_args: str) -> str:
    return render(df, target=target, build=BUILD, build_args=build_args, pin=pin)


def assert_rendered(df: Dockerfile, rendered: str, froms: dict[int, str]) -> None:
    """`froms` maps a stage index to its new FROM line; every other line is byte-identical."""
    original = df.content.split("\n")
    got = rendered.split("\n")
    expected: list[str] = []
    done = 0
    for stage in df.stages:
        if stage.index not in froms:
            continue
        expected += original[done : stage.startline]
        ending = "\r" if original[stage.endline].endswith("\r") else ""
        expected.append(froms[stage.index] + ending)
        done = stage.endline + 1
    expected += original[done:]
    assert got == expected
    assert rendered.endswith("\n") == df.content.endswith("\n")


def archs(df: Dockerfile) -> list[str] | None:
    return None if df.archs is None else [str(p) for p in df.archs]


# --- the archs directive ------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected", "line"),
    [
        (
            "# dockerma archs:arm,amd64,arm64:\nFROM a\n",
            ["linux/arm/v7", "linux/amd64", "linux/arm64"],
            "# dockerma archs:arm,amd64,arm64:",
        ),
        ("#dockerma archs: arm , amd64 :\nFROM a\n", ["linux/arm/v7", "linux/amd64"], None),
        ("# dockerma  archs:arm64\nFROM a\n", ["linux/arm64"], None),
        ("  # Dockerma ARCHS : arm64\nFROM a\n", ["linux/arm64"], None),
        (
            "# dockerma archs:x86_64,aarch64,armhf,armel,i386,linux/ppc64le\nFROM a\n",
            [
                "linux/amd64",
                "linux/arm64",
                "linux/arm/v7",
                "linux/arm/v6",
                "linux/386",
                "linux/ppc64le",
            ],
            None,
        ),
        (
            "# dockerma archs:arm,armhf,arm/v7,amd64,x86_64,arm64/v8,aarch64\nFROM a\n",
            ["linux/arm/v7", "linux/amd64", "linux/arm64"],
            None,
        ),
        ("# escape=`\n# dockerma archs:arm\nFROM a\n", ["linux/arm/v7"], None),
        (
            "# syntax=docker/dockerfile:1\n# escape=`\n# dockerma archs:arm\nFROM a\n",
            ["linux/arm/v7"],
            None,
        ),
        (
            "# build me\n\n# dockerma archs:s390x\n\nARG X=1\nFROM a\n",
            ["linux/s390x"],
            "# dockerma archs:s390x",
        ),
        ("# dockerma archs:arm64\nfrom a as b\n", ["linux/arm64"], None),
        ("# dockerma archs:arm64\r\nFROM a\r\n", ["linux/arm64"], "# dockerma archs:arm64"),
        ("\ufeff# dockerma archs:riscv64\nFROM a\n", ["linux/riscv64"], "# dockerma archs:riscv64"),
        ("FROM a\n# dockermatic is not us\n", None, None),
        ("# no directive\nFROM a\n", None, None),
    ],
)
def test_archs_directive(content: str, expected: list[str] | None, line: str | None) -> None:
    df = parse(content)
    assert archs(df) == expected
    if line is not None:
        assert df.archs_line == line
    if expected is None:
        assert df.archs_line is None


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("# dockerma archs:\nFROM a\n", ["line 1", "'# dockerma archs:'", "names no architecture"]),
        ("# dockerma archs: , :\nFROM a\n", ["'# dockerma archs: , :'", "names no architecture"]),
        (
            "# dockerma archs:arm,sparc\nFROM a\n",
            ["'# dockerma archs:arm,sparc'", "unknown architecture 'sparc'", "use one of"],
        ),
        (
            "# dockerma archs:arm\n# dockerma archs:arm64\nFROM a\n",
            ["line 2", "'# dockerma archs:arm64'", "second archs directive", "line 1"],
        ),
        ("# dockerma arch:arm\nFROM a\n", ["'# dockerma arch:arm'", "not a dockerma directive"]),
        ("# dockerma archs arm\nFROM a\n", ["'# dockerma archs arm'", "# dockerma archs:"]),
        ("# dockerma\nFROM a\n", ["'# dockerma'", "not a dockerma directive"]),
        ("# dockerma:archs:arm\nFROM a\n", ["'# dockerma:archs:arm'", "not a dockerma directive"]),
        ("FROM a\n# dockerma smok:true\n", ["line 2", "'# dockerma smok:true'"]),
        ("FROM a\n# dockerma smoke:\n", ["line 2", "'# dockerma smoke:'", "names no command"]),
    ],
)
def test_directive_errors_quote_the_line(content: str, fragments: list[str]) -> None:
    with pytest.raises(DockermaError) as caught:
        parse(content)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("content", "expected", "late"),
    [
        ("FROM a\n# dockerma archs:arm\n", None, "line 2: '# dockerma archs:arm'"),
        ("ARG BASE=a\n# dockerma archs:arm\nFROM $BASE\n", None, "line 2"),
        ("FROM \\\n# dockerma archs:arm\n  alpine\n", None, "line 2"),
        # a late line is not read at all: neither its contents nor as a second directive
        ("# dockerma archs:arm64\nFROM a\n# dockerma archs:sparc\n", ["linux/arm64"], "line 3"),
        ("FROM a\n# dockerma archs:arm\n# dockerma archs:amd64\n", None, "line 2"),
    ],
)
def test_archs_comment_after_the_first_instruction_is_an_ordinary_comment(
    content: str, expected: list[str] | None, late: str
) -> None:
    df = parse(content)
    assert archs(df) == expected
    assert df.late_archs is not None and df.late_archs.startswith(late)


def test_no_late_archs_when_the_comment_is_in_place() -> None:
    assert parse("# dockerma archs:arm\nFROM a\n# a comment\n").late_archs is None


def test_smoke_directives_anywhere_in_order() -> None:
    df = parse(
        "# dockerma smoke: /bin/true \n"
        "FROM a\n"
        "RUN <<EOF\n"
        "# dockerma smoke:not-a-comment-inside-a-heredoc\n"
        "EOF\n"
        "# DOCKERMA SMOKE:sh -c 'echo ok'\n"
    )
    assert df.smoke == ("/bin/true", "sh -c 'echo ok'")
    assert df.archs is None


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("", "empty"),
        ("\n  \n\n", "empty"),
        ("# just a comment\n", "no FROM"),
        ("# dockerma archs:arm\nARG X=1\n", "no FROM"),
        ("RUN true\nFROM a\n", "line 1: RUN comes before the first FROM"),
        ("FROM a b\n", "'FROM a b' is not FROM [--platform=…] IMAGE [AS NAME]"),
        ("FROM\n", "line 1"),
        ("# escape=x\nFROM a\n", "invalid escape token 'x'"),
    ],
)
def test_bad_dockerfiles(content: str, fragment: str) -> None:
    with pytest.raises(DockermaError, match=None) as caught:
        parse(content)
    assert fragment in str(caught.value)


# --- stages ---------------------------------------------------------------------------


def stages(df: Dockerfile) -> list[tuple[object, ...]]:
    return [
        (s.index, s.base, s.alias, s.platform_flag, s.flags, s.startline, s.endline)
        for s in df.stages
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("FROM busybox:1\n", [(0, "busybox:1", None, None, (), 0, 0)]),
        (
            "FROM golang:1 AS Builder\nRUN go build\n"
            "from alpine:3 as final\nCOPY --from=builder /a /a\n",
            [(0, "golang:1", "builder", None, (), 0, 0), (1, "alpine:3", "final", None, (), 2, 2)],
        ),
        (
            "FROM --platform=$BUILDPLATFORM golang:1 AS tools\n",
            [
                (
                    0,
                    "golang:1",
                    "tools",
                    "$BUILDPLATFORM",
                    ("--platform=$BUILDPLATFORM",),
                    0,
                    0,
                )
            ],
        ),
        (
            "FROM \\\n  --platform=linux/amd64 \\\n  alpine:3 \\\n  AS x\nRUN true\n",
            [(0, "alpine:3", "x", "linux/amd64", ("--platform=linux/amd64",), 0, 3)],
        ),
        (
            "FROM alpine:3 \\\n# a comment inside the FROM\n  AS x\n",
            [(0, "alpine:3", "x", None, (), 0, 2)],
        ),
        (
            # docker skips a blank line inside a continuation; dockerfile-parse would end the
            # RUN there and read the next line as a FROM.
            "FROM a\nRUN echo \\\n\n  from here\nFROM b\n",
            [(0, "a", None, None, (), 0, 0), (1, "b", None, None, (), 4, 4)],
        ),
        (
            # A Python heredoc: `from os import path` is not a stage.
            "FROM python:3\nRUN <<EOF python3\nfrom os import path\nEOF\nFROM b\n",
            [(0, "python:3", None, None, (), 0, 0), (1, "b", None, None, (), 4, 4)],
        ),
        (
            "FROM a\nCOPY <<-EOT1 <<'EOT2' /dst/\n\tFROM x\n\tEOT1\nFROM y\nEOT2\nFROM b\n",
            [(0, "a", None, None, (), 0, 0), (1, "b", None, None, (), 6, 6)],
        ),
        (
            # Not a heredoc: JSON form, a quoted `<<`, a here-string.
            'FROM a\nRUN ["sh", "-c", "cat <<EOF"]\nRUN echo "<<EOF"\nRUN cat <<< x\nFROM b\n',
            [(0, "a", None, None, (), 0, 0), (1, "b", None, None, (), 4, 4)],
        ),
        (
            "FROM a\nONBUILD RUN <<EOF\nFROM x\nEOF\nFROM b\n",
            [(0, "a", None, None, (), 0, 0), (1, "b", None, None, (), 4, 4)],
        ),
        (
            # A heredoc body line ending in a backslash does not swallow the next instruction.
            "FROM a\nRUN <<EOF\necho \\\nEOF\nFROM b\n",
            [(0, "a", None, None, (), 0, 0), (1, "b", None, None, (), 4, 4)],
        ),
        (
            "FROM a\nRUN cat << EOF > /f\nFROM x\nEOF\nFROM b\n",
            [(0, "a", None, None, (), 0, 0), (1, "b", None, None, (), 4, 4)],
        ),
        (
            "# escape=`\nFROM `\n  alpine:3\nRUN dir c:\\ \nFROM b\n",
            [(0, "alpine:3", None, None, (), 1, 2), (1, "b", None, None, (), 4, 4)],
        ),
        (
            # `# check=` is a parser directive too (dockerfile 1.8): the escape still counts.
            "# check=skip=all\n# escape=`\nFROM `\n  alpine:3\n",
            [(0, "alpine:3", None, None, (), 2, 3)],
        ),
        (
            # After a comment, `# escape=` is only a comment (docker's rule), so a backslash
            # still continues.
            "# hello\n# escape=`\nFROM \\\n  alpine:3\n",
            [(0, "alpine:3", None, None, (), 2, 3)],
        ),
        (
            # dockerfile-parse drops an instruction continued to the end of the file.
            "FROM a\nFROM b \\\n  AS c \\",
            [(0, "a", None, None, (), 0, 0), (1, "b", "c", None, (), 1, 2)],
        ),
        (
            "\ufeffFROM a\r\nFROM b\r\n",
            [(0, "a", None, None, (), 0, 0), (1, "b", None, None, (), 1, 1)],
        ),
        ("  from   a  AS   X  \n", [(0, "a", "x", None, (), 0, 0)]),
    ],
)
def test_stages(content: str, expected: list[tuple[object, ...]]) -> None:
    assert stages(parse(content)) == expected


def test_instructions_end_and_args() -> None:
    df = parse(
        "ARG BASE=busybox:1 REG\n"
        'ARG QUOTED="a b"\n'
        "FROM $BASE AS one\n"
        "ARG LATE=1\n"
        "RUN true\n"
        "\n"
        "FROM one\n"
        "ARG TARGETARCH\n"
    )
    assert [s.instructions_end for s in df.stages] == [5, 7]
    assert df.global_args == {"BASE": "busybox:1", "REG": None, "QUOTED": '"a b"'}
    assert df.declared_args == {"BASE", "REG", "QUOTED", "LATE", "TARGETARCH"}


# --- variables in FROM ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "build_args", "target", "expected"),
    [
        ("ARG BASE=busybox:1\nFROM ${BASE}\n", {}, ARM, "busybox:1"),
        ("ARG BASE=busybox:1\nFROM $BASE\n", {"BASE": "alpine:3"}, ARM, "alpine:3"),
        ("ARG BASE\nFROM ${BASE:-alpine:3}\n", {}, ARM, "alpine:3"),
        ("FROM ${UNDECLARED:-alpine:3}\n", {}, ARM, "alpine:3"),
        ("ARG BASE=\nFROM ${BASE:-alpine:3}\n", {}, ARM, "alpine:3"),
        ("ARG V=\nFROM alpine:3${V-.1}\n", {}, ARM, "alpine:3"),
        ("ARG V=\nFROM alpine:3${V:-.1}\n", {}, ARM, "alpine:3.1"),
        ("ARG SLIM=1\nFROM python:3${SLIM:+-slim}\n", {}, ARM, "python:3-slim"),
        ("ARG SLIM\nFROM python:3${SLIM:+-slim}\n", {}, ARM, "python:3"),
        ("ARG SLIM\nFROM python:3${SLIM:+-slim}\n", {"SLIM": "y"}, ARM, "python:3-slim"),
        ("ARG V=3.19\nARG BASE=alpine:${V}\nFROM $BASE\n", {}, ARM, "alpine:3.19"),
        ("ARG V=3.19\nARG BASE=alpine:${V}\nFROM $BASE\n", {"V": "3.20"}, ARM, "alpine:3.20"),
        ("ARG V=1\nARG B=x:$V\nARG V=2\nFROM $B\n", {}, ARM, "x:1"),
        ('ARG BASE="busybox:1"\nFROM ${BASE}\n', {}, ARM, "busybox:1"),
        (
            "ARG REG=localhost:5000 IMAGE=a/b\nFROM ${REG}/${IMAGE}:c\n",
            {},
            ARM,
            "localhost:5000/a/b:c",
        ),
        ("ARG REG=localhost:5000\nFROM ${REG}/${IMAGE:-a/b}:c\n", {}, ARM, "localhost:5000/a/b:c"),
        ("FROM busybox:1-${TARGETARCH}\n", {}, ARM, "busybox:1-arm"),
        ("FROM busybox:1-${TARGETARCH}${TARGETVARIANT}\n", {}, ARM, "busybox:1-armv7"),
        ("FROM busybox:1-${TARGETARCH}${TARGETVARIANT}\n", {}, ARM64, "busybox:1-arm64"),
        ("FROM busybox:${BUILDARCH}\n", {}, ARM, "busybox:amd64"),
        ("ARG TARGETARCH\nFROM busybox:${TARGETARCH}\n", {}, ARM64, "busybox:arm64"),
        # --build-arg reaches FROM only through an ARG before the first FROM, as in docker.
        ("FROM ${BASE:-busybox}\n", {"BASE": "alpine"}, ARM, "busybox"),
        ("FROM a\nARG LATE=x\nFROM ${LATE:-busybox}\n", {}, ARM, "busybox"),
        # buildkit lets a --build-arg override its automatic platform args.
        ("FROM busybox:${TARGETARCH}\n", {"TARGETARCH": "custom"}, ARM, "busybox:custom"),
        ("FROM busybox:1@sha256:" + "a" * 64 + "\n", {}, ARM, "busybox:1@sha256:" + "a" * 64),
        ("ARG STAGE=build\nFROM alpine AS build\nFROM ${STAGE}\n", {}, ARM, "build"),
        ("# escape=`\nARG BASE=busybox:1\nFROM ${BASE}\n", {}, ARM, "busybox:1"),
    ],
)
def test_resolve_base(
    content: str, build_args: dict[str, str], target: Platform, expected: str
) -> None:
    df = parse(content)
    stage = df.stages[-1]
    got = resolve_base(df, stage, build_args=build_args, target=target, build=BUILD)
    assert got == expected


@pytest.mark.parametrize(
    ("content", "build_args", "fragments"),
    [
        (
            "ARG BASE\nFROM ${BASE}\n",
            {},
            ["line 2", "'FROM ${BASE}'", "$BASE", "default", "--build-arg BASE="],
        ),
        (
            "FROM $BASE AS x\n",
            {"BASE": "alpine"},
            ["line 1", "'FROM $BASE AS x'", "no ARG before the first FROM declares", "ARG BASE="],
        ),
        ("ARG BASE=\nFROM $BASE\n", {}, ["line 2", "empty image name", "--build-arg"]),
        ("ARG BASE=a\nFROM $BASE\n", {"BASE": ""}, ["empty image name"]),
        (
            "ARG REG\nARG BASE=${REG}/x\nFROM ${BASE}\n",
            {},
            ["line 3", "$REG", "needed by BASE", "--build-arg REG="],
        ),
        ("ARG X\nFROM alpine:${X:?}\n", {}, ["$X", "--build-arg X="]),
        ("ARG X=a\nFROM ${X#a}\n", {}, ["line 2", "cannot expand"]),
        ("FROM ${X\n", {}, ["line 1", "closing }"]),
        ("FROM 'alpine\n", {}, ["unterminated single quote"]),
        ("ARG B='x\nFROM $B\n", {}, ["line 1", "ARG B", "quoting"]),
    ],
)
def test_resolve_base_errors(
    content: str, build_args: dict[str, str], fragments: list[str]
) -> None:
    df = parse(content)
    with pytest.raises(DockermaError) as caught:
        resolve_base(df, df.stages[-1], build_args=build_args, target=ARM, build=BUILD)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("from_line", "target", "expected"),
    [
        ("FROM a", ARM, ARM),
        ("FROM --platform=$BUILDPLATFORM a", ARM, AMD64),
        ("FROM --platform=${BUILDPLATFORM} a", ARM64, AMD64),
        ("FROM --platform=$TARGETPLATFORM a", ARM, ARM),
        ("FROM --platform=linux/amd64 a", ARM64, AMD64),
        ("FROM --platform=${BUILDOS}/${BUILDARCH} a", ARM, AMD64),
        ("FROM --platform=linux/arm64/v8 a", ARM, ARM64),
        ("FROM --platform=$TARGETOS/$TARGETARCH/$TARGETVARIANT a", ARM, ARM),
    ],
)
def test_stage_platform(from_line: str, target: Platform, expected: Platform) -> None:
    df = parse(from_line + "\n")
    got = stage_platform(df, df.stages[0], build_args={}, target=target, build=BUILD)
    assert got == expected


def test_stage_platform_errors_name_the_line() -> None:
    df = parse("FROM a\nFROM --platform=linux/sparc b\n")
    with pytest.raises(DockermaError, match=r"line 2: .*unknown architecture 'linux/sparc'"):
        stage_platform(df, df.stages[1], build_args={}, target=ARM, build=BUILD)


@pytest.mark.parametrize(
    ("content", "index", "resolved", "expected"),
    [
        ("FROM scratch\n", 0, "scratch", False),
        ("FROM a AS builder\nFROM builder\n", 1, "builder", False),
        ("FROM a AS Builder\nFROM BUILDER\n", 1, "BUILDER", False),
        ("ARG S=builder\nFROM a AS builder\nFROM $S\n", 1, "builder", False),
        ("FROM a\nFROM 0\n", 1, "0", False),
        ("FROM alpine AS alpine\n", 0, "alpine", True),
        ("FROM later\nFROM a AS later\n", 0, "later", True),
        ("FROM busybox:1\n", 0, "busybox:1", True),
        ("FROM localhost:5000/a/b:c\n", 0, "localhost:5000/a/b:c", True),
    ],
)
def test_is_external(content: str, index: int, resolved: str, expected: bool) -> None:
    df = parse(content)
    assert is_external(df, df.stages[index], resolved) is expected


def test_external_images_distinct_in_first_seen_order() -> None:
    df = parse(sample("go-cross.Dockerfile"))
    got = external_images(df, build_args={}, targets=list(df.archs or ()), build=BUILD)
    assert got == [
        ("golang:1.22-alpine", AMD64),
        ("alpine:3.19", AMD64),
        ("alpine:3.19", ARM64),
        ("alpine:3.19", ARM),
    ]


def test_external_images_reports_a_bad_reference_with_its_line() -> None:
    df = parse("ARG BASE=Bad:Name:x\nFROM $BASE\n")
    with pytest.raises(DockermaError, match=r"^line 2: 'FROM \$BASE': invalid"):
        external_images(df, build_args={}, targets=[ARM], build=BUILD)


# --- rendering --------------------------------------------------------------------------


def test_render_single_stage() -> None:
    df = parse("# dockerma archs:arm\nFROM busybox:1\nRUN uname -m\n")
    out = render_for(df, ARM)
    assert out == f"# dockerma archs:arm\nFROM busybox@{digest('busybox', ARM)}\nRUN uname -m\n"


@pytest.mark.parametrize(
    ("content", "target", "build_args", "froms"),
    [
        (
            "FROM golang:1 AS Build\nRUN go build\nFROM alpine:3\nCOPY --from=build /a /a\n"
            "COPY --from=0 /b /b\n",
            ARM64,
            {},
            {
                0: f"FROM golang@{digest('golang', ARM64)} AS build",
                1: f"FROM alpine@{digest('alpine', ARM64)}",
            },
        ),
        (
            "FROM alpine:3 AS build\nRUN make\nFROM scratch\nCOPY --from=build /app /app\n",
            ARM,
            {},
            {0: f"FROM alpine@{digest('alpine', ARM)} AS build"},
        ),
        (
            "FROM --platform=$BUILDPLATFORM golang:1 AS tools\nRUN go build\n"
            "FROM busybox:1\nCOPY --from=tools /out /out\n",
            ARM,
            {},
            {
                0: f"FROM --platform=linux/amd64 golang@{digest('golang', AMD64)} AS tools",
                1: f"FROM busybox@{digest('busybox', ARM)}",
            },
        ),
        (
            "FROM --platform=$TARGETPLATFORM busybox:1\n",
            ARM,
            {},
            {0: f"FROM --platform=linux/arm/v7 busybox@{digest('busybox', ARM)}"},
        ),
        (
            "FROM localhost:5000/a/b:c\n",
            ARM64,
            {},
            {0: f"FROM localhost:5000/a/b@{digest('localhost:5000/a/b', ARM64)}"},
        ),
        (
            "FROM busybox:1@sha256:" + "0" * 64 + " AS x\n",
            ARM,
            {},
            {0: f"FROM busybox@{digest('busybox', ARM)} AS x"},
        ),
        (
            "ARG BASE=localhost:5000/busybox:1\nFROM ${BASE}\nRUN true\n",
            ARM,
            {},
            {0: f"FROM localhost:5000/busybox@{digest('localhost:5000/busybox', ARM)}"},
        ),
        (
            "ARG BASE=localhost:5000/busybox:1\nFROM ${BASE}\nRUN true\n",
            ARM,
            {"BASE": "alpine:3"},
            {0: f"FROM alpine@{digest('alpine', ARM)}"},
        ),
        (
            "FROM alpine:3 \\\n  AS build\nFROM    build   AS  Final\nRUN x\n",
            ARM,
            {},
            {0: f"FROM alpine@{digest('alpine', ARM)} AS build"},
        ),
        (
            "FROM scratch\nCOPY a /\n",
            ARM,
            {},
            {},
        ),
        (
            'FROM a\r\nRUN echo \\\r\n  x\r\n\r\nFROM b \\\r\n  AS c\r\nCMD ["x"]\r\n',
            ARM,
            {},
            {0: f"FROM a@{digest('a', ARM)}", 1: f"FROM b@{digest('b', ARM)} AS c"},
        ),
        (
            "FROM a\nRUN true\nFROM b",
            ARM,
            {},
            {0: f"FROM a@{digest('a', ARM)}", 1: f"FROM b@{digest('b', ARM)}"},
        ),
        (
            "FROM python:3\nRUN <<EOF python3\nfrom os import path\nEOF\n",
            ARM,
            {},
            {0: f"FROM python@{digest('python', ARM)}"},
        ),
    ],
)
def test_render(
    content: str, target: Platform, build_args: dict[str, str], froms: dict[int, str]
) -> None:
    df = parse(content)
    assert_rendered(df, render_for(df, target, **build_args), froms)


def test_render_keeps_a_byte_order_mark() -> None:
    df = parse("\ufeffFROM a\n")
    assert render_for(df, ARM) == f"\ufeffFROM a@{digest('a', ARM)}\n"


def test_render_passes_resolved_reference_and_stage_platform_to_pin() -> None:
    calls: list[tuple[str, Platform]] = []

    def recording_pin(ref: str, platform: Platform) -> str:
        calls.append((ref, platform))
        return "x@sha256:" + "1" * 64

    df = parse(
        "ARG V=1\nFROM --platform=$BUILDPLATFORM tool:${V} AS t\n"
        "FROM t AS again\nFROM base@sha256:" + "2" * 64 + "\nFROM scratch\n"
    )
    render(df, target=ARM, build=AMD64, build_args={"V": "2"}, pin=recording_pin)
    assert calls == [("tool:2", AMD64), ("base@sha256:" + "2" * 64, ARM)]


# --- sample Dockerfiles -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected_archs", "expected_stages", "smoke"),
    [
        (
            "go-cross.Dockerfile",
            ["linux/amd64", "linux/arm64", "linux/arm/v7"],
            [
                (
                    0,
                    "golang:${GO_VERSION}-alpine",
                    "build",
                    "$BUILDPLATFORM",
                    ("--platform=$BUILDPLATFORM",),
                    5,
                    5,
                ),
                (1, "alpine:3.19", "certs", None, (), 15, 15),
                (2, "scratch", None, None, (), 18, 18),
            ],
            ("/server --version",),
        ),
        (
            "python-app.Dockerfile",
            ["linux/amd64", "linux/arm64", "linux/arm/v7"],
            [
                (0, "${REGISTRY}/team/python:${PYTHON}-slim", "base", None, (), 4, 4),
                (1, "base", "deps", None, (), 8, 8),
                (2, "base", None, None, (), 19, 19),
            ],
            ('python3 -c "import app"', "python3 -m app --help"),
        ),
        (
            "backtick-escape.Dockerfile",
            ["linux/amd64", "linux/arm64"],
            [
                (0, "localhost:5000/tools/builder:2", "builder", None, (), 2, 4),
                (1, "busybox:1.36", None, None, (), 7, 7),
            ],
            (),
        ),
        (
            "seed.Dockerfile",
            ["linux/arm/v7", "linux/amd64", "linux/arm64"],
            [(0, "localhost:5000/busybox:1", None, None, (), 1, 1)],
            (),
        ),
    ],
)
def test_samples_parse(
    name: str,
    expected_archs: list[str],
    expected_stages: list[tuple[object, ...]],
    smoke: tuple[str, ...],
) -> None:
    df = parse(sample(name))
    assert archs(df) == expected_archs
    assert stages(df) == expected_stages
    assert df.smoke == smoke


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
@pytest.mark.parametrize("target", [AMD64, ARM64, ARM], ids=str)
def test_samples_render(target: Platform, crlf: bool) -> None:
    expected = {
        "go-cross.Dockerfile": {
            0: f"FROM --platform=linux/amd64 golang@{digest('golang', AMD64)} AS build",
            1: f"FROM alpine@{digest('alpine', target)} AS certs",
        },
        "python-app.Dockerfile": {
            0: "FROM localhost:5000/team/python@"
            f"{digest('localhost:5000/team/python', target)} AS base",
        },
        "backtick-escape.Dockerfile": {
            0: "FROM localhost:5000/tools/builder@"
            f"{digest('localhost:5000/tools/builder', target)} AS builder",
            1: f"FROM busybox@{digest('busybox', target)}",
        },
        "seed.Dockerfile": {
            0: f"FROM localhost:5000/busybox@{digest('localhost:5000/busybox', target)}"
        },
    }
    for name, froms in expected.items():
        content = sample(name)
        if crlf:
            content = content.replace("\n", "\r\n")
        df = parse(content)
        assert_rendered(df, render_for(df, target), froms)


def test_sample_build_args_reach_the_pinned_reference() -> None:
    df = parse(sample("python-app.Dockerfile"))
    out = render_for(df, ARM64, REGISTRY="registry.example:443", PYTHON="3.13")
    name = "registry.example:443/team/python"
    assert f"\nFROM {name}@{digest(name, ARM64)} AS base\n" in out


def test_prose_comment_starting_with_dockerma_is_not_a_directive() -> None:
    df = parse("# dockerma builds this image for us\nFROM busybox\n")
    assert df.archs is None


# Issue 17, item 2: whatever a pin (a registry's digest) or the scratch stand-in holds, the
# renderer never writes a line break or control character into the Dockerfile.
@pytest.mark.parametrize(
    "pinned",
    [
        "busybox@sha256:" + "a" * 64 + "\nRUN touch /pwned",
        "busybox@sha256:" + "a" * 64 + "\rRUN touch /pwned",
        "busybox@sha256:" + "a" * 64 + "\u2028RUN touch /pwned",
        "busybox@sha256:" + "a" * 64 + "\x1b[2J",
        "busybox@sha256:" + "a" * 64 + "\x00",
        "busybox@sha256:" + "a" * 64 + "\x85",
    ],
    ids=repr,
)
def test_render_refuses_a_reference_with_a_control_character(pinned: str) -> None:
    df = parse("# dockerma archs:amd64:\nFROM busybox:1 AS base\nRUN true\n")
    with pytest.raises(DockermaError, match="line break or control character") as info:
        render(df, target=AMD64, build=BUILD, build_args={}, pin=lambda ref, p: pinned)
    assert "\n" not in str(info.value) and "busybox:1" in str(info.value)


def test_render_refuses_a_scratch_stand_in_with_a_line_break() -> None:
    df = parse("# dockerma archs:amd64:\nFROM scratch\nCOPY a /\n")
    with pytest.raises(DockermaError, match="line break or control character"):
        render(df, target=AMD64, build=BUILD, build_args={}, pin=pin, scratch="x:1\nRUN evil")
