"""dockerma build on the BuildKit engines: every architecture in one `docker buildx bake`
(issue 21), checked by docker image inspect, by running the images and by the registry's API;
one failing architecture reported as failed while the others finish, are tagged and checked."""

from __future__ import annotations

import re
import urllib.error
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Engine, _engine, remove_session_images, write

pytestmark = pytest.mark.e2e

MACHINE = {"amd64": "x86_64", "arm64": "aarch64", "arm": "armv7l"}
PLATFORM = {"amd64": "linux/amd64", "arm64": "linux/arm64", "arm": "linux/arm/v7"}


@pytest.fixture(scope="module", params=["modern", "current"])
def buildkit(request: pytest.FixtureRequest, bed: dict[str, str]) -> Iterator[Engine]:
    eng = _engine(request.param, bed)
    yield eng
    remove_session_images(["docker"], eng.env)


def _rows(stdout: str) -> dict[str, str]:
    """The summary's rows by architecture."""
    return {
        line.split()[0]: line
        for line in stdout.splitlines()
        if line.split()[:1] and line.split()[0] in MACHINE and "linux/" in line
    }


def test_three_archs_in_one_bake_pushed(buildkit: Engine, tmp_path, registry_get) -> None:
    ctx = write(
        tmp_path / "ctx",
        f"""# dockerma archs:amd64,arm64,arm
# dockerma smoke:cat /m
FROM {buildkit.base}
ARG TARGETARCH
RUN uname -m > /m && echo "$TARGETARCH" > /t
CMD ["cat", "/m"]
""",
    )
    name = buildkit.name_for("bake")
    # run from a folder that holds neither the context nor dockerma's rendered Dockerfiles:
    # buildx 0.19+ would print its fs entitlement block for them, `docker build` never does
    work = tmp_path / "work"
    work.mkdir()
    res = buildkit.dockerma("build", "--push", "-t", f"{name}:v1", str(ctx), cwd=work)
    assert res.returncode == 0, res.stderr + res.stdout
    assert "requesting privileges" not in res.stdout + res.stderr, res.stdout + res.stderr
    assert "--allow" not in res.stdout + res.stderr
    # bake's plain progress names the target in each step; dockerma labels it
    for suffix in MACHINE:
        assert re.search(rf"^\[{suffix}\] +#\d+ \[{suffix} \d/\d\] RUN uname", res.stdout, re.M)
    assert "building each one on its own" not in res.stdout
    listed, _ = registry_get(f"{name}:v1")
    entries = {m["platform"]["architecture"]: m for m in listed["manifests"]}
    assert sorted(entries) == sorted(MACHINE) and entries["arm"]["platform"]["variant"] == "v7"
    for suffix, machine in MACHINE.items():
        ref = f"{name}:v1-{suffix}"
        info = buildkit.inspect(ref)
        assert info["Architecture"] == suffix
        assert buildkit.run(PLATFORM[suffix], ref) == machine
        assert buildkit.run(PLATFORM[suffix], ref, "cat", "/t") == suffix
        # the list's entry is the pushed per-arch image (its manifest, inside the per-arch
        # index BuildKit pushes with an attestation manifest beside it)
        pushed, digest = registry_get(ref)
        inside = {m["digest"] for m in pushed.get("manifests", [])} | {digest}
        assert entries[suffix]["digest"] in inside
        assert _rows(res.stdout)[suffix].rstrip().endswith("ok")


def test_host_network_in_one_bake(buildkit: Engine, tmp_path) -> None:
    # `docker build --network host` builds as it is; buildx 0.19+ bake refuses a host network
    # without `--allow network.host`, which would send every build to the per-arch fall-back.
    ctx = write(
        tmp_path / "ctx",
        f"""# dockerma archs:amd64,arm64
FROM {buildkit.base}
RUN uname -m > /m
CMD ["cat", "/m"]
""",
    )
    name = buildkit.name_for("bakehost")
    res = buildkit.dockerma("build", "--network", "host", "-t", f"{name}:v1", str(ctx))
    assert res.returncode == 0, res.stderr + res.stdout
    assert "building each one on its own" not in res.stdout, res.stdout
    assert "requesting privileges" not in res.stdout + res.stderr, res.stdout + res.stderr
    for suffix in ("amd64", "arm64"):
        assert re.search(rf"^\[{suffix}\] +#\d+ \[{suffix} 2/2\] RUN uname", res.stdout, re.M)
        assert buildkit.run(PLATFORM[suffix], f"{name}:v1-{suffix}") == MACHINE[suffix]


