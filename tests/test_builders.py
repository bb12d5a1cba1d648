"""builders.py: the --builder mapping and its warnings."""

from __future__ import annotations

import pytest

from dockerma.core.platforms import Platform
from dockerma.engine import builders
from dockerma.errors import UsageError

TARGETS = [Platform.parse("amd64"), Platform.parse("arm64")]


def test_parse_last_one_wins_and_env_comes_first() -> None:
    env = {builders.ENV: "arm64=ssh://a,arm=ssh://b"}
    mapping = builders.parse(["aarch64=ssh://c"], environ=env)
    assert mapping == {Platform.parse("arm"): "ssh://b", Platform.parse("arm64"): "ssh://c"}


@pytest.mark.parametrize("spec", ["arm64", "=ssh://a", "arm64=", " = "])
def test_parse_refuses_a_spec_without_both_halves(spec: str) -> None:
    with pytest.raises(UsageError, match="ARCH=ENDPOINT"):
        builders.parse([spec], environ={})


def test_unused_names_the_builders_for_architectures_not_built() -> None:
    warnings = builders.unused(["aarch64=ssh://a", "s390x=ssh://b", "arm64/v8=ssh://c"], TARGETS)
    assert len(warnings) == 1
    assert warnings[0].startswith("--builder s390x=ssh://b: linux/s390x is not built")
    assert "linux/amd64, linux/arm64" in warnings[0]


def test_unused_says_nothing_when_every_builder_is_used() -> None:
    assert builders.unused(["arm64=ssh://a", "amd64=unix:///x.sock"], TARGETS) == []
