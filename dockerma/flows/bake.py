"""Every architecture in one `docker buildx bake` on a BuildKit engine (issue 21).

Each per-arch `docker build` on BuildKit pays ~0.5 s before its first step; one bake with a
target per architecture pays it once. The targets are the per-arch plans' own argvs (their
rendered Dockerfile, platform, tags, build args and per-arch outputs), translated by
core.bakefile; output lines go back to their architecture's label. Checks and smoke tests run
per architecture afterwards, as after a `docker build`.

bake stops every target at the first failure (docker/buildx#3297) and then writes no
metadata: the caller builds each architecture on its own instead, from the cache the bake
filled, so the failure is reported against its architecture while the others finish.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockerma.core import bakefile
from dockerma.core.manifests import valid_digest
from dockerma.core.masking import SECRET_NAME, mask_urls, secret_values
from dockerma.core.platforms import Platform
from dockerma.engine.docker import display
from dockerma.flows.plan import Plan
from dockerma.output import Output

# buildx 0.20+ asks for `--allow fs.read=…` before a bake file may read outside the working
# folder; the definition is dockerma's own, made from paths the user's command line named.
# The metadata file gets no provenance (it would hold every build arg, secret ones too, and
# resolving it is a step per target); older buildx ignores this.
_ENV = {"BUILDX_BAKE_ENTITLEMENTS_FS": "0", "BUILDX_METADATA_PROVENANCE": "disabled"}
# With the checks off, buildx 0.19+ still prints a block before the build ("Your build is
# requesting privileges … Pass --allow=fs.read=… to grant requested privileges", and the whole
# command again) for the rendered Dockerfiles in dockerma's temporary folder, and for any
# context, secret or output outside the working folder; and it refuses a target with
# `network: host` ("additional privileges requested") that `docker build --network host`
# builds. `docker build` asks for none of it, so the bake is granted what the build has
# anyway: every path (as the checks off grant already), and the host network where a target
# asks for it. buildx before 0.19 knows no --allow on bake, refuses the flag, and asks for
# nothing.
_ALLOW_FS = ("fs.read=/", "fs.write=/")
_ALLOW_SINCE = (0, 19)
SWITCH = "DOCKERMA_BAKE"  # 0: one docker build per architecture on BuildKit too


def usable(plans: Sequence[Plan], jobs: int | None, environ: Mapping[str, str]) -> bool:
    """Whether one bake can build these plans: two or more, on one BuildKit engine, all at
    once (--jobs below the count asks for fewer at a time), unless DOCKERMA_BAKE=0 asks for
    one docker build per architecture."""
    if environ.get(SWITCH) == "0" or len(plans) < 2 or (jobs is not None and jobs < len(plans)):
        return False
    first = plans[0].engine
    return all(
        p.engine.info.buildkit and p.engine.docker == first.docker and p.scratch is None
        for p in plans
    )


def _context_dir(context: str) -> str:
    # bake reads a relative context from the bake file's folder, not the working folder.
    return os.path.abspath(context) if os.path.isdir(context) else context


def _targets(
    plans: Sequence[Plan],
) -> tuple[dict[str, bakefile.Target], bakefile.Globals, dict[str, tuple[str, ...]]] | None:
    """The bake targets (by tag suffix), the options of the whole bake, and each target's
    image id files; None when a plan has an option bake cannot take."""
    targets: dict[str, bakefile.Target] = {}
    iidfiles: dict[str, tuple[str, ...]] = {}
    common: set[tuple[str | None, str | None]] = set()
    for plan in plans:
        made = bakefile.target(
            plan.argv, context_dir=_context_dir(plan.argv[-1]), environ=os.environ
        )
        if made is None:
            return None
        target, options = made
        targets[plan.platform.suffix] = target
        iidfiles[plan.platform.suffix] = options.iidfiles
        common.add((options.builder, options.progress))
    if len(common) != 1:
        return None  # per-arch builders or progress modes: not one bake
    builder, progress = common.pop()
    return targets, bakefile.Globals(builder, progress), iidfiles


def _secret_args(targets: Mapping[str, bakefile.Target]) -> list[str]:
    """The secret build args (by name, see core.masking), taken out of the targets: they go on
    the command line as `--set TARGET.args.NAME=VALUE`, as `docker build` has them, never into
    a file (--debug keeps the folder)."""
    sets: list[str] = []
    for name, target in targets.items():
        args = target.get("args") or {}
        for key in [k for k in args if SECRET_NAME.search(k)]:
            sets.append(f"{name}.args.{key}={args.pop(key)}")
    return sets


def takes_allow(buildx_version: str) -> bool:
    """Whether this buildx (its plugin version, as docker info says it) takes `--allow` on
    bake; an unknown version gets no flag (a warning at worst, or the per-arch fall-back)."""
    parts = buildx_version.lstrip("v").split(".")
    try:
        return (int(parts[0]), int(parts[1].split("+")[0].split("-")[0])) >= _ALLOW_SINCE
    except (IndexError, ValueError):
        return False


def allowed(targets: Mapping[str, bakefile.Target], buildx_version: str) -> list[str]:
    """The entitlements the bake is granted (see _ALLOW_FS)."""
    if not takes_allow(buildx_version):
        return []
    host = any(t.get("network") == "host" for t in targets.values())
    return [*_ALLOW_FS, *(["network.host"] if host else [])]


def argv(
    definition: Path,
    metadata: Path,
    options: bakefile.Globals,
    sets: Sequence[str] = (),
    *,
    allow: Sequence[str] = (),
) -> list[str]:
    out = ["buildx", "bake", "-f", str(definition), "--metadata-file", str(metadata)]
    for entitlement in allow:
        out += ["--allow", entitlement]
    for value in sets:
        out += ["--set", value]
    if options.builder:
        out += ["--builder", options.builder]
    if options.progress:
        out += ["--progress", options.progress]
    return out


@dataclass(frozen=True)
class Baked:
    """What bake said of one target's image."""

    image_id: str  # as `docker images` shows it ("" when its outputs made no image)
    # The digest of the image itself where bake names it: on the classic store its config
    # digest (the image id), on the containerd store the image manifest inside the list the
    # image id names; "" when unknown. It tells a rebuild of what the registry holds
    # (flows.lookups): on the containerd store the list's digest changes with every build,
    # as its provenance attestation records the build's time, while the image stays the same.
    own_digest: str


