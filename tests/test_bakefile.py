"""core.bakefile: per-arch `docker build` argvs as bake targets, and bake's plain progress
lines handed back to their target (issue 21)."""

from __future__ import annotations

import pytest

from dockerma.core import bakefile

CTX = "/abs/ctx"


def _target(*argv: str, environ: dict[str, str] | None = None) -> bakefile.Target:
    made = bakefile.target(["build", *argv, "ctx"], context_dir=CTX, environ=environ or {})
    assert made is not None
    return made[0]


def test_a_plan_argv_becomes_a_target() -> None:
    made = bakefile.target(
        [
            "build",
            "--platform",
            "linux/arm/v7",
            "-f",
            "/tmp/x/Dockerfile.arm",
            "--iidfile",
            "/tmp/x/iid.arm",
            "--progress=plain",
            "--build-arg",
            "TARGETARCH=arm",
            "-t",
            "app:v1-arm",
            "--tag=app:v2-arm",
            "ctx",
        ],
        context_dir=CTX,
        environ={},
    )
    assert made is not None
    target, options = made
    assert target == {
        "context": CTX,
        "platforms": ["linux/arm/v7"],
        "dockerfile": "/tmp/x/Dockerfile.arm",
        "args": {"TARGETARCH": "arm"},
        "tags": ["app:v1-arm", "app:v2-arm"],
    }
    assert options == bakefile.Globals(None, "plain", ("/tmp/x/iid.arm",))


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["--no-cache"], "no-cache", True),
        (["--pull"], "pull", True),
        (["--target", "final"], "target", "final"),
        (["--network=host"], "network", "host"),
        (["--label", "a=1", "--label", "b"], "labels", {"a": "1", "b": ""}),
        (
            ["--cache-from", "type=registry,ref=r/c:arm"],
            "cache-from",
            ["type=registry,ref=r/c:arm"],
        ),
        (["--cache-to=type=local,dest=c/linux_arm"], "cache-to", ["type=local,dest=c/linux_arm"]),
        (
            ["-o", "type=local,dest=o/linux_arm", "--load"],
            "output",
            ["type=local,dest=o/linux_arm", "type=docker"],
        ),
        (["--secret", "id=s,src=f"], "secret", ["id=s,src=f"]),
        (["--ssh", "default"], "ssh", ["default"]),
        (["--build-context", "base=docker-image://x"], "contexts", {"base": "docker-image://x"}),
        (["--no-cache-filter", "a"], "no-cache-filter", ["a"]),
    ],
)
def test_options_with_a_bake_field(argv: list[str], field: str, value: object) -> None:
    assert _target(*argv)[field] == value


def test_build_arg_without_value_reads_the_environment() -> None:
    target = _target("--build-arg", "TOKEN", "--build-arg", "UNSET", environ={"TOKEN": "t"})
    assert target["args"] == {"TOKEN": "t"}  # docker build drops an unset one too


def test_builder_is_for_the_whole_bake() -> None:
    made = bakefile.target(["build", "--builder", "b1", "ctx"], context_dir=CTX, environ={})
    assert made is not None and made[1].builder == "b1"


@pytest.mark.parametrize(
    "argv",
    [
        ["build", "-q", "ctx"],  # bake has no quiet image id
        ["build", "--add-host", "a:1.2.3.4", "ctx"],
        ["build", "--shm-size", "1g", "ctx"],
        ["build", "--provenance=false", "ctx"],
        ["build", "--no-cache=false", "ctx"],  # a flag given a value
        ["build"],  # no context
        ["build", "-t", "x", "-"],  # the context on stdin: read once
        ["push", "x"],
    ],
)
def test_anything_else_means_one_build_per_architecture(argv: list[str]) -> None:
    assert bakefile.target(argv, context_dir=CTX, environ={}) is None


def test_definition_groups_every_target() -> None:
    d = bakefile.definition({"amd64": {"context": "c"}, "arm": {"context": "c"}})
    assert d == {
        "group": {"default": {"targets": ["amd64", "arm"]}},
        "target": {"amd64": {"context": "c"}, "arm": {"context": "c"}},
    }


# Lines of `docker buildx bake --progress=plain` (buildx 0.29) with arm64's RUN failing.
RECORDED = """\
#0 building with "default" instance using docker driver
#1 [internal] load local bake definitions
#1 DONE 0.0s
#2 [arm64 internal] load build definition from Dockerfile.arm64
#2 DONE 0.0s
#8 [arm internal] load .dockerignore
#12 [amd64 2/4] RUN echo one > /one
#12 ...
#13 [arm64 2/4] RUN echo one > /one
#13 DONE 0.2s
#12 [amd64 2/4] RUN echo one > /one
#12 DONE 0.2s
#17 [arm64 3/4] RUN echo two > /two && false
#17 ERROR: process "/bin/sh -c echo two > /two && false" did not complete successfully
------
 > [arm64 3/4] RUN echo two > /two && false:
------
Dockerfile.arm64:3
--------------------
   3 | >>> RUN echo two > /two && false
--------------------
ERROR: target arm64: failed to solve: process "/bin/sh -c echo two > /two && false" did not
"""
EXPECTED = [
    None, None, None, "arm64", "arm64", "arm", "amd64", "amd64", "arm64", "arm64",
    "amd64", "amd64", "arm64", "arm64",
    None, "arm64", "arm64", "arm64", "arm64", "arm64", "arm64", "arm64",
]  # fmt: skip


def test_lines_go_back_to_their_target() -> None:
    lines = bakefile.Lines(frozenset({"amd64", "arm64", "arm"}))
    assert [lines.target_of(x) for x in RECORDED.splitlines()] == EXPECTED


def test_a_step_named_by_something_else_is_no_target() -> None:
    lines = bakefile.Lines(frozenset({"amd64"}))
    assert lines.target_of("#3 [internal] load") is None
    assert lines.target_of("#3 DONE") is None
    assert lines.target_of("#4 [stage-1 2/3] RUN x") is None
