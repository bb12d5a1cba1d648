"""What the benchmarks print: tables and verdicts to stdout, progress to stderr."""

from __future__ import annotations

import sys
from collections import Counter


def log(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def out(msg: str = "") -> None:
    print(msg, flush=True)


def table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    out("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    out("  ".join("-" * w for w in widths))
    for r in rows:
        out("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def counts(seen: Counter[str]) -> str:
    """`kind ×n, …` in the order first seen."""
    return ", ".join(f"{k} ×{n}" for k, n in seen.items())
