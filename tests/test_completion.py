"""Shell completion (click's) as README.rst documents it, for bash, zsh and fish."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.rst"


def readme_line(source: str) -> str:
    """The README's start-up line for one shell, e.g. source='bash_source'."""
    text = README.read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines() if f"_DOCKERMA_COMPLETE={source} " in ln]
    assert lines, f"README.rst documents no {source} completion line"
    return lines[0]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has a `dockerma` command running this checkout."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "dockerma"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dockerma "$@"\n')
    exe.chmod(0o755)
    environ = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    environ["HOME"] = str(tmp_path)
    environ.pop("_DOCKERMA_COMPLETE", None)
    return environ


def run(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bash_line_registers_the_completion_and_completes(env: dict[str, str]) -> None:
    script = "\n".join(
        [
            readme_line("bash_source"),
            "complete -p dockerma",
            "COMP_WORDS=(dockerma bu); COMP_CWORD=1; _dockerma_completion dockerma",
            'echo "words: ${COMPREPLY[*]}"',
            "COMPREPLY=(); COMP_WORDS=(dockerma build --strat); COMP_CWORD=2",
            '_dockerma_completion dockerma; echo "words: ${COMPREPLY[*]}"',
        ]
    )
    out = run(["bash", "-c", script], env).splitlines()
    assert out == [
        "complete -o nosort -F _dockerma_completion dockerma",
        "words: build",
        "words: --strategy",
    ]


def test_zsh_line_defines_the_completion(env: dict[str, str]) -> None:
    line = readme_line("zsh_source")
    command = re.search(r"_DOCKERMA_COMPLETE=zsh_source dockerma", line)
    assert command is not None and line.startswith("eval ")
    script = run(["sh", "-c", command.group(0)], env)
    assert "compdef _dockerma_completion dockerma" in script
    if shutil.which("zsh"):
        check = f"autoload -Uz compinit && compinit -u -d $HOME/.zcompdump\n{line}\n"
        check += "print -r -- ${_comps[dockerma]}"
        assert run(["zsh", "-f", "-c", check], env).strip() == "_dockerma_completion"


def test_fish_line_defines_the_completion(env: dict[str, str]) -> None:
    line = readme_line("fish_source")
    assert line == "_DOCKERMA_COMPLETE=fish_source dockerma | source"
    script = run(["sh", "-c", line.replace(" | source", "")], env)
    assert "complete --no-files --command dockerma" in script
    if shutil.which("fish"):
        out = run(["fish", "-c", f'{line}; complete -C "dockerma bu"'], env)
        assert out.split("\t")[0] == "build"
