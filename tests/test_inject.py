from __future__ import annotations

import re
from pathlib import Path

import pytest

from dockerma.core import dockerfile, inject
from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError

DATA = Path(__file__).parent / "data" / "dockerfiles"
AMD64 = Platform.parse("amd64")
ARM = Platform.parse("arm")
ARM64 = Platform.parse("arm64")
IMAGE = "example.com/cross-build:1"
FILES = "FROM example.com/cross-build@sha256:amd64 AS dockerma_build_files"
START = ('RUN ["cross-build-start"]',)
END = 'RUN ["cross-build-end"]'
DIRS = ("x86_64", "arm32v7", "arm64v8")


def pin(ref: str, platform: Platform) -> str:
    """Readable fake digests: the platform the reference was pinned for is visible."""
    return f"{ImageRef.parse(ref).name}@sha256:{platform.suffix}"


def shim(directory: str) -> list[str]:
    return [f"COPY --from=dockerma_build_files /cross-build/{directory}/bin /bin", *START]


def render(content: str, target: Platform = ARM64, build: Platform = AMD64, **args: str) -> str:
    df = dockerfile.parse(content)
    return inject.render(
        df, target=target, build=build, build_args=args, pin=pin, cross_build_image=IMAGE
    )


def emulate(content: str, target: Platform = ARM64, build: Platform = AMD64, **args: str) -> str:
    df = dockerfile.parse(content)
    return dockerfile.render(df, target=target, build=build, build_args=args, pin=pin)


def text(*lines: str) -> str:
    return "".join(f"{line}\n" for line in lines)


# --- the supported architectures ------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("amd64", True),
        ("arm", True),
        ("arm/v7", True),
        ("armhf", True),
        ("arm64", True),
        ("linux/arm64/v8", True),
        ("arm/v6", False),
        ("386", False),
        ("s390x", False),
        ("ppc64le", False),
        ("riscv64", False),
    ],
)
def test_supported(platform: str, expected: bool) -> None:
    assert inject.supported(Platform.parse(platform)) is expected


def test_supported_maps_to_the_cross_build_directories() -> None:
    assert inject.SUPPORTED == {"amd64": "x86_64", "arm": "arm32v7", "arm64": "arm64v8"}


def test_check_passes_for_supported_architectures() -> None:
    inject.check([AMD64, ARM, ARM64], IMAGE)


def test_check_names_the_unsupported_the_supported_and_the_image() -> None:
    platforms = [AMD64, Platform.parse("s390x"), Platform.parse("arm/v6")]
    with pytest.raises(DockermaError) as info:
        inject.check(platforms, IMAGE)
    message = str(info.value)
    assert "\n" not in message
    for fragment in ("linux/s390x", "linux/arm/v6", IMAGE, "amd64", "arm64", "arm (arm/v7)"):
        assert fragment in message
    assert "--strategy emulate" in message
    assert "linux/amd64," not in message  # amd64 is not named as unsupported


# --- rendering ------------------------------------------------------------------------

