"""The `inject` strategy: the seed's cross-build shim, for build machines without binfmt_misc.

The rendered Dockerfile is the `emulate` one (`dockerfile.render`: every external base pinned
to the architecture's digest) with a first stage

    FROM <cross-build image, pinned for the build machine> AS dockerma_build_files

(its tools run on the build machine, not in the target's architecture) and, in every stage
that is not scratch (PRODUCT.md §3: whatever its platform, and with or without a RUN),

    FROM …                                    # the stage's own FROM
    COPY --from=dockerma_build_files /cross-build/<dir>/bin /bin
    RUN ["cross-build-start"]                 # /bin/sh becomes a shim that runs it in QEMU
    …                                         # the stage's instructions, untouched
    RUN ["cross-build-end"]                   # the real /bin/sh is back

(a stage that is only its FROM gets the three lines after it) so that no image, intermediate
or final, keeps the shim active. Which files each stage gets:

- a `FROM scratch` stage has no shell: nothing;
- a stage FROM an earlier stage has the platform of the image at the root of that chain
  (scratch stays scratch, a `FROM --platform=$BUILDPLATFORM` root keeps the build machine's)
  and gets its own COPY and start/end like any other stage;
- every other stage gets the files of its own platform, as PRODUCT.md promises and the seed
  did: a `FROM --platform=$BUILDPLATFORM` stage gets the build machine's (`x86_64` on an
  amd64 host, where the cross-build image's start/end steps do nothing), a stage of the
  host's own architecture too; a stage of a platform the image has no files for (s390x, …)
  is an error, with or without a RUN;
- only when every stage is scratch is the rendering exactly the `emulate` one, without the
  extra first stage;
- a stage with a USER instruction would run `cross-build-end` as that user, who cannot put
  /bin/sh back: `USER 0:0` goes before it and the stage's last USER instruction is repeated
  after it.

Numeric stage references move past the new first stage: `COPY --from=N` and
`RUN --mount=…,from=N` become N+1. Not inside ONBUILD (its numbers belong to the downstream
build), and not `FROM N`, which docker reads as an image name (`docker.io/library/N`). Every
other line is kept byte for byte.

Limits of the approach (as with the seed): only RUN's shell form goes through /bin/sh, so an
exec-form `RUN ["/bin/x"]` or a `SHELL ["/bin/bash", "-c"]` stage runs the foreign binary
directly; a base image whose USER is not root, or that has no /bin/sh, cannot run
`cross-build-start` - in any stage, as every stage that is not scratch gets it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from dockerma.core import dockerfile
from dockerma.core.dockerfile import Dockerfile
from dockerma.core.platforms import Platform
from dockerma.errors import DockermaError

# Platform suffix → the directory under /cross-build in the cross-build image (the names of
# monsonnl/qemu-wrap-build-files, the seed's default).
SUPPORTED: dict[str, str] = {"amd64": "x86_64", "arm": "arm32v7", "arm64": "arm64v8"}
STAGE = "dockerma_build_files"
START = 'RUN ["cross-build-start"]'
END = 'RUN ["cross-build-end"]'

_DIGITS = re.compile(r"[0-9]+")
_COPY_FROM = re.compile(r"(--from=)([0-9]+)", re.IGNORECASE)
_MOUNT = "--mount="
_WORD = re.compile(r"\S+")
_CONTINUATION = {"\\": re.compile(r"\\[ \t]*$"), "`": re.compile(r"`[ \t]*$")}


def supported(platform: Platform) -> bool:
    """Whether the cross-build image has files for the platform."""
    return platform.suffix in SUPPORTED


def _supported_text() -> str:
    return ", ".join("arm (arm/v7)" if s == "arm" else s for s in SUPPORTED)


def check(platforms: Sequence[Platform], image: str) -> None:
    """Fail, in one line, when a platform is one the cross-build image has no files for."""
    missing = [str(p) for p in platforms if not supported(p)]
    if missing:
        raise DockermaError(
            f"--strategy inject cannot build {', '.join(missing)}: the cross-build image "
            f"{image} has files for {_supported_text()} only; drop "
            f"{'it' if len(missing) == 1 else 'them'} from the architectures or use "
            "--strategy emulate (QEMU through binfmt_misc)"
        )


def render(
    df: Dockerfile,
    *,
    target: Platform,
    build: Platform,
    build_args: Mapping[str, str],
    pin: Callable[[str, Platform], str],
    cross_build_image: str,
) -> str:
    """The `emulate` rendering for `target`, with the cross-build stage first and the shim
    wrapped around the instructions of every stage that is not scratch (the `emulate`
    rendering itself when every stage is scratch)."""
    text = dockerfile.render(df, target=target, build=build, build_args=build_args, pin=pin)
    # dockerfile.render replaced FROM lines only: the rendered file has the same stages and
    # instructions, at other line numbers.
    bom, lines, escape, instructions = _scanned(text)
    plan = _plan(
        df,
        lines,
        instructions,
        target=target,
        build=build,
        build_args=build_args,
        image=cross_build_image,
    )
    if not plan:
        return text
    for insn in instructions:
        if insn.keyword in ("COPY", "RUN"):
            _shift_stage_numbers(lines, insn.keyword, insn.startline, escape)

    first_from = next(insn.startline for insn in instructions if insn.keyword == "FROM")
    newline = next((_ending(line) for line in lines if _ending(line)), "\n")
    out: list[str] = []
    for number, line in enumerate(lines):
        if number == first_from:
            pinned = pin(cross_build_image, build)
            what = f"the pinned reference of {cross_build_image} ({build})"
            out.append(f"FROM {dockerfile.safe_word(pinned, what)} AS {STAGE}{newline}")
        if number in plan:
            ending = _ending(line) or newline
            out.append(line.rstrip("\r\n") + ending)
            out.extend(dockerfile.safe_word(extra, "a line") + ending for extra in plan[number])
        else:
            out.append(line)
    result = bom + "".join(out)
    if len(lines) - 1 in plan and not _ending(lines[-1]):
        result = result[: -len(newline)]  # the file had no final newline: neither has this
    return result


def uses_build_files(
    df: Dockerfile,
    *,
    target: Platform,
    build: Platform,
    build_args: Mapping[str, str],
    cross_build_image: str,
) -> bool:
    """Whether `render` adds the cross-build stage for this target, so needs the image pinned
    for `build`: False only when every stage is scratch."""
    _, lines, _, instructions = _scanned(df.content)
    return bool(
        _plan(
            df,
            lines,
            instructions,
            target=target,
            build=build,
            build_args=build_args,
            image=cross_build_image,
        )
    )


def _scanned(text: str) -> tuple[str, list[str], str, list[dockerfile._Instruction]]:
    """The byte order mark, the lines without it, the escape token and the instructions."""
    lines = dockerfile._split_lines(text)
    bom = ""
    if lines and lines[0].startswith("\ufeff"):
        bom, lines[0] = "\ufeff", lines[0][1:]
    escape, feed = dockerfile._parser_directives(lines)
    instructions, _ = dockerfile._scan(lines, feed, escape)
    return bom, lines, escape, instructions


def _plan(
    df: Dockerfile,
    lines: list[str],
    instructions: list[dockerfile._Instruction],
    *,
    target: Platform,
    build: Platform,
    build_args: Mapping[str, str],
    image: str,
) -> dict[int, list[str]]:
    """Line number → the lines to insert after it; empty when every stage is scratch."""
    froms = [i for i, insn in enumerate(instructions) if insn.keyword == "FROM"]
    natures = _natures(df, target=target, build=build, build_args=build_args)
    after: dict[int, list[str]] = {}
    users: list[list[str]] = []  # per stage, the USER instruction in effect at its end
    for stage, (nature, parent) in zip(df.stages, natures):
        first = froms[stage.index] + 1
        last = froms[stage.index + 1] if stage.index + 1 < len(froms) else len(instructions)
        body = instructions[first:last]
        inherited = users[parent] if parent is not None else []
        own = [insn for insn in body if insn.keyword == "USER"]
        users.append(
            [line.rstrip("\r\n") for line in lines[own[-1].startline : own[-1].endline + 1]]
            if own
            else inherited
        )
        if nature is None:  # scratch: no shell to wrap
            continue
        directory = SUPPORTED.get(nature.suffix)
        if directory is None:
            raise DockermaError(
                f"line {stage.startline + 1}: this stage is {nature}, for which the cross-build "
                f"image {image} has no files (it has {_supported_text()}), and --strategy "
                "inject puts them into every stage that is not scratch; use --strategy emulate"
            )
        start = [f"COPY --from={STAGE} /cross-build/{directory}/bin /bin", START]
        from_end = instructions[froms[stage.index]].endline
        if body:
            after[from_end] = _as_root(start, inherited)
            after[body[-1].endline] = _as_root([END], users[-1])
        else:  # only a FROM: the files still go in, the shim is not left active
            after[from_end] = _as_root([*start, END], inherited)
    if after and STAGE in (stage.alias for stage in df.stages):
        raise DockermaError(
            f"the Dockerfile has a stage named {STAGE}, which --strategy inject adds itself; "
            "rename that stage"
        )
    return after


def _as_root(lines: list[str], user: list[str]) -> list[str]:
    """`lines` run as root: a stage's USER (repeated verbatim) cannot move /bin/sh."""
    return ["USER 0:0", *lines, *user] if user else lines


