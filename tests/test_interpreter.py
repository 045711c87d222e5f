"""--python FRAMEWORK=PATH: what the other interpreter needs, checked before any run."""
from __future__ import annotations

import glob
import subprocess
import sys
import venv

import pytest

from xdecay import cli
from xdecay.frameworks import interpreter

from .conftest import ROOT, release_python


def _refused(capsys, python: str) -> str:
    code = cli.main(["compare", "--case", "momentum", "--python", f"paddle={python}"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(f"xdecay: error: --python paddle={python}: ")
    return err


def test_an_interpreter_without_numpy_is_refused_naming_what_it_needs(tmp_path, capsys):
    # A real Python (this one's version) in a venv with nothing installed, as a torch
    # venv made by hand may be: the worker could not import numpy there.
    venv.create(tmp_path / "bare", with_pip=False)
    python = str(tmp_path / "bare" / "bin" / "python")
    err = _refused(capsys, python)
    assert "cannot import numpy" in err and "Python >= 3.9 with numpy" in err
    assert f"{python} -m pip install numpy" in err


def test_a_program_that_is_not_python_is_refused(tmp_path, capsys):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho hello\n")
    fake.chmod(0o755)
    assert "it is not a Python interpreter" in _refused(capsys, str(fake))


OLD = sorted(glob.glob("/root/.pyenv/versions/3.[5-8].*/bin/python3"))


@pytest.mark.skipif(not OLD, reason="no Python older than 3.9 on this machine")
def test_a_python_older_than_the_workers_minimum_is_refused(capsys):
    err = _refused(capsys, OLD[-1])
    assert "it is Python 3." in err and "the worker needs Python >= 3.9" in err


def test_the_worker_imports_no_tomllib_and_no_engine_beyond_its_records():
    # What a worker process imports before its framework: an import of tomllib (3.11+) or
    # of the comparison engine here would break interpreters older than xdecay's own.
    code = ("import sys, xdecay.frameworks.worker; "
            "print(' '.join(sorted(m for m in sys.modules if m == 'tomllib' or m.startswith('xdecay'))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(done.stdout.split())
    assert "tomllib" not in loaded
    assert not loaded & {"xdecay.engine.compare", "xdecay.engine.infer", "xdecay.engine.pipeline", "xdecay.cli"}


PY39 = sorted(glob.glob("/root/.pyenv/versions/3.9.*/bin/python3"))


@pytest.mark.release_venv
@pytest.mark.skipif(not PY39, reason="no Python 3.9 on this machine")
def test_paddle_under_python_3_9_with_only_paddle_installed_runs_a_case():
    """A real second interpreter two minor versions older than xdecay's own, with nothing
    but paddlepaddle (and its numpy) installed: the minimum the README states."""
    python = release_python("paddle", "3.3.1", base=PY39[-1])
    assert interpreter.problem(python) is None
    done = subprocess.run([sys.executable, "-m", "xdecay", "compare", "--case", "precedence",
                           "--python", f"paddle={python}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "verdict: OK" in done.stdout and "could not run" not in done.stdout
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout
    assert version.strip() == "(3, 9)"
