"""dockerma's own directives: `# dockerma archs:…` and `# dockerma smoke:…` comments."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockerma.core.platforms import Platform, parse_list
from dockerma.errors import DockermaError

# What a mistyped directive looks like (`# dockerma arch:arm`, `# dockerma archs arm`), as
# opposed to a comment that merely starts with the word.
_DIRECTIVE_ATTEMPT = re.compile(
    r"^\s*$|^\s*:|^\s*(?:archs?|platforms?|smoke)\b|^\s*[\w-]+\s*:", re.IGNORECASE
)
_DOCKERMA = re.compile(r"^#\s*dockerma\b(.*)$", re.IGNORECASE)
_DOCKERMA_KEYWORD = re.compile(r"^\s*(archs|smoke)\s*:(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Directives:
    archs: tuple[Platform, ...] | None = None
    archs_line: str | None = None  # as written
    smoke: tuple[str, ...] = ()  # the commands, in order
    # the first archs comment after the first instruction: an ordinary comment, as docker
    # reads it, named when no architectures are given ("line 3: '# dockerma archs:arm'")
    late_archs: str | None = None


def read(lines: list[str], comments: list[int], first_instruction: int) -> Directives:
    """The directives in the comment lines `comments` of `lines`."""
    archs: tuple[Platform, ...] | None = None
    archs_line: str | None = None
    archs_number = -1
    late: str | None = None
    smoke: list[str] = []
    for number in comments:
        written = lines[number].rstrip("\r\n")
        found = _directive(written.strip(), f"line {number + 1}")
        if found is None:
            continue
        keyword, value, where = found
        if keyword == "smoke":
            smoke.append(_smoke(value, where))
        elif number > first_instruction:
            # Only the comments before the first instruction are read (see the README's
            # Dockerfile directives); a later one is an ordinary comment, so --platform or an
            # earlier archs line still rules.
            late = late or where
        elif archs is not None:
            raise DockermaError(
                f"{where} is a second archs directive (the first is on line {archs_number + 1}); "
                "keep one '# dockerma archs:' line"
            )
        else:
            archs, archs_line, archs_number = _archs(value, where), written, number
    return Directives(archs, archs_line, tuple(smoke), late)


def _directive(text: str, line: str) -> tuple[str, str, str] | None:
    """A directive's keyword (lower case), its value and where it is written; None for a
    comment that is no directive."""
    match = _DOCKERMA.match(text)
    if not match:
        return None
    where = f"{line}: {text!r}"
    keyword = _DOCKERMA_KEYWORD.match(match.group(1))
    if keyword:
        return keyword.group(1).lower(), keyword.group(2).strip(), where
    if not _DIRECTIVE_ATTEMPT.match(match.group(1)):
        return None  # prose that happens to start with "dockerma", not a directive
    raise DockermaError(
        f"{where} is not a dockerma directive; write '# dockerma archs:arm,amd64,arm64:' "
        "or '# dockerma smoke:COMMAND'"
    )


def _smoke(value: str, where: str) -> str:
    if not value:
        raise DockermaError(
            f"{where} names no command; write e.g. '# dockerma smoke:/bin/app --version'"
        )
    return value


def _archs(value: str, where: str) -> tuple[Platform, ...]:
    if value.endswith(":"):
        value = value[:-1]
    try:
        platforms = parse_list(value)
    except DockermaError as error:
        raise DockermaError(f"{where}: {error}") from None
    if not platforms:
        raise DockermaError(
            f"{where} names no architecture; list them, e.g. '# dockerma archs:arm,amd64,arm64:'"
        )
    return tuple(platforms)
