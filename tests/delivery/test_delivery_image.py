"""The image's build, as far as it goes without a Docker daemon: the build context .dockerignore lets through (of a
clean checkout's files) holds every source the Dockerfile COPYs, and it builds a wheel of lastgood with the
entry point, the extras the Dockerfile installs and the package data the server needs; installed alone, that
wheel (not this checkout's src/) runs `lastgood validate` on the CI runbook."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import pytest
from delivery_files import CI, ROOT, dockerfile

pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


def ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _matches(path: str, pattern: str) -> bool:
    """Docker's rule, enough for this file's patterns: a pattern names a path or one of its parent folders at
    the same depth (`*` does not cross `/`); `**/NAME` names any folder or file called NAME."""
    pattern = pattern.rstrip("/")
    parts = path.split("/")
    if pattern.startswith("**/"):
        return any(fnmatch(part, pattern[3:]) for part in parts)
    depth = pattern.count("/") + 1
    return depth <= len(parts) and fnmatch("/".join(parts[:depth]), pattern)


def in_context(path: str, patterns: list[str]) -> bool:
    """The last pattern that matches decides; `!` lets a path back in."""
    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _matches(path, pattern.lstrip("!")):
            included = negated
    return included


def build_context(into: Path) -> list[str]:
    """Copy what `docker build .` would send from a clean checkout (git's tracked files) into `into`."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    patterns = ignore_patterns()
    sent = [path for path in tracked.splitlines() if in_context(path, patterns)]
    for path in sent:
        (into / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, into / path)
    return sent


def test_the_build_context_holds_what_the_dockerfile_copies(tmp_path: Path) -> None:
    context = tmp_path / "context"
    sent = build_context(context)
    assert {path.split("/")[0] for path in sent} == {"pyproject.toml", "README.md", "src"}
    assert not [path for path in sent if "__pycache__" in path or path.startswith(("tests/", ".venv/"))]
    copies = [i["value"].split() for i in dockerfile().structure if i["instruction"] == "COPY"]
    sources = [part for copy in copies if not copy[0].startswith("--from=") for part in copy[:-1]]
    assert sources == ["pyproject.toml", "README.md", "src"]
    for source in sources:
        assert (context / source).exists(), f"COPY {source}: not in the build context"


def test_the_context_builds_a_wheel_that_runs_alone(tmp_path: Path) -> None:
    context = tmp_path / "context"
    build_context(context)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(context)],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("lastgood-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "lastgood = lastgood.cli.entry:entrypoint" in entry_points  # the image's ENTRYPOINT
    runs = " ".join(i["value"] for i in dockerfile().structure if i["instruction"] == "RUN")
    (extras,) = re.findall(r'"\.\[([a-z,]+)\]"', runs)  # RUN pip install ... ".[server,postgres]"
    assert set(extras.split(",")) == {"server", "postgres"}  # the API and dashboard; PostgreSQL and its job queue
    assert {f"Provides-Extra: {extra}" for extra in extras.split(",")} <= set(metadata.splitlines())
    for data in ("lastgood/ledger/migrations/alembic.ini", "lastgood/server/web/templates/", "lastgood/py.typed"):
        assert any(name.startswith(data) for name in names), data

    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    probe = (
        f"import sys; sys.path.insert(0, {str(target)!r}); import lastgood; from lastgood.cli.app import main; "
        f"assert lastgood.__file__.startswith({str(target)!r}), lastgood.__file__; "
        f"sys.exit(main(['validate', '--file', {str(CI / 'lastgood.yaml')!r}]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASTGOOD_")} | {"PYTHONPATH": str(target)}
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
