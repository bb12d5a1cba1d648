"""A concurrent push to a per-arch tag between dockerma's docker push and its list write
(issue 17, item 10): the list is tied to what docker push uploaded, so nothing else gets in.

A wrapper `docker` first on PATH runs the real one and, right after the push of NAME:v1-amd64,
points that tag at another image of the same repository through the registry's HTTP API (what
a second CI job pushing the same tag at that moment does).
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.error
from pathlib import Path

import pytest

from tests.e2e.conftest import ACCEPT, write

pytestmark = pytest.mark.e2e

WRAPPER = """#!{python}
import subprocess, sys, urllib.request

code = subprocess.call([{docker!r}, *sys.argv[1:]])
args = sys.argv[1:]
if code == 0 and "push" in args and args[-1] == {victim!r}:
    host, _, rest = {intruder!r}.partition("/")
    repo, _, tag = rest.rpartition(":")
    get = urllib.request.Request(
        f"http://{{host}}/v2/{{repo}}/manifests/{{tag}}", headers={{"Accept": {accept!r}}}
    )
    with urllib.request.urlopen(get, timeout=10) as r:
        body, kind = r.read(), r.headers["Content-Type"]
    victim_tag = {victim!r}.rpartition(":")[2]
    put = urllib.request.Request(
        f"http://{{host}}/v2/{{repo}}/manifests/{{victim_tag}}",
        data=body,
        method="PUT",
        headers={{"Content-Type": kind}},
    )
    urllib.request.urlopen(put, timeout=10).close()
    print("(wrapper: another push moved the tag)", flush=True)
sys.exit(code)
"""


def test_concurrent_push_to_a_per_arch_tag_is_refused(engine, tmp_path: Path, registry_get) -> None:
    name = engine.name_for("race")
    ctx = write(
        tmp_path / "ours", f"# dockerma archs:amd64,arm64\nFROM {engine.base}\nRUN echo ours > /v\n"
    )
    res = engine.dockerma("build", "-t", f"{name}:v1", str(ctx))
    assert res.returncode == 0, res.stderr + res.stdout
    # The other image, already in the same repository under another tag.
    other = write(
        tmp_path / "other", f"# dockerma archs:amd64\nFROM {engine.base}\nRUN echo other > /v\n"
    )
    res = engine.dockerma("build", "-t", f"{name}:other", str(other))
    assert res.returncode == 0, res.stderr + res.stdout
    res = engine.dockerma("push", f"{name}:other")
    assert res.returncode == 0, res.stderr + res.stdout
    _, intruder = registry_get(f"{name}:other-amd64")

    real = shutil.which("docker", path=engine.env.get("PATH"))
    assert real is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "docker"
    wrapper.write_text(
        WRAPPER.format(
            python=sys.executable,
            docker=real,
            victim=f"{name}:v1-amd64",
            intruder=f"{name}:other-amd64",
            accept=ACCEPT,
        )
    )
    wrapper.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{engine.env.get('PATH', '')}"

    res = engine.dockerma("push", f"{name}:v1", env={"PATH": path})
    assert "(wrapper: another push moved the tag)" in res.stdout, res.stdout + res.stderr
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith("dockerma: error: "), res.stderr
    assert sum(line.startswith("dockerma: error: ") for line in lines) == 1, res.stderr
    assert f"{name}:v1-amd64" in lines[-1] and intruder in lines[-1], lines[-1]
    assert "Traceback" not in res.stderr
    # The tag did move (the wrapper worked), and no list was written from it.
    assert registry_get(f"{name}:v1-amd64")[1] == intruder
    with pytest.raises(urllib.error.HTTPError):
        registry_get(f"{name}:v1")

    # Without the intruder the same push publishes the list of our images.
    res = engine.dockerma("push", f"{name}:v1")
    assert res.returncode == 0, res.stderr + res.stdout
    doc, _ = registry_get(f"{name}:v1")
    assert intruder not in [m["digest"] for m in doc["manifests"]]
