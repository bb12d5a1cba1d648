"""The test bed's scripts, where they run without a test bed: the Debian mirror look-up."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "scripts" / "testbed-engine"


def _mirror(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "os-release").write_text("ID=debian\nVERSION_CODENAME=bookworm\n")
    return subprocess.run(
        ["bash", str(ENGINE), "--mirror"],
        env={
            "PATH": "/usr/bin:/bin",
            "DOCKERMA_APT_ETC": str(tmp_path / "apt"),
            "DOCKERMA_OS_RELEASE": str(tmp_path / "os-release"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
    )


def _apt(tmp_path: Path, **files: str) -> None:
    for name, text in files.items():
        path = tmp_path / "apt" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_mirror_from_deb822_sources_is_the_entry_for_this_release(tmp_path: Path) -> None:
    _apt(
        tmp_path,
        **{
            "sources.list.d/a.sources": (
                "Types: deb\nURIs: http://security.mirror.invalid/debian-security\n"
                "Suites: bookworm-security\nComponents: main\n\n"
                "# a comment\nTypes: deb\nURIs: http://mirror.invalid/debian\n"
                "Suites: bookworm bookworm-updates\nComponents: main\n"
            ),
            "sources.list.d/0.sources": (
                "Enabled: no\nTypes: deb\nURIs: http://off.invalid/debian\nSuites: bookworm\n"
            ),
        },
    )
    res = _mirror(tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "http://mirror.invalid/debian\n"


def test_mirror_keeps_a_snapshots_valid_until_setting(tmp_path: Path) -> None:
    _apt(
        tmp_path,
        **{
            "sources.list.d/debian.sources": (
                "Types: deb\nURIs: http://snap.invalid/archive/debian/20250520T000000Z\n"
                "Suites: bookworm\nComponents: main\nCheck-Valid-Until: no\n"
            )
        },
    )
    res = _mirror(tmp_path)
    assert (
        res.stdout == "http://snap.invalid/archive/debian/20250520T000000Z check-valid-until=no\n"
    )


def test_mirror_from_one_line_sources_list(tmp_path: Path) -> None:
    _apt(
        tmp_path,
        **{
            "sources.list": (
                "deb http://security.mirror.invalid/debian-security bookworm-security main\n"
                "# deb http://commented.invalid/debian bookworm main\n"
                "deb [arch=amd64 check-valid-until=no] http://one.invalid/debian bookworm main\n"
            )
        },
    )
    res = _mirror(tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "http://one.invalid/debian check-valid-until=no\n"


def test_no_mirror_in_the_sources_is_a_clear_error(tmp_path: Path) -> None:
    _apt(tmp_path, **{"sources.list.d/other.list": "deb http://x.invalid/other stable main\n"})
    res = _mirror(tmp_path)
    assert res.returncode == 1
    assert res.stdout == ""
    assert "no Debian mirror" in res.stderr and "DOCKERMA_DEBIAN_MIRROR" in res.stderr
    assert str(tmp_path / "apt" / "sources.list") in res.stderr
    # the override needs no sources at all
    res = _mirror(tmp_path, DOCKERMA_DEBIAN_MIRROR="http://given.invalid/debian")
    assert (res.returncode, res.stdout) == (0, "http://given.invalid/debian\n")


@pytest.mark.parametrize("name", ["", "bogus"])
def test_engine_name_is_required(name: str) -> None:
    res = subprocess.run(
        ["bash", str(ENGINE), *([name] if name else [])], capture_output=True, text=True
    )
    assert res.returncode == 2 and "usage:" in res.stderr


def test_no_file_names_a_debian_or_ubuntu_mirror_host() -> None:
    # Scripts read the mirror from the machine's own APT sources; none is written in the repo.
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    host = re.compile(
        r"\b(?:https?|ftp)://[^/\s\"'<>]*\b(?:debian|ubuntu)\b"  # a URL, or a host name:
        r"|\b[\w-]+\.(?:debian\.org|debian\.net|ubuntu\.com)\b",
        re.I,
    )
    named = []
    for name in listed.stdout.split("\0"):
        path = ROOT / name
        if not name or not path.is_file():
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        named += [f"{name}: {m.group(0)}" for m in host.finditer(text)]
    assert named == []
