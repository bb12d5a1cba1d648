"""The Dockerfile: the `# dockerma` directives, its stages, and the rendering per platform.

Pure: no I/O, no docker. dockerfile-parse finds the instructions and comments; where it
reads a Dockerfile differently from BuildKit, `_scan` corrects it (each place says why).
"""

from __future__ import annotations

import bisect
import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from dockerfile_parse import DockerfileParser

from dockerma.core.platforms import Platform, parse_list
from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError

# BuildKit's parser directives: `# name=value` lines at the very top of the file, before any
# other comment, blank line or instruction. `check` (dockerfile 1.8) is newer than
# dockerfile-parse, which stops looking for `# escape=` when it meets one.
_PARSER_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_PARSER_DIRECTIVE_NAMES = frozenset({"syntax", "escape", "check"})
# What a mistyped directive looks like (`# dockerma arch:arm`, `# dockerma archs arm`), as
# opposed to a comment that merely starts with the word.
_DIRECTIVE_ATTEMPT = re.compile(
    r"^\s*$|^\s*:|^\s*(?:archs?|platforms?|smoke)\b|^\s*[\w-]+\s*:", re.IGNORECASE
)
_DOCKERMA = re.compile(r"^#\s*dockerma\b(.*)$", re.IGNORECASE)
_DOCKERMA_KEYWORD = re.compile(r"^\s*(archs|smoke)\s*:(.*)$", re.IGNORECASE)
# A line continues when its last non-blank character is the escape token (BuildKit ignores
# spaces and tabs after it).
_CONTINUATION = {"\\": re.compile(r"\\[ \t]*$"), "`": re.compile(r"`[ \t]*$")}
_HEREDOC = re.compile(r"^(\d*)<<(-?)\s*([^<]+)$")
_HEREDOC_OPENER = re.compile(r"^\d*<<-?$")
_HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
_VARIABLE = re.compile(r"[A-Za-z0-9_]+")
_STAGE_INDEX = re.compile(r"^[0-9]+$")
# A line break in a value written into a Dockerfile starts a new instruction (a registry that
# answers `sha256:…\nRUN …` as a digest); no image reference or flag has a control character
# (a tab separates words in an instruction the user wrote, as a space does).
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Stage:
    """One `FROM` and the instructions up to the next one."""

    index: int
    base: str  # as written: "${BASE}", "busybox:1", "scratch", "builder"
    alias: str | None  # lowercased, as docker does
    platform_flag: str | None  # the value of --platform= as written
    flags: tuple[str, ...]
    startline: int  # 0-based lines of the FROM (continuations included)
    endline: int
    instructions_end: int  # 0-based last line of the stage


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile; `content` is kept verbatim for rendering, `escape` is its token."""

    content: str
    archs: tuple[Platform, ...] | None
    archs_line: str | None
    smoke: tuple[str, ...]
    stages: tuple[Stage, ...]
    global_args: dict[str, str | None]
    declared_args: frozenset[str]
    escape: str = "\\"
    # an archs comment after the first instruction: an ordinary comment, as docker reads it,
    # named when no architectures are given ("line 3: '# dockerma archs:arm'")
    late_archs: str | None = None
    _global_decls: tuple[_GlobalArg, ...] = field(default=(), repr=False, compare=False)
    _aliases: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class _GlobalArg:
    name: str
    default: str | None  # as written
    line: int


@dataclass(frozen=True)
class _Instruction:
    keyword: str  # upper case
    startline: int
    endline: int
    args: str  # everything after the keyword, continuation lines joined


@dataclass(frozen=True)
class _Scope:
    """The variables a FROM line sees, for one target platform."""

    values: dict[str, str | None]  # None: declared, but without a value
    because: dict[str, str]  # ARG whose default needs a variable without value → that variable
    # Memos: stages that share a base are expanded and checked once.
    expanded: dict[str, str] = field(default_factory=dict)
    valid_refs: set[str] = field(default_factory=set)


class _Missing(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _BadWord(Exception):
    pass


def parse(content: str) -> Dockerfile:
    """Parse a Dockerfile: the `# dockerma` directives, the stages and the ARGs."""
    lines = _split_lines(content)
    if lines and lines[0].startswith("\ufeff"):
        # Docker drops a UTF-8 byte order mark; dockerfile-parse would read it as part of
        # the first word.
        lines[0] = lines[0][1:]
    if not "".join(lines).strip():
        raise DockermaError(
            "the Dockerfile is empty; write at least a FROM line, e.g. FROM alpine:3"
        )
    escape, feed = _parser_directives(lines)
    instructions, comments = _scan(lines, feed, escape)
    first = instructions[0].startline if instructions else len(lines)
    archs, archs_line, smoke, late_archs = _dockerma_directives(lines, comments, first)

    froms: list[tuple[_Instruction, tuple[str, ...], str, str | None]] = []
    decls: list[_GlobalArg] = []
    declared: set[str] = set()
    for insn in instructions:
        if insn.keyword == "ARG":
            for name, default in _arg_pairs(insn.args, escape):
                declared.add(name)
                if not froms:
                    decls.append(_GlobalArg(name, default, insn.startline))
        elif insn.keyword == "FROM":
            froms.append((insn, *_split_from(insn)))
        elif not froms:
            raise DockermaError(
                f"line {insn.startline + 1}: {insn.keyword} comes before the first FROM; "
                "only ARG may precede FROM"
            )
    if not froms:
        raise DockermaError("the Dockerfile has no FROM instruction; add one, e.g. FROM alpine:3")

    stages = []
    aliases: dict[str, int] = {}
    for index, (insn, flags, base, alias) in enumerate(froms):
        end = froms[index + 1][0].startline - 1 if index + 1 < len(froms) else len(lines) - 1
        platform_flag = next(
            (f.split("=", 1)[1] for f in flags if f.startswith("--platform=")), None
        )
        stages.append(
            Stage(index, base, alias, platform_flag, flags, insn.startline, insn.endline, end)
        )
        if alias is not None:
            aliases.setdefault(alias, index)
    return Dockerfile(
        content=content,
        archs=archs,
        archs_line=archs_line,
        late_archs=late_archs,
        smoke=smoke,
        stages=tuple(stages),
        global_args={decl.name: decl.default for decl in decls},
        declared_args=frozenset(declared),
        escape=escape,
        _global_decls=tuple(decls),
        _aliases=aliases,
    )


def is_external(df: Dockerfile, stage: Stage, resolved_base: str) -> bool:
    """Whether the stage's base is an image from a registry (not scratch, not an earlier stage)."""
    name = resolved_base.strip().lower()
    if name == "scratch":
        return False
    # Stage names are case-insensitive (BuildKit lowercases them); only earlier stages count.
    earlier = df._aliases.get(name)
    if earlier is not None and earlier < stage.index:
        return False
    return not (_STAGE_INDEX.match(name) and int(name) < stage.index)


