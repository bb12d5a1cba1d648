"""The command line: options, the header, the sections in turn, the summary and exit code."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import time
import traceback
from typing import Callable

from . import __doc__ as DESCRIPTION
from .bed import Bed, cleanup, registry_pins, setup
from .config import SECTION_ALIASES, SECTIONS, WORKLOADS, Options
from .install import default_python
from .report import log, out, verdict
from .sections import build, buildah, buildx, growth, micro, overhead, push
from .timing import Failed, capture

Section = Callable[[Bed, Options], bool]
RUNNERS: dict[str, Section] = {
    "build": lambda bed, o: build.bench(bed, o.runs, tuple(w for w in o.workloads if w != "heavy")),
    "push": lambda bed, o: push.bench(bed, o.runs),
    "buildx": lambda bed, o: buildx.bench(bed, o.runs, o.workloads),
    "micro": lambda bed, o: micro.bench(bed),
    "overhead": lambda bed, o: overhead.bench(bed, o.runs),
    "buildah": lambda bed, o: buildah.bench(bed, o.runs, o.workloads),
    "growth": lambda bed, o: growth.bench(bed, o.runs),
}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--runs", type=int, default=None, help="timed runs per measurement (default 5; --quick: 2)"
    )
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SECTION",
        help="build|push|buildx|micro|overhead|buildah (alias buildpush)|growth "
        "(repeatable or comma separated)",
    )
    ap.add_argument("--quick", action="store_true", help="runs=2, small workload only")
    ap.add_argument(
        "--workloads",
        default=None,
        help=f"build workloads, comma separated (default {','.join(WORKLOADS)})",
    )
    ap.add_argument(
        "--push-mb",
        type=int,
        default=2,
        help="size of the new layer each push uploads (default 2 MB)",
    )
    ap.add_argument(
        "--source",
        metavar="DIR|REV",
        help="install and benchmark the dockerma package in DIR (a folder holding dockerma/), or "
        "exported from git revision REV of this checkout, instead of this working tree's",
    )
    ap.add_argument(
        "--no-pyc",
        action="store_true",
        help="do not compile the install's bytecode (as pip does by default); dockerma then runs "
        "as the environment is (with PYTHONDONTWRITEBYTECODE set, compiling from source at "
        "every start)",
    )
    ap.add_argument(
        "--python",
        metavar="PATH",
        help="the Python the install's venv is made from (default: the distribution's "
        "/usr/bin/python3 when it has venv, else the one running this script)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the images and temporary files")
    return ap


def parse_options(argv: list[str] | None = None) -> Options:
    ap = _parser()
    args = ap.parse_args(argv)
    runs = args.runs or (2 if args.quick else 5)
    if runs < 1:
        ap.error("--runs must be at least 1")
    only = [SECTION_ALIASES.get(s, s) for o in args.only for s in o.split(",") if s]
    only = list(dict.fromkeys(only)) or list(SECTIONS)  # each section once, in the order given
    for s in only:
        if s not in SECTIONS:
            ap.error(
                f"--only {s}: choose from {', '.join(SECTIONS)} (or {', '.join(SECTION_ALIASES)})"
            )
    default = ["small"] if args.quick else list(WORKLOADS)
    workloads = args.workloads.split(",") if args.workloads else default
    for w in workloads:
        if w not in WORKLOADS:
            ap.error(f"--workloads {w}: choose from {', '.join(WORKLOADS)}")
    return Options(
        runs=runs,
        sections=tuple(only),
        workloads=tuple(workloads),
        push_mb=args.push_mb,
        source=args.source,
        no_pyc=args.no_pyc,
        python=args.python or default_python(),
        keep=args.keep,
    )


def _header(bed: Bed, opts: Options) -> None:
    docker = [bed.docker, "version", "--format"]
    server = capture([*docker, "{{.Client.Version}} / {{.Server.Version}}"], bed.classic).strip()
    modern = capture([*docker, "{{.Server.Version}}"], bed.modern).strip() if bed.modern else "-"
    current = (
        capture(["docker", *docker[1:], "{{.Server.Version}}"], bed.current).strip()
        if bed.current
        else "-"
    )
    version = capture([*bed.dockerma, "--version"], bed.classic).strip()
    inst = bed.install
    how = "non-editable, " + ("compiled" if inst.compiled else "not compiled: --no-pyc")
    pyversion = capture([str(inst.python), "-c", "import sys; print(sys.version.split()[0])"], {})
    out(
        f"dockerma benchmarks — {version} from {bed.source} installed ({how}) in {inst.venv} "
        f"(run as {shlex.join(bed.dockerma)}; Python {pyversion.strip()}, venv of {inst.base})"
    )
    if not inst.compiled:
        out(
            "bytecode: "
            + (
                "PYTHONDONTWRITEBYTECODE is set, so every start compiles dockerma and its "
                "dependencies from source"
                if bed.classic.get("PYTHONDONTWRITEBYTECODE")
                else "Python writes the .pyc files at the first start, the set-up's import check"
            )
        )
    out(
        f"docker CLI / classic engine {server}; modern engine {modern or 'down'}; "
        f"current engine {current or 'down'}"
    )
    out(
        f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}; "
        f"runs={opts.runs}; sections={','.join(opts.sections)}"
    )


def _sections(bed: Bed, opts: Options, results: dict[str, bool | None]) -> None:
    """Every section asked for, in turn; a failed one is reported and the next one runs."""
    bed = dataclasses.replace(bed, pins=registry_pins(bed))
    if os.uname().machine not in ("x86_64", "amd64"):
        raise SystemExit("benchmarks: written for an x86_64 build machine")
    for section in opts.sections:
        try:
            results[section] = RUNNERS[section](bed, opts)
        except Failed as e:
            results[section] = None
            out(f"\n== {section}: FAILED ==\n{e}")
        except Exception:  # noqa: BLE001 - report and go on with the next section
            results[section] = None
            out(f"\n== {section}: FAILED ==\n{traceback.format_exc()}")


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv)
    bed = setup(opts)
    started = time.perf_counter()
    _header(bed, opts)
    results: dict[str, bool | None] = {}
    try:
        _sections(bed, opts, results)
    except KeyboardInterrupt:
        out("interrupted")
    finally:
        if not opts.keep:
            cleanup(bed)
        else:
            log(f"kept {bed.tmp} and the images")
    out()
    out(
        "summary: "
        + ", ".join(f"{k} {'FAILED' if v is None else verdict(v)}" for k, v in results.items())
        + f"; total {time.perf_counter() - started:.0f} s"
    )
    return 0 if all(v is not None for v in results.values()) else 1
