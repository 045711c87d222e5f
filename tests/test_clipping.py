"""Gradient clipping around the step ([clip]), against real torch and paddle.

The shipped clip_* cases' expectations are checked (and flipped) by test_semantics;
here: that rule inference explains the runs only with each framework's own clip
formula, where the clip sits relative to each decay term, that a clip which changes
nothing is flagged, and that the knob survives the trip to a worker.
"""
from __future__ import annotations

import dataclasses

import pytest

from xdecay.case import load_case
from xdecay.engine.clipping import Clip
from xdecay.engine.compare import Tolerance
from xdecay.engine.infer import infer_run, rule_holds
from xdecay.engine.loop import Loop
from xdecay.engine.pipeline import compare_case
from xdecay.frameworks.protocol import read_request, write_request
from xdecay.frameworks.records import Job

from .conftest import ROOT, run

CASES = ROOT / "cases"


@pytest.fixture(scope="module")
def global_norm():
    case = load_case(CASES / "clip_global_norm.toml")
    return case, run(case)


def _record(done, name: str):
    fw, way = name.split(":")
    return next(r for r in done[fw].records[0] if r.way == way)


def _rules(case, record, clip):
    found = infer_run(record, case.spec(), case.loss, case.decay.coefficients(), loop=Loop(clip))
    return {i.param: i.rule for i in found}


@pytest.mark.parametrize("name", ["torch:weight_decay", "paddle:weight_decay", "paddle:l2decay"])
def test_optimizer_decay_joins_after_the_clip(global_norm, name):
    """Replayed on the clipped loss gradient, the optimizer's decay is coupled_l2@c; on
    the unclipped one nothing fits: the clip is what the rule needs to know."""
    case, done = global_norm
    record = _record(done, name)
    assert _rules(case, record, case.clip) == {"weight": "coupled_l2@0.1", "bias": "coupled_l2@0.1"}
    assert set(_rules(case, record, None).values()) == {"unexplained"}


@pytest.mark.parametrize("fw", ["torch", "paddle"])
def test_manual_term_is_inside_the_clip(global_norm, fw):
    """grad = clip(g + c*w): no decay added after a clip of the loss gradient fits it,
    only the term inside the clip (clipped_l2@c); without clipping the same term is
    coupled_l2@c (cases/momentum.toml)."""
    case, done = global_norm
    found = infer_run(_record(done, f"{fw}:manual"), case.spec(), case.loss, case.decay.coefficients(),
                      loop=Loop(case.clip))
    assert [i.rule for i in found] == ["clipped_l2@0.1"] * 2
    assert all(i.residuals["coupled_l2@0.1"] > 1 for i in found)
    unclipped = dataclasses.replace(case, clip=None)
    assert set(_rules(unclipped, _record(run(unclipped), f"{fw}:manual"), None).values()) == {"coupled_l2@0.1"}


def test_torch_and_paddle_global_norm_formulas_differ():
    """torch divides by norm + 1e-6, paddle by norm: each run is explained by its own
    framework's formula only (cases/clip_torch_epsilon.toml, gradient norm 0.0069)."""
    case = load_case(CASES / "clip_torch_epsilon.toml")
    done = run(case)
    for fw, other in (("torch", "paddle"), ("paddle", "torch")):
        record = _record(done, f"{fw}:none")
        own = infer_run(record, case.spec(), case.loss, case.decay.coefficients(), loop=Loop(case.clip))
        swapped = infer_run(record, case.spec(), case.loss, case.decay.coefficients(), loop=Loop(case.clip),
                            clip_as=other)
        assert [i.rule for i in own] == ["none"]
        assert [i.rule for i in swapped] == ["unexplained"]
    result = compare_case(case, 0, done, case.steps, Tolerance.for_case(case))
    assert result.ok
    assert any("clipping differs" in n and "norm + 1e-6" in n for n in result.notes), result.notes


def test_value_clip_removes_a_saturated_manual_term():
    """Clipping by value after a manual L2 term: where |g + c*w| stays above max the
    decay is gone (the bias), while weight_decay added after the clip stays."""
    case = load_case(CASES / "clip_value.toml")
    done = run(case)
    for fw in ("torch", "paddle"):
        assert _rules(case, _record(done, f"{fw}:manual"), case.clip)["bias"] == "ambiguous(none|clipped_l2@0.1)"
        assert _rules(case, _record(done, f"{fw}:weight_decay"), case.clip)["bias"] == "coupled_l2@0.1"


def test_a_clip_that_changes_nothing_is_flagged(global_norm):
    """A max above the gradient's norm (0.707) leaves every step alone: the case cannot
    show what clipping does, and says so instead of passing."""
    case, _ = global_norm
    idle = dataclasses.replace(case, clip=Clip("global_norm", 10.0))
    result = compare_case(idle, 0, run(idle), idle.steps, Tolerance.for_case(idle))
    assert not result.ok
    assert any(w.startswith("clip inactive: at step(s) 1, 2, 3") for w in result.warnings), result.warnings


def test_clip_survives_the_worker_request(tmp_path, global_norm):
    case, _ = global_norm
    path = tmp_path / "request"
    write_request(path, [Job.from_case(case, "torch")])
    (job,) = read_request(path)
    assert job.clip == Clip("global_norm", 0.1)


@pytest.mark.parametrize("fw", ["torch", "paddle"])
def test_need_clip_false_is_a_clip_of_the_subset(fw):
    """cases/clip_need_clip.toml: paddle's ParamAttr(need_clip=False) on the bias and
    torch's clip_grad_norm_([weight]) are both explained by the weight clipped by its
    own norm and the bias left whole; replayed as a clip of every parameter (the bias's
    gradient counted in the norm and scaled) neither run fits."""
    case = load_case(CASES / "clip_need_clip.toml")
    assert case.clip == Clip("global_norm", 0.1, ("weight",))
    record = _record(run(case), f"{fw}:weight_decay")
    assert _rules(case, record, case.clip) == {"weight": "coupled_l2@0.1", "bias": "coupled_l2@0.1"}
    assert _rules(case, record, Clip("global_norm", 0.1)) == {"weight": "unexplained", "bias": "unexplained"}


def test_clip_params_survive_the_worker_request(tmp_path):
    case = load_case(CASES / "clip_need_clip.toml")
    path = tmp_path / "request"
    write_request(path, [Job.from_case(case, "paddle")])
    (job,) = read_request(path)
    assert job.clip == case.clip and job.clip.params == ("weight",)


def test_manual_under_a_clip_has_detection_power(global_norm):
    """The manual pair's power comes from what-if replays of clipped_l2@c (it read
    "unknown" while the term inside the clip fitted no rule): conclusive, and a claim of
    another coefficient inside the clip fails the rule check."""
    case, done = global_norm
    result = compare_case(case, 0, done, case.steps, Tolerance.for_case(case))
    (pair,) = [c for c in result.comparisons if {c.a, c.b} == {"torch:manual", "paddle:manual"}]
    assert pair.ok and pair.power.verdict == "conclusive" and pair.power.coeff_error <= 0.01, pair.power
    assert pair.power.rules.get("coupled_l2@0.1") is True, pair.power.rules
    analysis = result.sensitivity["torch:manual"]
    assert rule_holds(analysis, "weight", "clipped_l2@0.1")
    assert not rule_holds(analysis, "weight", "clipped_l2@0.2")
