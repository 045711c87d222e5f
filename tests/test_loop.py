"""The training loop's remaining knobs, against real torch and paddle: a zero loss
gradient ([data] loss = "zero"), OneCycle and a warm-up chain in [schedule], and a
per-parameter lr under a schedule.

The shipped cases' expectations are checked (and flipped) by test_semantics; here:
what those cases cannot say as an expectation (a coefficient that cannot be seen, a
momentum nobody asked for), and that inference needs each knob to explain the runs.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xdecay.case import Expectation, load_case
from xdecay.engine.compare import Tolerance
from xdecay.engine.infer import infer_run
from xdecay.engine.pipeline import compare_case
from xdecay.engine.port import parse_schedule
from xdecay.engine.reference import gradient_bounds, model_grads
from xdecay.engine.schedules import LR_RTOL, Schedule
from xdecay.frameworks.protocol import read_request, write_request
from xdecay.frameworks.records import Job

from .conftest import ROOT, run

CASES = ROOT / "cases"


@pytest.fixture(scope="module")
def done():
    names = ["zero_grad", "zero_grad_adam", "schedule_onecycle", "lr_scale_schedule"]
    cases = {n: load_case(CASES / f"{n}.toml") for n in names}
    return {n: (c, run(c)) for n, c in cases.items()}


def _record(results, name: str):
    fw, way = name.split(":")
    return next(r for r in results[fw].records[0] if r.way == way)


def _rules(case, record, loop=None):
    loop = loop or case.loop(record.steps)
    return [i.rule for i in infer_run(record, case.spec(), case.loss, case.decay.coefficients(), loop=loop)]


def test_zero_loss_has_an_exactly_zero_gradient(done):
    """loss mean(out)*0: the reference's gradient and its rounding bound are 0, and
    without decay neither framework moves a single weight in any step."""
    case, results = done["zero_grad"]
    spec = case.spec()
    assert all(not g.any() for g in model_grads(spec.params, spec.x, spec.target, "zero").values())
    assert all(not b.any() for b in gradient_bounds(spec.params, spec.x, spec.target, "zero").values())
    for fw in ("torch", "paddle"):
        for p in _record(results, f"{fw}:none").params.values():
            assert (np.asarray(p) == np.asarray(p)[0]).all()


@pytest.mark.parametrize("way", ["torch:weight_decay", "torch:manual", "paddle:weight_decay",
                                 "paddle:l2decay", "paddle:manual"])
def test_adam_coupled_decay_on_a_zero_gradient_moves_by_lr_sign_w(done, way):
    """g = c*w alone: Adam's first step is lr*m/(sqrt(v)+eps) = lr*c*w/(|c*w| + eps),
    so every weight moves by lr*sign(w) (to eps/|c*w|, here < 1e-5) whatever c is."""
    case, results = done["zero_grad_adam"]
    w = _record(results, way).params["weight"].astype(np.float64)
    lr = float(case.optimizer.lr)
    np.testing.assert_allclose(w[1] - w[0], -lr * np.sign(w[0]), rtol=1e-5)


def test_adam_coupled_coefficient_cannot_be_seen_on_a_zero_gradient(done):
    """An equal check between two coupled runs passes, but its power says the decay
    could be doubled unseen: inconclusive, never ok (why the case pins AdamW only)."""
    case, results = done["zero_grad_adam"]
    claim = dataclasses.replace(case, expectations=(
        Expectation("equal", ("torch:weight_decay", "paddle:l2decay")),))
    result = compare_case(claim, 0, results, claim.steps, Tolerance.for_case(claim))
    (c,) = result.comparisons
    assert c.inconclusive and not c.ok, c
    assert "doubled" in c.problem, c.problem


@pytest.mark.parametrize("fw", ["torch", "paddle"])
def test_momentum_on_a_zero_gradient_is_the_decay_alone(done, fw):
    """Momentum's coupled decay and the SGDW step on a zero gradient are the rules
    alone (no loss term to share the step with): coupled_l2@0.1, decoupled_lr@0.1."""
    case, results = done["zero_grad"]
    assert _rules(case, _record(results, f"{fw}:weight_decay")) == ["coupled_l2@0.1"] * 2
    assert _rules(case, _record(results, f"{fw}:decoupled")) == ["decoupled_lr@0.1"] * 2


def test_onecycle_lr_agrees_and_torch_switches_momentum_on(done):
    """Both OneCycleLRs give the closed form's lr at every step; yet torch's default
    cycle_momentum=True puts a momentum of 0.95..0.85 on the plain SGD: the first step
    (no momentum buffer yet) agrees across frameworks, the second no longer does, and
    torch's run fits no plain-SGD rule."""
    case, results = done["schedule_onecycle"]
    want = case.schedule.lrs(float(case.optimizer.lr), case.steps)
    t, p = _record(results, "torch:none"), _record(results, "paddle:none")
    for r in (t, p):
        np.testing.assert_allclose(r.series["lr"], want, rtol=LR_RTOL, atol=0)
    first = np.abs(t.params["weight"][1].astype(np.float64) - p.params["weight"][1])
    second = np.abs(t.params["weight"][2].astype(np.float64) - p.params["weight"][2])
    assert first.max() <= 4 * np.spacing(np.float32(np.abs(p.params["weight"][1]).max()))
    assert second.max() > 1e-4
    assert _rules(case, t) == ["unexplained"] * 2 and _rules(case, p) == ["none"] * 2


