"""Rule names and rule claims (issue 11, items 6 and 7).

A rule's name carries every digit of its coefficient the frameworks hold (float32), one
canonical order of `+` terms and `ambiguous` alternatives, and a claim (a case's rule
expectation, a baseline's saved rule) is compared with the inferred rule as numbers
within the inference tolerance — real paddle runs, in-process.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from xdecay.case import load_case
from xdecay.engine.baseline import find_drift, load_baseline
from xdecay.engine.compare import Tolerance
from xdecay.engine.infer import rule_holds
from xdecay.engine.pipeline import Outcome, compare_case
from xdecay.engine.rules import canonical_rule, coefficient_text, parse_rule
from xdecay.writers.compare_report import case_outcome, json_report

from .conftest import run, write_case

# ------------------------------------------------------------------ names (numpy only)


@pytest.mark.parametrize("c,text", [(0.1, "0.1"), (0.1004, "0.1004"), (0.5, "0.5"), (1e-5, "1e-05"),
                                    (3.0, "3"), (0.05, "0.05"), (1 / 3, "0.33333333")])
def test_a_coefficient_is_named_by_the_shortest_decimal_of_its_float32(c, text):
    assert coefficient_text(c) == text
    assert np.float32(float(text)) == np.float32(c)


def test_two_float32_coefficients_never_share_a_name():
    # Neighbours in float32 near 0.1: 3 significant digits named them all "0.1".
    c = np.float32(0.1)
    neighbours = [c, np.nextafter(c, np.float32(1)), np.nextafter(c, np.float32(0))]
    assert len({coefficient_text(float(x)) for x in neighbours}) == 3


@pytest.mark.parametrize("written,canonical", [
    ("ambiguous(decoupled_lr@0.1|coupled_l2@0.1)", "ambiguous(coupled_l2@0.1|decoupled_lr@0.1)"),
    ("decoupled_lr@0.1+coupled_l2@0.5", "coupled_l2@0.5+decoupled_lr@0.1"),
    ("ambiguous(decoupled_lr@0.1|coupled_l2@0.05+decoupled_lr@0.05|coupled_l2@0.1)",
     "ambiguous(coupled_l2@0.1|decoupled_lr@0.1|coupled_l2@0.05+decoupled_lr@0.05)"),
    ("ambiguous(l1@0.1|none)", "ambiguous(none|l1@0.1)"),
    ("lamb_trust@0.1+coupled_l2@0.50", "coupled_l2@0.5+lamb_trust@0.1"),
    ("coupled_l2@0.1004", "coupled_l2@0.1004"),
])
def test_rules_written_in_any_order_have_one_canonical_text(written, canonical):
    assert canonical_rule(written) == canonical
    assert canonical_rule(canonical) == canonical


@pytest.mark.parametrize("text", ["coupled_l2@0_1", "coupled_l2@ 0.1", "coupled_l2@+0.1", "coupled_l2@inf",
                                  "coupled_l2@nan", "coupled_l2@1e39", "coupled_l2@1e-50",
                                  "coupled_l2@0.1+coupled_l2@0.2",
                                  "ambiguous(coupled_l2@0.1|coupled_l2@0.2)", "ambiguous(coupled_l2@0.1)",
                                  "ambiguous(none|unexplained)", "weight_decay@0.1"])
def test_not_a_rule(text):
    assert parse_rule(text) is None


# ------------------------------------------------------------------ claims against real runs

CASE = """\
description = "a ParamAttr of {pa} against an optimizer decay of 0.1"
seed = 1
steps = 2

[layer]
in_features = 3
out_features = 2
bias = true

[data]
batch = 2

[optimizer]
name = "sgd"
lr = 0.1

[decay]
coeff = 0.1
param_attr = {{ weight = "l2@{pa}" }}

[runs]
paddle = ["weight_decay", "param_attr"]

