"""A Dockerfile's lines as BuildKit reads them: parser directives, instructions (continuations
and heredoc bodies included) and comments.

dockerfile-parse finds the instructions and comments; where it reads a Dockerfile differently
from BuildKit, `scan` corrects it (each place says why).
"""

from __future__ import annotations

import bisect
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockerfile_parse import DockerfileParser

from dockerma.core.dockerfile_words import words
from dockerma.errors import DockermaError

BOM = "\ufeff"
# A line break in a value written into a Dockerfile starts a new instruction (a registry that
# answers `sha256:…\nRUN …` as a digest); no image reference or flag has a control character
# (a tab separates words in an instruction the user wrote, as a space does).
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
# BuildKit's parser directives: `# name=value` lines at the very top of the file, before any
# other comment, blank line or instruction. `check` (dockerfile 1.8) is newer than
# dockerfile-parse, which stops looking for `# escape=` when it meets one.
_PARSER_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_PARSER_DIRECTIVE_NAMES = frozenset({"syntax", "escape", "check"})
# A line continues when its last non-blank character is the escape token (BuildKit ignores
# spaces and tabs after it).
_CONTINUATION = {"\\": re.compile(r"\\[ \t]*$"), "`": re.compile(r"`[ \t]*$")}
_HEREDOC = re.compile(r"^(\d*)<<(-?)\s*([^<]+)$")
_HEREDOC_OPENER = re.compile(r"^\d*<<-?$")
_HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
# dockerfile-parse joins a continued instruction by repeated string concatenation, in
# quadratic time. It gets the run cut every this many lines; scan reads the whole
# instruction itself.
_FEED_RUN = 1000


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    startline: int  # 0-based
    endline: int  # continuation lines and heredoc bodies included
    args: str  # everything after the keyword, continuation lines joined


@dataclass(frozen=True)
class Scanned:
    """A Dockerfile read as BuildKit reads it."""

    bom: str  # the UTF-8 byte order mark docker drops, or ""
    lines: list[str]  # with their line ends; the first without the byte order mark
    escape: str
    instructions: list[Instruction]
    comments: list[int]  # line numbers


def read(text: str) -> Scanned:
    """The lines, escape token, instructions and comments of a Dockerfile."""
    lines = split_lines(text)
    bom = ""
    if lines and lines[0].startswith(BOM):
        # dockerfile-parse would read the mark as part of the first word.
        bom, lines[0] = BOM, lines[0][1:]
    escape, feed = _parser_directives(lines)
    instructions, comments = _scan(lines, feed, escape)
    return Scanned(bom, lines, escape, instructions, comments)


def split_lines(content: str) -> list[str]:
    """The lines, each with its line end. Lines end at "\\n" only, as for docker;
    str.splitlines() would also split at \\f, \\x1c, …"""
    parts = content.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def line_ending(line: str) -> str:
    if line.endswith("\r\n"):
        return "\r\n"
    return "\n" if line.endswith("\n") else ""


def continuation(content: str, escape: str) -> re.Match[str] | None:
    """The escape token (and blanks after it) that continues a line (without its line end)."""
    return _CONTINUATION[escape].search(content)


def _is_blank(line: str) -> bool:
    return not line.strip()


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _continues(line: str, escape: str) -> bool:
    return continuation(line.rstrip("\r\n"), escape) is not None


def _parser_directives(lines: list[str]) -> tuple[str, list[str]]:
    """The escape token, and the lines to give dockerfile-parse."""
    escape = "\\"
    feed = list(lines)
    for number, line in enumerate(lines):
        match = _PARSER_DIRECTIVE.match(line.strip())
        if not match or match.group(1).lower() not in _PARSER_DIRECTIVE_NAMES:
            break
        name, value = match.group(1).lower(), match.group(2)
        if name == "escape":
            if value not in ("\\", "`"):
                raise DockermaError(
                    f"line {number + 1}: invalid escape token {value!r}; "
                    "use # escape=\\ or # escape=`"
                )
            escape = value
        elif name == "check":
            feed[number] = "# syntax=\n"  # so dockerfile-parse keeps looking for # escape=
    return escape, feed


def _scan(lines: list[str], feed: list[str], escape: str) -> tuple[list[Instruction], list[int]]:
    """The instructions and the comment lines, as BuildKit reads them."""
    parser = DockerfileParser(fileobj=io.StringIO("".join(_cut_long_runs(feed, escape))))
    # dockerfile-parse lists a comment inside a continued instruction before that instruction.
    entries = sorted(parser.structure, key=lambda e: int(e["startline"]))
    instructions: list[Instruction] = []
    comments: list[int] = []
    claimed = 0  # lines before this belong to an instruction (continuations, heredoc bodies)
    logical_end = -1  # last line of the last instruction's text; heredoc bodies come after
    heredocs = _Terminators(lines)
    for entry in entries:
        start = int(entry["startline"])
        if entry["instruction"] == "COMMENT":
            # A comment inside a continued instruction is a comment for docker (it drops
            # it); a line in a heredoc body that looks like one is not.
            if start >= claimed or start <= logical_end:
                comments.append(start)
            continue
        if start < claimed:
            continue  # a heredoc body line, or a line after a blank continuation line
        insn = _corrected(lines, entry, escape)
        logical_end = insn.endline
        end = heredocs.bodies_end(insn)
        instructions.append(Instruction(insn.keyword, start, end, insn.args))
        claimed = end + 1
    instructions += _unparsed_tail(lines, claimed, escape)
    return instructions, comments