def resolve_base(
    df: Dockerfile,
    stage: Stage,
    *,
    build_args: Mapping[str, str],
    target: Platform,
    build: Platform,
) -> str:
    """The stage's base image with the global ARGs (and buildx's platform args) substituted."""
    return _resolve(df, stage, _scope(df, build_args, target, build))


def stage_platform(
    df: Dockerfile,
    stage: Stage,
    *,
    build_args: Mapping[str, str],
    target: Platform,
    build: Platform,
) -> Platform:
    """The platform whose digest the stage needs: its `--platform=` flag, else the target."""
    return _stage_platform(df, stage, _scope(df, build_args, target, build), target)


def external_images(
    df: Dockerfile,
    *,
    build_args: Mapping[str, str],
    targets: Sequence[Platform],
    build: Platform,
) -> list[tuple[str, Platform]]:
    """The distinct (image reference, platform) pairs that need a digest, in first-seen order."""
    seen: dict[tuple[str, Platform], None] = {}
    for target in targets:
        scope = _scope(df, build_args, target, build)
        for stage in df.stages:
            base = _external_base(df, stage, scope)
            if base is not None:
                seen.setdefault((base, _stage_platform(df, stage, scope, target)), None)
    return list(seen)


def render(
    df: Dockerfile,
    *,
    target: Platform,
    build: Platform,
    build_args: Mapping[str, str],
    pin: Callable[[str, Platform], str],
    scratch: str | None = None,
) -> str:
    """The Dockerfile for one target: every external base pinned, every other line as it was.

    With `scratch`, `FROM scratch` stages start from that image instead (the classic
    builder labels a scratch stage with the host's architecture unless a build-wide
    --platform is given, which it cannot be for every Dockerfile).
    """
    scope = _scope(df, build_args, target, build)
    lines = _split_lines(df.content)
    out: list[str] = []
    done = 0
    for stage in df.stages:
        base = _external_base(df, stage, scope)
        if base is None:
            if scratch is None or _resolve(df, stage, scope).strip().lower() != "scratch":
                continue
            words = ["FROM", safe_word(scratch, "the empty base")]
        else:
            platform = _stage_platform(df, stage, scope, target)
            flags = [
                f"--platform={platform.docker}" if f.startswith("--platform=") else f
                for f in stage.flags
            ]
            pinned = safe_word(pin(base, platform), f"the pinned reference of {base} ({platform})")
            words = ["FROM", *(safe_word(f, "a FROM flag") for f in flags), pinned]
        if stage.alias is not None:
            words += ["AS", safe_word(stage.alias, "a stage name")]
        out.extend(lines[done : stage.startline])
        bom = "\ufeff" if stage.startline == 0 and lines[0].startswith("\ufeff") else ""
        out.append(bom + " ".join(words) + _line_ending(lines[stage.endline]))
        done = stage.endline + 1
    out.extend(lines[done:])
    return "".join(out)


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


