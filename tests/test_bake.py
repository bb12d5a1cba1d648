"""dockerma build on BuildKit: every architecture in one `docker buildx bake`, and the fall-back
to one build per architecture when bake stops at a failure (issue 21). The fake docker stands
in for the engine; tests/e2e/test_bake.py builds on the real ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeDocker

BUILDKIT = {
    "Architecture": "x86_64",
    "ClientInfo": {"Plugins": [{"Name": "buildx"}]},
    "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]],
}
CLASSIC = {"Architecture": "x86_64", "ClientInfo": {"Plugins": []}}
ID = {"amd64": "sha256:" + "a" * 64, "386": "sha256:" + "b" * 64}
ARCH = {"amd64": "amd64", "386": "386"}
SECRET = "ghp_S3cr3tT0kenValue0123456789"
METADATA = {s: {"containerimage.digest": i, "image.name": f"app:v1-{s}"} for s, i in ID.items()}
PROGRESS = (
    '#0 building with "default" instance using docker driver\n'
    "#3 [386 2/2] COPY f /\n"
    "#4 [amd64 2/2] COPY f /\n"
    "#3 DONE 0.1s\n"
    f"#5 [amd64 3/3] RUN echo {SECRET}\n"
)


@pytest.fixture(autouse=True)
def _bake_on(monkeypatch: pytest.MonkeyPatch, fake_docker: FakeDocker) -> None:
    monkeypatch.delenv("DOCKERMA_BAKE")  # the fake_docker fixture turns bake off


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("# dockerma archs:amd64,386:\nFROM scratch\nCOPY f /\n")
    (ctx / "f").write_text("f\n")
    return ctx


def _rules(info: dict[str, Any], bake: dict[str, Any]) -> list[dict[str, Any]]:
    rules = [{"match": ["info"], "stdout": json.dumps(info)}, {"match": ["buildx", "bake"], **bake}]
    for suffix, image_id in ID.items():
        doc = {"Id": image_id, "Os": "linux", "Architecture": ARCH[suffix]}
        rules.append({"match": ["build", f"app:v1-{suffix}"], "iid": image_id})
        rules.append(
            {"match": ["image", "inspect", f"app:v1-{suffix}"], "stdout": json.dumps([doc])}
        )
    return rules


def test_one_bake_builds_every_architecture(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path
) -> None:
    fake_docker.script(_rules(BUILDKIT, {"stdout": PROGRESS, "metadata": METADATA}))
    res = run_dockerma(
        "--debug", "build", "--build-arg", f"GH_TOKEN={SECRET}", "-t", "app:v1",
        str(_context(tmp_path)),
    )  # fmt: skip
    assert res.code == 0, res.out + res.err
    calls = [c[1:] if c[0] == "--debug" else c for c in fake_docker.calls()]
    assert [c[:2] for c in calls if c[0] in ("build", "buildx")] == [["buildx", "bake"]]
    bake = next(c for c in calls if c[:2] == ["buildx", "bake"])
    assert f"386.args.GH_TOKEN={SECRET}" in bake and f"amd64.args.GH_TOKEN={SECRET}" in bake
    kept = Path(bake[bake.index("-f") + 1]).parent  # --debug keeps the folder
    for path in kept.iterdir():
        assert SECRET not in path.read_text(), path
    assert "--progress" in bake and bake[bake.index("--progress") + 1] == "plain"
    # each line under its architecture's label; bake's own lines without one
    assert "[386]   #3 [386 2/2] COPY f /" in res.out and "[386]   #3 DONE 0.1s" in res.out
    assert "[amd64] #4 [amd64 2/2] COPY f /" in res.out
    assert '\n#0 building with "default"' in "\n" + res.out
    assert SECRET not in res.out + res.err and "[amd64] #5 [amd64 3/3] RUN echo ***" in res.out
    # the image ids bake reported: in the summary, and checked by docker image inspect
    for suffix, image_id in ID.items():
        assert image_id[7:19] in res.out
        assert ["image", "inspect", f"app:v1-{suffix}"] in [c[:3] for c in calls]


def test_the_definition_holds_each_architectures_own_build(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path
) -> None:
    rules = _rules(BUILDKIT, {"metadata": METADATA})
    fake_docker.script(rules)
    ctx = _context(tmp_path)
    res = run_dockerma("--debug", "build", "--label", "a=b", "-t", "app:v1", str(ctx))
    assert res.code == 0, res.out + res.err
    bake = next(c for c in fake_docker.calls() if "bake" in c)
    definition = json.loads(Path(bake[bake.index("-f") + 1]).read_text())  # kept by --debug
    assert definition["group"] == {"default": {"targets": ["amd64", "386"]}}
    for suffix, platform in (("amd64", "linux/amd64"), ("386", "linux/386")):
        target = definition["target"][suffix]
        assert target["context"] == str(ctx)
        assert target["platforms"] == [platform]
        assert target["tags"] == [f"app:v1-{suffix}"]
        assert target["labels"] == {"a": "b"}
        assert Path(target["dockerfile"]).name == f"Dockerfile.{suffix}"


def test_a_failed_bake_builds_each_architecture_on_its_own(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path
) -> None:
    rules = _rules(BUILDKIT, {"stdout": "ERROR: target 386: failed to solve\n", "exit": 1})
    fail_386 = {"match": ["build", "app:v1-386"], "stdout": "boom on 386\n", "exit": 1}
    fake_docker.script([fail_386, *rules])
    res = run_dockerma("build", "-t", "app:v1", str(_context(tmp_path)))
    assert res.code == 1
    calls = fake_docker.calls()
    kinds = [c[0] if c[0] == "build" else " ".join(c[:2]) for c in calls if "build" in c[0]]
    assert kinds[0] == "buildx bake" and sorted(kinds[1:]) == ["build", "build"]
    assert "[386]   ERROR: target 386: failed to solve" in res.out
    assert "building each one on its own" in res.out
    assert "[386]   boom on 386" in res.out
    rows = {
        line.split()[0]: line
        for line in res.out.splitlines()
        if line.startswith(("amd64 ", "386 "))
    }
    assert rows["amd64"].rstrip().endswith("ok") and ID["amd64"][7:19] in rows["amd64"]
    assert rows["386"].rstrip().endswith("failed")
    err = res.err.strip().splitlines()
    assert len(err) == 1 and "1 of 2 architectures failed: linux/386" in err[0]


@pytest.mark.parametrize(
    ("info", "args", "env"),
    [
        (CLASSIC, [], {}),  # the classic builder has no bake
        (BUILDKIT, ["--jobs", "1"], {}),  # fewer at a time than one bake runs
        (BUILDKIT, ["-q"], {}),  # bake has no quiet image id
        (BUILDKIT, [], {"DOCKERMA_BAKE": "0"}),  # asked for
    ],
)
def test_one_build_per_architecture_otherwise(
    fake_docker: FakeDocker,
    run_dockerma: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    info: dict[str, Any],
    args: list[str],
    env: dict[str, str],
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    fake_docker.script(_rules(info, {"metadata": METADATA}))
    res = run_dockerma("build", *args, "-t", "app:v1", str(_context(tmp_path)))
    assert res.code == 0, res.out + res.err
    builds = [c[:2] for c in fake_docker.calls() if "build" in c[0]]
    assert builds and all(b[0] == "build" for b in builds) and len(builds) == 2


def test_dry_run_shows_the_bake_with_secrets_masked(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path
) -> None:
    fake_docker.script(_rules(BUILDKIT, {}))
    args = ["--build-arg", f"GH_TOKEN={SECRET}", "--build-arg", "V=1"]
    res = run_dockerma("build", "--dry-run", *args, "-t", "app:v1", str(_context(tmp_path)))
    assert res.code == 0, res.err
    assert SECRET not in res.out
    assert "# all architectures: the builds above run as one bake, a target each" in res.out
    shown = res.out.split("# all architectures")[1]
    assert "docker buildx bake -f " in shown and "--progress plain" in shown
    # a secret build arg goes on the command line (as with docker build), never into a file
    assert "386.args.GH_TOKEN=***" in shown and "amd64.args.GH_TOKEN=***" in shown
    definition = json.loads(shown[shown.index("{") : shown.rindex("}") + 1])
    assert definition["target"]["386"]["args"] == {"V": "1"}
    assert [c[0] for c in fake_docker.calls()] == ["info"]  # nothing built


MANIFEST = "sha256:" + "c" * 64
OTHER = "sha256:" + "d" * 64


@pytest.mark.parametrize(
    ("line", "found"),
    [
        (f"#20 exporting manifest {MANIFEST} done", True),
        (f"#20 exporting manifest {MANIFEST} 0.0s done", True),
        (f"#20 exporting manifest list {MANIFEST} 0.0s done", False),
        (f"#20 exporting attestation manifest {MANIFEST} 0.0s done", False),
        (f"#9 0.215 exporting manifest {MANIFEST} done", False),  # a RUN step's own output
        (f"#20 exporting manifest {MANIFEST[:-1]} done", False),
    ],
)
def test_the_exporters_manifest_line(line: str, found: bool) -> None:
    from dockerma.flows import bake

    assert bool(bake._MANIFEST.fullmatch(line)) is found


def test_what_bake_said_of_an_image() -> None:
    from dockerma.flows import bake

    entry = {"containerimage.digest": ID["amd64"], "containerimage.config.digest": ID["386"]}
    # containerd store: the id is the list, the image its one manifest named in the progress
    assert bake.baked(entry, True, [MANIFEST]) == bake.Baked(ID["amd64"], MANIFEST)
    assert bake.baked(entry, True, [MANIFEST, MANIFEST]).own_digest == MANIFEST
    assert bake.baked(entry, True, [MANIFEST, OTHER]).own_digest == ""  # two exporters
    assert bake.baked(entry, True, []).own_digest == ""  # a progress without lines
    # classic store: the image id is the config digest
    assert bake.baked(entry, False, [MANIFEST]) == bake.Baked(ID["386"], ID["386"])
    assert bake.baked({"containerimage.digest": "not a digest"}, True, []).image_id == ""


@pytest.mark.parametrize(
    ("version", "grants"),
    [
        ("0.29.1+ds1", True),  # Debian's, as docker info says it
        ("v0.19.0", True),  # the first to print the fs entitlement block
        ("v0.20.1-desktop.2", True),
        ("0.18.0", False),
        ("0.13.1+ds1", False),  # docker 26's here: "unknown flag: --allow"
        ("1.0.0", True),
        ("", False),
        ("dev", False),
    ],
)
def test_which_buildx_takes_allow(version: str, grants: bool) -> None:
    from dockerma.flows import bake

    assert bake.takes_allow(version) is grants


@pytest.mark.parametrize(
    ("version", "args", "allows"),
    [
        ("0.29.1+ds1", [], ["fs.read=/", "fs.write=/"]),
        ("0.29.1+ds1", ["--network", "host"], ["fs.read=/", "fs.write=/", "network.host"]),
        ("0.29.1+ds1", ["--network=none"], ["fs.read=/", "fs.write=/"]),
        ("0.13.1+ds1", ["--network", "host"], []),
    ],
)
def test_the_bake_is_granted_what_docker_build_has(
    fake_docker: FakeDocker,
    run_dockerma: Any,
    tmp_path: Path,
    version: str,
    args: list[str],
    allows: list[str],
) -> None:
    # buildx 0.19+ prints a "requesting privileges" block for the rendered Dockerfiles in the
    # temporary folder, and refuses a host network, where `docker build` asks for neither;
    # older buildx refuses the flag.
    info = {**BUILDKIT, "ClientInfo": {"Plugins": [{"Name": "buildx", "Version": version}]}}
    fake_docker.script(_rules(info, {"metadata": METADATA}))
    res = run_dockerma("build", *args, "-t", "app:v1", str(_context(tmp_path)))
    assert res.code == 0, res.out + res.err
    bake = next(c for c in fake_docker.calls() if "bake" in c)
    assert [bake[i + 1] for i, arg in enumerate(bake) if arg == "--allow"] == allows
