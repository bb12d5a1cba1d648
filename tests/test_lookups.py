"""flows.lookups against the in-process fake registry: what a per-arch tag already holds, and
when a push of it is spared (issue 21: the containerd store's per-arch index)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.flows.lookups import Lookups
from dockerma.flows.results import ArchResult
from dockerma.registry.client import Registry
from tests.fakeregistry import FakeRegistry

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ARM64 = Platform("linux", "arm64", "")


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry() as reg:
        yield reg


def _index_with_attestation(fake: FakeRegistry, built: str) -> tuple[str, str, str]:
    """team/app:v1-arm64 as BuildKit pushes it from the containerd store: an index of the
    image and an attestation manifest, the attestation's `built` making each index new.
    Returns (index digest, image manifest digest, config digest)."""
    image, config = fake.image("team/app", "image", {"architecture": "arm64", "os": "linux"})
    attestation = fake.manifest(
        "team/app", "attestation", json.dumps({"built": built}).encode(), OCI_MANIFEST
    )
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": image,
                "size": 1,
                "platform": {"architecture": "arm64", "os": "linux"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": attestation,
                "size": 1,
                "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
                "platform": {"architecture": "unknown", "os": "unknown"},
            },
        ],
    }
    digest = fake.manifest("team/app", "v1-arm64", json.dumps(index).encode(), OCI_INDEX)
    return digest, image, config


def _lookups(fake: FakeRegistry, resolve: bool) -> Lookups:
    registry = Registry(config_dir="/nonexistent-dockerma-config")
    return Lookups(
        registry, [ImageRef.parse(f"{fake.address}/team/app:v1")], [ARM64], resolve=resolve
    )


def _image(image_id: str, own_digest: str = "") -> dict[Platform, ArchResult]:
    return {ARM64: ArchResult(ARM64, ["t"], image_id=image_id, own_digest=own_digest)}


def test_the_same_image_in_a_new_index_is_not_pushed_again(fake: FakeRegistry) -> None:
    _, image, config = _index_with_attestation(fake, "yesterday")
    local_index = "sha256:" + "e" * 64  # today's build: another attestation, another index
    lookups = _lookups(fake, resolve=True)
    there = lookups.already_there(_image(local_index, own_digest=image), ())
    assert [e.digest for e in there.values()] == [image]
    # and the registry's config of that very image tells its platform
    for digest in (image, config):
        found = lookups.own_platform(ARM64, digest)
        assert found is not None and found.matches(ARM64)


def test_another_image_is_pushed(fake: FakeRegistry) -> None:
    _index_with_attestation(fake, "yesterday")
    other = "sha256:" + "f" * 64
    lookups = _lookups(fake, resolve=True)
    assert lookups.already_there(_image("sha256:" + "e" * 64, own_digest=other), ()) == {}
    assert lookups.own_platform(ARM64, other) is None


def test_without_the_images_own_digest_the_index_decides(fake: FakeRegistry) -> None:
    index, image, _ = _index_with_attestation(fake, "yesterday")
    lookups = _lookups(fake, resolve=True)
    assert lookups.already_there(_image("sha256:" + "e" * 64), ()) == {}
    assert [e.digest for e in lookups.already_there(_image(index), ()).values()] == [image]


def test_indexes_are_not_opened_unless_asked(fake: FakeRegistry) -> None:
    _, image, _ = _index_with_attestation(fake, "yesterday")
    lookups = _lookups(fake, resolve=False)
    assert lookups.already_there(_image("sha256:" + "e" * 64, own_digest=image), ()) == {}
    assert lookups.own_platform(ARM64, image) is None  # its config was never read


def test_options_that_change_the_push_push_every_tag(fake: FakeRegistry) -> None:
    _, image, _ = _index_with_attestation(fake, "yesterday")
    lookups = _lookups(fake, resolve=True)
    images = _image("sha256:" + "e" * 64, own_digest=image)
    assert lookups.already_there(images, ("--platform", "linux/arm64")) == {}
