"""Hostile registry answers (issue 17, item 5): sizes, deadlines, nesting; raw servers on
loopback that answer exactly what a broken or malicious registry could."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError
from dockerma.registry import bases as baseimages
from dockerma.registry import transport
from dockerma.registry.client import NotFound, RegistryError
from tests.test_registry import INDEX_BODY, OCI_INDEX, FakeRegistry, client, digest_of

MiB = 1 << 20


@contextmanager
def hostile(answer: Callable[[socket.socket, bytes], None]) -> Iterator[str]:
    """A loopback server that reads each request and lets `answer(conn, request)` write any
    bytes; yields its host:port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def handle(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # OSError: the client hung up, as it should
            answer(conn, conn.recv(65536))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def head(status: str = "200 OK", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def stream(conn: socket.socket, total: int, chunk: bytes = b" " * (256 << 10)) -> None:
    sent = 0
    while sent < total:
        conn.sendall(chunk)
        sent += len(chunk)


def one_line(err: BaseException, address: str) -> str:
    message = str(err)
    assert "\n" not in message and f"registry {address}" in message
    return message


# -- sizes -----------------------------------------------------------------------------------


def test_manifest_announced_over_4_mib_is_refused_without_reading_it() -> None:
    sent: list[int] = []

    def answer(conn: socket.socket, request: bytes) -> None:
        conn.sendall(head(Content_Type=OCI_INDEX, Content_Length=str(600 * MiB)))
        stream(conn, 600 * MiB)  # stops when the client hangs up
        sent.append(1)

    with hostile(answer) as address:
        start = time.monotonic()
        with pytest.raises(RegistryError) as info:
            client(retries=0).get_manifest(ImageRef.parse(f"{address}/team/app:v1"))
    assert "more than 4 MiB" in one_line(info.value, address)
    assert time.monotonic() - start < 5
    assert sent == []  # the client hung up long before 600 MiB


@pytest.mark.parametrize("framing", ["chunked", "until-close"])
def test_manifest_over_4_mib_without_a_length_is_cut_off(framing: str) -> None:
    def answer(conn: socket.socket, request: bytes) -> None:
        if framing == "chunked":
            conn.sendall(head(Content_Type=OCI_INDEX, Transfer_Encoding="chunked"))
            piece = b" " * MiB
            for _ in range(600):
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        else:
            conn.sendall(head(Content_Type=OCI_INDEX, Connection="close"))
            stream(conn, 600 * MiB)

    with hostile(answer) as address, pytest.raises(RegistryError) as info:
        client(retries=0).get_manifest(ImageRef.parse(f"{address}/team/app:v1"))
    assert "more than 4 MiB" in one_line(info.value, address)


def test_manifest_of_4_mib_is_read() -> None:
    body = json.dumps({"schemaVersion": 2, "pad": " " * (4 * MiB - 100)}).encode()
    assert len(body) <= transport.MAX_MANIFEST

    def answer(conn: socket.socket, request: bytes) -> None:
        conn.sendall(head(Content_Type=OCI_INDEX, Content_Length=str(len(body))) + body)

    with hostile(answer) as address:
        got = client(retries=0).get_manifest(ImageRef.parse(f"{address}/team/app:v1"))
    assert got.body == body


def test_config_over_4_mib_is_refused(fake: FakeRegistry) -> None:
    big = b'{"a": "' + b"x" * (5 * MiB) + b'"}'
    fake.state.blobs[digest_of(big)] = big
    with pytest.raises(RegistryError) as info:
        client().get_blob(fake.ref("team/app:v1"), digest_of(big))
    assert "more than 4 MiB" in one_line(info.value, fake.address)


def test_token_answer_over_1_mib_is_refused() -> None:
    fake = FakeRegistry(auth="bearer", anonymous_pull=True)

    def answer(conn: socket.socket, request: bytes) -> None:
        body = b'{"token": "' + b"t" * (2 * MiB) + b'"}'
        conn.sendall(head(Content_Length=str(len(body))) + body)

    try:
        with hostile(answer) as token_address:
            fake.state.realm = f"http://{token_address}/token"
            with pytest.raises(RegistryError) as info:
                client().get_manifest(fake.ref("team/app:v1"))
        assert "more than 1 MiB" in one_line(info.value, fake.address)
    finally:
        fake.close()


def test_huge_error_body_is_cut_and_still_reported() -> None:
    def answer(conn: socket.socket, request: bytes) -> None:
        conn.sendall(head("404 Not Found", Content_Length=str(600 * MiB)))
        stream(conn, 600 * MiB)

    with hostile(answer) as address:
        start = time.monotonic()
        with pytest.raises(NotFound) as info:
            client(retries=0).get_manifest(ImageRef.parse(f"{address}/team/app:v1"))
    assert "not found" in one_line(info.value, address)
    assert time.monotonic() - start < 5


# -- deadlines -------------------------------------------------------------------------------


def trickle(conn: socket.socket, data: bytes, every: float = 0.2) -> None:
    for i in range(len(data)):
        conn.sendall(data[i : i + 1])
        time.sleep(every)


@pytest.mark.parametrize("where", ["body", "headers", "nothing"])
def test_slow_answer_ends_at_the_deadline(where: str) -> None:
    body = INDEX_BODY

    def answer(conn: socket.socket, request: bytes) -> None:
        start = head(Content_Type=OCI_INDEX, Content_Length=str(len(body)))
        if where == "body":
            conn.sendall(start)
            trickle(conn, body)  # a byte every 0.2 s: each read is quick, the whole is not
        elif where == "headers":
            trickle(conn, start + body)
        else:
            time.sleep(60)  # accepted, never answered

    with hostile(answer) as address:
        registry = client(deadline=1.5, timeout=30, retries=4)
        started = time.monotonic()
        with pytest.raises(RegistryError) as info:
            registry.get_manifest(ImageRef.parse(f"{address}/team/app:v1"))
        took = time.monotonic() - started
    assert "no complete answer" in one_line(info.value, address)
    assert "within 1.5 s" in str(info.value)
    assert 1.4 < took < 3  # the deadline covers the retries too


def test_retries_stop_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRegistry(failures=[503] * 10)
    try:
        registry = client(deadline=1.0, backoff=0.4, retries=10)
        started = time.monotonic()
        with pytest.raises(RegistryError, match="503"):
            registry.get_manifest(fake.ref("team/app:v1"))
        assert time.monotonic() - started < 1.5
    finally:
        fake.close()


# -- nesting ---------------------------------------------------------------------------------

DEEP = b"[" * 200_000 + b"]" * 200_000


def test_deeply_nested_manifest_is_one_line_naming_the_registry(fake: FakeRegistry) -> None:
    fake.add("team/app", "v1", DEEP, OCI_INDEX)
    registry = client()
    with pytest.raises(RegistryError) as info:
        registry.get_manifest(fake.ref("team/app:v1"))
    assert "nested more than 100 levels" in one_line(info.value, fake.address)
    # what a build does with a base image: the same line, no RecursionError
    with pytest.raises(DockermaError) as info2:
        baseimages.lookup(registry, f"{fake.address}/team/app:v1")
    assert not isinstance(info2.value.__cause__, RecursionError)
    one_line(info2.value, fake.address)


def test_deeply_nested_config_is_refused(fake: FakeRegistry) -> None:
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"digest": digest_of(DEEP), "size": len(DEEP)},
            "layers": [],
        }
    ).encode()
    fake.add("team/app", "v1", manifest, "application/vnd.oci.image.manifest.v1+json")
    fake.state.blobs[digest_of(DEEP)] = DEEP
    with pytest.raises(DockermaError) as info:
        baseimages.lookup(client(), f"{fake.address}/team/app:v1")
    assert "nested more than 100 levels" in one_line(info.value, fake.address)


