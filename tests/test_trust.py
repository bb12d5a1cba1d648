"""Plain HTTP and TLS (certs.d, scheme negotiation) and the trust boundaries: which registry
is insecure, and that its trust reaches no other host."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError
from dockerma.registry import hub, trust
from dockerma.registry.client import (
    OCI_INDEX,
    RegistryError,
)
from tests.test_registry import (
    INDEX_BODY,
    PASSWORD,
    FakeRegistry,
    client,
    digest_of,
    logged_in,
)


def seems_remote(monkeypatch: pytest.MonkeyPatch, address: str = "192.0.2.1") -> None:
    """Every registry name resolves to `address` (TEST-NET-1: not loopback) for the client's
    trust decisions; the connection itself still goes to the fake registry on loopback."""
    found = (ipaddress.ip_address(address),)
    monkeypatch.setattr(trust, "addresses", lambda registry: found)


def go_like_tls_port(
    on_tls: Callable[[socket.socket], None], seen: list[str] | None = None
) -> tuple[socket.socket, int]:
    """A loopback port that answers plain HTTP as Go's TLS server does (400 "Client sent an
    HTTP request to an HTTPS server"; "http" added to seen) and hands each TLS connection to
    on_tls."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                if conn.recv(1, socket.MSG_PEEK) == b"\x16":
                    on_tls(conn)
                else:
                    conn.recv(65536)
                    if seen is not None:
                        seen.append("http")
                    conn.sendall(
                        b"HTTP/1.0 400 Bad Request\r\n\r\n"
                        b"Client sent an HTTP request to an HTTPS server.\n"
                    )

    threading.Thread(target=serve, daemon=True).start()
    return listener, listener.getsockname()[1]


