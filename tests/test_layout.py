"""The layering rules that import-linter cannot see (it runs in scripts/test for the rest)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dockerma"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "_version.py")


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", ".")


def _terminal_writes(tree: ast.AST) -> list[int]:
    """Lines that write to the terminal: print(), sys.stdout/sys.stderr, click.echo/secho."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "print":
                lines.append(node.lineno)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "sys" and node.attr in ("stdout", "stderr", "__stdout__"):
                lines.append(node.lineno)
            if node.value.id == "click" and node.attr in ("echo", "secho", "echo_via_pager"):
                lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_only_output_writes_to_the_terminal(path: Path) -> None:
    if _name(path) == "dockerma.output":
        return
    assert _terminal_writes(ast.parse(path.read_text())) == [], (
        f"{_name(path)} writes to the terminal; hand the line to dockerma.output"
    )


def test_the_rule_sees_a_write() -> None:
    tree = ast.parse("import sys\nprint('x')\nsys.stderr.write('y')\n")
    assert _terminal_writes(tree) == [2, 3]


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_modules_and_functions_stay_short(path: Path) -> None:
    tree = ast.parse(path.read_text())
    assert len(path.read_text().splitlines()) <= 400, f"{_name(path)} is over 400 lines"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (node.end_lineno or node.lineno) - node.lineno + 1 > 60
    ]
    assert long == [], f"{_name(path)}: functions over 60 lines: {long}"
