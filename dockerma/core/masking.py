"""What never reaches the terminal: build-arg values in error lines, secrets, URL passwords.

Pure text functions, imported by the error types and the docker module alike (no import of
either, so both can use them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

# Words that mark a build argument's value as a secret: it is shown as *** in every log line,
# dry-run command and error message dockerma prints. PAT: GitHub's personal access tokens
# (GH_PAT), as a word of the name only (PATH, PATCH are no secrets).
SECRET_NAME = re.compile(r"PASS|TOKEN|SECRET|KEY|CRED|AUTH|PRIVATE|(?:^|_)PAT(?:_|$)", re.I)

# user:password@ in a URL (postgres://u:pw@host/db, https://x:tok@github.com/…): the password
# is masked wherever dockerma prints, whatever the text around it.
_URL_PASSWORD = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]*):([^\s/@]+)@")


def mask_urls(text: str) -> str:
    """text with the password of every `scheme://user:password@` replaced by ***."""
    return _URL_PASSWORD.sub(r"\1:***@", text)


def redact(argv: Iterable[str], *, names_only: bool = False) -> list[str]:
    """argv safe to print: secret build-arg values (every build-arg value with names_only,
    for error and summary lines) replaced by ***, URL passwords masked."""
    out: list[str] = []
    pending = False
    for arg in argv:
        if pending:
            out.append(_redact_build_arg(arg, names_only))
            pending = False
        elif arg in ("--build-arg", "--set"):
            # bake's `--set TARGET.args.NAME=VALUE` is a build arg too (see flows/bake).
            out.append(arg)
            pending = True
        elif arg.startswith("--build-arg="):
            value = arg[len("--build-arg=") :]
            out.append("--build-arg=" + _redact_build_arg(value, names_only))
        else:
            out.append(mask_urls(arg))
    return out


def _redact_build_arg(value: str, names_only: bool) -> str:
    key, sep, _ = value.partition("=")
    name = key.partition(".args.")[2] or key  # a bake --set TARGET.args.NAME: its NAME
    if sep and (names_only or SECRET_NAME.search(name)):
        return f"{key}=***"
    return mask_urls(value)


def secret_values(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The values of secret-named build args in argv (`--build-arg NAME` reads environ)."""
    values: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--build-arg" and i + 1 < len(argv):
            spec = argv[i + 1]
        elif arg.startswith("--build-arg="):
            spec = arg[len("--build-arg=") :]
        else:
            continue
        name, sep, value = spec.partition("=")
        if not sep:
            value = environ.get(name, "")
        if value and SECRET_NAME.search(name):
            values.append(value)
    return sorted(values, key=len, reverse=True)
