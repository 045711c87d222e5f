"""Shared fixtures. The frameworks run in-process here (real torch, real paddle):
a CLI subprocess costs seconds of imports, so only a few tests go through it."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from xdecay.case import FRAMEWORKS, Case, load_case
from xdecay.engine.compare import Tolerance
from xdecay.engine.pipeline import Outcome, compare_case
from xdecay.frameworks import runner
from xdecay.frameworks.records import Job
from xdecay.writers.compare_report import case_outcome, json_report

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "cases").glob("*.toml"))
TEST_CASES = Path(__file__).resolve().parent / "cases"


@pytest.fixture(scope="session")
def shipped():
    """Every shipped case, run once in both frameworks: (cases, framework results)."""
    cases = [load_case(p) for p in SHIPPED]
    return cases, runner.run({fw: [Job.from_case(c, fw) for c in cases] for fw in FRAMEWORKS}, in_process=True)


@pytest.fixture(scope="module")
def outcome(shipped):
    """The shipped cases compared, as `compare --case all` would (shared by the baseline tests)."""
    cases, done = shipped
    results = [compare_case(c, i, done, c.steps, Tolerance.for_case(c)) for i, c in enumerate(cases)]
    return Outcome({fw: r.version for fw, r in done.items()}, results)


@pytest.fixture
def saved(outcome, tmp_path):
    """A baseline folder of `outcome`, one JSON per case, as `--format json --out` writes it."""
    for r in outcome.results:
        (tmp_path / f"{r.case.name}.json").write_text(json_report(case_outcome(outcome, r)))
    return tmp_path


def run(case: Case, steps: int | None = None):
    return runner.run({fw: [Job.from_case(case, fw, steps)] for fw in case.runs}, in_process=True)


def write_case(tmp_path: Path, text: str, name: str = "case.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """\
description = "minimal"
seed = 1

[layer]
in_features = 3
out_features = 2

[data]
batch = 2

[optimizer]
name = "sgd"
lr = 0.1

[decay]
coeff = 0.1

[runs]
torch = ["none", "weight_decay"]
paddle = ["none", "weight_decay"]
"""


# Hypothesis profiles for tests/test_fuzz.py (see its docstring). "ci" is the default;
# select another with --hypothesis-profile=NAME or HYPOTHESIS_PROFILE=NAME. Registered
# here, not in the test module, so that pytest's option finds them at start-up.
# No example database, and Hypothesis' other files (a cache of constants it reads from
# the source) go to the temporary directory, not ./.hypothesis: nothing is written into
# the repository (HYPOTHESIS_STORAGE_DIRECTORY, if set, still wins).
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "xdecay-hypothesis")
settings.register_profile("ci", max_examples=30, derandomize=True, deadline=None, database=None,
                          print_blob=True)
settings.register_profile("thorough", max_examples=250, deadline=None, database=None,
                          print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# A framework release in its own venv (xdecay.frameworks.venvs), for the few tests that need
# a real second interpreter. Building one takes ~15 s from this machine's package mirror, so
# the suite builds it only when asked (XDECAY_BUILD_VENVS=1, as .ci/run does); otherwise a
# test whose venv is not cached is skipped, and says how to build it.
def release_python(framework: str, version: str, base: str | None = None) -> str:
    import subprocess
    from xdecay.frameworks import venvs
    python_version = subprocess.run([base or sys.executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                    capture_output=True, text=True, check=True).stdout.strip()
    directory = venvs.venv_dir(framework, version, python_version)
    if os.environ.get("XDECAY_BUILD_VENVS") != "1" and not (directory / venvs.MARKER).is_file():
        pytest.skip(f"no {framework} {version} venv cached at {directory}; "
                    "XDECAY_BUILD_VENVS=1 builds it (~15 s)")
    return venvs.release_python(framework, version, "test", base=base)
