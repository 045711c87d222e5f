"""Per-parameter learning rates ([[decay.groups]] lr_scale), against real torch and paddle.

The shipped lr_scale_* cases' expectations (coupled and decoupled decay both scale
with the group's lr in both frameworks) are checked and flipped by test_semantics;
here: that rule inference needs each parameter's effective lr to explain them, and
that the neutral lr_scale reaches each framework in its own form.
"""
from __future__ import annotations

import dataclasses

import pytest

from xdecay.case import load_case
from xdecay.engine.infer import infer_run
from xdecay.engine.loop import Loop

from .conftest import ROOT, TEST_CASES, run

CASES = {"lr_scale_coupled": "coupled_l2@0.1", "lr_scale_adamw": "decoupled_lr@0.1"}


@pytest.fixture(scope="module")
def done():
    cases = {n: load_case(ROOT / "cases" / f"{n}.toml") for n in CASES}
    return {n: (c, run(c)) for n, c in cases.items()}


def _record(results, fw, way="groups"):
    return next(r for r in results[fw].records[0] if r.way == way)


def _rules(case, record, loop):
    return [i.rule for i in infer_run(record, case.spec(), case.loss, case.decay.coefficients(), loop=loop)]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("fw", ["torch", "paddle"])
def test_the_weight_is_explained_only_at_its_effective_lr(done, name, fw):
    """Replayed at lr_scale * lr the weight follows the case's rule; replayed at the
    optimizer's lr that rule no longer fits (paddle: the scales dropped from the loop;
    torch, whose group hyper-parameters carry the absolute lr: that lr set to lr)."""
    case, results = done[name]
    record = _record(results, fw)
    loop = case.loop(case.steps)
    assert loop.lr_scale(fw, "groups", "weight") == 0.1 and loop.lr_scale(fw, "groups", "bias") == 1.0
    assert _rules(case, record, loop) == [CASES[name], "none"]
    unscaled = dataclasses.replace(loop, lr_scales=None)
    if fw == "torch":
        record = dataclasses.replace(record, hyper=[{**h, "lr": 0.1} for h in record.hyper])
    assert _rules(case, record, unscaled)[0] != CASES[name]


def test_lr_scale_is_translated_per_framework(done):
    """torch gets the absolute group lr lr_scale * lr; paddle keeps the optimizer's lr
    and gets the scale as the group's learning_rate multiplier."""
    case, results = done["lr_scale_adamw"]
    torch_groups = _record(results, "torch").hyper
    assert [g["lr"] for g in torch_groups] == [pytest.approx(0.01, rel=1e-15), 0.1]
    assert _record(results, "paddle").hyper[0]["learning_rate"] == 0.1
    from xdecay.writers.setup_code import setup_code
    assert '"learning_rate": 0.1' in setup_code(case, "paddle", "groups").text()
    assert '"lr": 0.01' in setup_code(case, "torch", "groups").text()


def test_param_attr_learning_rate_is_replayed_and_reset_by_groups():
    """paddle ParamAttr(learning_rate=0.1): the param_attr ways' weight is explained at
    lr 0.01 only; building with groups (no lr_scale) resets the multiplier to 1, so that
    run is explained at lr 0.1 only."""
    case = load_case(ROOT / "cases" / "param_attr_lr.toml")
    results = run(case)
    loop = case.loop(case.steps)
    plain = dataclasses.replace(loop, param_attr_lr=None)
    scaled = _record(results, "paddle", "param_attr+weight_decay")
    assert _rules(case, scaled, loop)[0] == "decoupled_lr@0.1"
    assert _rules(case, scaled, plain)[0] != "decoupled_lr@0.1"
    grouped = _record(results, "paddle", "param_attr+groups")
    assert loop.lr_scale("paddle", "param_attr+groups", "weight") == 1.0
    assert _rules(case, grouped, loop)[0] == "decoupled_lr@0.1"
    as_if_kept = dataclasses.replace(loop, lr_scales={"weight": 0.1})
    assert _rules(case, grouped, as_if_kept)[0] != "decoupled_lr@0.1"
    from xdecay.writers.setup_code import setup_code
    assert "learning_rate=0.1" in setup_code(case, "paddle", "param_attr+weight_decay").text()


def test_ways_without_groups_step_at_the_optimizer_lr():
    loop = Loop(lr_scales={"weight": 0.5}, base_lr=0.1)
    assert loop.lr_scale("torch", "weight_decay", "weight") == 1.0
    assert loop.lr_scale("torch", "after_groups", "weight") == 1.0      # torch: built without groups
    assert loop.lr_scale("paddle", "param_attr+groups", "weight") == 0.5
    assert loop.lr_scale("paddle", "groups", "bias") == 1.0
    attr = Loop(param_attr_lr={"weight": 2.0}, base_lr=0.1)
    assert attr.lr_scale("paddle", "param_attr", "weight") == 2.0
    assert attr.lr_scale("paddle", "weight_decay", "weight") == 1.0
    assert attr.lr_scale("torch", "weight_decay", "weight") == 1.0


def test_torch_group_hyper_parameters_are_found_by_membership():
    """Groups listed out of the parameters' order (norm_* first, at lr_scale 0.1; then
    weight and bias at the optimizer's lr): each torch parameter is replayed with its
    own group's lr, not the group at its position (which put the weight at 0.1 * lr)."""
    case = load_case(TEST_CASES / "groups_out_of_order.toml")
    record = _record(run(case), "torch")
    loop = case.loop(case.steps)
    assert loop.group("torch", "groups", "weight", 0) == 1 and loop.group("paddle", "groups", "weight", 0) == 0
    assert _rules(case, record, loop) == ["decoupled_lr@0.1"] * 4
    positional = dataclasses.replace(loop, group_of=None)
    assert _rules(case, record, positional)[0] == "unexplained"
