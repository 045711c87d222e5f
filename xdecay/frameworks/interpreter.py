"""What another interpreter (--python FRAMEWORK=PATH) must have to host a worker.

The worker imports xdecay from this checkout (PYTHONPATH), numpy, and the framework;
nothing else outside the standard library. Checked up front, in a fraction of a second,
so that a wrong interpreter is one line naming the option before any run starts,
instead of a framework error after the others have run.
"""
from __future__ import annotations

import subprocess

# The oldest Python the worker's imports were run under (README, "What the other
# interpreter needs"): it uses `list[int]`-style generics at run time.
MIN_PYTHON = (3, 9)

# Runs under any Python, even 2.7, so that an old one is named rather than crashing the probe.
_PROBE = ("import sys; sys.stdout.write('%d.%d\\n' % sys.version_info[:2]); sys.stdout.flush(); "
          "import numpy")
PROBE_TIMEOUT = 120.0    # a cold numpy import on a loaded machine takes seconds, not minutes


def needs() -> str:
    return f"Python >= {MIN_PYTHON[0]}.{MIN_PYTHON[1]} with numpy (and the framework) installed"


def problem(python: str) -> str | None:
    """What keeps `python` from hosting a worker, or None. The framework itself is not
    imported here (seconds for paddle): its absence is the worker's exit 3, as for any
    framework that is not installed."""
    try:
        done = subprocess.run([python, "-c", _PROBE], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=PROBE_TIMEOUT)
    except OSError as exc:
        return f"cannot start it ({exc.strerror or exc})"
    except subprocess.TimeoutExpired:
        return f"it did not answer within {PROBE_TIMEOUT:g} s"
    first = done.stdout.decode("utf-8", "replace").partition("\n")[0]
    try:
        version = tuple(int(x) for x in first.split("."))
    except ValueError:
        return f"it is not a Python interpreter; the worker needs {needs()}"
    if version < MIN_PYTHON:
        return f"it is Python {first}; the worker needs {needs()}"
    if done.returncode != 0:
        return f"it cannot import numpy; the worker needs {needs()} (add it: {python} -m pip install numpy)"
    return None
