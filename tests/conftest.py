"""Shared fixtures. The frameworks run in-process here (real torch, real paddle):
a CLI subprocess costs seconds of imports, so only a few tests go through it."""
from __future__ import annotations

from pathlib import Path

import pytest

from xdecay.case import FRAMEWORKS, Case, load_case
from xdecay.records import Job
from xdecay import runner

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "cases").glob("*.toml"))
TEST_CASES = Path(__file__).resolve().parent / "cases"


@pytest.fixture(scope="session")
def shipped():
    """Every shipped case, run once in both frameworks: (cases, framework results)."""
    cases = [load_case(p) for p in SHIPPED]
    return cases, runner.run({fw: [Job.from_case(c, fw) for c in cases] for fw in FRAMEWORKS}, in_process=True)


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
