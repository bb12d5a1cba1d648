"""dockerma: multi-arch images with `docker build` and `docker push` as you know them."""

from __future__ import annotations

try:
    from dockerma._version import version as __version__
except ImportError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