# --- reading the file -------------------------------------------------------------------


def _split_lines(content: str) -> list[str]:
    # Lines end at "\n" only, as for docker; str.splitlines() would also split at \f, \x1c, …
    parts = content.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _line_ending(line: str) -> str:
    if line.endswith("\r\n"):
        return "\r\n"
    return "\n" if line.endswith("\n") else ""


def _is_blank(line: str) -> bool:
    return not line.strip()


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _continues(line: str, escape: str) -> bool:
    return _CONTINUATION[escape].search(line.rstrip("\r\n")) is not None


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


def _scan(lines: list[str], feed: list[str], escape: str) -> tuple[list[_Instruction], list[int]]:
    """The instructions and the comment lines, as BuildKit reads them."""
    parser = DockerfileParser(fileobj=io.StringIO("".join(_cut_long_runs(feed, escape))))
    structure = parser.structure
    # dockerfile-parse lists a comment inside a continued instruction before that instruction.
    entries = sorted(structure, key=lambda e: int(e["startline"]))
    instructions: list[_Instruction] = []
    comments: list[int] = []
    claimed = 0  # lines before this belong to an instruction (continuations, heredoc bodies)
    logical_end = -1  # last line of the last instruction's text; heredoc bodies come after
    ends: dict[bool, dict[str, list[int]]] = {}  # heredoc terminator candidates, by chomp
    for entry in entries:
        start, end = int(entry["startline"]), int(entry["endline"])
        if entry["instruction"] == "COMMENT":
            # A comment inside a continued instruction is a comment for docker (it drops
            # it); a line in a heredoc body that looks like one is not.
            if start >= claimed or start <= logical_end:
                comments.append(start)
            continue
        if start < claimed:
            continue  # a heredoc body line, or a line after a blank continuation line
        keyword, args = str(entry["instruction"]), str(entry["value"])
        if (end > start and _is_blank(lines[end])) or _continues(lines[end], escape):
            # dockerfile-parse ends an instruction at a blank line inside a continuation;
            # docker skips such lines (with a warning) and keeps reading the instruction.
            # (It also ends where _cut_long_runs cut a long run.)
            end = _instruction_end(lines, start, escape)
            args = _joined(lines, start, end, escape)[1]
        logical_end = end
        # Heredocs (dockerfile 1.4, BuildKit's default): dockerfile-parse knows nothing of
        # them and reads their bodies as instructions - `from x import y` in a Python
        # heredoc would become a stage. Bodies follow the instruction, one after the other.
        for terminator, chomp in _heredocs(keyword, args):
            if chomp not in ends:
                ends[chomp] = _line_index(lines, chomp)
            body_end = _heredoc_end(ends[chomp], end + 1, terminator)
            if body_end is None:
                break  # unterminated: docker reports it, we leave the lines as they were read
            end = body_end
        instructions.append(_Instruction(keyword, start, end, args))
        claimed = end + 1
    # dockerfile-parse drops an instruction whose continuation runs to the end of the file
    # (and a last line that is a single word without a newline).
    start = claimed
    while start < len(lines):
        if _is_blank(lines[start]) or _is_comment(lines[start]):
            start += 1
            continue
        end = _instruction_end(lines, start, escape)
        keyword, args = _joined(lines, start, end, escape)
        instructions.append(_Instruction(keyword.upper(), start, end, args))
        start = end + 1
    return instructions, comments


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
    words = "".join(parts).strip().split(None, 1)
    return words[0], words[1] if len(words) > 1 else ""


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
    words = _words(args, "\\")
    found = []
    index = 0
    while index < len(words):
        word = words[index]
        if _HEREDOC_OPENER.match(word) and index + 1 < len(words):
            index += 1
            word += words[index]  # `<< EOF`: BuildKit's lexer keeps the space in the word
        match = _HEREDOC.match(word)
        if match:
            name = re.sub(r"[\"'\\]", "", match.group(3))
            if name:
                found.append((name, match.group(2) == "-"))
        index += 1
    return found


