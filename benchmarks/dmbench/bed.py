"""The test bed a run uses (engines, registry, base image, the install under test), what the run
leaves there, and its clean-up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from .config import ARCHS, ENGINES, Options
from .install import Install, install
from .report import log, out
from .timing import Failed, capture

T = TypeVar("T")

ENV_FILE = Path("/var/lib/dockerma-testbed/env")
REPO = Path(__file__).resolve().parent.parent.parent  # the checkout holding benchmarks/


def load_env() -> dict[str, str]:
    env: dict[str, str] = {}
    if ENV_FILE.is_file():
        for line in ENV_FILE.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                env[k.strip()] = v.strip().strip('"')
    for k, v in os.environ.items():
        if k.startswith("DOCKERMA_"):
            env[k] = v
    return env


@dataclass
class Ledger:
    """What a run has left on the bed (removed by cleanup) and the timed runs it repeated."""

    created: dict[str, set[str]] = field(default_factory=lambda: {e: set() for e in ENGINES})
    ids: dict[str, set[str]] = field(default_factory=lambda: {e: set() for e in ENGINES})
    retried: list[str] = field(default_factory=list)  # failures of timed runs, retried
    cleanups: list[Callable[[], None]] = field(default_factory=list)  # run by cleanup()
    manifests: set[str] = field(default_factory=set)  # local `docker manifest` lists (classic)


@dataclass(frozen=True)
class Bed:
    registry: str
    base: str  # NAME:TAG of the multi-arch base
    classic: dict[str, str]  # environment for the classic engine
    modern: dict[str, str] | None
    docker: str  # the real docker CLI
    dockerma: tuple[str, ...]  # how dockerma is started: venv/bin/dockerma of the install
    tmp: Path
    run_id: str
    install: Install
    source: str  # where the installed dockerma package came from
    push_mb: int  # size of the fresh layer each timed push uploads
    pins: Mapping[str, str] = field(default_factory=dict)  # suffix -> NAME@sha256:…
    ledger: Ledger = field(default_factory=Ledger)
    current: dict[str, str] | None = None  # docker 28.5, buildx 0.29, containerd 2.1

    def timed(self, what: str, fn: Callable[[], T]) -> T:
        """One timed run; a failure (this test bed is shared) is logged and the run repeated,
        at most twice; the failed attempt's time is discarded."""
        for attempt in range(3):
            try:
                return fn()
            except Failed as e:
                if attempt == 2:
                    raise
                first = str(e).strip().splitlines()[-1][:160]
                self.ledger.retried.append(f"{what}: {first}")
                log(f"{what} failed, retrying: {first}")
        raise AssertionError("unreachable")

    def retries_note(self, since: int) -> None:
        retried = self.ledger.retried
        if len(retried) > since:
            out(
                f"note: {len(retried) - since} timed run(s) failed and were repeated "
                "(failed attempts not counted):"
            )
            for r in retried[since:]:
                out(f"  {r}")

    def repo(self, name: str) -> str:
        return f"{self.registry}/bench/{name}"

    def env(self, engine: str) -> dict[str, str] | None:
        return {"classic": self.classic, "modern": self.modern, "current": self.current}[engine]


def _export_source(source: str, tmp: Path) -> tuple[Path, str]:
    """--source: a folder holding dockerma/, or a git revision of this checkout exported."""
    src = Path(source)
    if (src / "dockerma" / "__init__.py").is_file():
        return src, str(src.resolve())
    src = tmp / "source"
    src.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", source, "dockerma"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise SystemExit(
            f"benchmarks: --source {source}: neither a folder with dockerma/ nor a git revision "
            f"({archive.stderr.decode().strip()})"
        )
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    rev = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", source],
        capture_output=True,
        text=True,
        check=False,
    )
    return src, f"git {source} = {rev.stdout.strip()} of {REPO}"


def _install(opts: Options, tmp: Path, classic: dict[str, str]) -> tuple[Install, str]:
    try:
        src, about = REPO, f"{REPO} (working tree)"
        if opts.source:
            src, about = _export_source(opts.source, tmp)
        inst = install(
            tmp, src.resolve(), classic, compiled=not opts.no_pyc, base_python=opts.python
        )
    except BaseException:
        if not opts.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return inst, about


def setup(opts: Options) -> Bed:
    tb = load_env()
    registry = tb.get("DOCKERMA_REGISTRY", "127.0.0.1:5000")
    base = tb.get("DOCKERMA_BASE_IMAGE", f"{registry}/dockerma/busybox:1")
    docker = shutil.which("docker")
    if not docker:
        raise SystemExit("benchmarks: docker not on PATH; run scripts/testbed first")
    classic = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_BUILDKIT")
    }
    classic["NO_COLOR"] = "1"
    tmp = Path(tempfile.mkdtemp(prefix="dockerma-bench-"))
    inst, about = _install(opts, tmp, classic)
    # The harness's own imports of dockerma (micro: parse and render in-process) take the same
    # files as the install, not whatever `import dockerma` finds in this interpreter.
    sys.path.insert(0, str(inst.site))
    modern, current = _buildkit_env(tb, classic, "MODERN"), _buildkit_env(tb, classic, "CURRENT")
    return Bed(
        registry,
        base,
        classic,
        modern,
        docker,
        (str(inst.script),),
        tmp,
        uuid.uuid4().hex[:6],
        install=inst,
        source=about,
        push_mb=opts.push_mb,
        current=current,
    )


