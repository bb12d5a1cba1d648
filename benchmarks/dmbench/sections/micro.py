"""4. Micro: in-process parse + render of a large Dockerfile, `dockerma --help`, import times.

The in-process rows call dockerma's internals (its dockerfile and platforms modules, found by
file name in the install: see Install.module); everything else runs the installed CLI."""

from __future__ import annotations

import hashlib
import importlib
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bed import Bed
from ..config import TARGET_HELP, TARGET_PARSE
from ..report import out, table, verdict
from ..timing import Sample, run

PLATFORMS = "amd64,arm64,arm,arm/v6,386,ppc64le,s390x,riscv64"


def big_dockerfile(lines: int = 5000) -> str:
    """A generated Dockerfile: global ARGs, ~100-line stages mixing external bases, ARG-named
    bases, FROM --platform=$BUILDPLATFORM, stage-on-stage, COPY --from, continuations, comments."""
    head = [
        "# syntax=docker/dockerfile:1",
        f"# dockerma archs:{PLATFORMS}",
        "ARG BASE=127.0.0.1:5000/dockerma/busybox:1",
        "ARG TOOL=127.0.0.1:5000/team/tool:2",
        "ARG VERSION=1.0",
        "",
    ]
    body: list[str] = []
    k = 0
    while len(head) + len(body) < lines:
        kind = k % 4
        if kind == 0:
            body.append(f"FROM --platform=$BUILDPLATFORM ${{TOOL}} AS tool{k}")
        elif kind == 1:
            body.append(f"FROM ${{BASE}} AS s{k}")
        elif kind == 2:
            body.append(f"FROM s{k - 1} AS s{k}")
        else:
            body.append(f"FROM 127.0.0.1:5000/lib/img{k % 7}:3.{k % 5} AS s{k}")
        body += ["ARG TARGETARCH", "ARG VERSION", f"ENV STAGE={k} VERSION=$VERSION", ""]
        for j in range(18):
            body += [
                f"# step {j} of stage {k}",
                f"RUN echo {k}-{j} > /f{j} \\",
                f"    && echo $TARGETARCH >> /f{j} \\",
                "    && true",
                f'LABEL s{k}.j{j}="v{j}"',
            ]
        if k > 0:
            body.append(f"COPY --from=tool{(k // 4) * 4} /etc/hostname /from-tool-{k}")
        body.append("")
        k += 1
    return "\n".join((head + body)[:lines]) + "\n"


def _pin(ref: str, platform: object) -> str:
    name = ref.split("@")[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: name.rfind(":")]
    return f"{name}@sha256:{hashlib.sha256(f'{ref}|{platform}'.encode()).hexdigest()}"


@dataclass(frozen=True)
class ParseTimes:
    parse: Sample
    ext: Sample
    render: Sample
    total: Sample
    lines: int
    stages: int


def time_parse(bed: Bed) -> ParseTimes:
    """parse, external_images for 8 platforms and render for each of them, 5 times in-process."""
    dockerfile: Any = importlib.import_module(bed.install.module("dockerfile"))
    platforms: Any = importlib.import_module(bed.install.module("platforms"))
    content = big_dockerfile()
    targets = platforms.parse_list(PLATFORMS)
    build = platforms.host_platform()
    t_parse, t_ext, t_render, t_all = [], [], [], []
    nlines = content.count("\n")
    rendered = ""
    for _ in range(5):
        a = time.perf_counter()
        df = dockerfile.parse(content)
        b = time.perf_counter()
        dockerfile.external_images(df, build_args={}, targets=targets, build=build)
        c = time.perf_counter()
        for p in targets:
            rendered = dockerfile.render(df, target=p, build=build, build_args={}, pin=_pin)
        d = time.perf_counter()
        t_parse.append(b - a)
        t_ext.append(c - b)
        t_render.append(d - c)
        t_all.append(d - a)
    assert rendered.count("\n") == nlines, "render changed the line count"
    parts = (Sample(t_parse), Sample(t_ext), Sample(t_render), Sample(t_all))
    return ParseTimes(*parts, nlines, len(df.stages))