def _line_index(lines: list[str], chomp: bool) -> dict[str, list[int]]:
    """Where each line text occurs: heredoc terminators are looked up here, not searched
    for, as a file of unterminated heredocs would take quadratic time."""
    index: dict[str, list[int]] = {}
    for number, line in enumerate(lines):
        candidate = line.rstrip("\r\n")
        index.setdefault(candidate.lstrip("\t") if chomp else candidate, []).append(number)
    return index


def _heredoc_end(index: Mapping[str, list[int]], start: int, terminator: str) -> int | None:
    numbers = index.get(terminator, [])
    found = bisect.bisect_left(numbers, start)
    return numbers[found] if found < len(numbers) else None


# dockerfile-parse joins a continued instruction by repeated string concatenation, in
# quadratic time (a 5 MB instruction took minutes). It gets the run cut every this many
# lines; _scan reads the whole instruction itself.
_FEED_RUN = 1000


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


def _words(text: str, escape: str) -> list[str]:
    """Split at blanks outside quotes, keeping quotes and escapes (BuildKit's raw words)."""
    words: list[str] = []
    current: list[str] = []
    quote = ""
    in_word = False
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            current.append(char)
            if char == escape and quote == '"' and index + 1 < len(text):
                index += 1
                current.append(text[index])
            elif char == quote:
                quote = ""
        elif char == escape and index + 1 < len(text):
            index += 1
            current += [char, text[index]]
            in_word = True
        elif char.isspace():
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        else:
            if char in "'\"":
                quote = char
            current.append(char)
            in_word = True
        index += 1
    if in_word:
        words.append("".join(current))
    return words


def _dockerma_directives(
    lines: list[str], comments: list[int], first_instruction: int
) -> tuple[tuple[Platform, ...] | None, str | None, tuple[str, ...], str | None]:
    """archs, its line as written, the smoke commands, the first archs comment found too late."""
    archs: tuple[Platform, ...] | None = None
    archs_line: str | None = None
    archs_number = -1
    late: str | None = None
    smoke: list[str] = []
    for number in comments:
        written = lines[number].rstrip("\r\n")
        text = written.strip()
        match = _DOCKERMA.match(text)
        if not match:
            continue
        where = f"line {number + 1}: {text!r}"
        keyword = _DOCKERMA_KEYWORD.match(match.group(1))
        if not keyword:
            if not _DIRECTIVE_ATTEMPT.match(match.group(1)):
                continue  # prose that happens to start with "dockerma", not a directive
            raise DockermaError(
                f"{where} is not a dockerma directive; write '# dockerma archs:arm,amd64,arm64:' "
                "or '# dockerma smoke:COMMAND'"
            )
        value = keyword.group(2).strip()
        if keyword.group(1).lower() == "smoke":
            if not value:
                raise DockermaError(
                    f"{where} names no command; write e.g. '# dockerma smoke:/bin/app --version'"
                )
            smoke.append(value)
            continue
        if number > first_instruction:
            # Only the comments before the first instruction are read (PRODUCT.md §1); a later
            # one is an ordinary comment, so --platform or an earlier archs line still rules.
            late = late or where
            continue
        if archs is not None:
            raise DockermaError(
                f"{where} is a second archs directive (the first is on line {archs_number + 1}); "
                "keep one '# dockerma archs:' line"
            )
        if value.endswith(":"):
            value = value[:-1]
        try:
            platforms = parse_list(value)
        except DockermaError as error:
            raise DockermaError(f"{where}: {error}") from None
        if not platforms:
            raise DockermaError(
                f"{where} names no architecture; list them, "
                "e.g. '# dockerma archs:arm,amd64,arm64:'"
            )
        archs, archs_line, archs_number = tuple(platforms), written, number
    return archs, archs_line, tuple(smoke), late


