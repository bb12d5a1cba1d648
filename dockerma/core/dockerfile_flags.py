"""Images named by instruction flags: `COPY --from=<image>` and `RUN --mount=…,from=<image>`.

Pure. Finding them (as written, before ARG expansion), telling an image from a stage or a
`--build-context` name, and rewriting the flags of an instruction in place, over its
continuation lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from dockerma.core import dockerfile_lines
from dockerma.core.dockerfile_lines import Instruction
from dockerma.core.dockerfile_words import words
from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError

_FROM = "--from="
_MOUNT = "--mount="
_DIGITS = re.compile(r"^[0-9]+$")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class FlagRef:
    """One `--from=` of a COPY, or one `from=` of a RUN --mount, as written."""

    keyword: str  # COPY or RUN
    startline: int  # 0-based first line of the instruction
    value: str  # as written: "${IMG}", "busybox:1", "builder", "0"


def find(instructions: Sequence[Instruction], escape: str) -> tuple[FlagRef, ...]:
    """Every image-or-stage name that COPY and RUN flags give, in file order."""
    found: list[FlagRef] = []
    for insn in instructions:
        if insn.keyword not in ("COPY", "RUN"):
            continue
        for word in words(insn.args, escape):
            if not word.startswith("--"):
                break  # flags come first
            value = named(insn.keyword, word)
            if value is not None:
                found.append(FlagRef(insn.keyword, insn.startline, value))
    return tuple(found)


def named(keyword: str, flag: str) -> str | None:
    """The name a COPY or RUN flag word gives in its `from`, or None."""
    if keyword == "COPY":
        return flag[len(_FROM) :] if flag.lower().startswith(_FROM) else None
    if not flag.lower().startswith(_MOUNT):
        return None
    for field in flag[len(_MOUNT) :].split(","):
        key, equals, value = field.partition("=")
        # BuildKit reads the mount's keys case-insensitively.
        if equals and key.strip().lower() == "from":
            return value
    return None


def replaced(keyword: str, flag: str, new: Callable[[str], str]) -> str:
    """The flag word with the name in its `from` replaced by new(name)."""
    if keyword == "COPY":
        if not flag.lower().startswith(_FROM):
            return flag
        return flag[: len(_FROM)] + new(flag[len(_FROM) :])
    if not flag.lower().startswith(_MOUNT):
        return flag
    fields = flag[len(_MOUNT) :].split(",")
    for index, field in enumerate(fields):
        key, equals, value = field.partition("=")
        if equals and key.strip().lower() == "from":
            fields[index] = f"{key}={new(value)}"
    return flag[: len(_MOUNT)] + ",".join(fields)


def images(
    flags: Sequence[FlagRef],
    expand: Callable[[FlagRef, str], str],
    aliases: Collection[str],
    contexts: Collection[str],
) -> list[tuple[FlagRef, str]]:
    """The flags that name an image, each with that image: expand(flag, where) gives the name
    with its ARGs substituted; stages and names --build-context gives (`contexts`) are left
    out."""
    found = []
    for flag in flags:
        where = f"line {flag.startline + 1}: the {flag.keyword} from {flag.value!r}"
        name = expand(flag, where).strip()
        if not name or is_stage(name, aliases) or overridden(name, contexts):
            continue
        try:
            ImageRef.parse(name)
        except DockermaError as error:
            raise DockermaError(f"{where}: {error}") from None
        found.append((flag, name))
    return found


def pin(lines: list[str], flag: FlagRef, escape: str, pinned: str) -> None:
    """Rewrite, in place, the flag's `from` as `pinned`."""

    def change(word: str) -> str:
        if named(flag.keyword, word) != flag.value:
            return word
        return replaced(flag.keyword, word, lambda _: pinned)

    rewrite(lines, flag.keyword, flag.startline, escape, change)


def is_stage(name: str, aliases: Collection[str]) -> bool:
    """A stage, by name (any stage of the file: BuildKit looks them all up, case-insensitively)
    or by number; never an image."""
    lowered = name.strip().lower()
    return lowered in aliases or _DIGITS.match(lowered) is not None


def overridden(name: str, contexts: Collection[str]) -> bool:
    """Whether `--build-context NAME=…` gives this image: BuildKit matches the name in its
    familiar form without `:latest` (`docker.io/library/alpine:latest` is `alpine`)."""
    if not contexts:
        return False
    return _familiar(name) in {_familiar(c) for c in contexts}


def _familiar(name: str) -> str:
    try:
        ref = ImageRef.parse(name)
    except DockermaError:
        return name.strip()
    text = ref.familiar
    if ref.tag and ref.tag != "latest":
        text += f":{ref.tag}"
    return f"{text}@{ref.digest}" if ref.digest else text


def rewrite(
    lines: list[str], keyword: str, start: int, escape: str, change: Callable[[str], str]
) -> None:
    """Rewrite, in place, each flag word of the instruction at line `start` as change(word).

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
        continuation = dockerfile_lines.continuation(content, escape)
        words_end = continuation.start() if continuation else len(content)
        found = list(_WORD.finditer(content, 0, words_end))
        if first:
            found = found[1:]  # the keyword
        pieces: list[str] = []
        done = 0
        flags_over = False
        for word in found:
            if not word.group().startswith("--"):
                flags_over = True
                break
            new = change(word.group())
            if new != word.group():
                pieces += [content[done : word.start()], new]
                done = word.end()
        if pieces:
            lines[number] = "".join(pieces) + content[done:] + line[len(content) :]
        if flags_over or continuation is None:
            return
        first = False
        number += 1
