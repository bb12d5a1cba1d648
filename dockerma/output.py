"""The only writer to the terminal: whole lines under a lock, prefixed per platform."""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import TextIO

from dockerma.core.masking import mask_urls

_COLOURS = ("36", "35", "33", "32", "34", "31", "96", "95", "93", "92")

# What a terminal acts on instead of showing: C0 controls but tab (ESC starts colour, cursor
# and title sequences; CR and BS overwrite what was printed; BEL rings), DEL, C1 controls
# (CSI is also U+009B), the Unicode line and paragraph separators and the bidirectional
# overrides that reorder what is shown. A registry's error body, a platform string or a line
# of docker output shows them escaped (`\x1b`), never as what they do. (BuildKit's plain
# progress, which dockerma asks for, has no escape sequences of its own.)
_CONTROL = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """text as a terminal should show it: one line, every control character but tab escaped
    (as `\\x1b`), every URL password masked (masking.mask_urls)."""
    return _CONTROL.sub(_escape, mask_urls(text))


def _lines(text: str) -> str:
    """printable() for each line of a text meant to be several lines (a table, a Dockerfile)."""
    return "\n".join(printable(line) for line in text.split("\n"))


class PrintableFormatter(logging.Formatter):
    """Debug log lines made printable like every other line dockerma writes."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def colour_wanted(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if "NO_COLOR" in os.environ:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Output:
    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        *,
        labels: Sequence[str] = (),
        quiet: bool = False,
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.quiet = quiet
        self._lock = threading.Lock()
        self._colour = colour_wanted(self.out)
        self.set_labels(labels)

    def set_labels(self, labels: Sequence[str]) -> None:
        """The platform labels lines will carry: their width and a colour each."""
        self._width = max((len(x) for x in labels), default=0)
        self._codes = {label: _COLOURS[i % len(_COLOURS)] for i, label in enumerate(labels)}

    def _write(self, stream: TextIO, text: str) -> None:
        with self._lock:
            stream.write(text + "\n")
            stream.flush()

    def line(self, label: str, text: str) -> None:
        """One line of a platform's work, as `[arm64] text`."""
        if self.quiet:
            return
        tag = f"[{label}]".ljust(self._width + 2)
        if self._colour:
            tag = f"\033[{self._codes.get(label, '1')}m{tag}\033[0m"
        self._write(self.out, f"{tag} {printable(text)}")

    def info(self, text: str) -> None:
        if not self.quiet:
            self._write(self.out, _lines(text))

    def result(self, text: str) -> None:
        """A line the user asked for (a digest, an image id): printed even with -q."""
        self._write(self.out, printable(text))

    def warn(self, text: str) -> None:
        self._write(self.err, f"dockerma: warning: {printable(text)}")

    def error(self, text: str) -> None:
        msg = f"dockerma: error: {printable(text)}"
        if colour_wanted(self.err):
            msg = f"\033[31m{msg}\033[0m"
        self._write(self.err, msg)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A plain aligned table (the closing summary)."""
        if self.quiet:
            return
        widths = [len(h) for h in headers]
        for row in rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*headers).rstrip()]
        lines += [fmt.format(*row).rstrip() for row in rows]
        self._write(self.out, _lines("\n".join(lines)))


def debug_log() -> None:
    """--debug: dockerma's log lines on stderr, made printable like every other line."""
    handler = logging.StreamHandler()
    handler.setFormatter(PrintableFormatter("dockerma: debug: %(message)s"))
    logging.basicConfig(handlers=[handler], level=logging.DEBUG)


def boundary(text: str) -> None:
    """A line of the CLI's error boundary (`dockerma: error: …`, click's help) on stderr, as it
    is: its parts were made printable where they came in."""
    sys.stderr.write(text + "\n")


def traceback_now() -> None:
    """The traceback of the exception being handled, for --debug."""
    traceback.print_exc()


def flush() -> bool:
    """Flush both streams before leaving; False when stdout's reader went away
    (`dockerma build … | head`)."""
    ok = True
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        ok = False
    sys.stderr.flush()
    return ok