def _arg_pairs(args: str, escape: str) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for word in _words(args, escape):
        name, equals, default = word.partition("=")
        pairs.append((name, default if equals else None))
    return pairs


def _split_from(insn: _Instruction) -> tuple[tuple[str, ...], str, str | None]:
    """FROM [--flag=value …] IMAGE [AS name] → flags, image, lowercased name."""
    words = insn.args.split()
    flags = []
    while words and words[0].startswith("--"):
        flags.append(words.pop(0))
    if len(words) == 1:
        return tuple(flags), words[0], None
    if len(words) == 3 and words[1].lower() == "as":
        return tuple(flags), words[0], words[2].lower()
    raise DockermaError(
        f"line {insn.startline + 1}: 'FROM {insn.args.strip()}' is not "
        "FROM [--platform=…] IMAGE [AS NAME]; fix that line"
    )


# --- variables ------------------------------------------------------------------------


def _scope(
    df: Dockerfile, build_args: Mapping[str, str], target: Platform, build: Platform
) -> _Scope:
    values: dict[str, str | None] = {}
    # buildx defines these in the global scope, so FROM can use them without an ARG; like
    # BuildKit (dockerfile2llb's defaultArgs) a --build-arg of the same name wins.
    for name, value in {**target.buildargs("TARGET"), **build.buildargs("BUILD")}.items():
        values[name] = build_args.get(name, value)
    because: dict[str, str] = {}
    # Only ARGs declared before the first FROM reach FROM lines; a --build-arg for anything
    # else is not seen there (docker warns that it was not consumed).
    for decl in df._global_decls:
        name, default = decl.name, decl.default
        if name in build_args:
            values[name] = build_args[name]
            because.pop(name, None)
        elif default is not None:
            try:
                values[name] = _expand(default, values, df.escape)
                because.pop(name, None)
            except _Missing as missing:
                values[name] = None
                because[name] = missing.name
            except _BadWord as error:
                raise DockermaError(
                    f"line {decl.line + 1}: the default of ARG {name} ({default!r}) {error}; "
                    "fix its quoting"
                ) from None
        elif name not in values:
            values[name] = None
    return _Scope(values, because)


def _where(stage: Stage) -> str:
    words = ["FROM", *stage.flags, stage.base]
    if stage.alias is not None:
        words += ["AS", stage.alias]
    return f"line {stage.startline + 1}: '{' '.join(words)}'"


def _expand_in(stage: Stage, word: str, df: Dockerfile, scope: _Scope) -> str:
    if word in scope.expanded:
        return scope.expanded[word]
    try:
        scope.expanded[word] = _expand(word, scope.values, df.escape)
        return scope.expanded[word]
    except _BadWord as error:
        raise DockermaError(f"{_where(stage)}: {word!r} {error}; fix the FROM line") from None
    except _Missing as missing:
        chain = [missing.name]
        while chain[-1] in scope.because and len(chain) <= len(scope.because):
            chain.append(scope.because[chain[-1]])
        name = chain[-1]
        via = f" (needed by {', '.join(chain[:-1])})" if len(chain) > 1 else ""
        if name not in scope.values:
            raise DockermaError(
                f"{_where(stage)} uses ${name}{via}, which no ARG before the first FROM declares; "
                f"add ARG {name}=<default> above the first FROM (then --build-arg {name}=… "
                "can override it)"
            ) from None
        raise DockermaError(
            f"{_where(stage)} needs ${name}{via}, which has no value; give it a default "
            f"(ARG {name}=…) or pass --build-arg {name}=…"
        ) from None


def _resolve(df: Dockerfile, stage: Stage, scope: _Scope) -> str:
    base = _expand_in(stage, stage.base, df, scope).strip()
    if not base:
        raise DockermaError(
            f"{_where(stage)} gives an empty image name; give its ARG a default or pass "
            "--build-arg NAME=image"
        )
    return base