def _corrected(lines: list[str], entry: Mapping[str, Any], escape: str) -> Instruction:
    """An instruction dockerfile-parse found, with the lines BuildKit reads as part of it."""
    start, end = int(entry["startline"]), int(entry["endline"])
    keyword, args = str(entry["instruction"]), str(entry["value"])
    if (end > start and _is_blank(lines[end])) or _continues(lines[end], escape):
        # dockerfile-parse ends an instruction at a blank line inside a continuation;
        # docker skips such lines (with a warning) and keeps reading the instruction.
        # (It also ends where _cut_long_runs cut a long run.)
        end = _instruction_end(lines, start, escape)
        args = _joined(lines, start, end, escape)[1]
    return Instruction(keyword, start, end, args)


def _unparsed_tail(lines: list[str], start: int, escape: str) -> list[Instruction]:
    """dockerfile-parse drops an instruction whose continuation runs to the end of the file
    (and a last line that is a single word without a newline): the instructions from `start`."""
    found = []
    while start < len(lines):
        if _is_blank(lines[start]) or _is_comment(lines[start]):
            start += 1
            continue
        end = _instruction_end(lines, start, escape)
        keyword, args = _joined(lines, start, end, escape)
        found.append(Instruction(keyword.upper(), start, end, args))
        start = end + 1
    return found


def _instruction_end(lines: list[str], start: int, escape: str) -> int:
    """The last line of the instruction starting at `start`, as BuildKit reads it."""
    end = current = start
    while _continues(lines[end], escape) and current + 1 < len(lines):
        current += 1
        if not (_is_blank(lines[current]) or _is_comment(lines[current])):
            end = current
    return end


def _joined(lines: list[str], start: int, end: int, escape: str) -> tuple[str, str]:
    """The keyword and the arguments of the instruction on lines start..end."""
    parts = []
    for number in range(start, end + 1):
        line = lines[number].rstrip("\r\n")
        if number > start and (_is_blank(line) or _is_comment(line)):
            continue
        parts.append(_CONTINUATION[escape].sub("", line))
    split = "".join(parts).strip().split(None, 1)
    return split[0], split[1] if len(split) > 1 else ""


class _Terminators:
    """Heredocs (dockerfile 1.4, BuildKit's default): dockerfile-parse knows nothing of them
    and reads their bodies as instructions - `from x import y` in a Python heredoc would
    become a stage. Bodies follow the instruction, one after the other.

    Terminators are looked up in an index of the lines, built once per chomp mode, not
    searched for, as a file of unterminated heredocs would take quadratic time.
    """

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines
        self._index: dict[bool, dict[str, list[int]]] = {}  # by chomp: line text → numbers

    def bodies_end(self, insn: Instruction) -> int:
        """The last line of the instruction's heredoc bodies (its own last line without)."""
        end = insn.endline
        for terminator, chomp in _heredocs(insn.keyword, insn.args):
            body_end = self._find(terminator, chomp, end + 1)
            if body_end is None:
                break  # unterminated: docker reports it, we leave the lines as they were read
            end = body_end
        return end

    def _find(self, terminator: str, chomp: bool, start: int) -> int | None:
        if chomp not in self._index:
            index: dict[str, list[int]] = {}
            for number, line in enumerate(self._lines):
                candidate = line.rstrip("\r\n")
                index.setdefault(candidate.lstrip("\t") if chomp else candidate, []).append(number)
            self._index[chomp] = index
        numbers = self._index[chomp].get(terminator, [])
        found = bisect.bisect_left(numbers, start)
        return numbers[found] if found < len(numbers) else None


def _heredocs(keyword: str, args: str) -> list[tuple[str, bool]]:
    """The heredocs an instruction opens: (terminator, leading tabs stripped)."""
    if keyword == "ONBUILD":
        inner = args.split(None, 1)
        if len(inner) < 2:
            return []
        keyword, args = inner[0].upper(), inner[1]
    if keyword not in _HEREDOC_INSTRUCTIONS or "<<" not in args or _is_json_list(args):
        return []
    # BuildKit lexes these words with a backslash escape whatever the escape directive says.
    raw = words(args, "\\")
    found = []
    index = 0
    while index < len(raw):
        word = raw[index]
        if _HEREDOC_OPENER.match(word) and index + 1 < len(raw):
            index += 1
            word += raw[index]  # `<< EOF`: BuildKit's lexer keeps the space in the word
        match = _HEREDOC.match(word)
        if match:
            name = re.sub(r"[\"'\\]", "", match.group(3))
            if name:
                found.append((name, match.group(2) == "-"))
        index += 1
    return found


def _cut_long_runs(feed: list[str], escape: str) -> list[str]:
    out = list(feed)
    run = 0
    for number, line in enumerate(out):
        if _is_blank(line) or _is_comment(line):
            continue
        if not _continues(line, escape):
            run = 0
            continue
        run += 1
        if run >= _FEED_RUN:
            out[number] = _CONTINUATION[escape].sub("", line.rstrip("\r\n")) + "\n"
            run = 0
    return out


def _is_json_list(args: str) -> bool:
    text = args.strip()
    if not text.startswith("["):
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def safe_word(value: str, what: str) -> str:
    """`value` itself, to be written into a rendered Dockerfile; a DockermaError when it holds
    a line break or another control character but tab (whatever its source: a registry's
    digest, a flag, an option)."""
    if _UNSAFE.search(value) is None:
        return value
    raise DockermaError(
        f"refusing to write {what} {value!r:.60} into the rendered Dockerfile: it contains a "
        "line break or control character, which would change the Dockerfile; nothing was built"
    )