def _natures(
    df: Dockerfile, *, target: Platform, build: Platform, build_args: Mapping[str, str]
) -> list[tuple[Platform | None, int | None]]:
    """Per stage, the platform of the image at the root of its FROM chain (None: scratch) and
    the earlier stage it is FROM, if any."""
    natures: list[tuple[Platform | None, int | None]] = []
    aliases: dict[str, int] = {}
    for stage in df.stages:
        base = dockerfile.resolve_base(df, stage, build_args=build_args, target=target, build=build)
        name = base.strip().lower()
        if name == "scratch":
            natures.append((None, None))
        elif dockerfile.is_external(df, stage, base):
            platform = dockerfile.stage_platform(
                df, stage, build_args=build_args, target=target, build=build
            )
            natures.append((platform, None))
        else:  # an earlier stage, by name or (as dockerfile.is_external reads it) by number
            parent = aliases[name] if name in aliases else int(name)
            natures.append((natures[parent][0], parent))
        if stage.alias is not None:
            aliases.setdefault(stage.alias, stage.index)
    return natures


def _ending(line: str) -> str:
    if line.endswith("\r\n"):
        return "\r\n"
    return "\n" if line.endswith("\n") else ""


def _shift_stage_numbers(lines: list[str], keyword: str, start: int, escape: str) -> None:
    """Rewrite `--from=N` (COPY) and `--mount=…from=N…` (RUN) flags in place, as N+1.

    Flags come first, possibly over continuation lines (with comment or blank lines between,
    which docker skips); the first word that is not a flag ends them. Heredoc bodies come
    after the last continuation line and are never reached.
    """
    number = start
    first = True
    while number < len(lines):
        line = lines[number]
        content = line.rstrip("\r\n")
        stripped = content.strip()
        if not first and (not stripped or stripped.startswith("#")):
            number += 1
            continue
        continuation = _CONTINUATION[escape].search(content)
        words_end = continuation.start() if continuation else len(content)
        words = list(_WORD.finditer(content, 0, words_end))
        if first:
            words = words[1:]  # the keyword
        pieces: list[str] = []
        done = 0
        flags_over = False
        for word in words:
            if not word.group().startswith("--"):
                flags_over = True
                break
            new = _shift_flag(keyword, word.group())
            if new != word.group():
                pieces += [content[done : word.start()], new]
                done = word.end()
        if pieces:
            lines[number] = "".join(pieces) + content[done:] + line[len(content) :]
        if flags_over or continuation is None:
            return
        first = False
        number += 1


def _shift_flag(keyword: str, flag: str) -> str:
    if keyword == "COPY":
        match = _COPY_FROM.fullmatch(flag)
        return f"{match.group(1)}{int(match.group(2)) + 1}" if match else flag
    if not flag.lower().startswith(_MOUNT):
        return flag
    fields = flag[len(_MOUNT) :].split(",")
    for index, field in enumerate(fields):
        key, equals, value = field.partition("=")
        # BuildKit reads the keys case-insensitively.
        if equals and key.strip().lower() == "from" and _DIGITS.fullmatch(value):
            fields[index] = f"{key}={int(value) + 1}"
    return flag[: len(_MOUNT)] + ",".join(fields)