def _external_base(df: Dockerfile, stage: Stage, scope: _Scope) -> str | None:
    base = _resolve(df, stage, scope)
    if not is_external(df, stage, base):
        return None
    if base not in scope.valid_refs:
        try:
            ImageRef.parse(base)
        except DockermaError as error:
            raise DockermaError(f"{_where(stage)}: {error}") from None
        scope.valid_refs.add(base)
    return base


def _stage_platform(df: Dockerfile, stage: Stage, scope: _Scope, target: Platform) -> Platform:
    if stage.platform_flag is None:
        return target
    text = _expand_in(stage, stage.platform_flag, df, scope)
    try:
        return Platform.parse(text)
    except DockermaError as error:
        raise DockermaError(f"{_where(stage)}: {error}") from None


def _expand(word: str, values: Mapping[str, str | None], escape: str) -> str:
    """BuildKit's word expansion (quotes, escapes, $VAR and ${VAR…} forms), strict on unset."""
    text, _, missing = _lex(word, 0, values, escape, in_braces=False)
    if missing is not None:
        raise _Missing(missing)
    return text


def _lex(
    word: str, index: int, values: Mapping[str, str | None], escape: str, *, in_braces: bool
) -> tuple[str, int, str | None]:
    """Expand from `index` to the end (or to the closing brace); the first unset name, if any."""
    out: list[str] = []
    missing: str | None = None
    while index < len(word):
        char = word[index]
        if in_braces and char == "}":
            return "".join(out), index + 1, missing
        if char == escape:
            out.append(word[index + 1] if index + 1 < len(word) else char)
            index += 2
        elif char == "'":
            close = word.find("'", index + 1)
            if close < 0:
                raise _BadWord("has an unterminated single quote")
            out.append(word[index + 1 : close])
            index = close + 1
        elif char == '"':
            index += 1
            while True:
                if index >= len(word):
                    raise _BadWord("has an unterminated double quote")
                char = word[index]
                if char == '"':
                    index += 1
                    break
                if char == escape and index + 1 < len(word) and word[index + 1] in f'"${escape}':
                    out.append(word[index + 1])
                    index += 2
                elif char == "$":
                    text, index, unset = _dollar(word, index, values, escape)
                    out.append(text)
                    missing = missing or unset
                else:
                    out.append(char)
                    index += 1
        elif char == "$":
            text, index, unset = _dollar(word, index, values, escape)
            out.append(text)
            missing = missing or unset
        else:
            out.append(char)
            index += 1
    if in_braces:
        raise _BadWord("has a ${ without its closing }")
    return "".join(out), index, missing


def _dollar(
    word: str, index: int, values: Mapping[str, str | None], escape: str
) -> tuple[str, int, str | None]:
    """One `$…` at `index`: its text, where it ends, and the unset name it needs, if any."""
    index += 1
    if index < len(word) and word[index] == "{":
        match = _VARIABLE.match(word, index + 1)
        if not match:
            raise _BadWord("has a bad substitution")
        name, index = match.group(), match.end()
        value = values.get(name)
        if index >= len(word):
            raise _BadWord("has a ${ without its closing }")
        if word[index] == "}":
            return (value, index + 1, None) if value is not None else ("", index + 1, name)
        colon = word[index] == ":"
        operator = word[index + 1 : index + 2] if colon else word[index]
        if operator not in ("-", "+", "?"):
            raise _BadWord(
                f"uses ${{{name}{word[index : index + 2]}…}}, which dockerma cannot expand"
            )
        alternative, index, unset = _lex(
            word, index + (2 if colon else 1), values, escape, in_braces=True
        )
        # With a colon, an empty value counts as unset (as in sh).
        is_set = value is not None and (value != "" or not colon)
        if operator == "-":
            return (value or "", index, None) if is_set else (alternative, index, unset)
        if operator == "+":
            return (alternative, index, unset) if is_set else ("", index, None)
        return (value or "", index, None) if is_set else ("", index, name)
    match = _VARIABLE.match(word, index)
    if not match:
        return "$", index, None
    value = values.get(match.group())
    if value is None:
        return "", match.end(), match.group()
    return value, match.end(), None