@dataclass(frozen=True)
class Pki:
    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        if os.environ.get("DOCKERMA_E2E") == "require":  # the test bed installs openssl
            pytest.fail("the openssl CLI is needed to make a throwaway CA")
        pytest.skip("the openssl CLI is needed to make a throwaway CA")
    folder = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for name in ("ca", "other-ca"):
        _openssl(
            "req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.crt",
            "-days", "2", "-subj", f"/CN=dockerma test {name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=folder,
        )  # fmt: skip
    (folder / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    (folder / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl(
            "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN=dockerma test {name}", cwd=folder,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
            "-extfile", f"{name}.ext", cwd=folder,
        )  # fmt: skip
    return Pki(
        folder / "ca.crt",
        folder / "other-ca.crt",
        folder / "server.crt",
        folder / "server.key",
        folder / "client.crt",
        folder / "client.key",
    )


def tls_registry(pki: Pki, client_ca: Path | None = None, host: str = "127.0.0.1") -> FakeRegistry:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return FakeRegistry(tls=context, host=host)


def certs_d(tmp_path: Path, address: str, files: dict[str, Path]) -> str:
    folder = tmp_path / "certs.d" / address
    folder.mkdir(parents=True)
    for name, source in files.items():
        shutil.copy(source, folder / name)
    return str(tmp_path / "certs.d")


def bearer_pair(registry: FakeRegistry, token_server: FakeRegistry) -> None:
    """`registry` names `token_server`'s /token in its challenges and accepts its tokens."""
    registry.state.auth = "bearer"
    registry.state.realm = f"{token_server.state.base_url}/token"
    token_server.state.tokens = registry.state.tokens


def dual_registry(pki: Pki) -> FakeRegistry:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    return FakeRegistry(context, both=True)


# -- plain HTTP and TLS ----------------------------------------------------------------------


def test_loopback_speaks_plain_http_first_and_remembers(fake: FakeRegistry) -> None:
    fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    registry = client()
    registry.get_manifest(fake.ref("team/app:v1"))
    registry.get_manifest(fake.ref("team/app:v1"))
    assert fake.state.tls_probes == 0  # no TLS handshake tried against a loopback registry
    assert len(fake.state.requests) == 2
    assert registry._session.schemes == {fake.address: "http"}


def test_insecure_remote_registry_tries_https_first(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docker's order for a listed insecure registry that is not loopback: HTTPS, then HTTP.
    seems_remote(monkeypatch)
    fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    registry = client(insecure_registries=[fake.address])
    registry.get_manifest(fake.ref("team/app:v1"))
    registry.get_manifest(fake.ref("team/app:v1"))
    assert fake.state.tls_probes == 1
    assert len(fake.state.requests) == 2


def test_secure_registry_never_falls_back(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    seems_remote(monkeypatch)
    with pytest.raises(RegistryError, match="does not speak HTTPS.*insecure-registries"):
        client().get_manifest(fake.ref("team/app:v1"))
    assert fake.state.requests == []


def test_tls_port_answering_http_is_not_taken_for_plain_http() -> None:
    # Like docker-registry with TLS when the handshake breaks: a reset on TLS, and a plain
    # 400 "Client sent an HTTP request to an HTTPS server" to plain HTTP.
    def reset(conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")

    listener, port = go_like_tls_port(reset)
    registry = client(retries=0)
    try:
        with pytest.raises(RegistryError) as info:
            registry.get_manifest(ImageRef.parse(f"127.0.0.1:{port}/team/app:v1"))
    finally:
        listener.close()
    assert "answered 400" not in str(info.value)
    assert registry._session.schemes == {}


@pytest.mark.parametrize(
    ("registry", "insecure_registries", "insecure", "expected"),
    [
        ("127.0.0.1:5000", (), (), True),
        ("localhost:5000", (), (), True),
        ("reg.example:5000", (), (), False),
        ("reg.example:5000", ("reg.example:5000",), (), True),
        ("reg.example:5000", ("reg.example:5001",), (), False),
        ("10.1.2.3:5000", ("10.0.0.0/8",), (), True),
        ("192.168.1.2:5000", ("10.0.0.0/8", "127.0.0.0/8"), (), False),
        ("reg.example:5000", (), ("reg.example:5000",), True),
        # --insecure names one registry (host:port): not another port, not another host
        ("reg.example:5001", (), ("reg.example:5000",), False),
        ("docker.io", (), ("reg.example:5000",), False),
    ],
)
def test_which_registries_are_insecure(
    registry: str,
    insecure_registries: tuple[str, ...],
    insecure: tuple[str, ...],
    expected: bool,
) -> None:
    client_ = client(insecure=insecure, insecure_registries=insecure_registries)
    assert client_.is_insecure(registry) is expected


def test_docker_hub_is_reached_on_its_api_host() -> None:
    assert hub.api_host("docker.io") == "registry-1.docker.io"
    assert hub.api_host("127.0.0.1:5000") == "127.0.0.1:5000"


def test_tls_registry_verified_with_the_certs_d_ca(pki: Pki, tmp_path: Path) -> None:
    server = tls_registry(pki)
    try:
        server.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
        certs = certs_d(tmp_path, server.address, {"ca.crt": pki.ca})
        registry = client(certs_dirs=[certs])
        assert registry.get_manifest(server.ref("team/app:v1")).body == INDEX_BODY
        assert registry._session.schemes[server.address] == "https"
    finally:
        server.close()


def test_tls_registry_with_a_foreign_ca_fails_without_fallback(pki: Pki, tmp_path: Path) -> None:
    server = tls_registry(pki)
    try:
        certs = certs_d(tmp_path, server.address, {"ca.crt": pki.other_ca})
        with pytest.raises(RegistryError) as info:
            client(certs_dirs=[certs]).get_manifest(server.ref("team/app:v1"))
        assert "cannot verify the TLS certificate" in str(info.value)
        assert f"{server.address}/ca.crt" in str(info.value)
        assert server.state.requests == []
    finally:
        server.close()


def test_loopback_tls_without_a_ca_is_not_verified(pki: Pki) -> None:
    server = tls_registry(pki)
    try:
        server.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
        assert client().get_manifest(server.ref("team/app:v1")).body == INDEX_BODY
    finally:
        server.close()


def test_tls_client_certificate_from_certs_d(pki: Pki, tmp_path: Path) -> None:
    server = tls_registry(pki, client_ca=pki.ca)
    try:
        server.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
        certs = certs_d(
            tmp_path,
            server.address,
            {"ca.crt": pki.ca, "client.cert": pki.client_cert, "client.key": pki.client_key},
        )
        assert client(certs_dirs=[certs]).get_manifest(server.ref("team/app:v1"))
    finally:
        server.close()


def test_tls_bearer_flow_with_credentials(pki: Pki, tmp_path: Path) -> None:
    server = tls_registry(pki)
    try:
        server.state.auth = "bearer"
        certs = certs_d(tmp_path, server.address, {"ca.crt": pki.ca})
        registry = client(logged_in(tmp_path / "cfg", server.address), certs_dirs=[certs])
        ref = server.ref("dockerma-scratch/app:v1")
        registry.check_push_access(ref)
        digest = registry.put_manifest(ref, INDEX_BODY, OCI_INDEX)
        assert registry.get_manifest(ref).digest == digest
    finally:
        server.close()


def test_client_certificate_without_key_is_an_error(pki: Pki, tmp_path: Path) -> None:
    certs = certs_d(tmp_path, "127.0.0.1:1", {"client.cert": pki.client_cert})
    with pytest.raises(DockermaError, match="has no key"):
        client(certs_dirs=[certs]).get_manifest(ImageRef.parse("127.0.0.1:1/a:b"))


def test_loopback_tls_registry_answering_plain_http_with_400_is_spoken_to_in_https(
    pki: Pki,
) -> None:
    # Like docker-registry with TLS (Go): plain HTTP gets 400 "Client sent an HTTP request to
    # an HTTPS server"; dockerma then speaks HTTPS to it (no CA given: a loopback registry's
    # certificate is not verified, as docker does) and remembers that.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    seen: list[str] = []

    def answer(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)
            seen.append("https")
            tls.sendall(
                b"HTTP/1.0 200 OK\r\nContent-Type: " + OCI_INDEX.encode() + b"\r\n"
                b"Content-Length: " + str(len(INDEX_BODY)).encode() + b"\r\n\r\n" + INDEX_BODY
            )

    listener, port = go_like_tls_port(answer, seen)
    registry = client(retries=0)
    try:
        ref = ImageRef.parse(f"127.0.0.1:{port}/team/app:v1")
        assert registry.get_manifest(ref).body == INDEX_BODY
        assert registry.get_manifest(ref).body == INDEX_BODY
    finally:
        listener.close()
    assert seen == ["http", "https", "https"]
    assert registry._session.schemes == {f"127.0.0.1:{port}": "https"}


# -- trust boundaries (issue 17, items 1 and 4) ------------------------------------------------
# --insecure, the daemon's list and loopback relax TLS for one registry (host:port) only;
# credentials never go over plain HTTP to anything but a plain-HTTP registry, and never follow
# a redirect to another origin.


def test_insecure_does_not_reach_the_token_service(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --insecure names a plain-HTTP registry; its token service is another host:port whose
    # certificate nothing vouches for: it must be verified (and fail), never trusted blindly.
    seems_remote(monkeypatch)
    token_server = tls_registry(pki)
    fake = FakeRegistry()
    try:
        bearer_pair(fake, token_server)
        fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
        registry = client(logged_in(tmp_path, fake.address), insecure=[fake.address])
        with pytest.raises(RegistryError) as info:
            registry.get_manifest(fake.ref("team/app:v1"))
        assert str(info.value).startswith(
            f"cannot verify the TLS certificate of {token_server.address} (where registry "
            f"{fake.address} sends dockerma)"
        )
        # the hint names where dockerma looks for the token service's CA, not the registry's
        assert f"certs.d/{token_server.address}/ca.crt" in str(info.value)
        assert token_server.state.token_requests == []  # the credentials never left
    finally:
        fake.close()
        token_server.close()


def test_loopback_registry_does_not_make_its_token_service_unverified(
    pki: Pki, tmp_path: Path
) -> None:
    # The same for the automatic rule: a loopback registry may speak plain HTTP; a token
    # service on another port of the machine is still verified.
    token_server = tls_registry(pki)
    fake = FakeRegistry()
    try:
        bearer_pair(fake, token_server)
        registry = client(logged_in(tmp_path, fake.address))
        with pytest.raises(RegistryError, match="cannot verify the TLS certificate"):
            registry.get_manifest(fake.ref("team/app:v1"))
        # ... and with its CA in certs.d the same flow works
        certs = certs_d(tmp_path, token_server.address, {"ca.crt": pki.ca})
        fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
        registry = client(logged_in(tmp_path, fake.address), certs_dirs=[certs])
        assert registry.get_manifest(fake.ref("team/app:v1")).body == INDEX_BODY
    finally:
        fake.close()
        token_server.close()


def test_token_service_verified_with_the_registry_certs_d_ca(pki: Pki, tmp_path: Path) -> None:
    # docker verifies the token service with the registry's TLS configuration: the CA in
    # certs.d/<registry>/ alone must do for a token service on another port (as in the bed).
    token_server = tls_registry(pki)
    server = tls_registry(pki)
    try:
        bearer_pair(server, token_server)
        server.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
        certs = certs_d(tmp_path, server.address, {"ca.crt": pki.ca})
        registry = client(logged_in(tmp_path / "cfg", server.address), certs_dirs=[certs])
        assert registry.get_manifest(server.ref("team/app:v1")).body == INDEX_BODY
        assert len(token_server.state.token_requests) == 1
    finally:
        server.close()
        token_server.close()


def test_insecure_does_not_reach_a_redirect_elsewhere(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seems_remote(monkeypatch)
    storage = tls_registry(pki)
    fake = FakeRegistry()
    try:
        config = b'{"architecture": "amd64"}'
        fake.state.blobs[digest_of(config)] = storage.state.blobs[digest_of(config)] = config
        fake.state.redirect_blobs_to = f"https://localhost:{storage.address.split(':')[1]}/storage/"
        registry = client(insecure=[fake.address])
        with pytest.raises(RegistryError) as info:
            registry.get_blob(fake.ref("team/app:v1"), digest_of(config))
        assert str(info.value).startswith("cannot verify the TLS certificate of localhost:")
        assert storage.state.storage_requests == []
    finally:
        fake.close()
        storage.close()


def test_insecure_does_not_reach_other_images_registries(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    # build --insecure -t A/app: a base image on registry B is verified as usual.
    seems_remote(monkeypatch)
    base_registry = tls_registry(pki)
    fake = FakeRegistry()
    try:
        base_registry.add("library/base", "1", INDEX_BODY, OCI_INDEX)
        fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
        warnings: list[str] = []
        registry = client(insecure=[fake.address], on_warning=warnings.append)
        assert registry.get_manifest(fake.ref("team/app:v1")).body == INDEX_BODY
        with pytest.raises(RegistryError, match="cannot verify the TLS certificate"):
            registry.get_manifest(base_registry.ref("library/base:1"))
        assert base_registry.state.requests == []
        registry.get_manifest(fake.ref("team/app:v1"))
        # said once, naming the one registry
        assert len(warnings) == 1
        assert f"registry {fake.address} is treated as insecure" in warnings[0]
    finally:
        fake.close()
        base_registry.close()


def test_daemon_cidr_pins_the_connection_to_the_matching_address(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A name is plain HTTP because it resolved into an insecure network: the connections go
    # to that address, even when the name resolves elsewhere by then (DNS rebinding).
    fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
    port = fake.address.split(":")[1]
    real = socket.getaddrinfo
    answers = iter([["127.0.0.1", "192.0.2.1"]])  # the first answer; later ones go elsewhere

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        if host != "dev.example":
            return real(host, *args, **kwargs)
        addresses = next(answers, ["192.0.2.1"])
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    registry = client(timeout=2, retries=0)
    ref = ImageRef.parse(f"dev.example:{port}/team/app:v1")
    assert registry.is_insecure(ref.registry)
    assert registry.get_manifest(ref).body == INDEX_BODY
    assert fake.state.requests[0].headers["Host"] == f"dev.example:{port}"


def test_http_realm_is_refused_for_an_https_registry(pki: Pki, tmp_path: Path) -> None:
    token_server = FakeRegistry()
    server = tls_registry(pki)
    try:
        bearer_pair(server, token_server)
        certs = certs_d(tmp_path, server.address, {"ca.crt": pki.ca})
        registry = client(logged_in(tmp_path / "cfg", server.address), certs_dirs=[certs])
        with pytest.raises(RegistryError) as info:
            registry.get_manifest(server.ref("team/app:v1"))
        message = str(info.value)
        assert f"registry {server.address} names its token service at plain HTTP" in message
        assert "\n" not in message and PASSWORD not in message
        assert token_server.state.token_requests == []  # no credentials in clear text
    finally:
        server.close()
        token_server.close()


def test_http_realm_elsewhere_is_used_for_a_plain_http_registry(tmp_path: Path) -> None:
    # The registry itself is plain HTTP: its credentials cross in clear text anyway.
    token_server, fake = FakeRegistry(), FakeRegistry()
    try:
        bearer_pair(fake, token_server)
        fake.add("team/app", "v1", INDEX_BODY, OCI_INDEX)
        registry = client(logged_in(tmp_path, fake.address))
        assert registry.get_manifest(fake.ref("team/app:v1")).body == INDEX_BODY
        assert len(token_server.state.token_requests) == 1
    finally:
        fake.close()
        token_server.close()


def test_redirect_from_https_to_http_is_refused(pki: Pki, tmp_path: Path) -> None:
    server = dual_registry(pki)
    try:
        config = b'{"architecture": "amd64"}'
        server.state.auth = "basic"
        server.state.blobs[digest_of(config)] = config
        # the same host and port, without TLS
        server.state.redirect_blobs_to = f"http://{server.address}/storage/"
        certs = certs_d(tmp_path, server.address, {"ca.crt": pki.ca})
        registry = client(logged_in(tmp_path / "cfg", server.address), certs_dirs=[certs])
        with pytest.raises(RegistryError, match="redirects to plain HTTP"):
            registry.get_blob(server.ref("team/app:v1"), digest_of(config))
        assert registry._session.schemes == {server.address: "https"}
        assert server.state.storage_requests == []
    finally:
        server.close()


def test_redirect_to_another_scheme_drops_credentials(pki: Pki, tmp_path: Path) -> None:
    # A plain-HTTP registry sending us to TLS on its own host and port: allowed, but the
    # Authorization header was for http://host:port, another origin.
    server = dual_registry(pki)
    try:
        config = b'{"architecture": "amd64"}'
        server.state.auth = "basic"
        server.state.blobs[digest_of(config)] = config
        server.state.redirect_blobs_to = f"https://{server.address}/storage/"
        registry = client(logged_in(tmp_path, server.address))
        assert registry.get_blob(server.ref("team/app:v1"), digest_of(config)) == config
        assert registry._session.schemes == {server.address: "http"}
        assert server.state.requests[-1].headers["Authorization"].startswith("Basic ")
        assert "Authorization" not in server.state.storage_requests[0].headers
    finally:
        server.close()


def test_redirect_to_http_elsewhere_is_refused_for_an_https_registry(
    pki: Pki, tmp_path: Path
) -> None:
    server, storage = tls_registry(pki), FakeRegistry()
    try:
        config = b'{"architecture": "amd64"}'
        server.state.blobs[digest_of(config)] = storage.state.blobs[digest_of(config)] = config
        server.state.redirect_blobs_to = f"http://{storage.address}/storage/"
        certs = certs_d(tmp_path, server.address, {"ca.crt": pki.ca})
        with pytest.raises(RegistryError, match="redirects to plain HTTP"):
            client(certs_dirs=[certs]).get_blob(server.ref("team/app:v1"), digest_of(config))
        assert storage.state.storage_requests == []
    finally:
        server.close()
        storage.close()
