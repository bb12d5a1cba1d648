"""One destination per architecture for the options that name where a build writes.

docker build's `-o/--output`, `--cache-to` and `--cache-from` would have every per-arch build
write the same directory, file or cache reference. They get buildx's layout of a multi-platform
build instead: a directory gets a `linux_arm64/`-style subdirectory (buildx's name for the
platform: `/` becomes `_`, so arm/v7 is `linux_arm_v7`), a file gets that name before its
extension (`out.tar` -> `out-linux_arm64.tar`), and a registry reference gets the per-arch tag
suffix dockerma gives the images (`app:cache` -> `app:cache-arm64`).

The values are buildx's CSV (`type=local,dest=out`); a value without `=` is buildx's shorthand:
a directory for `-o` (`-o out` is `type=local,dest=out`), a reference for the caches.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from dockerma.core.platforms import Platform
from dockerma.core.references import ImageRef
from dockerma.errors import DockermaError, UsageError

OUTPUT_OPTIONS = ("-o", "--output")
CACHE_OPTIONS = ("--cache-to", "--cache-from")
# Exporters that leave an image in the engine (on buildx's docker driver); any other -o makes
# dockerma add --load when the image is tagged, so that the tags can be checked and used.
_IMAGE_TYPES = ("image", "registry", "docker")


def platform_dir(platform: Platform) -> str:
    """buildx's directory name for a platform in a multi-platform local output."""
    return str(platform).replace("/", "_")


def per_file(path: str, platform: Platform) -> str:
    """`dir/out.tar` -> `dir/out-linux_arm64.tar` (the platform before the first extension)."""
    head, sep, base = path.rpartition("/")
    stem, dot, ext = base[1:].partition(".")  # (a leading dot is no extension)
    return f"{head}{sep}{base[0] if base else ''}{stem}-{platform_dir(platform)}{dot}{ext}"


def _per_dir(path: str, platform: Platform) -> str:
    return f"{path.rstrip('/') or '/'}/{platform_dir(platform)}".replace("//", "/")


def _per_ref(ref: str, platform: Platform) -> str:
    try:
        image = ImageRef.parse(ref)
    except DockermaError:
        return ref  # not a reference dockerma reads: buildx will say what is wrong with it
    return ref if image.digest else str(image.suffixed(platform.suffix))


def _fields(value: str) -> list[tuple[str, str]]:
    row = next(csv.reader([value]), [])
    return [(k.strip().lower(), v) for k, _, v in (f.partition("=") for f in row)]


def _join(fields: Sequence[tuple[str, str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([f"{k}={v}" for k, v in fields])
    return buf.getvalue()


def _rewrite(fields: list[tuple[str, str]], key: str, new: str) -> list[tuple[str, str]]:
    return [(k, new if k == key else v) for k, v in fields]


def output(value: str, platform: Platform) -> str:
    """One architecture's `-o` value."""
    if value.strip() == "-":
        raise UsageError(
            "-o -: every architecture would write its tar to the same stdout; name a file, "
            "e.g. -o type=tar,dest=out.tar (dockerma writes out-linux_arm64.tar, …)"
        )
    if "=" not in value:
        return _per_dir(value, platform)
    fields = _fields(value)
    kind = dict(fields).get("type", "")
    dest = dict(fields).get("dest")
    if kind == "local" and dest:
        return _join(_rewrite(fields, "dest", _per_dir(dest, platform)))
    if kind in ("tar", "oci", "docker") and dest:
        if dest.strip() == "-":
            raise UsageError(
                f"-o {value}: every architecture would write to the same stdout; give "
                "dest=FILE (dockerma writes one file per architecture)"
            )
        return _join(_rewrite(fields, "dest", per_file(dest, platform)))
    names = dict(fields).get("name")
    if kind in _IMAGE_TYPES and names:
        suffixed = ",".join(_per_ref(n.strip(), platform) for n in names.split(","))
        return _join(_rewrite(fields, "name", suffixed))
    return value


def cache(option: str, value: str, platform: Platform) -> str:
    """One architecture's `--cache-to` / `--cache-from` value."""
    if "=" not in value:
        return _per_ref(value.strip(), platform)
    fields = _fields(value)
    values = dict(fields)
    kind = values.get("type", "")
    if kind == "local":
        key = "dest" if option == "--cache-to" else "src"
        if values.get(key):
            return _join(_rewrite(fields, key, _per_dir(values[key], platform)))
    elif kind == "registry" and values.get("ref"):
        return _join(_rewrite(fields, "ref", _per_ref(values["ref"], platform)))
    elif kind == "gha":
        # GitHub's cache is shared by scope (buildx's default scope is `buildkit`).
        scope = f"{values.get('scope') or 'buildkit'}-{platform_dir(platform)}"
        rest = [(k, v) for k, v in fields if k != "scope"]
        return _join([*rest, ("scope", scope)])
    return value


def _kind(value: str) -> str:
    """An -o value's exporter type (`docker` to a file is `docker-file`: nothing is loaded)."""
    if "=" not in value:
        return "local"
    values = dict(_fields(value))
    kind = values.get("type", "")
    return "docker-file" if kind == "docker" and values.get("dest") else kind


@dataclass(frozen=True)
class Destinations:
    """The per-arch arguments, and what the outputs mean for the build around them."""

    args: tuple[str, ...]
    # an -o names an output that is not an image in the engine (local, tar, oci, cacheonly)
    exports_files: bool
    # the arguments leave an image in the engine with buildx's docker driver (no -o, an
    # image -o, --load)
    loads_image: bool
    # local and tar exporters refuse --iidfile (buildx: "incompatible with image ID file")
    iidfile_refused: bool
    # ... and with any driver: only --load or -o type=docker (without dest) send it there
    loads_with_any_driver: bool = False
    outputs: bool = False  # an -o at all


def per_arch(passthrough: Sequence[str], platform: Platform) -> Destinations:
    """passthrough with every output option given its per-arch destination.

    passthrough holds value options as separate [name, value] pairs (options.parse_build).
    """
    out: list[str] = []
    kinds: list[str] = []
    load = to_engine = False
    i = 0
    while i < len(passthrough):
        arg = passthrough[i]
        if arg in OUTPUT_OPTIONS + CACHE_OPTIONS and i + 1 < len(passthrough):
            value = passthrough[i + 1]
            if arg in OUTPUT_OPTIONS:
                kinds.append(_kind(value))
                out += [arg, output(value, platform)]
            else:
                out += [arg, cache(arg, value, platform)]
            i += 2
            continue
        load = load or arg in ("--load", "--push")
        to_engine = to_engine or arg == "--load"
        out.append(arg)
        i += 1
    files = any(k not in _IMAGE_TYPES for k in kinds)
    return Destinations(
        tuple(out),
        exports_files=files,
        loads_image=load or not kinds or any(k in _IMAGE_TYPES for k in kinds),
        iidfile_refused=any(k in ("local", "tar") for k in kinds),
        loads_with_any_driver=to_engine or "docker" in kinds,
        outputs=bool(kinds),
    )
