"""Unit tests of the benchmarks' pure parts (no test bed needed):
.venv/bin/python -m pytest -q benchmarks"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest

from dmbench.bed import Bed
from dmbench.config import SECTIONS
from dmbench.install import Install
from dmbench.main import parse_options
from dmbench.sections.growth_points import growth_dockerfile
from dmbench.shim import union
from dmbench.timing import rotate


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_rotate_is_balanced(n: int) -> None:
    period = n if n % 2 == 0 else 2 * n
    orders = [rotate(list(range(n)), i) for i in range(period)]
    assert all(sorted(o) == list(range(n)) for o in orders)
    firsts = Counter(o[0] for o in orders)
    assert set(firsts.values()) == {period // n}
    pairs = Counter((a, b) for o in orders for a, b in zip(o, o[1:]))
    assert len(pairs) == n * (n - 1) and len(set(pairs.values())) == 1


def test_union_counts_overlaps_once() -> None:
    assert union([]) == 0.0
    assert union([(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)]) == pytest.approx(4.0)
    assert union([(4.0, 5.0), (0.0, 10.0)]) == pytest.approx(10.0)


@pytest.mark.parametrize("lines", [10, 100, 1000])
def test_growth_dockerfile_has_exactly_the_lines(lines: int) -> None:
    text = growth_dockerfile("127.0.0.1:5000/b:1", lines)
    assert text.count("\n") == lines
    assert text.startswith("# dockerma archs:amd64,arm64,arm\n")


def test_quick_options() -> None:
    opts = parse_options(["--quick", "--python", "/usr/bin/python3"])
    assert (opts.runs, opts.sections, opts.workloads) == (2, SECTIONS, ("small",))


def test_only_takes_aliases_in_order_once() -> None:
    opts = parse_options(["--only", "growth,buildpush", "--only", "growth", "--python", "p"])
    assert opts.sections == ("growth", "buildah")


@pytest.mark.parametrize("argv", [["--only", "nope"], ["--workloads", "huge"], ["--runs", "-1"]])
def test_bad_options_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parse_options([*argv, "--python", "p"])
    assert e.value.code == 2


@pytest.mark.parametrize(
    ("layout", "stem", "name"),
    [
        (["build.py", "push.py"], "build", "dockerma.build"),
        (["flows/__init__.py", "flows/build.py"], "build", "dockerma.flows.build"),
        (["core/dockerfile.py", "dockerfile.py"], "dockerfile", "dockerma.dockerfile"),
    ],
)
def test_internals_are_found_by_file_name(
    tmp_path: Path, layout: list[str], stem: str, name: str
) -> None:
    for f in layout:
        (tmp_path / "dockerma" / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "dockerma" / f).write_text("")
    inst = Install(tmp_path, tmp_path, tmp_path, tmp_path, "0", True, "python3")
    assert inst.module(stem) == name


def test_options_are_frozen() -> None:
    opts = parse_options(["--python", "p"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.runs = 3  # type: ignore[misc]
    assert {"push_mb", "pins", "ledger"} <= {f.name for f in dataclasses.fields(Bed)}
