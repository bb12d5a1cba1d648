"""dockerma installed as `pip install` leaves it, in a venv of the run's own."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# dockerma's dependencies, installed with it: import name -> distribution name
DEPENDENCIES = {"click": "click", "dockerfile_parse": "dockerfile-parse"}

# The console script, as pip writes it for the `dockerma = dockerma.cli:main` entry point.
CONSOLE_SCRIPT = """\
#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from dockerma.cli import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


@dataclass(frozen=True)
class Install:
    """dockerma as `pip install` leaves it: a venv of its own, the package and its dependencies
    in site-packages (no editable hook), the console script in bin/."""

    venv: Path
    python: Path
    site: Path  # its site-packages
    script: Path  # venv/bin/dockerma
    version: str
    compiled: bool
    base: str  # the Python the venv was made from

    def module(self, stem: str) -> str:
        """The dotted name of dockerma's module STEM.py in the install, wherever the package
        keeps it (`dockerma.build` or, say, `dockerma.flows.build`): the benchmarks name
        dockerma's internals by file name, not by today's layout."""
        root = self.site / "dockerma"
        found = sorted(root.rglob(f"{stem}.py"), key=lambda p: (len(p.parts), str(p)))
        if not found:
            raise SystemExit(f"benchmarks: the dockerma package has no {stem}.py")
        return ".".join(("dockerma", *found[0].relative_to(root).with_suffix("").parts))


def _copy_tree(src: Path, dst: Path, *, only_py: bool = False) -> None:
    """Copy a package folder without __pycache__ (and, with only_py, without anything but .py
    files, as a wheel built from dockerma's setup.cfg holds)."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        return [
            n
            for n in names
            if n == "__pycache__"
            or (only_py and not n.endswith(".py") and not Path(folder, n).is_dir())
        ]

    shutil.copytree(src, dst, ignore=ignore)


def default_python() -> str:
    """The distribution's Python (what `pipx`/`python3 -m venv` use on this Debian), built
    with the distribution's optimisations, rather than this harness's interpreter (here a
    pyenv build without PGO/LTO, ~25% slower to start and import)."""
    system = Path("/usr/bin/python3")
    if system.is_file() and os.access(system, os.X_OK):
        probe = subprocess.run(
            [str(system), "-c", "import sys, venv; print(sys.version_info >= (3, 9))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return str(system)
    return sys.executable


def _make_venv(venv: Path, base_python: str) -> tuple[Path, Path]:
    """A venv without pip; its python and site-packages."""
    made = subprocess.run(
        [base_python, "-m", "venv", "--without-pip", str(venv)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        raise SystemExit(f"benchmarks: python -m venv {venv} failed:\n{made.stderr.strip()}")
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    return python, site


def _copy_dependencies(site: Path) -> None:
    """click and dockerfile-parse from this interpreter's environment, with their dist-info."""
    for module, dist_name in DEPENDENCIES.items():
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise SystemExit(f"benchmarks: {dist_name} is not installed here ({sys.executable})")
        origin = Path(spec.origin)
        if spec.submodule_search_locations is not None:  # a package: its folder
            _copy_tree(origin.parent, site / origin.parent.name)
        else:
            shutil.copy2(origin, site / origin.name)
        dist = importlib.metadata.distribution(dist_name)
        for info in {f.parts[0] for f in dist.files or [] if f.parts[0].endswith(".dist-info")}:
            _copy_tree(Path(str(dist.locate_file(info))), site / info)


def _check_imports(python: Path, site: Path, venv: Path, env: dict[str, str], probe: str) -> str:
    """Fail unless the venv's python imports dockerma and its dependencies from SITE (no source
    tree, no .pth hook); dockerma's version."""
    res = subprocess.run(
        [
            str(python),
            "-c",
            f"import {probe}\n"
            "print(dockerma.__version__)\n"
            "for m in (dockerma, click, dockerfile_parse): print(m.__file__)",
        ],
        env=env,
        cwd=venv,  # `python -c` looks in the current folder first: not in a source tree
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise SystemExit(
            f"benchmarks: dockerma does not import in the install made in {venv}:\n"
            f"{res.stderr.strip()}"
        )
    version, *files = res.stdout.split("\n")[:4]
    stray = [f for f in files if not Path(f).resolve().is_relative_to(site.resolve())]
    if stray:
        raise SystemExit(
            f"benchmarks: {python} imports {', '.join(stray)}, not the install in {site} "
            f"(PYTHONPATH={env.get('PYTHONPATH', '')!r}?)"
        )
    hooks = sorted(p.name for p in site.glob("*.pth"))
    if hooks:
        raise SystemExit(f"benchmarks: unexpected .pth files in {site}: {', '.join(hooks)}")
    return version


def _write_dist_info(site: Path, version: str) -> None:
    """What pip records beside the package (importlib.metadata finds dockerma's version)."""
    info = site / f"dockerma-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: dockerma\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {d}\n" for d in DEPENDENCIES.values())
    )
    (info / "entry_points.txt").write_text("[console_scripts]\ndockerma = dockerma.cli:main\n")
    (info / "top_level.txt").write_text("dockerma\n")
    (info / "INSTALLER").write_text("dockerma-benchmarks\n")


def install(
    tmp: Path, src: Path, env: dict[str, str], *, compiled: bool, base_python: str
) -> Install:
    """Install the dockerma package in SRC/dockerma non-editable into a new venv TMP/venv, with
    click and dockerfile-parse copied from this interpreter's environment; compile the bytecode
    as pip does unless not `compiled`. Fails the run unless the result imports from there."""
    venv = tmp / "venv"
    python, site = _make_venv(venv, base_python)
    _copy_tree(src / "dockerma", site / "dockerma", only_py=True)
    _copy_dependencies(site)
    script = venv / "bin" / "dockerma"
    script.write_text(CONSOLE_SCRIPT.format(python=python))
    script.chmod(0o755)
    if compiled:  # as pip does after unpacking a wheel
        subprocess.run([str(python), "-m", "compileall", "-q", str(site)], env=env, check=True)
    inst = Install(venv, python, site, script, "", compiled, base_python)
    modules = ["dockerma", "dockerma.cli", inst.module("build"), inst.module("push")]
    probe = ", ".join([*modules, "click", "dockerfile_parse"])
    version = _check_imports(python, site, venv, env, probe)
    _write_dist_info(site, version)
    return Install(venv, python, site, script, version, compiled, base_python)
