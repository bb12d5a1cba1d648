"""TLS as docker sets it up for a registry: the system's CAs plus certs.d's CAs and client
certificates, verification off only for an insecure registry without a CA of its own."""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Sequence

from dockerma.registry.errors import RegistryError, describe

DEFAULT_CERTS_DIR = "/etc/docker/certs.d"


def certs_for(
    certs_dirs: Sequence[str], names: Sequence[str]
) -> tuple[list[str], list[tuple[str, str]]]:
    """(CA files, (certificate, key) pairs) certs.d holds for a registry's names."""
    # docker's certs.d layout: <dir>/<host:port>/*.crt are CAs, *.cert + *.key client pairs.
    cas: list[str] = []
    pairs: list[tuple[str, str]] = []
    for base in certs_dirs:
        for name in dict.fromkeys(names):
            folder = os.path.join(base, name)
            try:
                files = sorted(os.listdir(folder))
            except OSError:
                continue
            for file in files:
                full = os.path.join(folder, file)
                if file.endswith(".crt"):
                    cas.append(full)
                elif file.endswith(".cert"):
                    key_file = full[: -len(".cert")] + ".key"
                    if not os.path.exists(key_file):
                        raise RegistryError(
                            f"client certificate {full} has no key {key_file}; "
                            "add the key or remove the certificate (docker refuses it too)"
                        )
                    pairs.append((full, key_file))
    return cas, pairs


class Contexts:
    """One SSLContext per (registry names, insecure), built on first use; safe to share."""

    def __init__(self, certs_dirs: Sequence[str]) -> None:
        self.certs_dirs = tuple(certs_dirs)
        self._lock = threading.Lock()
        self._made: dict[tuple[tuple[str, ...], bool], ssl.SSLContext] = {}

    @property
    def shown_dir(self) -> str:
        """Where a message tells the user to put a CA."""
        return self.certs_dirs[0] if self.certs_dirs else DEFAULT_CERTS_DIR

    def has_files(self, names: Sequence[str]) -> bool:
        return certs_for(self.certs_dirs, names) != ([], [])

    def get(self, names: tuple[str, ...], *, insecure: bool) -> ssl.SSLContext:
        key = (names, insecure)
        with self._lock:
            context = self._made.get(key)
        if context is not None:
            return context
        cas, pairs = certs_for(self.certs_dirs, names)
        context = ssl.create_default_context()  # the system's CAs, as docker keeps them
        try:
            for ca in cas:
                context.load_verify_locations(cafile=ca)
            for cert, key_file in pairs:
                context.load_cert_chain(cert, key_file)
        except (OSError, ssl.SSLError) as err:
            raise RegistryError(
                f"cannot load the certificates for {names[0]} from certs.d: {describe(err)}; "
                "fix or remove the broken file"
            ) from None
        if insecure and not cas:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        with self._lock:
            self._made[key] = context
        return context
