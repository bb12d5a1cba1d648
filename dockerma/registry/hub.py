"""Docker Hub on the registry side: its API host and the key its credentials are filed under
(the names themselves are core.references', which the references use too)."""

from __future__ import annotations

from dockerma.core.references import HUB_API_HOST, HUB_CREDENTIALS_KEY, HUB_NAMES

API_HOST = HUB_API_HOST
CREDENTIALS_KEY = HUB_CREDENTIALS_KEY


def is_hub(registry: str) -> bool:
    return registry.lower() in HUB_NAMES


def api_host(registry: str) -> str:
    """The host:port a registry's API answers on."""
    return API_HOST if is_hub(registry) else registry
