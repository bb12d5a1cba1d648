"""Images named by COPY --from and RUN --mount from=: found, pinned per platform, rendered;
stages and --build-context names left alone (issue 19, item 6)."""

from __future__ import annotations

import hashlib

import pytest

from dockerma.core import dockerfile_flags
from dockerma.core.dockerfile import external_images, parse, render
from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError

AMD64 = Platform.parse("amd64")
ARM = Platform.parse("arm")
ARM64 = Platform.parse("arm64")


def digest(name: str, platform: Platform) -> str:
    return "sha256:" + hashlib.sha256(f"{name}|{platform}".encode()).hexdigest()


def pin(ref: str, platform: Platform) -> str:
    name = ImageRef.parse(ref).name
    return f"{name}@{digest(name, platform)}"


def images(content: str, *targets: Platform, contexts: tuple[str, ...] = (), **args: str):
    return external_images(
        parse(content),
        build_args=args,
        targets=list(targets or [ARM64]),
        build=AMD64,
        contexts=contexts,
    )


def rendered(content: str, target: Platform = ARM64, contexts: tuple[str, ...] = (), **args: str):
    return render(
        parse(content), target=target, build=AMD64, build_args=args, pin=pin, contexts=contexts
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # COPY --from an image: pinned for the target, like FROM
        ("FROM a\nCOPY --from=tools:1 /x /x\n", [("a", ARM64), ("tools:1", ARM64)]),
        # RUN --mount from= an image (bind and cache mounts take one), any key case
        (
            "FROM a\nRUN --mount=type=bind,from=src:2,target=/s true\n",
            [("a", ARM64), ("src:2", ARM64)],
        ),
        (
            "FROM a\nRUN --mount=type=cache,target=/c,FROM=seed true\n",
            [("a", ARM64), ("seed", ARM64)],
        ),
        # stage names (any case, any stage of the file) and numbers are not images
        (
            "FROM a AS Build\nFROM b\nCOPY --from=build /x /x\nCOPY --from=0 /y /y\n",
            [("a", ARM64), ("b", ARM64)],
        ),
        ("FROM a\nCOPY --from=later /x /x\nFROM b AS later\n", [("a", ARM64), ("b", ARM64)]),
        # a FROM --platform=$BUILDPLATFORM stage still copies the target's image
        ("FROM --platform=$BUILDPLATFORM a\nCOPY --from=t /x /x\n", [("a", AMD64), ("t", ARM64)]),
        # flags only: a word after the first non-flag is a path
        ("FROM a\nCOPY /x --from=t /y\n", [("a", ARM64)]),
        # the same image twice is looked up once
        ("FROM t\nCOPY --from=t /x /x\n", [("t", ARM64)]),
    ],
)
def test_external_images_include_flag_images(content: str, expected: list) -> None:
    assert images(content) == expected


def test_flag_images_take_global_args_and_build_args() -> None:
    content = "ARG TOOLS=tools:1\nFROM a\nCOPY --from=${TOOLS} /x /x\n"
    assert images(content)[1] == ("tools:1", ARM64)
    assert images(content, TOOLS="tools:9")[1] == ("tools:9", ARM64)


def test_flag_image_without_a_value_names_its_line() -> None:
    with pytest.raises(DockermaError, match=r"line 2: the COPY from '\$\{NOPE\}'.*ARG NOPE"):
        images("FROM a\nCOPY --from=${NOPE} /x /x\n")


def test_flag_image_that_is_no_reference_names_its_line() -> None:
    with pytest.raises(DockermaError, match=r"line 2: the RUN from 'Bad!'"):
        images("FROM a\nRUN --mount=from=Bad!,target=/x true\n")


def test_one_pin_per_target_platform() -> None:
    got = images("FROM a\nCOPY --from=t /x /x\n", AMD64, ARM)
    assert got == [("a", AMD64), ("t", AMD64), ("a", ARM), ("t", ARM)]