def test_onecycle_without_cycle_momentum_agrees(done):
    """cycle_momentum = false: torch's SGD stays plain and both runs are bit-close."""
    case, _ = done["schedule_onecycle"]
    aligned = dataclasses.replace(case, schedule=Schedule("onecycle", {**case.schedule.words,
                                                                       "cycle_momentum": False}))
    results = run(aligned)
    assert _rules(aligned, _record(results, "torch:none")) == ["none"] * 2
    claim = dataclasses.replace(aligned, expectations=(Expectation("equal", ("torch:none", "paddle:none")),))
    assert compare_case(claim, 0, results, claim.steps, Tolerance.for_case(claim)).comparisons[0].ok


def test_warmup_chain_closed_form():
    """Linear from warmup_start_factor*lr to lr over warmup_steps, then the kind from its own step 0."""
    s = Schedule("step", {"step_size": 2, "gamma": 0.5, "warmup_steps": 2, "warmup_start_factor": 0.25})
    np.testing.assert_allclose(s.lrs(0.1, 7), [0.025, 0.0625, 0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-15)


@pytest.mark.parametrize("name", ["torch:groups", "paddle:groups", "paddle:param_attr+weight_decay"])
def test_a_per_parameter_lr_scales_the_scheduled_lr(done, name):
    """Under StepLR / StepDecay the weight's decoupled decay is lr_scale*lr_t*c: replayed
    with the schedule's lr alone (the scale dropped) the case's rule no longer fits."""
    case, results = done["lr_scale_schedule"]
    record = _record(results, name)
    loop = case.loop(case.steps)
    assert _rules(case, record, loop)[0] == "decoupled_lr@0.1"
    unscaled = dataclasses.replace(loop, lr_scales=None, param_attr_lr=None)
    if name.startswith("torch"):
        # torch's group carries its absolute lr: drop the scale there too.
        record = dataclasses.replace(record, hyper=[{**h, "lr": 0.1} for h in record.hyper])
    assert _rules(case, record, unscaled)[0] != "decoupled_lr@0.1"


def test_fresh_batches_are_new_every_step_and_replayed_per_step():
    """[data] fresh: step k's batch comes from (seed, k), the same in the parent and in
    both frameworks; replayed with the first batch at every step no rule fits."""
    case = load_case(CASES / "data_fresh.toml")
    spec = case.spec()
    assert spec.step(0) is spec and not np.array_equal(spec.step(1).x, spec.x)
    assert np.array_equal(spec.step(3).target, case.spec().step(3).target)
    results = run(case)
    for name in ("torch:decoupled", "paddle:l2decay"):
        record = _record(results, name)
        found = _rules(case, record)
        stale = [i.rule for i in infer_run(record, dataclasses.replace(spec, fresh=None), case.loss,
                                           case.decay.coefficients(), loop=case.loop(record.steps))]
        assert found[0] in ("decoupled_lr@0.1", "coupled_l2@0.1") and stale == ["unexplained"] * 2


def test_fresh_survives_the_worker_request(tmp_path):
    case = load_case(CASES / "data_fresh.toml")
    path = tmp_path / "request"
    write_request(path, [Job.from_case(case, "torch")])
    (job,) = read_request(path)
    assert job.spec.fresh == case.seed and np.array_equal(job.spec.step(2).x, case.spec().step(2).x)


def test_port_reads_onecycle_through_the_schedule_table():
    """xdecay port --schedule: paddle's OneCycleLR becomes the neutral words (its
    end_learning_rate as torch's final_div_factor, no momentum cycling, as paddle does);
    torch's max_lr is the lr, and its cycle_momentum default stays torch's."""
    schedule, lr = parse_schedule("paddle", "OneCycleLR(max_learning_rate=0.5, total_steps=10, "
                                            "end_learning_rate=0.001)")
    assert lr == 0.5 and schedule.kind == "onecycle"
    assert schedule.words["final_div_factor"] == pytest.approx(0.5 / 25 / 0.001, rel=1e-15)
    assert schedule.words["cycle_momentum"] is False
    np.testing.assert_allclose(schedule.lrs(lr, 10)[-1], 0.001, rtol=1e-12)
    schedule, lr = parse_schedule("torch", "OneCycleLR(opt, max_lr=0.2, total_steps=8, pct_start=0.25)")
    assert lr == 0.2 and schedule.words["pct_start"] == 0.25 and schedule.words["cycle_momentum"] is True
    assert schedule.native("paddle", lr).code("paddle", None) == (
        "paddle.optimizer.lr.OneCycleLR(max_learning_rate=0.2, total_steps=8, phase_pct=0.25, divide_factor=25.0, "
        "anneal_strategy='cos', three_phase=False, end_learning_rate=8e-07)")