def _wall(bed: Bed, argv: list[str], n: int) -> Sample:
    # in the venv folder: `python -c` would import a dockerma/ in the current folder first
    return Sample([run(bed.tmp, argv, bed.classic, cwd=bed.install.venv) for _ in range(n)])


def _row(what: str, s: Sample, target: str = "") -> list[str]:
    return [what, f"{s.median:.3f} s", s.span(), target]


def _start_rows(bed: Bed) -> tuple[list[list[str]], Sample]:
    """Start-up of the installed CLI and imports with the install's python; --help's sample."""
    python = str(bed.install.python)  # the install's interpreter, as dockerma runs
    build_mod, push_mod = bed.install.module("build"), bed.install.module("push")
    helps = _wall(bed, [*bed.dockerma, "--help"], 10)
    py = "venv/bin/python -c"
    rows = [
        _row(
            "venv/bin/dockerma --help (10 runs)",
            helps,
            f"< {TARGET_HELP} s {verdict(helps.median < TARGET_HELP)}",
        ),
        _row(
            f"{py} 'import dockerma.cli' (10 runs)",
            _wall(bed, [python, "-c", "import dockerma.cli"], 10),
        ),
    ]
    for mod, what in ((build_mod, "build"), (push_mod, "push")):
        code = f"import dockerma.cli, {mod}"
        rows.append(
            _row(f"{py} '{code}' ({what}'s imports, 10 runs)", _wall(bed, [python, "-c", code], 10))
        )
    rows.append(_row(f"{py} pass (baseline, 10 runs)", _wall(bed, [python, "-c", "pass"], 10)))
    # for comparison: the dockerma first on PATH (e.g. a dev venv's editable install, or a
    # version-manager shim), if it is another one
    on_path = shutil.which("dockerma", path=bed.classic.get("PATH"))
    if on_path and Path(on_path).resolve() != Path(bed.dockerma[0]).resolve():
        other = _wall(bed, [on_path, "--help"], 5)
        what = f"{on_path} --help (the dockerma on PATH, not benchmarked; 5 runs)"
        rows.append(_row(what, other, "(info)"))
    return rows, helps


def _largest_imports(bed: Bed) -> str:
    """`import dockerma.cli` in-process by -X importtime, and its largest direct imports."""
    res = subprocess.run(
        [str(bed.install.python), "-X", "importtime", "-c", "import dockerma.cli"],
        capture_output=True,
        text=True,
        env=bed.classic,
        cwd=bed.install.venv,
    )
    block: list[tuple[int, str]] = []
    total = 0
    for line in res.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        if depth == 0:
            if name.strip() == "dockerma.cli":
                total = int(parts[1])
                break
            block = []
        elif depth == 1:
            block.append((int(parts[1]), name.strip()))
    block.sort(reverse=True)
    return (
        f"import dockerma.cli: {total / 1000:.1f} ms in-process (-X importtime); "
        "largest direct imports: " + ", ".join(f"{n} {us / 1000:.1f} ms" for us, n in block[:6])
    )


def bench(bed: Bed) -> bool:
    pt = time_parse(bed)
    start_rows, helps = _start_rows(bed)
    out()
    out("== 4. Micro ==")
    ok_parse = pt.total.median < TARGET_PARSE
    rows = [
        _row(
            f"parse + external_images + render ×8, {pt.lines}-line Dockerfile ({pt.stages} stages)",
            pt.total,
            f"< {TARGET_PARSE} s {verdict(ok_parse)}",
        ),
        _row("  of which parse", pt.parse),
        _row("  of which external_images (8 platforms)", pt.ext),
        _row("  of which render ×8", pt.render),
        *start_rows,
    ]
    out(f"venv = {bed.install.venv}, the install under test")
    table(["what", "median", "min–max s", "target"], rows)
    out(_largest_imports(bed))
    ok_help = helps.median < TARGET_HELP
    out(
        f"target: parse+render < {TARGET_PARSE} s: {verdict(ok_parse)}; "
        f"--help < {TARGET_HELP} s: {verdict(ok_help)}"
    )
    return ok_parse and ok_help
