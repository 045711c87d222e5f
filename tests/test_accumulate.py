"""Gradient accumulation ([accumulate]), against real torch and paddle.

The shipped accumulate_* cases' expectations (manual decays micro_batches times with
undivided losses, once with divided ones; weight_decay once) are checked and flipped
by test_semantics; here: that rule inference needs the accumulation to explain them.
"""
from __future__ import annotations

import pytest

from xdecay.case import load_case
from xdecay.engine.infer import infer_run
from xdecay.engine.loop import Loop

from .conftest import ROOT, run


@pytest.fixture(scope="module")
def done():
    cases = {n: load_case(ROOT / "cases" / f"{n}.toml") for n in ("accumulate_sum", "accumulate_mean")}
    return {n: (c, run(c)) for n, c in cases.items()}


def _rules(case, results, name, loop, coeffs=(0.1, 0.4)):
    fw, way = name.split(":")
    record = next(r for r in results[fw].records[0] if r.way == way)
    return [i.rule for i in infer_run(record, case.spec(), case.loss, coeffs, loop=loop)]


@pytest.mark.parametrize("fw", ["torch", "paddle"])
def test_undivided_micro_batches_add_up_to_micro_batches_times_the_gradient(done, fw):
    """4 undivided micro-batch losses: the step is explained with the accumulated (4x)
    gradient only — replayed as one full-batch step, nothing fits."""
    case, results = done["accumulate_sum"]
    assert _rules(case, results, f"{fw}:none", case.loop(case.steps)) == ["none", "none"]
    assert _rules(case, results, f"{fw}:none", Loop()) == ["unexplained", "unexplained"]
    assert _rules(case, results, f"{fw}:manual", case.loop(case.steps)) == ["coupled_l2@0.4"] * 2


@pytest.mark.parametrize("fw", ["torch", "paddle"])
def test_divided_micro_batches_are_one_full_batch_step(done, fw):
    """4 micro-batch losses divided by 4: the accumulated step is the full batch's step
    (replayed without accumulation, it fits) and the manual term decays once."""
    case, results = done["accumulate_mean"]
    assert _rules(case, results, f"{fw}:none", Loop()) == ["none", "none"]
    assert _rules(case, results, f"{fw}:manual", Loop()) == ["coupled_l2@0.1"] * 2
