"""Docker Hub's names on the registry side: its API and its credentials live under other
names than the `docker.io` references use."""

from __future__ import annotations

from dockerma.core.references import DEFAULT_DOMAIN

API_HOST = "registry-1.docker.io"
NAMES = (DEFAULT_DOMAIN, "index.docker.io", API_HOST)
# docker keeps Docker Hub's credentials under the old v1 index URL, not under "docker.io".
CREDENTIALS_KEY = "https://index.docker.io/v1/"


def is_hub(registry: str) -> bool:
    return registry.lower() in NAMES


def api_host(registry: str) -> str:
    """The host:port a registry's API answers on."""
    return API_HOST if is_hub(registry) else registry
