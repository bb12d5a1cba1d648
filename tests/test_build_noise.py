"""dockerma build's per-architecture docker output: -q on BuildKit, and the classic builder's
DEPRECATED notice once per run (issue 20)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dockerma.flows.notices import OncePerRun
from tests.conftest import FakeDocker

BUILDKIT_INFO = {"Architecture": "x86_64", "ClientInfo": {"Plugins": [{"Name": "buildx"}]}}
CLASSIC_INFO = {"Architecture": "x86_64", "ClientInfo": {"Plugins": []}}
ID = {"amd64": "sha256:" + "a" * 64, "386": "sha256:" + "b" * 64}
ARCH = {"amd64": "amd64", "386": "386"}
# docker 28's CLI, on stderr, before every build with the classic builder.
NOTICE = (
    "DEPRECATED: The legacy builder is deprecated and will be removed in a future release.\n"
    "            Install the buildx component to build images with BuildKit:\n"
    "            https://docs.docker.com/go/buildx/\n"
    "\n"
)


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("# dockerma archs:amd64,386:\nFROM scratch\nCOPY f /\n")
    (ctx / "f").write_text("f\n")
    return ctx


def _rules(info: dict[str, Any], build: dict[str, Any]) -> list[dict[str, Any]]:
    rules = [{"match": ["info"], "stdout": json.dumps(info)}]
    for suffix, image_id in ID.items():
        doc = {"Id": image_id, "Os": "linux", "Architecture": ARCH[suffix]}
        rules.append({"match": ["build", f"app:v1-{suffix}"], "iid": image_id, **build})
        rules.append(
            {"match": ["image", "inspect", f"app:v1-{suffix}"], "stdout": json.dumps([doc])}
        )
    return rules


def test_quiet_build_on_buildkit_asks_for_no_progress(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path
) -> None:
    refused = {
        "match": ["build", "--progress=plain", "-q"],
        "stderr": "ERROR: progress=plain and quiet cannot be used together\n",
        "exit": 1,
    }
    fake_docker.script([refused, *_rules(BUILDKIT_INFO, {"stdout": "sha256:x\n"})])
    res = run_dockerma("build", "-q", "-t", "app:v1", str(_context(tmp_path)))
    assert res.code == 0, res.out + res.err
    builds = [c for c in fake_docker.calls() if "build" in c]
    assert len(builds) == 2
    for argv in builds:
        assert "-q" in argv and not any(a.startswith("--progress") for a in argv)
    inspected = [c for c in fake_docker.calls() if c[:2] == ["image", "inspect"]]
    assert len(inspected) == 2  # each image checked
    assert "app:v1-amd64" in res.out and "app:v1-386" in res.out  # the summary


def test_buildkit_build_without_quiet_still_asks_for_plain_progress(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path
) -> None:
    fake_docker.script(_rules(BUILDKIT_INFO, {}))
    res = run_dockerma("build", "-t", "app:v1", str(_context(tmp_path)))
    assert res.code == 0, res.out + res.err
    builds = [c for c in fake_docker.calls() if "build" in c]
    assert len(builds) == 2 and all("--progress=plain" in argv for argv in builds)


def test_classic_deprecated_notice_shown_once_per_run(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path
) -> None:
    build = {"stderr": NOTICE, "stdout": "Step 1/2 : FROM scratch\n ---> \nStep 2/2 : COPY f /\n"}
    fake_docker.script(_rules(CLASSIC_INFO, build))
    res = run_dockerma("build", "--jobs", "1", "-t", "app:v1", str(_context(tmp_path)))
    assert res.code == 0, res.out + res.err
    shown = res.out + res.err
    assert shown.count("DEPRECATED: The legacy builder is deprecated") == 1
    assert shown.count("Install the buildx component") == 1
    assert shown.count("https://docs.docker.com/go/buildx/") == 1
    assert shown.count("Step 2/2 : COPY f /") == 2  # the rest of each build's output stays
    assert shown.count(" ---> ") == 2


def test_notice_filter_keeps_the_first_in_full_and_drops_later_ones() -> None:
    once = OncePerRun()
    seen_a: list[str] = []
    seen_b: list[str] = []
    a, b = once.filter(seen_a.append), once.filter(seen_b.append)
    lines = NOTICE.rstrip("\n").split("\n") + ["", "Step 1/1 : FROM x", " ---> abc"]
    for line in lines:
        a(line)
        b(line)
    assert seen_a == lines
    assert seen_b == ["Step 1/1 : FROM x", " ---> abc"]
    a("DEPRECATED: The legacy builder is deprecated and will be removed in a future release.")
    assert seen_a[-1] == " ---> abc"  # a second notice in the same build is a repeat too