def _buildkit_env(
    tb: Mapping[str, str], classic: dict[str, str], name: str
) -> dict[str, str] | None:
    """The environment for a BuildKit engine of the bed (DOCKERMA_<NAME>_HOST, _CONFIG with
    the buildx plugin, _CLI: its own docker CLI, put first on PATH), None when it is absent."""
    if not tb.get(f"DOCKERMA_{name}_HOST"):
        return None
    env = dict(classic)
    env["DOCKER_HOST"] = tb[f"DOCKERMA_{name}_HOST"]
    if tb.get(f"DOCKERMA_{name}_CONFIG"):
        env["DOCKER_CONFIG"] = tb[f"DOCKERMA_{name}_CONFIG"]
    if tb.get(f"DOCKERMA_{name}_CLI"):
        cli_dir = str(Path(tb[f"DOCKERMA_{name}_CLI"]).parent)
        env["PATH"] = os.pathsep.join([cli_dir, env.get("PATH", os.defpath)])
    return env


def base_index(bed: Bed) -> dict[str, Any]:
    """The base's manifest list, read from the registry."""
    name, _, tag = bed.base.rpartition(":")
    host, _, path = name.partition("/")
    req = urllib.request.Request(
        f"http://{host}/v2/{path}/manifests/{tag}",
        headers={
            "Accept": "application/vnd.docker.distribution.manifest.list.v2+json, "
            "application/vnd.oci.image.index.v1+json"
        },
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
    return doc


def registry_pins(bed: Bed) -> dict[str, str]:
    """Per-arch digests of the base, read once from the registry's manifest list."""
    name = bed.base.rpartition(":")[0]
    doc = base_index(bed)
    pins = {}
    for suffix, _plat, arch, variant in ARCHS:
        for m in doc.get("manifests", []):
            p = m.get("platform", {})
            if p.get("architecture") == arch and (not variant or p.get("variant") == variant):
                pins[suffix] = f"{name}@{m['digest']}"
                break
        else:
            raise Failed(f"{bed.base} has no {arch}{'/' + variant if variant else ''} entry")
    return pins


def remember(bed: Bed, engine: str, refs: list[str]) -> None:
    """Note tags and image ids this run created, for the clean-up."""
    env = bed.env(engine)
    assert env is not None
    bed.ledger.created[engine].update(refs)
    res = subprocess.run(
        [bed.docker, "image", "inspect", "--format", "{{.Id}}", *refs],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    bed.ledger.ids[engine].update(x for x in res.stdout.split() if x.startswith("sha256:"))


def _quiet(argv: list[str], env: dict[str, str]) -> None:
    subprocess.run(argv, env=env, capture_output=True, check=False)


def _clean_engine(bed: Bed, engine: str, env: dict[str, str]) -> None:
    prefix = f"{bed.registry}/bench/"
    ids = bed.ledger.ids[engine]
    listed = capture(
        [bed.docker, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], env
    ).split()
    refs = sorted(
        bed.ledger.created[engine]
        | {r for r in listed if r.startswith(prefix) and f"-{bed.run_id}" in r}
    )
    if refs:
        _quiet([bed.docker, "rmi", *refs], env)
    # Pushes leave digest references (NAME@sha256:…); an id referenced from several
    # repositories (the same content built and pushed by several methods) is refused by
    # `docker rmi ID` without -f, so its references under bench/ go first, by name.
    inspect = [bed.docker, "image", "inspect", "--format", "{{json .RepoDigests}}", *ids]
    digests = capture(inspect, env).splitlines() if ids else []
    pushed = sorted(
        {d for line in digests if line for d in json.loads(line) or [] if d.startswith(prefix)}
    )
    if pushed:
        _quiet([bed.docker, "rmi", *pushed], env)
    for image_id in sorted(ids):  # dangling ones from --no-cache re-tags; no -f
        _quiet([bed.docker, "rmi", image_id], env)
    log(f"clean-up ({engine} engine): removed {len(refs)} tags, tried {len(ids)} image ids")


def cleanup(bed: Bed) -> None:
    for fn in bed.ledger.cleanups:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - clean up as much as possible
            log(f"clean-up step failed: {e}")
    for lst in sorted(bed.ledger.manifests):  # normally gone already (push --purge)
        _quiet([bed.docker, "manifest", "rm", lst], bed.classic)
    for engine in ENGINES:
        env = bed.env(engine)
        if env is not None:
            _clean_engine(bed, engine, env)
    shutil.rmtree(bed.tmp, ignore_errors=True)
