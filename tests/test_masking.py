"""masking.py: build-arg values and URL passwords kept out of what dockerma prints."""

from __future__ import annotations

import pytest

from dockerma.core.masking import mask_urls, redact, secret_values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://u:pw@host/db", "postgres://u:***@host/db"),
        ("DB=postgres://u:pw@host:5432/db?x=1", "DB=postgres://u:***@host:5432/db?x=1"),
        ("https://x-token:ghp_abc@github.com/o/r.git", "https://x-token:***@github.com/o/r.git"),
        ("a https://:secret@h b", "a https://:***@h b"),
        ("git+ssh://me:p%40ss@h/r", "git+ssh://me:***@h/r"),
        ("two: http://a:1@h http://b:2@k", "two: http://a:***@h http://b:***@k"),
        ("https://host:5000/v2/", "https://host:5000/v2/"),  # a port is no password
        ("ssh://git@github.com/o/r", "ssh://git@github.com/o/r"),
        ("user:pw@host without a scheme", "user:pw@host without a scheme"),
    ],
)
def test_mask_urls(text: str, expected: str) -> None:
    assert mask_urls(text) == expected
    assert mask_urls(expected) == expected  # masking twice changes nothing


ARGV = [
    "build",
    "--build-arg",
    "GH_PAT=ghp_x",
    "--build-arg=VERSION=1.2",
    "--build-arg",
    "DB=postgres://u:pw@h/db",
    "--build-arg",
    "FROM_ENV",
    "--label",
    "src=https://a:b@h/x",
    ".",
]


def test_redact_hides_secret_names_and_url_passwords() -> None:
    assert redact(ARGV) == [
        "build",
        "--build-arg",
        "GH_PAT=***",
        "--build-arg=VERSION=1.2",
        "--build-arg",
        "DB=postgres://u:***@h/db",
        "--build-arg",
        "FROM_ENV",
        "--label",
        "src=https://a:***@h/x",
        ".",
    ]


def test_redact_names_only_hides_every_value() -> None:
    shown = redact(ARGV, names_only=True)
    assert shown[1:8] == [
        "--build-arg",
        "GH_PAT=***",
        "--build-arg=VERSION=***",
        "--build-arg",
        "DB=***",
        "--build-arg",
        "FROM_ENV",
    ]


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("GH_PAT", True),
        ("PAT", True),
        ("PAT_GITLAB", True),
        ("PATH", False),
        ("PATCH_LEVEL", False),
        ("NPM_TOKEN", True),
        ("VERSION", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert (secret_values(["--build-arg", f"{name}=v"], {}) == ["v"]) is secret


def test_redact_hides_a_secret_build_arg_bake_sets() -> None:
    argv = ["buildx", "bake", "--set", "arm64.args.GH_TOKEN=t0k", "--set", "arm.args.V=1"]
    assert redact(argv) == [
        "buildx",
        "bake",
        "--set",
        "arm64.args.GH_TOKEN=***",
        "--set",
        "arm.args.V=1",
    ]
