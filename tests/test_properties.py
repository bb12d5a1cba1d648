"""Property tests (hypothesis, no docker): rendering, parsing, platforms and tags.

- Rendering a generated Dockerfile changes exactly the FROM lines it pins (a continued FROM
  becomes one line) and nothing else: not comments, continuations, heredoc bodies that look
  like FROM lines, CRLF line ends, a byte order mark or internal stages.
- parse → render → parse keeps the stages, their aliases and flags, the directives and ARGs.
- Platform.parse is idempotent for every alias, variant, OS prefix and spelling, and every
  platform's tag suffix maps back to it.
- Per-arch tags round-trip through ImageRef.parse, or are refused when docker's 128
  characters overflow; never a wrong reference.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dockerma.core import dockerfile, platforms
from dockerma.core.platforms import Platform, from_suffix, parse_list
from dockerma.core.references import MAX_TAG, ImageRef
from dockerma.errors import DockermaError

FAST = settings(max_examples=1000, deadline=None)
DOCKERFILES = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

BUILD = Platform.parse("amd64")
HEX = "0123456789abcdef" * 4

# (as written in FROM, what it resolves to) for bases from a registry; the ARGs they use are
# declared before the first FROM by every generated Dockerfile.
EXTERNAL = [
    ("busybox", "busybox"),
    ("busybox:1.36", "busybox:1.36"),
    ("localhost:5000/team/app:v1", "localhost:5000/team/app:v1"),
    ("registry.example.com:443/a/b/c:tag-1", "registry.example.com:443/a/b/c:tag-1"),
    (f"busybox@sha256:{HEX}", f"busybox@sha256:{HEX}"),
    (f"localhost:5000/app:v1@sha256:{HEX}", f"localhost:5000/app:v1@sha256:{HEX}"),
    ("$BASE", "busybox:1.36"),
    ("${IMG}", "localhost:5000/team/app:v1"),
    ("${UNSET:-alpine:3}", "alpine:3"),
    ("${BASE:+other:2}", "other:2"),
    ('"busybox:1"', "busybox:1"),
]
GLOBAL_ARGS = ["ARG REG=localhost:5000", "ARG IMG=${REG}/team/app:v1", "ARG BASE=busybox:1.36"]
FLAGS = {  # --platform flag as written → the platform whose digest it needs (None: target)
    "": None,
    "--platform=$BUILDPLATFORM": BUILD,
    "--platform=${BUILDPLATFORM}": BUILD,
    "--platform=$TARGETPLATFORM": None,
    "--platform=linux/arm64": Platform.parse("arm64"),
}
COMMENTS = ["# a comment", "#no space", "   # indented comment", "# FROM busybox in a comment"]
HEREDOC_BODY = ["FROM evil:1", "from x import y", "echo hi", "# not a comment here", "  ARG X"]
TARGETS = [Platform.parse(p) for p in ("amd64", "arm64", "arm/v7", "arm/v6", "386", "s390x")]
RESERVED = {"scratch", "busybox", "as", "from", "alpine"}


@dataclass(frozen=True)
class From:
    start: int  # physical line numbers, 0-based
    end: int
    flag: str
    alias: str | None
    resolved: str | None  # None: not an external image (scratch, an earlier stage)


@dataclass(frozen=True)
class Generated:
    text: str
    lines: list[str]  # with their endings
    froms: list[From]
    escape: str
    bom: bool


ALIAS = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,6}", fullmatch=True)
# Strategies are built once: making new ones inside a draw costs more than the test itself.
BOOL = st.booleans()
INDEX = {n: st.integers(0, n - 1) for n in range(1, 40)}
FILLER = ("", *COMMENTS)
FLAG_NAMES = tuple(sorted(FLAGS))


def pick(draw: st.DrawFn, options: tuple[str, ...] | list[str]) -> str:
    return options[draw(INDEX[len(options)])]


@st.composite
def generated_dockerfiles(draw: st.DrawFn) -> Generated:
    escape = pick(draw, ("\\", "`"))
    physical: list[str] = []
    froms: list[tuple[int, int, str, str | None, str | None]] = []

    def filler() -> None:
        for _ in range(draw(INDEX[3])):
            physical.append(pick(draw, FILLER))

    if draw(BOOL):
        physical.append("# syntax=docker/dockerfile:1")
    if escape == "`" or draw(BOOL):
        physical.append(f"# escape={escape}")
    if draw(BOOL):
        physical.append("# dockerma archs:amd64,arm64")
    filler()
    for line in GLOBAL_ARGS:
        physical.append(line)
        filler()
    names: list[str] = []
    for index in range(1 + draw(INDEX[5])):
        kind = pick(draw, ("external", "scratch", "stage") if index else ("external", "scratch"))
        if kind == "external":
            written, resolved = EXTERNAL[draw(INDEX[len(EXTERNAL)])]
        elif kind == "scratch":
            written, resolved = pick(draw, ("scratch", "Scratch")), None
        else:
            earlier = pick(draw, [str(i) for i in range(index)] + names)
            written, resolved = pick(draw, (earlier, earlier.upper())), None
        flag = pick(draw, FLAG_NAMES)
        alias = draw(ALIAS) if draw(BOOL) else None
        if alias is not None and (alias.lower() in RESERVED or alias.lower() in names):
            alias = None
        if alias is not None:
            names.append(alias.lower())
        words = [pick(draw, ("FROM", "from", "From"))]
        words += [flag] if flag else []
        words += [written]
        words += [pick(draw, ("AS", "as")), alias] if alias else []
        start = len(physical)
        if draw(BOOL):  # continued over several lines
            cut = [i for i in range(1, len(words)) if draw(BOOL)] + [len(words)]
            previous = 0
            for n, c in enumerate(cut):
                if n and draw(INDEX[5]) == 0:
                    physical.append(pick(draw, ("  # inside FROM", "")))
                text = " ".join(words[previous:c])
                more = "" if c == len(words) else f" {escape}"
                physical.append(("  " if previous else "") + text + more)
                previous = c
        else:
            physical.append(" ".join(words))
        froms.append((start, len(physical) - 1, flag, alias, resolved))
        for _ in range(draw(INDEX[5])):
            choice = draw(INDEX[9])
            if choice == 0:
                physical.append("RUN echo hello")
            elif choice == 1:
                physical += [f"RUN echo a {escape}", "    && echo b"]
            elif choice == 2 and index:
                physical.append(f"COPY --from={pick(draw, names or ['0'])} /a /b")
            elif choice == 3:
                physical.append('LABEL org.example="FROM busybox"')
            elif choice == 4:
                physical.append("RUN <<EOF")
                physical += [pick(draw, HEREDOC_BODY) for _ in range(draw(INDEX[4]))]
                physical.append("EOF")
            elif choice == 5:
                physical.append("ARG LOCAL=x")
            elif choice == 6:
                physical.append("ONBUILD RUN echo hi")
            else:
                physical.append(pick(draw, FILLER))
    endings = [pick(draw, ("\n", "\r\n")) for _ in physical]
    if draw(BOOL):
        endings[-1] = ""
    bom = draw(BOOL)
    lines = [p + e for p, e in zip(physical, endings)]
    if bom:
        lines[0] = "\ufeff" + lines[0]
    return Generated("".join(lines), lines, [From(*f) for f in froms], escape, bom)


def pin(ref: str, p: Platform) -> str:
    digest = hashlib.sha256(f"{ref}|{p}".encode()).hexdigest()
    return ImageRef.parse(ref).pinned(f"sha256:{digest}")


def _ending(line: str) -> str:
    return "\r\n" if line.endswith("\r\n") else "\n" if line.endswith("\n") else ""


def expected_render(g: Generated, target: Platform) -> str:
    out: list[str] = []
    pinned = {f.start: f for f in g.froms if f.resolved is not None}
    skip_until = -1
    for number, line in enumerate(g.lines):
        if number <= skip_until:
            continue
        f = pinned.get(number)
        if f is None:
            out.append(line)
            continue
        platform = FLAGS[f.flag] or target
        words = ["FROM"]
        words += [f"--platform={platform.docker}"] if f.flag else []
        words += [pin(f.resolved, platform)]  # type: ignore[arg-type]
        words += ["AS", f.alias.lower()] if f.alias else []
        bom = "\ufeff" if number == 0 and g.bom else ""
        out.append(bom + " ".join(words) + _ending(g.lines[f.end]))
        skip_until = f.end
    return "".join(out)


@DOCKERFILES
@given(generated_dockerfiles(), st.sampled_from(TARGETS))
def test_render_changes_only_the_pinned_from_lines(g: Generated, target: Platform) -> None:
    df = dockerfile.parse(g.text)
    assert [(s.startline, s.endline) for s in df.stages] == [(f.start, f.end) for f in g.froms]
    rendered = dockerfile.render(df, target=target, build=BUILD, build_args={}, pin=pin)
    assert rendered == expected_render(g, target)


@DOCKERFILES
@given(generated_dockerfiles(), st.sampled_from(TARGETS))
def test_parse_render_parse_keeps_stages(g: Generated, target: Platform) -> None:
    df = dockerfile.parse(g.text)
    again = dockerfile.parse(
        dockerfile.render(df, target=target, build=BUILD, build_args={}, pin=pin)
    )
    assert len(again.stages) == len(df.stages) == len(g.froms)
    for before, after, f in zip(df.stages, again.stages, g.froms):
        assert after.alias == before.alias == (f.alias.lower() if f.alias else None)
        assert [x.split("=")[0] for x in after.flags] == [x.split("=")[0] for x in before.flags]
        if f.resolved is None:  # scratch and earlier stages stay as written
            assert (after.base, after.flags) == (before.base, before.flags)
        else:
            platform = FLAGS[f.flag] or target
            assert after.base == pin(f.resolved, platform)
            assert after.platform_flag == (platform.docker if f.flag else None)
    assert (again.archs, again.smoke, again.escape) == (df.archs, df.smoke, df.escape)
    assert again.global_args == df.global_args
    assert again.declared_args == df.declared_args


# --- platforms -------------------------------------------------------------------------------

ALIASES = sorted(platforms._ARCH_ALIASES)
VARIANTS = sorted({v for vs in platforms._VARIANTS.values() for v in vs})


OS_PREFIXES = ("", "linux/", "LINUX/", "Linux/", "windows/", "freebsd/")
VARIANT_PARTS = ("", *(f"/{v}" for v in VARIANTS))


@st.composite
def platform_texts(draw: st.DrawFn) -> str:
    text = pick(draw, OS_PREFIXES) + pick(draw, ALIASES) + pick(draw, VARIANT_PARTS)
    mask = draw(st.integers(0, 2 ** len(text) - 1))
    text = "".join(c.upper() if mask >> i & 1 else c for i, c in enumerate(text))
    return pick(draw, ("", " ", "\t")) + text + pick(draw, ("", " "))


@FAST
@given(platform_texts())
def test_platform_parse_is_idempotent(text: str) -> None:
    try:
        p = Platform.parse(text)
    except DockermaError:
        assume(False)
        raise
    assert Platform.parse(str(p)) == p
    assert Platform.parse(p.docker) == p
    assert from_suffix(p.suffix) == p
    assert parse_list(f"{text},{p},{p.docker}, {text} ") == [p]
    assert Platform.from_registry(p.os, p.arch, p.docker_variant).matches(p)


@pytest.mark.parametrize("alias", ALIASES)
def test_every_alias_normalises_idempotently(alias: str) -> None:
    p = Platform.parse(alias)
    assert Platform.parse(str(p)) == p
    assert Platform.parse(f"linux/{alias.upper()}") == p
    assert from_suffix(p.suffix) == p


@FAST
@given(st.text(max_size=12))
def test_from_suffix_only_names_a_platform_with_that_suffix(suffix: str) -> None:
    p = from_suffix(suffix)
    assert p is None or p.suffix == suffix


# --- references and per-arch tags ----------------------------------------------------------

DOMAINS = ["", "localhost:5000", "127.0.0.1:5001", "registry.example.com", "My-Registry.io:443"]
SUFFIXES = sorted({Platform.parse(a).suffix for a in ALIASES} | {"windows-amd64", "arm64v9"})


ALNUM = st.text("abcz0189", min_size=1, max_size=5)
SEPARATOR = st.sampled_from([".", "_", "__", "-", "--"])
# path components as docker's grammar has them: alnum runs joined by . _ __ or dashes
COMPONENTS = st.builds(
    lambda first, rest: first + "".join(sep + run for sep, run in rest),
    ALNUM,
    st.lists(st.tuples(SEPARATOR, ALNUM), max_size=2),
)
PATHS = st.lists(COMPONENTS, min_size=1, max_size=3)
TAG_FIRST = "abcXYZ019_"
TAG_CHARS = "abcdefxyzABCXYZ0123456789_.-"
TAGS = st.one_of(
    st.builds(str.__add__, st.sampled_from(TAG_FIRST), st.text(TAG_CHARS, max_size=127)),
    # near docker's limit, where the suffix overflows it
    st.builds(str.__mul__, st.sampled_from(TAG_FIRST), st.integers(115, 128)),
)


@st.composite
def references(draw: st.DrawFn) -> tuple[str, str]:
    """(text, name) of a valid reference: [domain/]path[:tag][@digest]."""
    domain = pick(draw, DOMAINS)
    parts = draw(PATHS)
    # Without a domain, a first component with a dot is one to docker (`0.0_0/app`), and an
    # invalid one at that: the domains come from DOMAINS only.
    assume(domain or len(parts) == 1 or "." not in parts[0])
    path = "/".join(parts)
    name = f"{domain}/{path}" if domain else path
    tag = draw(TAGS) if draw(BOOL) else None
    digest = f"sha256:{HEX}" if draw(BOOL) else None
    text = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    return text, name


@FAST
@given(references(), st.sampled_from(SUFFIXES))
def test_per_arch_tags_round_trip(reference: tuple[str, str], suffix: str) -> None:
    text, name = reference
    ref = ImageRef.parse(text)
    assert str(ref) == text
    assert ref.name == name
    want = f"{ref.tag_or_latest}-{suffix}"
    if len(want) > MAX_TAG:
        with pytest.raises(DockermaError, match="128"):
            ref.suffixed(suffix)
        return
    again = ImageRef.parse(str(ref.suffixed(suffix)))
    assert (again.name, again.tag, again.digest) == (name, want, "")
    assert (again.domain, again.path) == (ref.domain, ref.path)
    if "-" not in suffix:  # linux platforms: the suffix is what follows the last '-'
        platform = from_suffix(again.tag.rpartition("-")[2])
        assert platform is not None and platform.suffix == suffix


@FAST
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_reference_parse_accepts_or_refuses_cleanly(text: str) -> None:
    try:
        ref = ImageRef.parse(text)
    except DockermaError:
        return
    assert ImageRef.parse(str(ref)) == ref
    assert re.fullmatch(r"[^\s]+", str(ref))


@settings(max_examples=12, deadline=None)
@given(
    st.sampled_from([1, 998, 999, 1000, 1001, 2500]),
    st.sampled_from(["\\", "`"]),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
)
def test_long_continuations_and_heredocs_read_like_short_ones(
    run: int, escape: str, eol: str, heredoc: bool
) -> None:
    # dockerfile-parse is fed long runs cut in pieces, and heredoc ends are looked up in an
    # index (both against quadratic time): neither may change what is read.
    head = [f"# escape={escape}", "FROM busybox AS one", f"RUN echo {escape}"]
    body = [f"  part{i} {escape}" for i in range(run)] + ["  end"]
    tail = ["RUN <<EOF", "FROM evil:1", "EOF"] if heredoc else ["RUN <<NEVER"]
    tail += ["FROM localhost:5000/app:v1 AS two", "COPY --from=one / /"]
    lines = [line + eol for line in [*head, *body, *tail]]
    df = dockerfile.parse("".join(lines))
    # the heredoc's FROM is no stage; an unterminated heredoc swallows nothing
    second = len(head) + len(body) + (3 if heredoc else 1)
    assert [s.startline for s in df.stages] == [1, second]
    assert df.stages[0].instructions_end == second - 1
    target = Platform.parse("arm64")
    rendered = dockerfile.render(df, target=target, build=BUILD, build_args={}, pin=pin)
    want = list(lines)
    want[1] = f"FROM {pin('busybox', target)} AS one{eol}"
    want[second] = f"FROM {pin('localhost:5000/app:v1', target)} AS two{eol}"
    assert rendered == "".join(want)
