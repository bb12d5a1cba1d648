"""The Dockerfile: its stages, the images they start from, and the rendering per platform.

Pure: no I/O, no docker. Its parts: dockerfile_lines (how BuildKit reads the lines),
dockerfile_words (words and `$VAR` expansion), dockerfile_directives (`# dockerma` comments).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from dockerma.core import dockerfile_directives, dockerfile_flags, dockerfile_lines
from dockerma.core.dockerfile_flags import FlagRef
from dockerma.core.dockerfile_lines import BOM, Instruction, line_ending, safe_word
from dockerma.core.dockerfile_words import BadWord, Missing, expand, words
from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError

_STAGE_INDEX = re.compile(r"^[0-9]+$")


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
    _flags: tuple[FlagRef, ...] = field(default=(), repr=False, compare=False)
    _aliases: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class _GlobalArg:
    name: str
    default: str | None  # as written
    line: int


@dataclass(frozen=True)
class _Scope:
    """The variables a FROM line sees, for one target platform."""

    values: dict[str, str | None]  # None: declared, but without a value
    because: dict[str, str]  # ARG whose default needs a variable without value → that variable
    # Memos: stages that share a base are expanded and checked once.
    expanded: dict[str, str] = field(default_factory=dict)
    valid_refs: set[str] = field(default_factory=set)


def parse(content: str) -> Dockerfile:
    """Parse a Dockerfile: the `# dockerma` directives, the stages and the ARGs."""
    scanned = dockerfile_lines.read(content)
    if not "".join(scanned.lines).strip():
        raise DockermaError(
            "the Dockerfile is empty; write at least a FROM line, e.g. FROM alpine:3"
        )
    instructions = scanned.instructions
    first = instructions[0].startline if instructions else len(scanned.lines)
    directives = dockerfile_directives.read(scanned.lines, scanned.comments, first)
    froms, decls, declared = _froms_and_args(instructions, scanned.escape)
    stages = _stages(froms, len(scanned.lines))
    aliases: dict[str, int] = {}
    for stage in stages:
        if stage.alias is not None:
            aliases.setdefault(stage.alias, stage.index)
    return Dockerfile(
        content=content,
        archs=directives.archs,
        archs_line=directives.archs_line,
        late_archs=directives.late_archs,
        smoke=directives.smoke,
        stages=stages,
        global_args={decl.name: decl.default for decl in decls},
        declared_args=frozenset(declared),
        escape=scanned.escape,
        _global_decls=tuple(decls),
        _flags=dockerfile_flags.find(instructions, scanned.escape),
        _aliases=aliases,
    )


def _froms_and_args(
    instructions: list[Instruction], escape: str
) -> tuple[list[Instruction], list[_GlobalArg], set[str]]:
    """The FROM instructions, the ARGs before the first of them, every ARG name."""
    froms: list[Instruction] = []
    decls: list[_GlobalArg] = []
    declared: set[str] = set()
    for insn in instructions:
        if insn.keyword == "ARG":
            for name, default in _arg_pairs(insn.args, escape):
                declared.add(name)
                if not froms:
                    decls.append(_GlobalArg(name, default, insn.startline))
        elif insn.keyword == "FROM":
            froms.append(insn)
        elif not froms:
            raise DockermaError(
                f"line {insn.startline + 1}: {insn.keyword} comes before the first FROM; "
                "only ARG may precede FROM"
            )
    if not froms:
        raise DockermaError("the Dockerfile has no FROM instruction; add one, e.g. FROM alpine:3")
    return froms, decls, declared


def _stages(froms: list[Instruction], line_count: int) -> tuple[Stage, ...]:
    stages = []
    for index, insn in enumerate(froms):
        flags, base, alias = _split_from(insn)
        end = froms[index + 1].startline - 1 if index + 1 < len(froms) else line_count - 1
        platform_flag = next(
            (f.split("=", 1)[1] for f in flags if f.startswith("--platform=")), None
        )
        stages.append(
            Stage(index, base, alias, platform_flag, flags, insn.startline, insn.endline, end)
        )
    return tuple(stages)


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
    contexts: Collection[str] = (),
) -> list[tuple[str, Platform]]:
    """The distinct (image reference, platform) pairs that need a digest, in first-seen order:
    every FROM, COPY --from and RUN --mount from= image but those `contexts` (the names of
    --build-context) give."""
    seen: dict[tuple[str, Platform], None] = {}
    for target in targets:
        scope = _scope(df, build_args, target, build)
        for stage in df.stages:
            base = _external_base(df, stage, scope, contexts)
            if base is not None:
                seen.setdefault((base, _stage_platform(df, stage, scope, target)), None)
        for _, image in _flag_images(df, scope, contexts):
            seen.setdefault((image, target), None)  # BuildKit takes it for the target platform
    return list(seen)


def render(
    df: Dockerfile,
    *,
    target: Platform,
    build: Platform,
    build_args: Mapping[str, str],
    pin: Callable[[str, Platform], str],
    scratch: str | None = None,
    contexts: Collection[str] = (),
) -> str:
    """The Dockerfile for one target: every external base pinned, every other line as it was.

    With `scratch`, `FROM scratch` stages start from that image instead (the classic
    builder labels a scratch stage with the host's architecture unless a build-wide
    --platform is given, which it cannot be for every Dockerfile).
    """
    scope = _scope(df, build_args, target, build)
    lines = dockerfile_lines.split_lines(df.content)
    for flag, image in _flag_images(df, scope, contexts):
        pinned = safe_word(pin(image, target), f"the pinned reference of {image} ({target})")
        dockerfile_flags.pin(lines, flag, df.escape, pinned)
    out: list[str] = []
    done = 0
    for stage in df.stages:
        base = _external_base(df, stage, scope, contexts)
        if base is None:
            if scratch is None or _resolve(df, stage, scope).strip().lower() != "scratch":
                continue
            written = ["FROM", safe_word(scratch, "the empty base")]
        else:
            platform = _stage_platform(df, stage, scope, target)
            flags = [
                f"--platform={platform.docker}" if f.startswith("--platform=") else f
                for f in stage.flags
            ]
            pinned = safe_word(pin(base, platform), f"the pinned reference of {base} ({platform})")
            written = ["FROM", *(safe_word(f, "a FROM flag") for f in flags), pinned]
        if stage.alias is not None:
            written += ["AS", safe_word(stage.alias, "a stage name")]
        out.extend(lines[done : stage.startline])
        bom = BOM if stage.startline == 0 and lines[0].startswith(BOM) else ""
        out.append(bom + " ".join(written) + line_ending(lines[stage.endline]))
        done = stage.endline + 1
    out.extend(lines[done:])
    return "".join(out)


def _arg_pairs(args: str, escape: str) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for word in words(args, escape):
        name, equals, default = word.partition("=")
        pairs.append((name, default if equals else None))
    return pairs


def _split_from(insn: Instruction) -> tuple[tuple[str, ...], str, str | None]:
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
                values[name] = expand(default, values, df.escape)
                because.pop(name, None)
            except Missing as missing:
                values[name] = None
                because[name] = missing.name
            except BadWord as error:
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


def _expand_in(
    stage: Stage | str, word: str, df: Dockerfile, scope: _Scope, fix: str = "the FROM line"
) -> str:
    where = _where(stage) if isinstance(stage, Stage) else stage
    if word in scope.expanded:
        return scope.expanded[word]
    try:
        scope.expanded[word] = expand(word, scope.values, df.escape)
        return scope.expanded[word]
    except BadWord as error:
        raise DockermaError(f"{where}: {word!r} {error}; fix {fix}") from None
    except Missing as missing:
        chain = [missing.name]
        while chain[-1] in scope.because and len(chain) <= len(scope.because):
            chain.append(scope.because[chain[-1]])
        name = chain[-1]
        via = f" (needed by {', '.join(chain[:-1])})" if len(chain) > 1 else ""
        if name not in scope.values:
            raise DockermaError(
                f"{where} uses ${name}{via}, which no ARG before the first FROM declares; "
                f"add ARG {name}=<default> above the first FROM (then --build-arg {name}=… "
                "can override it)"
            ) from None
        raise DockermaError(
            f"{where} needs ${name}{via}, which has no value; give it a default "
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


def _external_base(
    df: Dockerfile, stage: Stage, scope: _Scope, contexts: Collection[str] = ()
) -> str | None:
    base = _resolve(df, stage, scope)
    if not is_external(df, stage, base) or dockerfile_flags.overridden(base, contexts):
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


def _flag_images(
    df: Dockerfile, scope: _Scope, contexts: Collection[str]
) -> list[tuple[FlagRef, str]]:
    """Each COPY --from and RUN --mount from= that names an image, with that image (ARGs as
    in FROM)."""

    def expand(flag: FlagRef, where: str) -> str:
        return _expand_in(where, flag.value, df, scope, f"that {flag.keyword} line")

    return dockerfile_flags.images(df._flags, expand, df._aliases, contexts)
