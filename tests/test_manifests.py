"""manifests.py: entries of lists and indexes (attestations skipped), pick, make_list.

Documents under tests/data/manifests/: docker-list-busybox.json, oci-index-attestation.json and
oci-index-arm64-v8.json were recorded from the test bed's registry (the last two pushed by the
modern engine: BuildKit with provenance); docker-list-arm-variants.json is written by hand in
the shape of alpine's list (arm/v6 beside arm/v7).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from dockerma.core import manifests
from dockerma.core.manifests import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Entry,
    config_platform,
    entries,
    is_index,
    make_list,
    media_type,
    pick,
)
from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError
from dockerma.registry.client import Manifest

DATA = Path(__file__).parent / "data" / "manifests"


def load(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def raw_digest(doc: dict[str, Any], arch: str, variant: str = "") -> str:
    """The digest the document itself lists for arch/variant, read without dockerma."""
    for m in doc["manifests"]:
        p = m["platform"]
        if p["architecture"] == arch and p.get("variant", "") == variant:
            return str(m["digest"])
    raise AssertionError(f"no {arch}/{variant} in the sample")


@pytest.mark.parametrize(
    ("name", "platforms"),
    [
        (
            "docker-list-busybox.json",
            [
                "linux/386",
                "linux/amd64",
                "linux/arm64",
                "linux/arm/v7",
                "linux/ppc64le",
                "linux/s390x",
            ],
        ),
        (
            "docker-list-arm-variants.json",
            [
                "linux/amd64",
                "linux/arm/v6",
                "linux/arm/v7",
                "linux/arm64",
                "linux/386",
                "linux/ppc64le",
                "linux/riscv64",
                "linux/s390x",
            ],
        ),
        ("oci-index-attestation.json", ["linux/arm64"]),
        ("oci-index-arm64-v8.json", ["linux/amd64", "linux/arm/v7", "linux/arm64"]),
    ],
)
def test_entries(name: str, platforms: list[str]) -> None:
    doc = load(name)
    found = entries(doc)
    assert [str(e.platform) for e in found] == platforms
    listed = {m["digest"]: m for m in doc["manifests"]}
    for e in found:
        assert e.media_type == listed[e.digest]["mediaType"]
        assert e.size == listed[e.digest]["size"]


def test_attestation_entry_is_skipped() -> None:
    doc = load("oci-index-attestation.json")
    attestation = doc["manifests"][1]["digest"]
    assert [e.digest for e in entries(doc)] == [raw_digest(doc, "arm64")]
    assert all(e.digest != attestation for e in entries(doc))
    assert pick(entries(doc), Platform("unknown", "unknown")) is None


@pytest.mark.parametrize(
    ("manifest", "kept"),
    [
        ({"platform": {"architecture": "unknown", "os": "unknown"}}, False),
        ({"platform": {"architecture": "amd64", "os": "unknown"}}, False),
        ({"platform": {"architecture": "", "os": "linux"}}, False),
        ({}, False),
        (
            {
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
            },
            False,
        ),
        (
            {
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"org.opencontainers.image.ref.name": "v1"},
            },
            True,
        ),
        ({"platform": {"architecture": "amd64", "os": "linux"}}, True),
    ],
)
def test_entries_keep_only_images(manifest: dict[str, Any], kept: bool) -> None:
    m = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 1, **manifest}
    assert len(entries({"mediaType": OCI_INDEX, "manifests": [m]})) == (1 if kept else 0)


@pytest.mark.parametrize(
    ("name", "wanted", "arch", "variant"),
    [
        ("docker-list-arm-variants.json", "arm/v6", "arm", "v6"),
        ("docker-list-arm-variants.json", "armel", "arm", "v6"),
        ("docker-list-arm-variants.json", "arm/v7", "arm", "v7"),
        ("docker-list-arm-variants.json", "arm", "arm", "v7"),
        ("docker-list-arm-variants.json", "arm64", "arm64", "v8"),
        ("docker-list-arm-variants.json", "arm64/v8", "arm64", "v8"),
        ("docker-list-arm-variants.json", "386", "386", ""),
        ("docker-list-busybox.json", "arm64", "arm64", ""),
        ("docker-list-busybox.json", "aarch64", "arm64", ""),
        ("docker-list-busybox.json", "arm/v7", "arm", "v7"),
        ("docker-list-busybox.json", "amd64", "amd64", ""),
        ("oci-index-arm64-v8.json", "arm64", "arm64", "v8"),
        ("oci-index-attestation.json", "arm64/v8", "arm64", ""),
    ],
)
def test_pick(name: str, wanted: str, arch: str, variant: str) -> None:
    doc = load(name)
    entry = pick(entries(doc), Platform.parse(wanted))
    assert entry is not None
    assert entry.digest == raw_digest(doc, arch, variant)


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        ("docker-list-busybox.json", "arm/v6"),
        ("docker-list-busybox.json", "riscv64"),
        ("oci-index-attestation.json", "amd64"),
        ("oci-index-arm64-v8.json", "arm/v6"),
        ("docker-list-arm-variants.json", "mips64le"),
    ],
)
def test_pick_missing(name: str, wanted: str) -> None:
    assert pick(entries(load(name)), Platform.parse(wanted)) is None


def test_arm_without_variant_is_v7_not_v6() -> None:
    doc = {
        "mediaType": DOCKER_LIST,
        "manifests": [
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": "sha256:" + "7" * 64,
                "size": 5,
                "platform": {"architecture": "arm", "os": "linux"},
            }
        ],
    }
    assert pick(entries(doc), Platform.parse("arm/v7")) is not None
    assert pick(entries(doc), Platform.parse("arm/v6")) is None


@pytest.mark.parametrize(
    ("doc", "fallback", "expected", "index"),
    [
        ({"mediaType": DOCKER_LIST, "manifests": []}, "", DOCKER_LIST, True),
        ({"manifests": []}, "", OCI_INDEX, True),
        ({"manifests": []}, OCI_INDEX, OCI_INDEX, True),
        ({"mediaType": DOCKER_MANIFEST, "config": {}}, "", DOCKER_MANIFEST, False),
        ({"config": {}, "layers": []}, OCI_MANIFEST, OCI_MANIFEST, False),
    ],
)
def test_media_type_and_is_index(
    doc: dict[str, Any], fallback: str, expected: str, index: bool
) -> None:
    assert media_type(doc, fallback) == expected
    assert is_index(doc, fallback) is index


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"architecture": "arm", "os": "linux", "variant": "v6"}, "linux/arm/v6"),
        ({"architecture": "arm64", "os": "linux"}, "linux/arm64"),
        ({"architecture": "amd64"}, "linux/amd64"),
    ],
)
def test_config_platform(config: dict[str, Any], expected: str) -> None:
    assert str(config_platform(config)) == expected


def entry(arch: str, media: str = DOCKER_MANIFEST) -> Entry:
    # a digest as a registry sends it (a test of old used letters that are no hex digits)
    digest = "sha256:" + hashlib.sha256(arch.encode()).hexdigest()
    return Entry(Platform.parse(arch), digest, media, 500)


def test_make_list_is_a_docker_list() -> None:
    items = [
        (entry("amd64"), Platform.parse("amd64")),
        (entry("arm"), Platform.parse("arm")),
        (entry("arm64"), Platform("linux", "arm64", "")),
    ]
    body, kind = make_list(items)
    doc = json.loads(body)
    assert kind == DOCKER_LIST
    assert doc["mediaType"] == DOCKER_LIST
    assert doc["schemaVersion"] == 2
    assert [m["platform"] for m in doc["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm", "os": "linux", "variant": "v7"},
        {"architecture": "arm64", "os": "linux"},
    ]
    assert [m["digest"] for m in doc["manifests"]] == [e.digest for e, _ in items]
    assert all(m["mediaType"] == DOCKER_MANIFEST and m["size"] == 500 for m in doc["manifests"])
    # It reads back as what went in.
    assert [(e.digest, str(e.platform)) for e in entries(doc)] == [
        (e.digest, str(p)) for e, p in items
    ]


def test_make_list_arm_carries_its_variant() -> None:
    body, _ = make_list([(entry("arm/v6"), Platform.parse("arm/v6"))])
    [m] = json.loads(body)["manifests"]
    assert m["platform"] == {"architecture": "arm", "os": "linux", "variant": "v6"}


def test_make_list_is_an_oci_index_when_an_image_is_oci() -> None:
    items = [
        (entry("amd64"), Platform.parse("amd64")),
        (entry("arm64", OCI_MANIFEST), Platform.parse("arm64")),
    ]
    body, kind = make_list(items)
    doc = json.loads(body)
    assert kind == OCI_INDEX
    assert doc["mediaType"] == OCI_INDEX
    assert [m["mediaType"] for m in doc["manifests"]] == [DOCKER_MANIFEST, OCI_MANIFEST]
    assert doc["manifests"][1]["platform"] == {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
    }


def test_make_list_from_recorded_index() -> None:
    """Stitching the images of a BuildKit index leaves its attestation out."""
    doc = load("oci-index-attestation.json")
    items = [(e, e.platform) for e in entries(doc)]
    body, kind = make_list(items)
    assert kind == OCI_INDEX
    assert [m["digest"] for m in json.loads(body)["manifests"]] == [raw_digest(doc, "arm64")]
    assert manifests.is_index(json.loads(body))


# Issue 17, item 2: one check for every digest a registry sends.
VALID = ["sha256:" + "0123456789abcdef" * 4, "sha512:" + "f" * 128]
INVALID = [
    "sha256:" + "a" * 64 + "\nRUN touch /pwned",
    "sha256:" + "a" * 64 + "\n",
    "sha256:" + "A" * 64,
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 65,
    "sha512:" + "a" * 64,
    "sha384:" + "a" * 96,
    "SHA256:" + "a" * 64,
    " sha256:" + "a" * 64,
    "sha256:" + "g" * 64,
    "sha256:",
    "",
    None,
    64,
    ["sha256:" + "a" * 64],
]


@pytest.mark.parametrize("digest", VALID)
def test_check_digest_accepts_the_registered_algorithms(digest: str) -> None:
    assert manifests.valid_digest(digest)
    assert manifests.check_digest(digest, "registry r (image i)") == digest


@pytest.mark.parametrize("digest", INVALID, ids=repr)
def test_check_digest_refuses_anything_else_in_one_line(digest: object) -> None:
    assert not manifests.valid_digest(digest)
    with pytest.raises(DockermaError) as info:
        manifests.check_digest(digest, "registry r.example:5000 (image team/app:1)")
    message = str(info.value)
    assert "registry r.example:5000 (image team/app:1)" in message
    assert "\n" not in message and len(message) < 300


def test_entries_refuse_a_hostile_digest_even_in_a_skipped_entry() -> None:
    doc = load("oci-index-attestation.json")
    attestation = next(m for m in doc["manifests"] if "annotations" in m)
    attestation["digest"] = "sha256:" + "a" * 64 + "\nRUN touch /pwned"
    with pytest.raises(DockermaError, match="invalid digest"):
        entries(doc, "registry r (image i)")


# --- a registry's manifest against the local image, the list's platforms, the read-back ----

REF = ImageRef.parse("localhost:5000/team/app:v1-amd64")
CONFIG = "sha256:" + "c" * 64


def stored(doc: dict[str, Any], media: str = "") -> Manifest:
    body = json.dumps(doc).encode()
    return Manifest(media, "sha256:" + hashlib.sha256(body).hexdigest(), body)


IMAGE = stored({"mediaType": DOCKER_MANIFEST, "config": {"digest": CONFIG}}, DOCKER_MANIFEST)
INDEX = stored(
    {
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "digest": entry("amd64").digest,
                "mediaType": OCI_MANIFEST,
                "size": 7,
                "platform": {"os": "linux", "architecture": "amd64"},
            }
        ],
    },
    OCI_INDEX,
)


@pytest.mark.parametrize(
    ("m", "expected"),
    [
        (IMAGE, CONFIG),
        (INDEX, None),  # an index names no config
        (stored({"config": {"digest": "sha256:short"}}, OCI_MANIFEST), None),
        (stored({"config": "nothing"}, OCI_MANIFEST), None),
        (stored({"layers": []}, OCI_MANIFEST), None),
    ],
)
def test_config_digest(m: Manifest, expected: str | None) -> None:
    assert manifests.config_digest(m) == expected


@pytest.mark.parametrize(
    ("m", "image_id", "expected"),
    [
        (IMAGE, CONFIG, True),  # classic store: the image id is the config digest
        (IMAGE, IMAGE.digest, True),  # containerd store: the digest of the manifest itself
        (INDEX, INDEX.digest, True),
        (IMAGE, "sha256:" + "d" * 64, False),
        (IMAGE, "", False),
        (IMAGE, CONFIG[:19], False),  # a short id never matches
    ],
)
def test_is_image(m: Manifest, image_id: str, expected: bool) -> None:
    assert manifests.is_image(m, image_id) is expected


@pytest.mark.parametrize(
    ("m", "wanted", "expected"),
    [
        (
            IMAGE,
            "amd64",
            Entry(Platform.parse("amd64"), IMAGE.digest, DOCKER_MANIFEST, len(IMAGE.body)),
        ),
        (INDEX, "amd64", Entry(Platform.parse("amd64"), entry("amd64").digest, OCI_MANIFEST, 7)),
        (INDEX, "arm64", None),
    ],
)
def test_list_entry(m: Manifest, wanted: str, expected: Entry | None) -> None:
    assert manifests.list_entry(m, Platform.parse(wanted), REF) == expected


def test_same_image_only_for_this_very_image() -> None:
    amd64 = Platform.parse("amd64")
    assert manifests.same_image(None, CONFIG, amd64, REF) is None
    assert manifests.same_image(IMAGE, "sha256:" + "d" * 64, amd64, REF) is None
    assert manifests.same_image(IMAGE, CONFIG, amd64, REF) == manifests.list_entry(
        IMAGE, amd64, REF
    )


@pytest.mark.parametrize(
    ("tagged", "actual", "variant"),
    [
        ("arm64", Platform("linux", "arm64", "v8"), "v8"),  # as the image records it
        ("arm64", Platform("linux", "arm64", ""), ""),
        ("arm64", None, ""),
        ("arm/v7", Platform("linux", "arm", ""), "v7"),  # arm always carries its variant
        ("arm/v6", None, "v6"),
        ("amd64", Platform("linux", "amd64", ""), ""),
    ],
)
def test_listed_platform(tagged: str, actual: Platform | None, variant: str) -> None:
    expected = Platform.parse(tagged)
    got = manifests.listed_platform(expected, actual)
    assert (got.os, got.arch, got.variant) == (expected.os, expected.arch, variant)


@pytest.mark.parametrize(
    ("previous", "platforms", "expected"),
    [
        (None, ["amd64"], []),
        (INDEX, ["amd64"], []),
        (INDEX, ["arm64"], ["linux/amd64"]),
        (IMAGE, ["arm64"], []),  # not a list: nothing to speak of
        (Manifest(DOCKER_LIST, "sha256:" + "e" * 64, b"not json"), ["arm64"], []),
    ],
)
def test_dropped(previous: Manifest | None, platforms: list[str], expected: list[str]) -> None:
    got = manifests.dropped(previous, [Platform.parse(p) for p in platforms])
    assert [str(p) for p in got] == expected


def test_verify_wants_exactly_the_entries_written() -> None:
    items = [(entry("amd64", OCI_MANIFEST), Platform.parse("amd64"))]
    manifests.verify(INDEX, REF, items)
    with pytest.raises(DockermaError, match="does not match what was pushed"):
        manifests.verify(INDEX, REF, [*items, (entry("arm64"), Platform.parse("arm64"))])
    with pytest.raises(DockermaError, match="does not match what was pushed"):
        manifests.verify(INDEX, REF, [(entry("amd64"), Platform.parse("arm64"))])