# The exporter's line for the image manifest it wrote (`#20 exporting manifest sha256:… done`,
# BuildKit 0.13-0.25); not the list's or the attestation's, nor a RUN step's output, which
# BuildKit prints after the step's time (`#9 0.215 …`).
_MANIFEST = re.compile(r"#\d+ exporting manifest (sha256:[0-9a-f]{64})(?: [0-9.]+s)? done")


def baked(entry: Mapping[str, Any], containerd_store: bool, manifests: Sequence[str]) -> Baked:
    """A target's image from bake's metadata and the image manifests its progress named: its
    id (on the containerd store the image's manifest list digest, on the classic store its
    config digest, as `docker images` shows) and its own digest (see Baked)."""

    def text(key: str) -> str:
        value = entry.get(key)
        return value if isinstance(value, str) and valid_digest(value) else ""

    if not containerd_store:
        config = text("containerimage.config.digest")
        return Baked(config, config)
    # One image manifest, or none is known (two exporters, a progress mode without lines).
    own = manifests[0] if len(set(manifests)) == 1 else ""
    return Baked(text("containerimage.digest"), own)


def show(out: Output, plans: Sequence[Plan], jobs: int | None, environ: Mapping[str, str]) -> None:
    """--dry-run: the bake that runs the builds above, with its definition."""
    made = _targets(plans) if usable(plans, jobs, environ) else None
    if made is None:
        return
    targets, options, _ = made
    sets = [s.partition("=")[0] + "=***" for s in _secret_args(targets)]
    tmp = plans[0].iidfile.parent
    definition, metadata = tmp / "bake.json", tmp / "bake-metadata.json"
    out.info("# all architectures: the builds above run as one bake, a target each")
    allow = allowed(targets, plans[0].engine.info.buildx_version)
    shown = argv(definition, metadata, options, sets, allow=allow)
    out.info(display(plans[0].engine.docker.argv(shown)))
    out.info(f"# {definition}")
    out.info(mask_urls(json.dumps(bakefile.definition(targets), indent=1)))
    out.info("")


def build(plans: Sequence[Plan], out: Output, tmp: Path) -> dict[Platform, Baked] | None:
    """Every plan built in one bake: each platform's image (an empty id when its outputs made
    no image). None when bake cannot take these plans or stopped at a failure; the caller then
    builds each architecture on its own."""
    made = _targets(plans)
    if made is None:
        return None
    targets, options, iidfiles = made
    sets = _secret_args(targets)
    definition, metadata = tmp / "bake.json", tmp / "bake-metadata.json"
    definition.write_text(json.dumps(bakefile.definition(targets), indent=1), encoding="utf-8")
    lines = bakefile.Lines(frozenset(targets))
    exported: dict[str, list[str]] = {name: [] for name in targets}

    def on_line(line: str) -> None:
        target = lines.target_of(line)
        if target is not None:
            manifest = _MANIFEST.fullmatch(line.strip())
            if manifest:
                exported[target].append(manifest.group(1))
            out.line(target, line)
        elif line.strip():
            out.info(line)

    engine = plans[0].engine
    argv_ = argv(
        definition, metadata, options, sets, allow=allowed(targets, engine.info.buildx_version)
    )
    # BuildKit prints RUN steps with build args expanded; `--set` hides them from masking.
    mask = [v for plan in plans for v in secret_values(plan.argv, os.environ)]
    code = engine.docker.stream(*argv_, on_line=on_line, check=False, env=_ENV, mask=mask)
    if code != 0 or not metadata.is_file():
        out.info(
            "bake stopped every architecture at the first failure (docker/buildx#3297): "
            "building each one on its own, from the cache"
        )
        return None
    entries = json.loads(metadata.read_text(encoding="utf-8") or "{}")
    metadata.unlink()  # older buildx write the provenance, build args included, into it
    images: dict[Platform, Baked] = {}
    for plan in plans:
        suffix = plan.platform.suffix
        image = baked(entries.get(suffix) or {}, engine.info.containerd_store, exported[suffix])
        images[plan.platform] = image
        for name in iidfiles[suffix]:
            if image.image_id:
                Path(name).write_text(image.image_id, encoding="utf-8")
    return images