def test_one_failing_architecture_the_others_finish(
    buildkit: Engine, tmp_path, registry_get
) -> None:
    ctx = write(
        tmp_path / "ctx",
        f"""# dockerma archs:amd64,arm64,arm
FROM {buildkit.base}
RUN uname -m > /m
RUN if [ "$(uname -m)" = aarch64 ]; then echo "no arm64 here" >&2; exit 3; fi
CMD ["cat", "/m"]
""",
    )
    name = buildkit.name_for("bakefail")
    res = buildkit.dockerma("build", "--push", "-t", f"{name}:v1", str(ctx))
    assert res.returncode == 1, res.stderr + res.stdout
    # bake ran first and stopped; each architecture was then built on its own
    assert re.search(r"^\[arm64\] +#\d+ \[arm64 3/3\] RUN if", res.stdout, re.M)
    assert "bake stopped every architecture at the first failure" in res.stdout
    assert re.search(r"^\[arm64\] +FAILED: ", res.stdout, re.M)
    rows = _rows(res.stdout)
    assert rows["arm64"].rstrip().endswith("failed")
    assert rows["amd64"].rstrip().endswith("ok") and rows["arm"].rstrip().endswith("ok")
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dockerma: error: 1 of 3 architectures failed")
    assert "linux/arm64" in err[0]
    # the others finished: tagged, of their own architecture, runnable
    for suffix in ("amd64", "arm"):
        ref = f"{name}:v1-{suffix}"
        info = buildkit.inspect(ref)
        assert info["Architecture"] == suffix
        assert info.get("Variant", "") == ("v7" if suffix == "arm" else "")
        assert buildkit.run(PLATFORM[suffix], ref) == MACHINE[suffix]
    assert buildkit.docker("image", "inspect", f"{name}:v1-arm64", check=False).returncode != 0
    # a failed run publishes nothing
    for tag in ("v1", "v1-amd64", "v1-arm"):
        with pytest.raises(urllib.error.HTTPError):
            registry_get(f"{name}:{tag}")


def test_a_warm_rebuild_pushes_nothing(buildkit: Engine, tmp_path, registry_get) -> None:
    """On the containerd store every build makes a new per-arch index (its provenance
    attestation records the build's time) of an unchanged image: a warm `build --push` finds
    that image in the registry's index by the manifest bake named, pushes nothing and keeps
    the list; a changed image is pushed."""
    dockerfile = "# dockerma archs:amd64,arm64,arm\nFROM {base}\nRUN echo {word} > /w\n"
    ctx = write(tmp_path / "ctx", dockerfile.format(base=buildkit.base, word="one"))
    name = buildkit.name_for("warm-bake")
    first = buildkit.dockerma("build", "--push", "-t", f"{name}:v1", str(ctx))
    assert first.returncode == 0, first.stderr + first.stdout
    listed = registry_get(f"{name}:v1")
    tags = {s: registry_get(f"{name}:v1-{s}") for s in MACHINE}
    again = buildkit.dockerma("build", "--push", "-t", f"{name}:v1", str(ctx))
    assert again.returncode == 0, again.stderr + again.stdout
    assert "The push refers to repository" not in again.stdout, again.stdout
    for suffix in MACHINE:
        assert f"{name}:v1-{suffix}: already in the registry" in again.stdout, again.stdout
        assert registry_get(f"{name}:v1-{suffix}") == tags[suffix]
        # the local image is the new build's index, not the registry's
        assert buildkit.inspect(f"{name}:v1-{suffix}")["Id"] != tags[suffix][1]
    assert registry_get(f"{name}:v1") == listed
    assert listed[1] in again.stdout
    # a changed image is pushed, and the list points at it
    write(ctx, dockerfile.format(base=buildkit.base, word="two"))
    changed = buildkit.dockerma("build", "--push", "-t", f"{name}:v1", str(ctx))
    assert changed.returncode == 0, changed.stderr + changed.stdout
    assert changed.stdout.count("The push refers to repository") == 3, changed.stdout
    assert "already in the registry" not in changed.stdout
    doc, _ = registry_get(f"{name}:v1")
    entries = {m["platform"]["architecture"]: m["digest"] for m in doc["manifests"]}
    assert sorted(entries) == sorted(MACHINE)
    for suffix in MACHINE:  # (the suffixes are the architectures here)
        pushed, digest = registry_get(f"{name}:v1-{suffix}")
        assert digest != tags[suffix][1]
        assert entries[suffix] in {d["digest"] for d in pushed.get("manifests", [])} | {digest}
        assert buildkit.run(PLATFORM[suffix], f"{name}:v1-{suffix}", "cat", "/w") == "two"
