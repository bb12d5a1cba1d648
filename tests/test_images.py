"""Local image checks: what `docker image inspect` says, and push's first docker calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dockerma.core.platforms import ALL_SUFFIXES, BY_SUFFIX, Platform, from_suffix
from dockerma.core.references import ImageRef
from dockerma.engine import docker, process
from dockerma.engine.docker import Docker
from dockerma.engine.images import candidates, find_tagged, inspect_platforms, listing, push_probes
from dockerma.engine.readahead import ReadAhead
from dockerma.errors import DockermaError
from dockerma.flows.push import check_platforms
from dockerma.flows.results import ArchResult

from .conftest import FakeDocker

AMD64 = Platform.from_registry("linux", "amd64", "")
ARM64 = Platform.from_registry("linux", "arm64", "")
ARM = Platform.from_registry("linux", "arm", "v7")
ID_AMD64 = "sha256:" + "a" * 64
ID_ARM64 = "sha256:" + "b" * 64


def doc(image_id: str, arch: str, variant: str = "") -> dict[str, str]:
    d = {"Id": image_id, "Os": "linux", "Architecture": arch}
    if variant:
        d["Variant"] = variant
    return d


def inspect_rule(*docs: dict[str, str], exit: int = 0) -> dict[str, Any]:
    return {"match": ["image", "inspect"], "stdout": json.dumps(list(docs)), "exit": exit}


def test_candidates_name_every_suffix_of_the_tag_the_usual_ones_first() -> None:
    usual, rest = candidates(ImageRef.parse("localhost:5000/team/app:v1"))
    assert usual[:2] == rest[:2] == ("image", "inspect")
    names = [*usual[2:], *rest[2:]]
    assert names == [f"localhost:5000/team/app:v1-{s}" for s in ALL_SUFFIXES]
    assert list(usual[2:]) == [f"localhost:5000/team/app:v1-{s}" for s in BY_SUFFIX]
    # no tag: docker's latest
    assert candidates(ImageRef.parse("app"))[0][2] == f"app:latest-{next(iter(BY_SUFFIX))}"


def test_all_suffixes_are_exactly_the_suffixes_of_platforms() -> None:
    assert len(set(ALL_SUFFIXES)) == len(ALL_SUFFIXES)
    assert all(from_suffix(s) is not None for s in ALL_SUFFIXES)
    assert {"arm64v9", "loong64", "windows-amd64", "armv5", "darwin-arm64"} <= set(ALL_SUFFIXES)


@pytest.mark.parametrize("name", ["app@sha256:" + "c" * 64, "Not A Name", "app:v1:extra", "-a"])
def test_push_probes_none_for_a_name_push_refuses(name: str) -> None:
    assert push_probes(name) == []
    assert push_probes(name, all_tags=True) == []


def test_push_probes_ask_by_name_or_list_for_all_tags() -> None:
    ref = ImageRef.parse("localhost:5000/app:v2")
    assert push_probes("localhost:5000/app:v2") == candidates(ref)
    assert push_probes("localhost:5000/app:v2", all_tags=True) == [listing(ref.name)]


def tagged(image_id: str, arch: str, *tags: str, variant: str = "") -> dict[str, Any]:
    return {**doc(image_id, arch, variant), "RepoTags": list(tags)}


def test_find_tagged_reads_what_partly_failing_inspects_print(fake_docker: FakeDocker) -> None:
    # docker prints the tags it has and exits 1 for the others; RepoTags says which is which
    fake_docker.script(
        [
            inspect_rule(
                tagged(ID_AMD64, "amd64", "localhost:5000/app:v1-amd64", "other:x"),
                tagged(ID_ARM64, "arm64", "localhost:5000/app:v1-arm64"),
                exit=1,
            )
        ]
    )
    got = find_tagged(Docker(), ImageRef.parse("localhost:5000/app:v1"))
    # (the fake answers both calls alike: each image is found once, under its own suffix)
    assert got == {"amd64": (ID_AMD64, AMD64), "arm64": (ID_ARM64, ARM64)}
    assert [c[:2] for c in fake_docker.calls()] == [["image", "inspect"]] * 2


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("app:v1", "app:v1-arm64"),
        ("docker.io/library/app:v1", "app:v1-arm64"),
        ("index.docker.io/team/app:v1", "team/app:v1-arm64"),
        ("localhost:5000/team/app:v1", "localhost:5000/team/app:v1-arm64"),
    ],
)
def test_find_tagged_knows_docker_hub_names_as_docker_shows_them(
    fake_docker: FakeDocker, name: str, shown: str
) -> None:
    fake_docker.script([inspect_rule(tagged(ID_ARM64, "arm64", shown), exit=1)])
    assert find_tagged(Docker(), ImageRef.parse(name)) == {"arm64": (ID_ARM64, ARM64)}


def test_find_tagged_gives_up_on_an_image_shown_under_a_name_not_asked(
    fake_docker: FakeDocker,
) -> None:
    # a name docker shows otherwise than we expect must not be left out silently: list instead
    fake_docker.script([inspect_rule(tagged(ID_ARM64, "arm64", "elsewhere/app:v1-arm64"))])
    assert find_tagged(Docker(), ImageRef.parse("localhost:5000/app:v1")) is None


@pytest.mark.parametrize("stdout", ["not json", "{}", '[{"Id": "x"}, 3]'])
def test_find_tagged_gives_up_on_an_answer_that_is_not_docker_s(
    fake_docker: FakeDocker, stdout: str
) -> None:
    fake_docker.script([{"match": ["image", "inspect"], "stdout": stdout, "exit": 1}])
    assert find_tagged(Docker(), ImageRef.parse("app:v1")) is None


def test_find_tagged_none_there(fake_docker: FakeDocker) -> None:
    fake_docker.script([{"match": ["image", "inspect"], "stdout": "[]", "exit": 1}])
    assert find_tagged(Docker(), ImageRef.parse("app:v1")) == {}


def test_inspect_platforms_unchanged(fake_docker: FakeDocker) -> None:
    fake_docker.script([inspect_rule(doc(ID_AMD64, "arm", "v7"))])
    assert inspect_platforms(Docker(), ["app:v1-arm"]) == [(ID_AMD64, ARM)]


def image(p: Platform, listed_id: str) -> ArchResult:
    return ArchResult(p, [f"app:v1-{p.suffix}"], image_id=listed_id, docker=Docker())


def test_check_platforms_takes_what_docker_described_already(fake_docker: FakeDocker) -> None:
    # `docker image ls` lists 12-hex-digit ids; what was described has the full ones
    imgs = {AMD64: image(AMD64, "a" * 12), ARM64: image(ARM64, "b" * 12)}
    check_platforms(Docker(), imgs, {ID_AMD64: AMD64, ID_ARM64: ARM64})
    assert fake_docker.calls() == []  # no docker call at all
    assert (imgs[AMD64].image_id, imgs[AMD64].actual) == (ID_AMD64, AMD64)
    assert (imgs[ARM64].image_id, imgs[ARM64].actual) == (ID_ARM64, ARM64)


def test_check_platforms_inspects_the_images_not_described(fake_docker: FakeDocker) -> None:
    fake_docker.script([inspect_rule(doc(ID_ARM64, "arm64"))])
    imgs = {AMD64: image(AMD64, "a" * 12), ARM64: image(ARM64, "b" * 12)}
    check_platforms(Docker(), imgs, {ID_AMD64: AMD64})
    assert fake_docker.calls() == [["image", "inspect", "app:v1-arm64"]]
    assert imgs[ARM64].image_id == ID_ARM64


def test_check_platforms_refuses_a_mislabelled_image_it_was_told_about(
    fake_docker: FakeDocker,
) -> None:
    imgs = {AMD64: image(AMD64, "b" * 12)}
    with pytest.raises(
        DockermaError, match=r"app:v1-amd64 is a linux/arm64 image.*nothing was pushed"
    ):
        check_platforms(Docker(), imgs, {ID_ARM64: ARM64})
    assert fake_docker.calls() == []


def test_check_platforms_short_ids_never_match_loosely(fake_docker: FakeDocker) -> None:
    # an id too short to tell images apart is asked about, not guessed
    fake_docker.script([inspect_rule(doc(ID_AMD64, "amd64"))])
    imgs = {AMD64: image(AMD64, "a")}
    check_platforms(Docker(), imgs, {ID_ARM64: ARM64, "sha256:" + "a" * 64: ARM64})
    assert fake_docker.calls() == [["image", "inspect", "app:v1-amd64"]]
    assert imgs[AMD64].actual == AMD64


def test_push_usage_errors_start_no_docker(
    fake_docker: FakeDocker, run_dockerma: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[list[str]] = []
    real = process._start

    def spy(argv: list[str], **kwargs: Any) -> Any:
        started.append(list(argv))
        return real(argv, **kwargs)

    monkeypatch.setattr(process, "_start", spy)
    for name in ("app@sha256:" + "c" * 64, "Not A Name"):
        res = run_dockerma("push", name)
        assert res.code == 2, res.err
        assert res.err.startswith("dockerma: error: ")
    assert started == []


def test_push_starts_its_docker_calls_before_importing_push(
    fake_docker: FakeDocker, run_dockerma: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # nothing found: push stops, having asked docker info and the names at once
    fake_docker.script([{"match": ["info"], "stdout": json.dumps({"Architecture": "x86_64"})}])
    prefetched: list[tuple[str, ...]] = []
    real = ReadAhead.start

    def spy(self: ReadAhead, bound: Docker, *args: str) -> None:
        prefetched.append(args)
        real(self, bound, *args)

    monkeypatch.setattr(ReadAhead, "start", spy)
    res = run_dockerma("push", "localhost:5000/app:v1")
    assert res.code == 1
    assert res.err.startswith("dockerma: error: no per-arch images for localhost:5000/app:v1")
    ref = ImageRef.parse("localhost:5000/app:v1")
    assert prefetched == [docker.ENGINE_PROBE, *candidates(ref)]
    # each was taken by the call it stood for: docker ran once per call, no image listing
    assert sorted(c[:2] for c in fake_docker.calls()) == [
        ["image", "inspect"],
        ["image", "inspect"],
        ["info", "--format"],
    ]
    # with -a, the repository's tags are unknown: it is listed
    prefetched.clear()
    res = run_dockerma("push", "-a", "localhost:5000/app")
    assert res.code == 1
    assert prefetched == [docker.ENGINE_PROBE, listing(ref.name)]
