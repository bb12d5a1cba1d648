"""The `inject` strategy: the original dockerma's cross-build shim, for build machines without
binfmt_misc. What it adds to the rendered Dockerfile, stage by stage, and its limits:
docs/strategies.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence

from dockerma.core import dockerfile, dockerfile_flags, dockerfile_lines
from dockerma.core.dockerfile import Dockerfile
from dockerma.core.dockerfile_lines import Scanned, line_ending, safe_word
from dockerma.core.platforms import Platform
from dockerma.errors import DockermaError

# Platform suffix → the directory under /cross-build in the cross-build image (the names of
# monsonnl/qemu-wrap-build-files, the original dockerma's default).
SUPPORTED: dict[str, str] = {"amd64": "x86_64", "arm": "arm32v7", "arm64": "arm64v8"}
STAGE = "dockerma_build_files"
START = 'RUN ["cross-build-start"]'
END = 'RUN ["cross-build-end"]'

_DIGITS = re.compile(r"[0-9]+")


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
    contexts: Collection[str] = (),
) -> str:
    """The `emulate` rendering for `target`, with the cross-build stage first and the shim
    wrapped around the instructions of every stage that is not scratch (the `emulate`
    rendering itself when every stage is scratch)."""
    text = dockerfile.render(
        df, target=target, build=build, build_args=build_args, pin=pin, contexts=contexts
    )
    # dockerfile.render replaced FROM lines only: the rendered file has the same stages and
    # instructions, at other line numbers.
    scanned = dockerfile_lines.read(text)
    natures = _natures(df, target=target, build=build, build_args=build_args)
    plan = _plan(df, scanned, natures, cross_build_image)
    if not plan:
        return text
    for insn in scanned.instructions:
        if insn.keyword in ("COPY", "RUN"):
            _shift_stage_numbers(scanned.lines, insn.keyword, insn.startline, scanned.escape)
    pinned = pin(cross_build_image, build)
    what = f"the pinned reference of {cross_build_image} ({build})"
    return _inserted(scanned, plan, f"FROM {safe_word(pinned, what)} AS {STAGE}")


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
    natures = _natures(df, target=target, build=build, build_args=build_args)
    return bool(_plan(df, dockerfile_lines.read(df.content), natures, cross_build_image))


def _inserted(scanned: Scanned, plan: Mapping[int, list[str]], first_stage: str) -> str:
    """The scanned lines with `first_stage` before the first FROM and the planned lines."""
    lines, instructions = scanned.lines, scanned.instructions
    first_from = next(insn.startline for insn in instructions if insn.keyword == "FROM")
    newline = next((line_ending(line) for line in lines if line_ending(line)), "\n")
    out: list[str] = []
    for number, line in enumerate(lines):
        if number == first_from:
            out.append(first_stage + newline)
        if number in plan:
            ending = line_ending(line) or newline
            out.append(line.rstrip("\r\n") + ending)
            out.extend(safe_word(extra, "a line") + ending for extra in plan[number])
        else:
            out.append(line)
    result = scanned.bom + "".join(out)
    if len(lines) - 1 in plan and not line_ending(lines[-1]):
        result = result[: -len(newline)]  # the file had no final newline: neither has this
    return result


def _plan(
    df: Dockerfile,
    scanned: Scanned,
    natures: list[tuple[Platform | None, int | None]],
    image: str,
) -> dict[int, list[str]]:
    """Line number → the lines to insert after it; empty when every stage is scratch."""
    lines, instructions = scanned.lines, scanned.instructions
    froms = [i for i, insn in enumerate(instructions) if insn.keyword == "FROM"]
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


def _shift_stage_numbers(lines: list[str], keyword: str, start: int, escape: str) -> None:
    """Rewrite `--from=N` (COPY) and `--mount=…from=N…` (RUN) flags in place, as N+1."""
    dockerfile_flags.rewrite(lines, keyword, start, escape, lambda f: _shift_flag(keyword, f))


def _shift_flag(keyword: str, flag: str) -> str:
    return dockerfile_flags.replaced(
        keyword, flag, lambda name: str(int(name) + 1) if _DIGITS.fullmatch(name) else name
    )
