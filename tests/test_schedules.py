"""Learning-rate schedules in compare cases ([schedule]), against real torch and paddle.

The shipped schedule_* cases' expectations are checked (and flipped) by
test_semantics; here: that rule inference needs the schedule's lr of each step, that
each framework used exactly the lr the float64 schedule gives (the recorded lr is
what the optimizer applied: paddle's optimizer.get_lr(), not scheduler.get_lr(),
which computes the next step's), and that a run off the schedule is flagged.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xdecay.case import load_case
from xdecay.engine.compare import Tolerance
from xdecay.engine.infer import infer_run
from xdecay.engine.loop import Loop
from xdecay.engine.pipeline import compare_case
from xdecay.engine.schedules import LR_RTOL, Schedule
from xdecay.frameworks.protocol import read_request, write_request
from xdecay.frameworks.records import Job

from .conftest import ROOT, run

NAMES = ["schedule_step", "schedule_multistep", "schedule_cosine", "schedule_cosine_restarts",
         "schedule_linear_warmup", "schedule_onecycle_aligned", "schedule_warmup_cosine"]


@pytest.fixture(scope="module")
def done():
    cases = {n: load_case(ROOT / "cases" / f"{n}.toml") for n in NAMES}
    return {n: (c, run(c)) for n, c in cases.items()}


def _record(results, name: str):
    fw, way = name.split(":")
    return next(r for r in results[fw].records[0] if r.way == way)


@pytest.mark.parametrize("name", NAMES)
def test_each_framework_uses_the_schedules_lr(done, name):
    case, results = done[name]
    want = case.schedule.lrs(float(case.optimizer.lr), case.steps)
    assert len(set(np.round(want, 12))) > 1, "the schedule must change the lr within the case"
    for fw in ("torch", "paddle"):
        for r in results[fw].records[0]:
            np.testing.assert_allclose(r.series["lr"], want, rtol=LR_RTOL, atol=0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fw", ["torch", "paddle"])
def test_decoupled_decay_follows_the_scheduled_lr(done, name, fw):
    """AdamW / the SGDW step remove lr_t*c*w: replayed with the schedule's lr it is
    decoupled_lr@0.1; replayed with the base lr at every step nothing fits."""
    case, results = done[name]
    record = _record(results, f"{fw}:decoupled")
    coeffs = case.decay.coefficients()
    lrs = case.schedule.lrs(float(case.optimizer.lr), case.steps)
    assert [i.rule for i in infer_run(record, case.spec(), case.loss, coeffs, loop=Loop(lrs=lrs))] == ["decoupled_lr@0.1"] * 2
    assert "decoupled_lr@0.1" not in [i.rule for i in infer_run(record, case.spec(), case.loss, coeffs)]


def test_a_run_off_the_schedule_is_flagged(done):
    """Claim a different schedule for the same runs: every run's recorded lr leaves it."""
    case, results = done["schedule_step"]
    other = dataclasses.replace(case, schedule=Schedule("step", {"step_size": 3, "gamma": 0.5}))
    result = compare_case(other, 0, results, other.steps, Tolerance.for_case(other))
    assert not result.ok
    off = [w for w in result.warnings if w.startswith("schedule: ")]
    assert len(off) == len(case.run_names()) and "at step 3" in off[0], result.warnings


def test_schedule_survives_the_worker_request(tmp_path, done):
    case, _ = done["schedule_multistep"]
    path = tmp_path / "request"
    write_request(path, [Job.from_case(case, "paddle")])
    (job,) = read_request(path)
    assert job.schedule == case.schedule
