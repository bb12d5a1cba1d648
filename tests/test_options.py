"""options.py: docker build / push arguments split into what dockerma reads and passes on."""

from __future__ import annotations

from typing import Any

import pytest

from dockerma.errors import UsageError
from dockerma.options import parse_build, parse_push

ENV = {"FROM_ENV": "env-value"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--build-arg", "X=1", "-t", "img", "."],
            {"context": ".", "tags": ("img",), "build_args": {"X": "1"}},
        ),
        ([".", "-t", "img"], {"context": ".", "tags": ("img",), "passthrough": ()}),
        (["-t", "img", "--no-cache", "."], {"context": ".", "passthrough": ("--no-cache",)}),
        (
            ["--label", "a=b", "--network", "host", "-f", "x/Dockerfile", "ctx"],
            {
                "context": "ctx",
                "file": "x/Dockerfile",
                "passthrough": ("--label", "a=b", "--network", "host"),
            },
        ),
        (["-timg:1", "."], {"context": ".", "tags": ("img:1",), "passthrough": ()}),
        (["--tag=img", "."], {"context": ".", "tags": ("img",)}),
        (["--tag", "a", "-t", "b:2", "-tc:3", "."], {"tags": ("a", "b:2", "c:3")}),
        (["-fother.Dockerfile", "."], {"file": "other.Dockerfile", "passthrough": ()}),
        (["--file=other.Dockerfile", "."], {"file": "other.Dockerfile"}),
        (["-f", "-", "."], {"file": "-", "context": "."}),
        (
            ["--build-arg", "FROM_ENV", "."],
            {"build_args": {"FROM_ENV": "env-value"}, "passthrough": ("--build-arg", "FROM_ENV")},
        ),
        (
            ["--build-arg", "NOT_SET", "."],
            {"build_args": {}, "passthrough": ("--build-arg", "NOT_SET")},
        ),
        (
            ["--build-arg=A=x=y", "--build-arg", "B=", "."],
            {
                "build_args": {"A": "x=y", "B": ""},
                "passthrough": ("--build-arg", "A=x=y", "--build-arg", "B="),
            },
        ),
        (["--build-arg", "X=.", "-t", "img", "ctx"], {"context": "ctx", "build_args": {"X": "."}}),
        (
            ["--target", "final", "-q", "."],
            {"target": "final", "quiet": True, "passthrough": ("--target", "final", "-q")},
        ),
        (["--quiet", "."], {"quiet": True, "passthrough": ("--quiet",)}),
        (["-c", "512", "."], {"context": ".", "passthrough": ("-c", "512")}),
        (
            ["--no-cache", "--pull", "--cache-from", "img:cache", "--secret", "id=s,src=f", "."],
            {
                "passthrough": (
                    "--no-cache",
                    "--pull",
                    "--cache-from",
                    "img:cache",
                    "--secret",
                    "id=s,src=f",
                ),
            },
        ),
        (
            ["--ssh", "default", "--add-host", "h:1.2.3.4", "--shm-size", "1g", "src/app"],
            {
                "context": "src/app",
                "passthrough": ("--ssh", "default", "--add-host", "h:1.2.3.4", "--shm-size", "1g"),
            },
        ),
        (["--network=host", "."], {"passthrough": ("--network", "host")}),
        (["--iidfile=id.txt", "."], {"iidfile": "id.txt", "passthrough": ()}),
        (["--no-cache=true", "."], {"passthrough": ("--no-cache=true",)}),
        (["--", "-weird-dir"], {"context": "-weird-dir"}),
        (["-t", "img", "-"], {"context": "-"}),
    ],
)
def test_parse_build(args: list[str], expected: dict[str, Any]) -> None:
    parsed = parse_build(args, environ=ENV)
    actual = {key: getattr(parsed, key) for key in expected}
    assert actual == expected


def test_parse_build_defaults() -> None:
    parsed = parse_build(["."], environ={})
    assert (parsed.context, parsed.tags, parsed.file, parsed.target, parsed.quiet) == (
        ".",
        (),
        None,
        None,
        False,
    )
    assert parsed.passthrough == ()
    assert dict(parsed.build_args) == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no build context"),
        (["-t", "x"], "no build context"),
        (["--no-cache"], "no build context"),
        (["-t", "img", "a", "b"], "expected one build context, got 2: a b"),
        (["--label", "a", "b", "c", "."], "got 3: b c ."),
        ([".", "-t"], "option -t needs a value"),
        (["-H", "tcp://x:1", "."], "-H is a global docker option"),
        (["--host=tcp://x:1", "."], "--host is a global docker option"),
        ([".", "--tlsverify"], "--tlsverify is a global docker option"),
        (["--context", "c", "."], "--context is a global docker option"),
    ],
)
def test_parse_build_errors(args: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_build(args, environ={})
    assert message in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("args", "name", "passthrough", "all_tags", "quiet"),
    [
        (["app:v1"], "app:v1", (), False, False),
        (["-q", "app:v1"], "app:v1", ("-q",), False, True),
        (["app:v1", "--quiet"], "app:v1", ("--quiet",), False, True),
        (["-a", "app"], "app", (), True, False),
        (["--all-tags", "app"], "app", (), True, False),
        (["-a", "localhost:5000/team/app"], "localhost:5000/team/app", (), True, False),
        (
            ["--disable-content-trust", "localhost:5000/team/app:1"],
            "localhost:5000/team/app:1",
            ("--disable-content-trust",),
            False,
            False,
        ),
        (
            ["--disable-content-trust=false", "-q", "app"],
            "app",
            ("--disable-content-trust=false", "-q"),
            False,
            True,
        ),
        (["--platform", "linux/amd64", "app"], "app", ("--platform", "linux/amd64"), False, False),
    ],
)
def test_parse_push(
    args: list[str], name: str, passthrough: tuple[str, ...], all_tags: bool, quiet: bool
) -> None:
    parsed = parse_push(args)
    assert parsed.names == (name,)
    assert (parsed.passthrough, parsed.all_tags, parsed.quiet) == (passthrough, all_tags, quiet)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "expected one image name, got 0"),
        (["-q"], "expected one image name, got 0"),
        (["a", "b"], "expected one image name, got 2"),
        (["-H", "x", "app"], "-H is a global docker option"),
        (["--tlsverify", "app"], "--tlsverify is a global docker option"),
        (["-a", "localhost:5000/app:v1"], "dockerma push -a localhost:5000/app"),
    ],
)
def test_parse_push_errors(args: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_push(args)
    assert message in str(info.value)