CASES: dict[str, tuple[str, str]] = {
    "single_stage": (
        text("FROM busybox:1", "RUN make", 'CMD ["app"]'),
        text(
            FILES,
            "FROM busybox@sha256:arm64",
            *shim("arm64v8"),
            "RUN make",
            'CMD ["app"]',
            END,
        ),
    ),
    "multi_stage_aliases_and_numbers": (
        text(
            "FROM golang:1 AS build",
            "RUN go build -o /app",
            "",
            "# the final image",
            "FROM alpine:3",
            "COPY --from=0 /app /app",
            "COPY --from=build /app /app2",
            "RUN /app --version",
            'ENTRYPOINT ["/app"]',
        ),
        text(
            FILES,
            "FROM golang@sha256:arm64 AS build",
            *shim("arm64v8"),
            "RUN go build -o /app",
            END,
            "",
            "# the final image",
            "FROM alpine@sha256:arm64",
            *shim("arm64v8"),
            "COPY --from=1 /app /app",
            "COPY --from=build /app /app2",
            "RUN /app --version",
            'ENTRYPOINT ["/app"]',
            END,
        ),
    ),
    "final_stage_without_run_is_wrapped_too": (
        text("FROM golang:1 AS build", "RUN make", "FROM alpine:3", "COPY --from=0 /a /a"),
        text(
            FILES,
            "FROM golang@sha256:arm64 AS build",
            *shim("arm64v8"),
            "RUN make",
            END,
            "FROM alpine@sha256:arm64",
            *shim("arm64v8"),
            "COPY --from=1 /a /a",
            END,
        ),
    ),
    "stage_of_only_a_from": (
        text("FROM busybox:1 AS a", "RUN x", "FROM a", "FROM alpine:3"),
        text(
            FILES,
            "FROM busybox@sha256:arm64 AS a",
            *shim("arm64v8"),
            "RUN x",
            END,
            "FROM a",
            *shim("arm64v8"),
            END,
            "FROM alpine@sha256:arm64",
            *shim("arm64v8"),
            END,
        ),
    ),
    "stage_of_only_a_from_inherits_a_user": (
        text("FROM busybox:1 AS a", "USER app", "FROM a"),
        text(
            FILES,
            "FROM busybox@sha256:arm64 AS a",
            *shim("arm64v8"),
            "USER app",
            "USER 0:0",
            END,
            "USER app",
            "FROM a",
            "USER 0:0",
            *shim("arm64v8"),
            END,
            "USER app",
        ),
    ),
    "scratch_stages": (
        text(
            "FROM scratch AS files",
            "COPY a /a",
            "FROM files AS more",
            "RUN never-a-shell",
            "FROM busybox:1",
            "COPY --from=files /a /a",
            "RUN cat /a",
            "FROM scratch",
            "COPY --from=2 /a /a",
        ),
        text(
            FILES,
            "FROM scratch AS files",
            "COPY a /a",
            "FROM files AS more",
            "RUN never-a-shell",
            "FROM busybox@sha256:arm64",
            *shim("arm64v8"),
            "COPY --from=files /a /a",
            "RUN cat /a",
            END,
            "FROM scratch",
            "COPY --from=3 /a /a",
        ),
    ),
    "stage_from_alias_inherits_and_gets_its_own_copy": (
        text(
            "FROM busybox:1 AS Base",
            "ENV A=1",
            "FROM base AS test",
            "RUN make test",
            "FROM test",
            "RUN make install",
        ),
        text(
            FILES,
            "FROM busybox@sha256:arm64 AS base",
            *shim("arm64v8"),
            "ENV A=1",
            END,
            "FROM base AS test",
            *shim("arm64v8"),
            "RUN make test",
            END,
            "FROM test",
            *shim("arm64v8"),
            "RUN make install",
            END,
        ),
    ),
    "buildplatform_stage_gets_the_build_machines_files": (
        text(
            "FROM --platform=$BUILDPLATFORM golang:1 AS build",
            "RUN GOARCH=arm64 go build -o /app",
            "FROM build AS again",
            "RUN echo native too",
            "FROM alpine:3",
            "COPY --from=build /app /app",
            "RUN /app --selftest",
        ),
        text(
            FILES,
            "FROM --platform=linux/amd64 golang@sha256:amd64 AS build",
            *shim("x86_64"),
            "RUN GOARCH=arm64 go build -o /app",
            END,
            "FROM build AS again",
            *shim("x86_64"),
            "RUN echo native too",
            END,
            "FROM alpine@sha256:arm64",
            *shim("arm64v8"),
            "COPY --from=build /app /app",
            "RUN /app --selftest",
            END,
        ),
    ),
    "directives_and_global_args_stay_first": (
        text(
            "# syntax=docker/dockerfile:1",
            "# escape=\\",
            "# dockerma archs:amd64,arm64,arm:",
            "ARG BASE=busybox:1",
            "# a comment",
            "ARG VERSION=1.0",
            "",
            "FROM ${BASE}",
            "ARG VERSION",
            'RUN echo "$VERSION" > /version',
        ),
        text(
            "# syntax=docker/dockerfile:1",
            "# escape=\\",
            "# dockerma archs:amd64,arm64,arm:",
            "ARG BASE=busybox:1",
            "# a comment",
            "ARG VERSION=1.0",
            "",
            FILES,
            "FROM busybox@sha256:arm64",
            *shim("arm64v8"),
            "ARG VERSION",
            'RUN echo "$VERSION" > /version',
            END,
        ),
    ),
    "run_mount_from_numbers": (
        text(
            "FROM busybox:1 AS cache",
            "FROM busybox:1",
            "RUN --mount=type=cache,from=0,target=/c --network=none \\",
            "    # docker skips this comment line",
            "",
            "    --mount=type=bind,FROM=1,source=/etc,target=/e \\",
            "    --mount=type=bind,from=cache,target=/n \\",
            "    make --from=0 && cp --mount=from=0 x y",
        ),
        text(
            FILES,
            "FROM busybox@sha256:arm64 AS cache",
            *shim("arm64v8"),
            END,
            "FROM busybox@sha256:arm64",
            *shim("arm64v8"),
            "RUN --mount=type=cache,from=1,target=/c --network=none \\",
            "    # docker skips this comment line",
            "",
            "    --mount=type=bind,FROM=2,source=/etc,target=/e \\",
            "    --mount=type=bind,from=cache,target=/n \\",
            "    make --from=0 && cp --mount=from=0 x y",
            END,
        ),
    ),
    "copy_from_flag_after_others_and_on_a_continuation_line": (
        text(
            "FROM busybox:1",
            "FROM busybox:1",
            "copy --chown=1:1 \\",
            "     --from=0 /a /b",
            "COPY --link --from=10 /a /b",
            "COPY /--from=0 /b",
            "RUN true",
        ),
        text(
            FILES,
            "FROM busybox@sha256:arm64",
            *shim("arm64v8"),
            END,
            "FROM busybox@sha256:arm64",
            *shim("arm64v8"),
            "copy --chown=1:1 \\",
            "     --from=1 /a /b",
            "COPY --link --from=11 /a /b",
            "COPY /--from=0 /b",
            "RUN true",
            END,
        ),
    ),
    "onbuild_and_heredoc_bodies_untouched": (
        text(
            "FROM busybox:1",
            "ONBUILD COPY --from=0 /a /a",
            "RUN <<EOF",
            "COPY --from=0 /x /y",
            "FROM not-a-stage",
            "EOF",
            "COPY <<-EOT /etc/note",
            "\tRUN --mount=from=0 x",
            "\tEOT",
        ),
        text(
            FILES,
            "FROM busybox@sha256:arm64",
            *shim("arm64v8"),
            "ONBUILD COPY --from=0 /a /a",
            "RUN <<EOF",
            "COPY --from=0 /x /y",
            "FROM not-a-stage",
            "EOF",
            "COPY <<-EOT /etc/note",
            "\tRUN --mount=from=0 x",
            "\tEOT",
            END,
        ),
    ),
    "heredoc_run_last": (
        text("FROM busybox:1", "RUN <<EOF", "uname -m > /m", "EOF"),
        text(
            FILES,
            "FROM busybox@sha256:arm64",
            *shim("arm64v8"),
            "RUN <<EOF",
            "uname -m > /m",
            "EOF",
            END,
        ),
    ),
    "user_is_root_again_for_cross_build_end": (
        text(
            "FROM busybox:1 AS base",
            "RUN adduser -D app",
            "USER app",
            "RUN whoami > /home/app/me",
            "FROM base",
            "RUN id",
            "USER \\",
            "  nobody",
            'CMD ["id"]',
        ),
        text(
            FILES,
            "FROM busybox@sha256:arm64 AS base",
            *shim("arm64v8"),
            "RUN adduser -D app",
            "USER app",
            "RUN whoami > /home/app/me",
            "USER 0:0",
            END,
            "USER app",
            "FROM base",
            "USER 0:0",
            *shim("arm64v8"),
            "USER app",
            "RUN id",
            "USER \\",
            "  nobody",
            'CMD ["id"]',
            "USER 0:0",
            END,
            "USER \\",
            "  nobody",
        ),
    ),
    "escape_backtick": (
        text(
            "# escape=`",
            "FROM busybox:1",
            "FROM busybox:1",
            "COPY --chown=0:0 `",
            "     --from=0 C:\\a C:\\b",
            "RUN echo a `",
            "    b",
        ),
        text(
            "# escape=`",
            FILES,
            "FROM busybox@sha256:arm64",
            *shim("arm64v8"),
            END,
            "FROM busybox@sha256:arm64",
            *shim("arm64v8"),
            "COPY --chown=0:0 `",
            "     --from=1 C:\\a C:\\b",
            "RUN echo a `",
            "    b",
            END,
        ),
    ),
    "multi_line_from_of_a_stage_reference": (
        text("FROM busybox:1 AS a", "FROM \\", "  a", "RUN x"),
        text(
            FILES,
            "FROM busybox@sha256:arm64 AS a",
            *shim("arm64v8"),
            END,
            "FROM \\",
            "  a",
            *shim("arm64v8"),
            "RUN x",
            END,
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_render(case: str) -> None:
    content, expected = CASES[case]
    assert render(content) == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_crlf(case: str) -> None:
    content, expected = CASES[case]
    crlf = render(content.replace("\n", "\r\n"))
    assert crlf == expected.replace("\n", "\r\n")


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_other_line_is_the_emulate_rendering(case: str) -> None:
    """Drop the injected lines: what is left is `emulate`'s rendering, byte for byte, except
    for the stage numbers that moved up by one."""
    content, _ = CASES[case]
    got = render(content).splitlines(keepends=True)
    want = emulate(content).splitlines(keepends=True)
    assert_is_emulate_plus_shim(got, want)


def assert_is_emulate_plus_shim(got: list[str], want: list[str], files: str = FILES) -> None:
    """`want` is a subsequence of `got` (a line may have its stage numbers moved up by one);
    every other line of `got` is one inject adds: the shim's lines, `USER 0:0`, and a
    stage's USER instruction repeated after them."""
    added = {files, *START, END, "USER 0:0", *(line for d in DIRS for line in shim(d))}
    users: set[str] = set()
    in_user = False
    for line in want:
        bare = line.rstrip("\r\n")
        in_user = in_user or bare.lstrip().upper().startswith("USER")
        if in_user:
            users.add(bare)
            in_user = bare.endswith("\\")
    index = 0
    for line in got:
        if index < len(want) and line in (want[index], shifted(want[index])):
            index += 1
        else:
            assert line.rstrip("\r\n") in added | users, line
    assert index == len(want)


def shifted(line: str) -> str:
    return re.sub(r"(?i)(from=)([0-9]+)", lambda m: f"{m.group(1)}{int(m.group(2)) + 1}", line)


# Per sample, the directory each non-scratch stage gets, in order (None: the target's own).
SAMPLE_DIRS: dict[str, list[str | None]] = {
    "backtick-escape.Dockerfile": [None, None],
    "go-cross.Dockerfile": ["x86_64", None],  # build (BUILDPLATFORM), certs; not the scratch
    "python-app.Dockerfile": [None, None, None],
    "seed.Dockerfile": [None],
}


def test_every_sample_has_its_stages_listed() -> None:
    assert sorted(SAMPLE_DIRS) == sorted(p.name for p in DATA.glob("*.Dockerfile"))


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
@pytest.mark.parametrize("target", [AMD64, ARM64, ARM], ids=str)
@pytest.mark.parametrize("name", sorted(SAMPLE_DIRS))
def test_samples_are_emulate_plus_shim(name: str, target: Platform, crlf: bool) -> None:
    content = (DATA / name).read_text()
    if crlf:
        content = content.replace("\n", "\r\n")
    got = render(content, target).splitlines(keepends=True)
    assert_is_emulate_plus_shim(got, emulate(content, target).splitlines(keepends=True))
    bare = [line.rstrip("\r\n") for line in got]
    assert bare.count(FILES) == 1  # on an amd64 host, whatever the target
    own = inject.SUPPORTED[target.suffix]
    copies = [line for line in bare if line.startswith("COPY --from=dockerma_build_files ")]
    assert copies == [shim(d or own)[0] for d in SAMPLE_DIRS[name]]
    assert bare.count(START[0]) == bare.count(END) == len(SAMPLE_DIRS[name])


def test_arm_uses_arm32v7() -> None:
    assert render(text("FROM busybox:1", "RUN x"), ARM) == text(
        FILES, "FROM busybox@sha256:arm", *shim("arm32v7"), "RUN x", END
    )


def test_cross_build_image_is_pinned_for_the_build_machine() -> None:
    # an arm64 host building amd64: the tools run on arm64, the amd64 files go in
    got = render(text("FROM busybox:1", "RUN x"), AMD64, build=ARM64)
    assert got == text(
        "FROM example.com/cross-build@sha256:arm64 AS dockerma_build_files",
        "FROM busybox@sha256:amd64",
        *shim("x86_64"),
        "RUN x",
        END,
    )


SCRATCH_ONLY = {
    "one": text("FROM scratch", "COPY a /a"),
    "run-in-scratch": text("FROM scratch", "COPY a /a", "RUN x"),
    "chain": text("FROM scratch AS a", "COPY a /a", "FROM a", "RUN x", "FROM A"),
    "arg": text("ARG BASE=scratch", "FROM ${BASE}", "COPY a /a"),
    "platform": text(
        "FROM --platform=linux/s390x scratch AS s", "FROM --platform=$BUILDPLATFORM s"
    ),
    "named-like-the-added-stage": text("FROM scratch AS dockerma_build_files", "COPY a /a"),
}


@pytest.mark.parametrize(("target", "build"), [(ARM64, AMD64), (AMD64, AMD64), (ARM64, ARM64)])
@pytest.mark.parametrize("case", sorted(SCRATCH_ONLY))
def test_only_scratch_stages_is_the_emulate_rendering(
    case: str, target: Platform, build: Platform
) -> None:
    content = SCRATCH_ONLY[case]
    df = dockerfile.parse(content)
    pinned: list[tuple[str, Platform]] = []

    def recording_pin(ref: str, platform: Platform) -> str:
        pinned.append((ref, platform))
        return pin(ref, platform)

    got = inject.render(
        df,
        target=target,
        build=build,
        build_args={},
        pin=recording_pin,
        cross_build_image=IMAGE,
    )
    assert got == emulate(content, target, build)
    assert IMAGE not in [ref for ref, _ in pinned]
    assert not inject.uses_build_files(
        df, target=target, build=build, build_args={}, cross_build_image=IMAGE
    )


@pytest.mark.parametrize(
    ("content", "target", "build", "expected"),
    [
        (
            text("FROM busybox:1", "RUN make", "COPY --from=0 /a /b"),
            AMD64,
            AMD64,
            text(
                FILES,
                "FROM busybox@sha256:amd64",
                *shim("x86_64"),
                "RUN make",
                "COPY --from=1 /a /b",
                END,
            ),
        ),
        (
            text("FROM busybox:1", "RUN make", "COPY --from=0 /a /b"),
            ARM64,
            ARM64,
            text(
                "FROM example.com/cross-build@sha256:arm64 AS dockerma_build_files",
                "FROM busybox@sha256:arm64",
                *shim("arm64v8"),
                "RUN make",
                "COPY --from=1 /a /b",
                END,
            ),
        ),
        (
            text("FROM busybox:1", "COPY a /a", 'CMD ["x"]'),
            ARM64,
            AMD64,
            text(
                FILES, "FROM busybox@sha256:arm64", *shim("arm64v8"), "COPY a /a", 'CMD ["x"]', END
            ),
        ),
        (
            text("FROM --platform=$BUILDPLATFORM busybox:1", "RUN x"),
            ARM64,
            AMD64,
            text(
                FILES,
                "FROM --platform=linux/amd64 busybox@sha256:amd64",
                *shim("x86_64"),
                "RUN x",
                END,
            ),
        ),
        (  # an arm64 host building amd64: its BUILDPLATFORM stage runs arm64
            text("FROM --platform=$BUILDPLATFORM busybox:1 AS b", "RUN x", "FROM busybox:1"),
            AMD64,
            ARM64,
            text(
                "FROM example.com/cross-build@sha256:arm64 AS dockerma_build_files",
                "FROM --platform=linux/arm64 busybox@sha256:arm64 AS b",
                *shim("arm64v8"),
                "RUN x",
                END,
                "FROM busybox@sha256:amd64",
                *shim("x86_64"),
                END,
            ),
        ),
        (  # a stage pinned to another supported platform gets that platform's files
            text("FROM --platform=linux/arm/v7 busybox:1 AS b", "RUN x", "FROM busybox:1"),
            ARM64,
            AMD64,
            text(
                FILES,
                "FROM --platform=linux/arm/v7 busybox@sha256:arm AS b",
                *shim("arm32v7"),
                "RUN x",
                END,
                "FROM busybox@sha256:arm64",
                *shim("arm64v8"),
                END,
            ),
        ),
    ],
    ids=[
        "native-amd64",
        "native-arm64",
        "no-run",
        "buildplatform",
        "buildplatform-arm64-host",
        "other-platform",
    ],
)
def test_every_non_scratch_stage_is_wrapped_with_its_own_platforms_files(
    content: str, target: Platform, build: Platform, expected: str
) -> None:
    df = dockerfile.parse(content)
    got = inject.render(
        df, target=target, build=build, build_args={}, pin=pin, cross_build_image=IMAGE
    )
    assert got == expected
    assert_is_emulate_plus_shim(
        got.splitlines(keepends=True),
        emulate(content, target, build).splitlines(keepends=True),
        files=f"FROM example.com/cross-build@sha256:{build.suffix} AS dockerma_build_files",
    )
    assert inject.uses_build_files(
        df, target=target, build=build, build_args={}, cross_build_image=IMAGE
    )


@pytest.mark.parametrize("build", [AMD64, ARM64], ids=str)
@pytest.mark.parametrize("target", [AMD64, ARM64, ARM], ids=str)
def test_uses_build_files_when_a_stage_is_not_scratch(target: Platform, build: Platform) -> None:
    for content in (
        text("FROM busybox:1", "RUN x"),
        text("FROM busybox:1"),
        text("FROM scratch", "FROM --platform=$BUILDPLATFORM busybox:1", "COPY a /a"),
    ):
        df = dockerfile.parse(content)
        assert inject.uses_build_files(
            df, target=target, build=build, build_args={}, cross_build_image=IMAGE
        )


def test_build_args_choose_the_base() -> None:
    content = text("ARG BASE=busybox:1", "FROM ${BASE}", "RUN x")
    assert render(content, BASE="scratch") == emulate(content, BASE="scratch")
    assert render(content, BASE="alpine:3") == text(
        "ARG BASE=busybox:1", FILES, "FROM alpine@sha256:arm64", *shim("arm64v8"), "RUN x", END
    )


def test_byte_order_mark_stays_first() -> None:
    got = render("\ufeffFROM busybox:1\nRUN x\n")
    assert got == "\ufeff" + text(
        FILES, "FROM busybox@sha256:arm64", *shim("arm64v8"), "RUN x", END
    )
    got = render("\ufeff# dockerma archs:arm64\nFROM busybox:1\nRUN x\n")
    assert got.startswith("\ufeff# dockerma archs:arm64\n" + FILES + "\n")


def test_no_final_newline_is_kept() -> None:
    assert (
        render("FROM busybox:1\nRUN x")
        == text(FILES, "FROM busybox@sha256:arm64", *shim("arm64v8"), "RUN x") + END
    )
    assert (
        render("FROM busybox:1") == text(FILES, "FROM busybox@sha256:arm64", *shim("arm64v8")) + END
    )
    assert render("FROM busybox:1\r\nFROM busybox:1") == (
        text(FILES, "FROM busybox@sha256:arm64", *shim("arm64v8"), END, "FROM busybox@sha256:arm64")
        + "\n".join(shim("arm64v8"))
        + "\n"
        + END
    ).replace("\n", "\r\n")
    assert (
        render("FROM busybox:1\nRUN x\nFROM scratch")
        == text(FILES, "FROM busybox@sha256:arm64", *shim("arm64v8"), "RUN x", END) + "FROM scratch"
    )


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (text("FROM busybox:1", "FROM --platform=linux/s390x busybox:1 AS odd", "RUN x"), 2),
        # with or without a RUN: the files go into every stage that is not scratch
        (text("FROM --platform=linux/s390x busybox:1 AS odd", "FROM busybox:1", "RUN x"), 1),
        (text("FROM scratch", "# odd", "FROM --platform=linux/s390x busybox:1"), 3),
    ],
    ids=["with-run", "without-run", "only-a-from"],
)
@pytest.mark.parametrize("target", [AMD64, ARM64], ids=str)
def test_a_stage_the_image_has_no_files_for_is_an_error(
    content: str, line: int, target: Platform
) -> None:
    with pytest.raises(DockermaError) as info:
        render(content, target)
    message = str(info.value)
    assert "\n" not in message
    assert f"line {line}:" in message and "linux/s390x" in message and IMAGE in message
    assert "--strategy emulate" in message
    with pytest.raises(DockermaError, match="linux/s390x"):
        inject.uses_build_files(
            dockerfile.parse(content),
            target=target,
            build=AMD64,
            build_args={},
            cross_build_image=IMAGE,
        )


def test_a_stage_named_like_the_added_one_is_an_error() -> None:
    content = text("FROM busybox:1 AS dockerma_build_files", "RUN x")
    for target in (ARM64, AMD64):  # native too: every stage that is not scratch is wrapped
        with pytest.raises(DockermaError, match="rename that stage"):
            render(content, target)
    # nothing added when every stage is scratch, so no clash: see SCRATCH_ONLY


def test_cross_build_image_pinned_with_a_line_break_is_refused() -> None:
    # Issue 17, item 2: the pinned cross-build image is written as it comes from its registry.
    def hostile(ref: str, platform: Platform) -> str:
        return f"{ImageRef.parse(ref).name}@sha256:{'a' * 64}\nRUN touch /pwned"

    df = dockerfile.parse("FROM scratch AS s\nFROM busybox:1\nRUN true\n")
    with pytest.raises(DockermaError, match="line break or control character"):
        inject.render(
            df,
            target=ARM64,
            build=AMD64,
            build_args={},
            pin=lambda ref, p: hostile(ref, p) if ref == IMAGE else pin(ref, p),
            cross_build_image=IMAGE,
        )
