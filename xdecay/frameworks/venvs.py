"""Release interpreters for `xdecay matrix --paddle V1,V2,...`: one venv per release.

Each venv holds one framework release from the package registry and what the worker
needs besides it (numpy; xdecay itself comes from this checkout through PYTHONPATH).
They are cached under $XDECAY_CACHE/venvs (default ~/.cache/xdecay/venvs), named
FRAMEWORK-VERSION-pyX.Y; a venv counts as built only once its marker file is written after
a successful install and import, so an interrupted build is redone, never used.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import UsageError

PACKAGES = {"paddle": "paddlepaddle"}
MARKER = "xdecay-release.json"
# A release as the registry spells it: digits and dots, maybe a pre-release tag (3.0.0rc1).
VERSION = re.compile(r"^\d+(\.\d+){1,3}((a|b|rc|\.post|\.dev)\d+)?$")
BUILD_TIMEOUT = 1800.0   # pip install of one release; ~15 s from a local mirror, minutes over a network


def cache_dir() -> Path:
    """$XDECAY_CACHE, else $XDG_CACHE_HOME/xdecay, else ~/.cache/xdecay."""
    if os.environ.get("XDECAY_CACHE"):
        return Path(os.environ["XDECAY_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "xdecay"


def venv_dir(framework: str, version: str, python_version: str | None = None) -> Path:
    """FRAMEWORK-VERSION-pyX.Y: a release installs differently on each Python (wheels per
    Python version), so each has its own venv."""
    python_version = python_version or "%d.%d" % sys.version_info[:2]
    return cache_dir() / "venvs" / f"{framework}-{version}-py{python_version}"


def check_version(option: str, version: str) -> None:
    if not VERSION.match(version):
        raise UsageError(f"{option}: {version!r} is not a release number (e.g. 3.3.1)")


def _base_version(base: str) -> str:
    """X.Y of the interpreter `base`."""
    done = subprocess.run([base, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def release_python(framework: str, version: str, option: str, base: str | None = None,
                   say: Callable[[str], None] = lambda line: None) -> str:
    """The interpreter of `framework==version`, built on `base` (default: the Python
    running xdecay) unless a complete venv for it is cached. A release pip cannot
    install is bad input (exit 2): one line naming the option and pip's last word."""
    base = base or sys.executable
    python_version = _base_version(base)
    directory = venv_dir(framework, version, python_version)
    python = directory / "bin" / "python"
    marker = directory / MARKER
    want = {"framework": framework, "version": version, "python": python_version}
    if marker.is_file() and python.exists():
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == want:
                return str(python)
        except ValueError:
            pass
    say(f"building {directory} ({PACKAGES[framework]}=={version} on Python {python_version})")
    if directory.exists():
        shutil.rmtree(directory)     # incomplete, or for another Python: never half-reused
    directory.parent.mkdir(parents=True, exist_ok=True)
    steps = [[base, "-m", "venv", str(directory)],
             [str(python), "-m", "pip", "install", "-q", f"{PACKAGES[framework]}=={version}", "numpy"],
             [str(python), "-c", f"import numpy, {framework}; print({framework}.__version__)"]]
    for step in steps:
        try:
            done = subprocess.run(step, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise UsageError(f"{option}: building {framework} {version} took over {BUILD_TIMEOUT:g} s") from None
        if done.returncode != 0:
            shutil.rmtree(directory, ignore_errors=True)
            lines = [l for l in done.stderr.splitlines() if l.strip() and not l.startswith("WARNING")]
            raise UsageError(f"{option}: {framework} {version} does not install here "
                             f"({lines[-1].strip() if lines else f'exit {done.returncode}'})")
    marker.write_text(json.dumps(want) + "\n", encoding="utf-8")
    return str(python)