@pytest.mark.parametrize(
    ("contexts", "expected"),
    [
        (("tools",), [("a", ARM64)]),
        (("docker.io/library/tools:latest",), [("a", ARM64)]),  # BuildKit's familiar match
        (("tools:2",), [("a", ARM64), ("tools", ARM64)]),  # another tag: another name
        (("a",), [("tools", ARM64)]),  # FROM a too
    ],
)
def test_build_context_names_are_neither_looked_up_nor_pinned(
    contexts: tuple[str, ...], expected: list
) -> None:
    assert images("FROM a\nCOPY --from=tools /x /x\n", contexts=contexts) == expected


def test_build_context_name_that_is_no_image_is_fine() -> None:
    # `--build-context project=../dir` then `COPY --from=project`: not an image to look up
    content = "FROM a\nCOPY --from=Project_Files /x /x\n"
    with pytest.raises(DockermaError):
        images(content)
    assert images(content, contexts=("Project_Files",)) == [("a", ARM64)]


def test_render_pins_copy_from_and_mount_from_in_place() -> None:
    content = (
        "FROM a AS build\n"
        "COPY --chown=1 --from=tools:1 /x /x\n"
        "RUN --mount=type=bind,from=src,target=/s \\\n"
        "    --mount=type=cache,target=/c \\\n"
        "    make\n"
        "COPY --from=build /y /y\n"
    )
    got = rendered(content).split("\n")
    assert got[0] == f"FROM a@{digest('a', ARM64)} AS build"
    assert got[1] == f"COPY --chown=1 --from=tools@{digest('tools', ARM64)} /x /x"
    assert got[2] == f"RUN --mount=type=bind,from=src@{digest('src', ARM64)},target=/s \\"
    assert got[3:] == content.split("\n")[3:]


def test_render_pins_a_flag_on_a_continuation_line_and_keeps_others() -> None:
    content = "FROM a\nCOPY --chmod=644 \\\n  # a comment\n  --from=t \\\n  /x /x\n"
    got = rendered(content, ARM)
    assert got == content.replace("FROM a", f"FROM a@{digest('a', ARM)}").replace(
        "--from=t", f"--from=t@{digest('t', ARM)}"
    )


def test_render_leaves_build_context_names_as_written() -> None:
    content = "FROM base\nCOPY --from=tools /x /x\nRUN --mount=from=tools,target=/t true\n"
    assert rendered(content, contexts=("base", "tools")) == content


def test_render_expands_args_in_the_pinned_flag() -> None:
    content = "ARG T=tools\nFROM a\nCOPY --from=$T /x /x\n"
    assert f"COPY --from=tools@{digest('tools', ARM64)} /x /x" in rendered(content)


def test_render_refuses_a_pin_with_a_line_break() -> None:
    df = parse("FROM a\nCOPY --from=t /x /x\n")
    with pytest.raises(DockermaError, match="line break"):
        render(
            df,
            target=ARM,
            build=AMD64,
            build_args={},
            pin=lambda ref, p: "a@sha256:1\nRUN evil" if ref == "t" else pin(ref, p),
        )


@pytest.mark.parametrize(
    ("keyword", "flag", "expected"),
    [
        ("COPY", "--from=x", "x"),
        ("COPY", "--FROM=x", "x"),
        ("COPY", "--chown=1", None),
        ("RUN", "--mount=type=bind,from=x", "x"),
        ("RUN", "--mount=type=secret,id=x", None),
        ("RUN", "--network=none", None),
    ],
)
def test_named(keyword: str, flag: str, expected: str | None) -> None:
    assert dockerfile_flags.named(keyword, flag) == expected


@pytest.mark.parametrize(
    ("name", "contexts", "expected"),
    [
        ("alpine", ("alpine",), True),
        ("alpine:latest", ("alpine",), True),
        ("docker.io/library/alpine", ("alpine:latest",), True),
        ("alpine:3", ("alpine",), False),
        ("localhost:5000/a", ("a",), False),
        ("alpine", (), False),
    ],
)
def test_overridden(name: str, contexts: tuple[str, ...], expected: bool) -> None:
    assert dockerfile_flags.overridden(name, contexts) is expected
