"""output.py: prefixed padded lines, colour only on a terminal without NO_COLOR, whole lines."""

from __future__ import annotations

import io
import re
import threading
import time

import pytest

from dockerma.output import Output, colour_wanted, printable

LABELS = ["arm", "amd64", "arm64", "armv6"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Choppy(io.StringIO):
    """A stream that writes a character at a time and yields the GIL in between, so writes
    from threads that are not serialised interleave."""

    def write(self, text: str) -> int:
        for i, ch in enumerate(text):
            super().write(ch)
            if i % 8 == 0:
                time.sleep(0)
        return len(text)


@pytest.fixture(autouse=True)
def no_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.mark.parametrize(
    ("labels", "label", "text", "expected"),
    [
        (LABELS, "arm", "step 1", "[arm]   step 1\n"),
        (LABELS, "amd64", "step 1", "[amd64] step 1\n"),
        (["386", "arm64"], "386", "x", "[386]   x\n"),
        (["386", "arm64"], "arm64", "", "[arm64] \n"),
        ([], "arm", "y", "[arm] y\n"),
    ],
)
def test_line_is_prefixed_and_padded(
    labels: list[str], label: str, text: str, expected: str
) -> None:
    out = io.StringIO()
    Output(out, io.StringIO(), labels=labels).line(label, text)
    assert out.getvalue() == expected


def test_set_labels_changes_the_padding() -> None:
    out = io.StringIO()
    o = Output(out, io.StringIO())
    o.set_labels(["arm", "riscv64"])
    o.line("arm", "a")
    assert out.getvalue() == "[arm]     a\n"


def test_no_colour_when_not_a_tty() -> None:
    out, err = io.StringIO(), io.StringIO()
    o = Output(out, err, labels=LABELS)
    o.line("arm", "hello")
    o.error("bad")
    assert "\033" not in out.getvalue() + err.getvalue()
    assert err.getvalue() == "dockerma: error: bad\n"


def test_colour_on_a_tty() -> None:
    out, err = Terminal(), Terminal()
    o = Output(out, err, labels=LABELS)
    o.line("arm", "hello")
    o.line("amd64", "hello")
    o.error("bad")
    lines = out.getvalue().splitlines()
    assert all(re.match(r"^\033\[\d+m\[\w+\]\s*\033\[0m hello$", line) for line in lines)
    assert lines[0][:5] != lines[1][:5], "each architecture has its own colour"
    assert "\033[31m" in err.getvalue()


@pytest.mark.parametrize("value", ["1", "", "0"])
def test_no_color_even_on_a_tty(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("NO_COLOR", value)
    out, err = Terminal(), Terminal()
    o = Output(out, err, labels=LABELS)
    o.line("arm", "hello")
    o.error("bad")
    assert out.getvalue() == "[arm]   hello\n"
    assert err.getvalue() == "dockerma: error: bad\n"


@pytest.mark.parametrize(
    ("stream", "wanted"),
    [(io.StringIO(), False), (Terminal(), True), (object(), False)],
)
def test_colour_wanted(stream: object, wanted: bool) -> None:
    assert colour_wanted(stream) is wanted  # type: ignore[arg-type]


def test_closed_stream_wants_no_colour() -> None:
    stream = io.StringIO()
    stream.close()
    assert colour_wanted(stream) is False


def test_quiet_keeps_results_and_errors() -> None:
    out, err = io.StringIO(), io.StringIO()
    o = Output(out, err, labels=LABELS, quiet=True)
    o.line("arm", "progress")
    o.info("info")
    o.table(["A"], [["x"]])
    o.result("sha256:abc")
    o.warn("careful")
    o.error("bad")
    assert out.getvalue() == "sha256:abc\n"
    assert err.getvalue() == "dockerma: warning: careful\ndockerma: error: bad\n"


def test_table_is_aligned() -> None:
    out = io.StringIO()
    Output(out, io.StringIO()).table(
        ["ARCH", "TAGS", "RESULT"],
        [["arm", "app:v1-arm", "ok"], ["arm64", "-", "failed"]],
    )
    assert out.getvalue().splitlines() == [
        "ARCH   TAGS        RESULT",
        "arm    app:v1-arm  ok",
        "arm64  -           failed",
    ]


def test_threads_never_interleave_mid_line() -> None:
    out = Choppy()
    labels = [f"t{i}" for i in range(8)]
    o = Output(out, io.StringIO(), labels=labels)
    start = threading.Barrier(len(labels))

    def work(label: str) -> None:
        start.wait()
        for n in range(200):
            o.line(label, f"{label} line {n} " + "x" * 20)

    threads = [threading.Thread(target=work, args=(label,)) for label in labels]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 8 * 200
    pattern = re.compile(r"^\[(t\d)\] (t\d) line (\d+) x{20}$")
    seen: dict[str, list[int]] = {label: [] for label in labels}
    for line in lines:
        m = pattern.match(line)
        assert m, f"interleaved line: {line!r}"
        assert m.group(1) == m.group(2), f"interleaved line: {line!r}"
        seen[m.group(1)].append(int(m.group(3)))
    assert all(numbers == list(range(200)) for numbers in seen.values())


# Issue 17, item 8: control characters from outside never reach the terminal as they are.
ESC = "\x1b"
HOSTILE = [
    (f"{ESC}[2J{ESC}[Hcleared", "\\x1b[2J\\x1b[Hcleared"),
    (f"{ESC}]0;title\x07", "\\x1b]0;title\\x07"),
    ("over\rwrite", "over\\x0dwrite"),
    ("back\x08space", "back\\x08space"),
    ("\x9b31mcsi", "\\x9b31mcsi"),
    ("del\x7f", "del\\x7f"),
    ("two\nlines", "two\\x0alines"),
    ("rtl\u202eevil", "rtl\\u202eevil"),
    ("sep\u2028x", "sep\\u2028x"),
    ("tab\tstays, ünïcödé stays", "tab\tstays, ünïcödé stays"),
    ("postgres://u:pw@h/db", "postgres://u:***@h/db"),
]


@pytest.mark.parametrize(("raw", "shown"), HOSTILE, ids=repr)
def test_printable(raw: str, shown: str) -> None:
    assert printable(raw) == shown


@pytest.mark.parametrize(("raw", "shown"), HOSTILE[:6], ids=repr)
def test_every_kind_of_line_is_printable(raw: str, shown: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    o = Output(out, err, labels=["amd64"])
    o.line("amd64", raw)
    o.info(f"a\n{raw}")
    o.result(raw)
    o.warn(raw)
    o.error(raw)
    o.table(["H"], [[raw]])
    assert ESC not in out.getvalue() + err.getvalue()
    assert out.getvalue().count(shown) == 4 and err.getvalue().count(shown) == 2
