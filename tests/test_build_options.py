"""A misspelt option is a usage error before anything starts (issue 20): core/build_options,
options.parse_build and the CLI's look-up in this docker's `docker build --help`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dockerma.core import build_options
from dockerma.options import parse_build
from tests.conftest import FakeDocker
from tests.test_build import INFO_RULE

BUILDX_HELP = """Usage:  docker buildx build [OPTIONS] PATH | URL | -

Options:
      --add-host strings              Add a custom host-to-IP mapping
      --load                          Shorthand for "--output=type=docker"
  -o, --output stringArray            Output destination (format:
                                      "type=local,dest=path")
      --shiny string                  An option of a docker newer than dockerma
      --glossy                        Another
"""


def test_parse_help_names_and_values() -> None:
    found = build_options.parse_help(BUILDX_HELP)
    assert found == {
        "--add-host": True,
        "--load": False,
        "-o": True,
        "--output": True,
        "--shiny": True,
        "--glossy": False,
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--no-cahce", "."],
            "unknown option --no-cahce: neither dockerma nor this docker's "
            "build knows it; did you mean --no-cache?",
        ),
        (["--smoke-tset", "true", "."], "did you mean --smoke-test?"),
        (["--buld-arg=A=1", "."], "did you mean --build-arg?"),
        (["--frob", "--zap", "."], "unknown options --frob, --zap"),
    ],
)
def test_unknown_options_refused_with_a_suggestion(args: list[str], message: str) -> None:
    with pytest.raises(build_options.UnknownOptions) as info:
        parse_build(args, environ={}, docker_help={}, ours=["--smoke-test", "--dry-run"])
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_an_option_of_this_dockers_help_is_accepted_with_its_value() -> None:
    help_ = build_options.parse_help(BUILDX_HELP)
    parsed = parse_build(["--shiny", "v", "--glossy", "ctx"], environ={}, docker_help=help_)
    assert parsed.context == "ctx"  # not `v`: the help says --shiny takes a value
    assert parsed.passthrough == ("--shiny", "v", "--glossy")


def test_cli_refuses_before_anything_starts(
    fake_docker: FakeDocker, run_dockerma: Any, tmp_path: Path
) -> None:
    fake_docker.script([{"match": ["build", "--help"], "stdout": BUILDX_HELP}])
    res = run_dockerma("build", "--smoke-tset", "true", "-t", "a:1", str(tmp_path))
    assert res.code == 2
    assert res.err.strip().splitlines() == [
        "dockerma: error: unknown option --smoke-tset: neither dockerma nor this docker's "
        "build knows it; did you mean --smoke-test?"
    ]
    assert fake_docker.calls() == [["build", "--help"]]  # the one look-up, nothing else


def test_cli_takes_an_option_only_this_docker_knows(
    fake_docker: FakeDocker, run_dockerma: Any, two_arch: Path
) -> None:
    fake_docker.script([INFO_RULE, {"match": ["build", "--help"], "stdout": BUILDX_HELP}])
    res = run_dockerma("build", "--dry-run", "--shiny", "v", "-t", "a:1", str(two_arch))
    assert res.code == 0, res.err
    assert "--shiny v" in res.out


def test_cli_known_options_ask_docker_nothing(
    fake_docker: FakeDocker, run_dockerma: Any, two_arch: Path
) -> None:
    fake_docker.script([INFO_RULE])
    res = run_dockerma("build", "--dry-run", "--no-cache", "--load", "-t", "a:1", str(two_arch))
    assert res.code == 0, res.err
    assert ["build", "--help"] not in fake_docker.calls()


def test_buildx_only_options_need_buildkit() -> None:
    from dockerma.core.platforms import Platform
    from dockerma.engine.probe import EngineInfo
    from dockerma.errors import UsageError
    from dockerma.flows import checks

    amd64 = Platform.parse("amd64")
    args = parse_build(["--load", "."], environ={})
    checks.builder(EngineInfo(amd64, True, False, ()), [amd64], args)
    with pytest.raises(UsageError, match="--load needs BuildKit"):
        checks.builder(EngineInfo(amd64, False, False, ()), [amd64], args)