def test_deeply_nested_token_answer_is_refused() -> None:
    fake = FakeRegistry(auth="bearer", anonymous_pull=True)

    def answer(conn: socket.socket, request: bytes) -> None:
        conn.sendall(head(Content_Length=str(len(DEEP))) + DEEP)

    try:
        with hostile(answer) as token_address:
            fake.state.realm = f"http://{token_address}/token"
            with pytest.raises(RegistryError) as info:
                client().get_manifest(fake.ref("team/app:v1"))
        assert "token service nested more than 100" in one_line(info.value, fake.address)
    finally:
        fake.close()


def test_deeply_nested_error_body_is_reported_without_its_details() -> None:
    def answer(conn: socket.socket, request: bytes) -> None:
        conn.sendall(head("404 Not Found", Content_Length=str(len(DEEP))) + DEEP)

    with hostile(answer) as address, pytest.raises(NotFound) as info:
        client(retries=0).get_manifest(ImageRef.parse(f"{address}/team/app:v1"))
    assert "(Not Found)" in one_line(info.value, address)


@pytest.mark.parametrize(
    ("body", "too_deep"),
    [
        (b"{}", False),
        (INDEX_BODY, False),
        (b"[" * 100 + b"]" * 100, False),
        (b"[" * 101 + b"]" * 101, True),
        (b'{"a": "' + b"[" * 500 + b'"}', False),  # brackets in strings do not count
        (b'{"a": "\\"' + b"[" * 500 + b'"}', False),  # nor after an escaped quote
        (b"[]" * 10_000, False),
        (b"[" * 200_000, True),  # not even valid JSON: still refused, not parsed
    ],
)
def test_json_too_deep(body: bytes, too_deep: bool) -> None:
    assert transport.json_too_deep(body) is too_deep