[[expect]]
differ = ["paddle:weight_decay", "paddle:param_attr"]
param = "weight"
{claims}"""

CLAIM = '\n[[expect]]\nrun = "paddle:param_attr"\nparam = "weight"\nrule = "{rule}"\n'


def compared(tmp_path, pa: str, claims: list[str] = (), name: str = "pa.toml"):
    case = load_case(write_case(tmp_path, CASE.format(pa=pa, claims="".join(CLAIM.format(rule=c) for c in claims)),
                                name))
    done = run(case)
    return Outcome({fw: r.version for fw, r in done.items()},
                   [compare_case(case, 0, done, case.steps, Tolerance.for_case(case))])


def test_a_rule_claim_with_the_wrong_coefficient_fails_where_the_runs_differ(tmp_path):
    (r,) = compared(tmp_path, "0.1004", ["ambiguous(coupled_l2@0.1|decoupled_lr@0.1)"]).results
    (differ,) = r.comparisons
    assert differ.ok and differ.excess > 10        # the runs differ, far beyond the tolerance ...
    rules = {(run, p): rule for run, p, rule in r.rules}
    assert rules[("paddle:param_attr", "weight")] == "ambiguous(coupled_l2@0.1004|decoupled_lr@0.1004)"
    assert rules[("paddle:weight_decay", "weight")] == "ambiguous(coupled_l2@0.1|decoupled_lr@0.1)"
    # ... so a claim of 0.1 for the 0.1004 run must fail (3 digits of 0.1004 said 0.1) ...
    (check,) = r.rule_checks
    assert not check.ok
    # ... and the right set holds in any order, its coefficients as numbers.
    analysis = r.sensitivity["paddle:param_attr"]
    assert rule_holds(analysis, "weight", "ambiguous(decoupled_lr@0.1004|coupled_l2@0.10040)")
    assert not rule_holds(analysis, "weight", "coupled_l2@0.1004")       # one alternative is not the set
    assert not rule_holds(analysis, "weight", "ambiguous(coupled_l2@0.1|decoupled_lr@0.1004)")


def test_plus_terms_in_another_order_hold(tmp_path):
    text = (CASE.format(pa="0.5", claims="").replace('name = "sgd"\nlr = 0.1', 'name = "lamb"\nlr = 0.01')
            .replace('paddle = ["weight_decay", "param_attr"]', 'paddle = ["param_attr+weight_decay", "param_attr"]')
            .replace('differ = ["paddle:weight_decay"', 'differ = ["paddle:param_attr+weight_decay"'))
    text += CLAIM.format(rule="lamb_trust@0.1+coupled_l2@0.5").replace("paddle:param_attr", "paddle:param_attr+weight_decay")
    case = load_case(write_case(tmp_path, text))
    assert case.expectations[-1].rule == "coupled_l2@0.5+lamb_trust@0.1"
    done = run(case)
    r = compare_case(case, 0, done, case.steps, Tolerance.for_case(case))
    (check,) = r.rule_checks
    assert check.ok and check.got == "coupled_l2@0.5+lamb_trust@0.1"


def test_a_baseline_sees_a_coefficient_change_beyond_three_digits(tmp_path):
    old = compared(tmp_path, "0.1", name="pa.toml")
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "pa.json").write_text(json_report(case_outcome(old, old.results[0])))
    new = compared(tmp_path, "0.1004", name="pa.toml")
    rules = [d for d in find_drift(new, load_baseline(saved), every_case=False) if d.kind == "rule"]
    assert [(d.what, d.old, d.new) for d in rules] == [
        ("paddle:param_attr weight", "ambiguous(coupled_l2@0.1|decoupled_lr@0.1)",
         "ambiguous(coupled_l2@0.1004|decoupled_lr@0.1004)")]


def test_a_saved_rule_in_another_order_or_with_digits_below_the_tolerance_is_no_drift(tmp_path):
    outcome = compared(tmp_path, "0.1004")
    doc = json.loads(json_report(case_outcome(outcome, outcome.results[0])))
    for rule in doc["rules"]:
        if rule["run"] == "paddle:param_attr" and rule["param"] == "weight":
            # As another CPU might fit it: the order reversed, a last digit the data cannot resolve.
            rule["rule"] = "ambiguous(decoupled_lr@0.1004|coupled_l2@0.10040001)"
    (tmp_path / "saved.json").write_text(json.dumps(doc))
    assert find_drift(outcome, load_baseline(tmp_path / "saved.json"), every_case=False) == []
