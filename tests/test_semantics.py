"""What the shipped cases claim about the frameworks, checked against real torch and paddle.

Every claim is tested both ways: the shipped expectations hold, and flipping any
one of them (equal <-> differ) makes the engine flag it — so a change in either
framework's semantics fails this suite.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xdecay.case import Expectation, load_case
from xdecay.engine.compare import Tolerance
from xdecay.engine.pipeline import compare_case
from xdecay.engine.precision import round_to

from .conftest import MINIMAL, SHIPPED, TEST_CASES, run, write_case


def _results(shipped):
    cases, done = shipped
    return {c.name: (i, c) for i, c in enumerate(cases)}, done


@pytest.mark.parametrize("name", [p.stem for p in SHIPPED])
def test_shipped_case_holds(shipped, name):
    index, done = _results(shipped)
    i, case = index[name]
    result = compare_case(case, i, done, case.steps, Tolerance.for_case(case))
    assert not result.skipped and not result.warnings and not result.failed_runs
    assert result.checks and result.ok, [c for c in result.checks if not c.ok]


@pytest.mark.parametrize("name", [p.stem for p in SHIPPED])
def test_flipping_any_expectation_is_flagged(shipped, name):
    index, done = _results(shipped)
    i, case = index[name]
    for k, e in enumerate(case.expectations):
        flipped = {
            "equal": dataclasses.replace(e, kind="differ"),
            "differ": dataclasses.replace(e, kind="equal"),
            "rule": dataclasses.replace(e, rule="none" if e.rule != "none" else "coupled_l2@0.1"),
            "rejects": dataclasses.replace(e, rule="words the framework never says"),
        }[e.kind]
        expectations = case.expectations[:k] + (flipped,) + case.expectations[k + 1:]
        bad = dataclasses.replace(case, expectations=expectations)
        result = compare_case(bad, i, done, case.steps, Tolerance.for_case(case))
        assert not result.ok, f"{name}: flipping {e} went unnoticed"


def test_momentum_coupled_ways_agree_across_frameworks(shipped):
    index, done = _results(shipped)
    i, case = index["momentum"]
    result = compare_case(case, i, done, case.steps, Tolerance.for_case(case))
    claimed = {frozenset((c.a, c.b)) for c in result.comparisons if c.expected == "equal" and c.ok}
    ways = ["torch:weight_decay", "torch:manual", "paddle:weight_decay", "paddle:l2decay", "paddle:manual"]
    assert {frozenset((a, b)) for a in ways for b in ways if a != b} <= claimed


def _runs(done, index, framework):
    return {r.way: r for r in done[framework].records[index]}


def test_momentum_first_step_is_coupled_l2_with_the_case_coefficient(shipped):
    """Seed 003 by formula: step 1 of Momentum is -lr*(g + c*w), so decay adds -lr*c*w0."""
    index, done = _results(shipped)
    i, case = index["momentum"]
    w0 = case.spec().params["weight"].astype(np.float64)
    lr, c = case.optimizer.lr, case.decay.coeff
    for fw, ways in (("torch", ["weight_decay", "manual"]), ("paddle", ["weight_decay", "l2decay", "manual"])):
        runs = _runs(done, i, fw)
        base = runs["none"].delta("weight")[0]
        for way in ways:
            np.testing.assert_allclose(runs[way].delta("weight")[0] - base, -lr * c * w0, rtol=0, atol=1e-7)


def test_precedence_weight_gets_param_attr_coefficient_only(shipped):
    """ParamAttr(L2Decay(0.5)) + optimizer weight_decay=0.1: the weight's step-1 decay is lr*0.5*w."""
    index, done = _results(shipped)
    i, case = index["precedence"]
    spec = case.spec()
    lr = case.optimizer.lr
    runs = _runs(done, i, "paddle")
    base = runs["none"]
    both = runs["param_attr+weight_decay"]
    np.testing.assert_allclose(both.delta("weight")[0] - base.delta("weight")[0],
                               -lr * case.decay.param_attr["weight"].coeff * spec.params["weight"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(both.delta("bias")[0] - base.delta("bias")[0],
                               -lr * case.decay.coeff * spec.params["bias"], rtol=0, atol=1e-7)


def test_sgd_l1decay_adds_c_sign_w(shipped):
    index, done = _results(shipped)
    i, case = index["sgd"]
    spec = case.spec()
    runs = _runs(done, i, "paddle")
    lr, c = case.optimizer.lr, case.decay.coeff
    np.testing.assert_allclose(runs["l1decay"].delta("weight")[0] - runs["none"].delta("weight")[0],
                               -lr * c * np.sign(spec.params["weight"]), rtol=0, atol=1e-7)


def test_false_claim_adam_equals_adamw_is_caught():
    case = load_case(TEST_CASES / "adam_equals_adamw.toml")
    result = compare_case(case, 0, run(case), case.steps, Tolerance.for_case(case))
    assert not result.ok
    (c,) = result.comparisons
    assert (c.a, c.b, c.expected, c.ok) == ("torch:weight_decay", "torch:decoupled", "equal", False)
    assert c.max_abs > 1e-4 and c.excess > 100


def test_every_run_starts_from_the_numpy_spec_in_canonical_layout(shipped):
    cases, done = shipped
    for i, case in enumerate(cases):
        spec = case.spec()
        for fw in case.runs:
            for r in done[fw].records[i]:
                if r.error is not None:      # a run the case expects the framework to refuse
                    assert any(e.kind == "rejects" and e.runs == (r.name,) for e in case.expectations)
                    continue
                assert list(r.params) == list(spec.params)
                for name, value in spec.params.items():
                    assert r.params[name].dtype == np.float32
                    # A low-precision run ([precision]) starts from the spec rounded to its dtype.
                    np.testing.assert_array_equal(r.params[name][0], round_to(value, r.dtype).astype(np.float32))


def test_steps_override_records_every_step():
    case = load_case(SHIPPED[[p.stem for p in SHIPPED].index("momentum")])
    done = run(case, steps=4)
    for fw in case.runs:
        for r in done[fw].records[0]:
            assert r.delta("weight").shape == (4, 4, 3)
    # With momentum, decoupled and coupled decay part ways after the first step.
    torch_runs = {r.way: r for r in done["torch"].records[0]}
    gap = np.abs(torch_runs["decoupled"].delta("weight") - torch_runs["weight_decay"].delta("weight"))
    assert gap[0].max() < 1e-7 < 1e-4 < gap[3].max()


def test_compare_infers_each_runs_rule(shipped):
    index, done = _results(shipped)
    expected = {
        "adam": {("torch:weight_decay", "weight"): "coupled_l2@0.1",
                 ("paddle:l2decay", "weight"): "coupled_l2@0.1",
                 ("torch:decoupled", "weight"): "decoupled_lr@0.1",
                 ("paddle:decoupled", "weight"): "decoupled_lr@0.1",
                 ("paddle:none", "weight"): "none"},
        "precedence": {("paddle:param_attr+weight_decay", "weight"): "coupled_l2@0.5",
                       ("paddle:param_attr+weight_decay", "bias"): "coupled_l2@0.1",
                       ("paddle:param_attr", "bias"): "none"},
        "sgd": {("paddle:l1decay", "weight"): "l1@0.1",
                ("torch:decoupled", "weight"): "ambiguous(coupled_l2@0.1|decoupled_lr@0.1)"},
        "adamw": {("paddle:weight_decay", "bias"): "decoupled_lr@0.1",
                  ("torch:manual", "weight"): "coupled_l2@0.1"},
    }
    for name, rules in expected.items():
        i, case = index[name]
        result = compare_case(case, i, done, case.steps, Tolerance.for_case(case))
        got = {(run, param): rule for run, param, rule in result.rules}
        assert {k: got[k] for k in rules} == rules, name


# ---------------------------------------------------------------- every optimizer pair (issue 12)

def _result(shipped, name, expectations=None):
    index, done = _results(shipped)
    i, case = index[name]
    if expectations is not None:
        case = dataclasses.replace(case, expectations=expectations)
    return case, compare_case(case, i, done, case.steps, Tolerance.for_case(case))


def _comparison(result, a, b):
    return next(c for c in result.comparisons if {c.a, c.b} == {a, b})


# Each cross-framework pair's verdict on the weight_decay runs, with the words the
# cause must contain: (case, equal?, cause words).
PAIR_VERDICTS = [
    ("adamax", True, ""),
    ("nadam", True, ""),
    ("radam", True, ""),
    ("adagrad_eps", True, ""),
    ("adadelta_rho", True, ""),
    ("adagrad", False, "defaults differ: eps=1e-10 vs epsilon=1e-06 (torch's rule with paddle's values "
                       "reproduces paddle: the defaults are the cause)"),
    ("adadelta", False, "defaults differ: rho=0.9 vs rho=0.95 (torch's rule with paddle's values reproduces "
                        "paddle: the defaults are the cause)"),
    ("rmsprop", False, "update formula differs"),
    ("rmsprop_aligned", False, "update formula differs"),
    ("asgd", False, "update formula differs"),
]


@pytest.mark.parametrize("name,equal,words", PAIR_VERDICTS, ids=[v[0] for v in PAIR_VERDICTS])
def test_each_optimizer_pair_agrees_or_says_why_not(shipped, name, equal, words):
    probe = (Expectation("equal", ("torch:weight_decay", "paddle:weight_decay")),)
    _, result = _result(shipped, name, probe)
    (c,) = result.comparisons
    assert c.ok is equal
    notes = [n for n in result.notes if n.startswith("torch:weight_decay vs paddle:weight_decay differ")]
    if equal:
        assert not notes
    else:
        (note,) = notes
        assert words in note
        assert c.excess > 5     # far beyond the tolerance, not rounding


def test_adagrad_default_epsilon_moves_the_weights_by_a_micro(shipped):
    """PaConvert's converted Adagrad passes epsilon=1e-10; paddle's default 1e-6 moves
    this case's weights by ~2e-6 in three steps (lr 0.1, |g|/sqrt(s) ~ 1 at step 1, so
    the step moves by ~lr*eps/sqrt(s) per step), while aligned runs agree to float32
    rounding of weights of size ~0.5 (ULP 6e-8)."""
    pair = ("torch:weight_decay", "paddle:weight_decay")
    _, default = _result(shipped, "adagrad", (Expectation("equal", pair),))
    _, aligned = _result(shipped, "adagrad_eps", (Expectation("equal", pair),))
    assert 5e-7 < default.comparisons[0].max_abs < 1e-5
    assert aligned.comparisons[0].max_abs < 1e-7


def test_unset_defaults_that_differ_are_noted_next_to_the_verdict(shipped):
    _, result = _result(shipped, "adagrad")
    assert "defaults differ: eps not set: torch eps=1e-10 vs paddle epsilon=1e-06" in result.notes
    _, result = _result(shipped, "adagrad_eps")
    assert not any(n.startswith("defaults differ") for n in result.notes)


def test_adamw_left_out_is_not_adamw_with_zero(shipped):
    """A port of torch.optim.AdamW(params) to paddle.optimizer.AdamW(weight_decay=0.0)."""
    claim = (Expectation("equal", ("torch:default", "paddle:none")),)
    _, result = _result(shipped, "adamw_default", claim)
    assert not result.ok and result.exit_code == 1
    assert "torch:default vs paddle:none differ: decay rule differs: torch decoupled_lr@0.01, paddle none" \
        in result.notes
    _, result = _result(shipped, "adamw_default")
    rules = {(run, param): rule for run, param, rule in result.rules}
    assert rules[("paddle:default", "bias")] == rules[("torch:default", "bias")] == "decoupled_lr@0.01"


def test_an_int_coefficient_reaches_both_frameworks_as_an_int(tmp_path):
    text = MINIMAL.replace('name = "sgd"', 'name = "adamw"').replace("coeff = 0.1", "coeff = 1")
    case = load_case(write_case(tmp_path, text))
    done = run(case)
    for fw in ("torch", "paddle"):
        r = {r.way: r for r in done[fw].records[0]}["weight_decay"]
        assert r.error is None and type(r.hyper[0]["weight_decay"]) is int, (fw, r.hyper)
