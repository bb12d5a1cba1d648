"""Words of a Dockerfile instruction, as BuildKit lexes them: raw words, and `$VAR` expansion."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Optional

_VARIABLE = re.compile(r"[A-Za-z0-9_]+")

Values = Mapping[str, Optional[str]]  # None: declared, but without a value


class Missing(Exception):
    """A word needs a variable that has no value."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class BadWord(Exception):
    """A word BuildKit would refuse (unterminated quote, bad substitution); the message says
    what is wrong, to follow the word."""


def words(text: str, escape: str) -> list[str]:
    """Split at blanks outside quotes, keeping quotes and escapes (BuildKit's raw words)."""
    found: list[str] = []
    current: list[str] = []
    quote = ""
    in_word = False
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            current.append(char)
            if char == escape and quote == '"' and index + 1 < len(text):
                index += 1
                current.append(text[index])
            elif char == quote:
                quote = ""
        elif char == escape and index + 1 < len(text):
            index += 1
            current += [char, text[index]]
            in_word = True
        elif char.isspace():
            if in_word:
                found.append("".join(current))
                current, in_word = [], False
        else:
            if char in "'\"":
                quote = char
            current.append(char)
            in_word = True
        index += 1
    if in_word:
        found.append("".join(current))
    return found


def expand(word: str, values: Values, escape: str) -> str:
    """BuildKit's word expansion (quotes, escapes, $VAR and ${VAR…} forms), strict on unset:
    Missing names the first variable without a value, BadWord a word BuildKit refuses."""
    text, _, missing = _lex(word, 0, values, escape, in_braces=False)
    if missing is not None:
        raise Missing(missing)
    return text


def _lex(
    word: str, index: int, values: Values, escape: str, *, in_braces: bool
) -> tuple[str, int, str | None]:
    """Expand from `index` to the end (or to the closing brace). This and the helpers below
    answer (the text, where it ended, the first name without a value)."""
    out: list[str] = []
    missing: str | None = None
    while index < len(word):
        char = word[index]
        if in_braces and char == "}":
            return "".join(out), index + 1, missing
        unset = None
        if char == escape:
            text, index = (word[index + 1] if index + 1 < len(word) else char), index + 2
        elif char == "'":
            close = word.find("'", index + 1)
            if close < 0:
                raise BadWord("has an unterminated single quote")
            text, index = word[index + 1 : close], close + 1
        elif char == '"':
            text, index, unset = _double_quoted(word, index + 1, values, escape)
        elif char == "$":
            text, index, unset = _dollar(word, index, values, escape)
        else:
            text, index = char, index + 1
        out.append(text)
        missing = missing or unset
    if in_braces:
        raise BadWord("has a ${ without its closing }")
    return "".join(out), index, missing


def _double_quoted(
    word: str, index: int, values: Values, escape: str
) -> tuple[str, int, str | None]:
    """From just after an opening `"` to just after its closing one."""
    out: list[str] = []
    missing: str | None = None
    while index < len(word):
        char = word[index]
        if char == '"':
            return "".join(out), index + 1, missing
        if char == escape and index + 1 < len(word) and word[index + 1] in f'"${escape}':
            out.append(word[index + 1])
            index += 2
        elif char == "$":
            text, index, unset = _dollar(word, index, values, escape)
            out.append(text)
            missing = missing or unset
        else:
            out.append(char)
            index += 1
    raise BadWord("has an unterminated double quote")


def _dollar(word: str, index: int, values: Values, escape: str) -> tuple[str, int, str | None]:
    """One `$…` at `index`."""
    index += 1
    if index < len(word) and word[index] == "{":
        return _braced(word, index + 1, values, escape)
    match = _VARIABLE.match(word, index)
    if not match:
        return "$", index, None
    value = values.get(match.group())
    if value is None:
        return "", match.end(), match.group()
    return value, match.end(), None


def _braced(word: str, index: int, values: Values, escape: str) -> tuple[str, int, str | None]:
    """`${NAME}`, `${NAME-…}`, `${NAME:+…}`, …, from just after the `{`."""
    match = _VARIABLE.match(word, index)
    if not match:
        raise BadWord("has a bad substitution")
    name, index = match.group(), match.end()
    value = values.get(name)
    if index >= len(word):
        raise BadWord("has a ${ without its closing }")
    if word[index] == "}":
        return (value, index + 1, None) if value is not None else ("", index + 1, name)
    colon = word[index] == ":"
    operator = word[index + 1 : index + 2] if colon else word[index]
    if operator not in ("-", "+", "?"):
        raise BadWord(f"uses ${{{name}{word[index : index + 2]}…}}, which dockerma cannot expand")
    alternative, index, unset = _lex(
        word, index + (2 if colon else 1), values, escape, in_braces=True
    )
    # With a colon, an empty value counts as unset (as in sh).
    is_set = value is not None and (value != "" or not colon)
    if operator == "-":
        return (value or "", index, None) if is_set else (alternative, index, unset)
    if operator == "+":
        return (alternative, index, unset) if is_set else ("", index, None)
    return (value or "", index, None) if is_set else ("", index, name)
