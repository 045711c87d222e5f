"""Detection power (issue 15): one test per verdict kind, against the real frameworks.

conclusive · inconclusive because the decayed runs equal the undecayed ones ·
inconclusive because too few steps separate the rules (with the replayed suggestion
checked by running it) · the power figure against an independent numpy replay written
here (not xdecay.engine.reference) · --min-power.
"""
from __future__ import annotations

import numpy as np
import pytest

from .conftest import MINIMAL, SHIPPED, run, write_case
from xdecay.case import load_case
from xdecay.engine.compare import Tolerance, compare_pair
from xdecay.engine.pipeline import Outcome, compare_case
from xdecay.engine.power import GRID
from xdecay.writers.compare_report import json_report, table

ADAM = next(p for p in SHIPPED if p.stem == "adam")


def result_of(case, steps=None, min_power=None):
    steps = steps or case.steps
    return compare_case(case, 0, run(case, steps), steps, Tolerance.for_case(case), min_power=min_power)


def test_shipped_adam_is_conclusive_with_a_stated_power():
    result = result_of(load_case(ADAM))
    assert result.ok and not result.inconclusive
    for c in result.comparisons:
        assert c.power.verdict in ("conclusive", "no decay"), c
        if c.expected == "equal" and c.power.verdict == "conclusive":
            # AdamW vs coupled Adam, L1 for L2, the decay twice: all would be flagged.
            assert 0 < c.power.coeff_error <= 0.01 and all(c.power.rules.values()), c.power
    shown = table(Outcome({}, [result]))
    first = result.comparisons[0].power
    assert "power" in shown and f">={first.coeff_error * 100:.3g} %" in shown


def test_one_adam_step_is_inconclusive_not_a_mismatch_and_the_suggestion_works():
    """Issue 11 item 10: one Adam step cannot show a coupled decay (its normalisation
    absorbs it). The differ check and every equal check over the coupled runs are
    inconclusive, not MISMATCH; the replayed suggestion (2 steps) then separates them."""
    case = load_case(ADAM)
    result = result_of(case, steps=1)
    assert not result.ok and result.exit_code == 1
    by = {(c.a, c.b): c for c in result.comparisons}
    differ = by[("torch:none", "torch:weight_decay")]
    assert differ.verdict == "inconclusive" and differ.power.verdict == "inconclusive"
    assert "cannot separate" in differ.problem and "2 steps" in differ.power.suggestion
    coupled = by[("torch:weight_decay", "paddle:l2decay")]
    assert coupled.verdict == "inconclusive" and "replayed without decay" in coupled.problem
    assert by[("torch:none", "paddle:none")].ok                       # no decay: nothing to see
    assert by[("torch:weight_decay", "torch:decoupled")].ok           # decoupled shows at once
    assert all(c.verdict != "mismatch" for c in result.checks)
    assert "verdict: INCONCLUSIVE" in table(Outcome({}, [result]))
    # The suggestion, run for real: two steps separate none from the coupled decay.
    two = result_of(case, steps=2)
    again = {(c.a, c.b): c for c in two.comparisons}
    assert again[("torch:none", "torch:weight_decay")].ok
    assert again[("torch:weight_decay", "paddle:l2decay")].ok


def test_rule_check_that_cannot_separate_is_inconclusive(tmp_path):
    text = ADAM.read_text() + ('\n[[expect]]\nrun = "torch:weight_decay"\nparam = "weight"\n'
                               'rule = "coupled_l2@0.1"\n')
    case = load_case(write_case(tmp_path, text, "adam_rule.toml"))
    (check,) = result_of(case, steps=1).rule_checks
    assert check.got == "ambiguous(none|coupled_l2@0.1)"
    assert check.verdict == "inconclusive" and "2 steps" in check.power.suggestion
    (held,) = result_of(case).rule_checks
    assert held.ok and held.power.coeff_error is not None


SMALL = MINIMAL.replace("coeff = 0.1", "coeff = 1e-6") + (
    '\n[[expect]]\nequal = ["torch:weight_decay", "paddle:weight_decay"]\n')


def test_decay_the_runs_cannot_show_is_inconclusive_with_the_numbers(tmp_path):
    """coeff 1e-6 with SGD: the decayed runs equal the undecayed ones (checked on the
    real runs too), so the passing equal check is inconclusive, never ok."""
    case = load_case(write_case(tmp_path, SMALL))
    result = result_of(case)
    (c,) = result.comparisons
    assert c.excess <= 1 and c.verdict == "inconclusive" and not result.ok and result.exit_code == 1
    assert c.power.visibility is not None and c.power.visibility <= 1
    assert f"{c.power.visibility:.3g}x the tolerance" in c.problem
    assert "coefficient x" in c.power.suggestion or "steps" in c.power.suggestion
    runs = {r.name: r for r in result.runs}
    assert compare_pair(runs["torch:none"], runs["torch:weight_decay"], "equal", result.tolerance).ok
    doc = json_report(Outcome({}, [result]))
    assert '"verdict": "inconclusive"' in doc and '"power": {' in doc


FIXED = MINIMAL.replace("[runs]", "[tolerance]\natol = 1e-7\nrtol = 1e-5\n\n[runs]").replace(
    "seed = 1", "seed = 1\nsteps = 3") + '\n[[expect]]\nequal = ["torch:weight_decay", "paddle:weight_decay"]\n'


def test_power_figure_matches_an_independent_replay(tmp_path):
    """Plain SGD, fixed tolerance: replayed from the run's own weights, a coefficient
    c*(1 +- d) moves step k by exactly lr*c*d*|w_k| (SGD has no state), and the check
    tolerates atol + rtol*max(|da|, |db|) + |da - db|. So the smallest d caught is the
    first grid value above 1/M, M = max lr*c*|w_k| / that margin: computed here in numpy."""
    case = load_case(write_case(tmp_path, FIXED))
    result = result_of(case)
    (c,) = result.comparisons
    runs = {r.name: r for r in result.runs}
    a, b = (runs[n].params["weight"].astype(np.float64) for n in ("torch:weight_decay", "paddle:weight_decay"))
    da, db = np.diff(a, axis=0), np.diff(b, axis=0)
    margin = 1e-7 + 1e-5 * np.maximum(np.abs(da), np.abs(db)) + np.abs(da - db)
    lr, coeff = 0.1, 0.1
    worst = 0.0
    for w in (a, b):      # each decayed run is perturbed; the check's figure is the worse
        worst = max(worst, 1 / float(np.max(lr * coeff * np.abs(w[:-1]) / margin)))
    expected = min(g for g in GRID if g > worst)
    assert c.ok and c.power.verdict == "conclusive"
    assert c.power.coeff_error == pytest.approx(expected, rel=1e-9), (worst, c.power)
    # SGD: coupled and decoupled are one formula; L1 and the decay twice are caught.
    assert c.power.rules == {"decoupled_lr@0.1": False, "l1@0.1": True,
                             "coupled_l2@0.1+decoupled_lr@0.1": True, "coupled_l2@0.1": False}


def test_min_power_makes_a_weaker_check_inconclusive(tmp_path):
    case = load_case(write_case(tmp_path, FIXED.replace("seed = 1", "seed = 1\nmin_power = 1e-5")))
    assert case.min_power == 1e-5
    (c,) = result_of(case, min_power=case.min_power).comparisons
    assert c.verdict == "inconclusive" and "min power asks 0.001 %" in c.problem
    (c,) = result_of(case, min_power=0.5).comparisons
    assert c.ok


def test_explain_says_what_separates_an_ambiguous_rule_and_it_does():
    """paddle Rprop steps by sign(g): in 3 steps its default decay is ambiguous with none.
    The replayed suggestion's step count, run for real, separates the rules; plain SGD's
    coupled and decoupled decay are one formula, and explain says no replay separates them."""
    from xdecay.engine.explain import explain
    three = explain(("paddle",), {"rprop", "sgd"}, 3, in_process=True)
    rows = {(r.optimizer, r.way, r.param): r for r in three.rows}
    sgd = rows[("SGD", "weight_decay", "weight")]
    assert sgd.rule == "ambiguous(coupled_l2@0.1|decoupled_lr@0.1)"
    assert sgd.separate.startswith("no replay up to 100 steps")
    rprop = rows[("Rprop", "default", "weight")]
    assert rprop.rule.startswith("ambiguous(none|")
    steps = int(rprop.separate.split("replayed): ")[1].split(" steps")[0])
    assert steps > 3
    more = explain(("paddle",), {"rprop"}, steps, in_process=True)
    again = {(r.optimizer, r.way, r.param): r for r in more.rows}[("Rprop", "default", "weight")]
    assert not again.rule.startswith("ambiguous(") and not again.separate, again


def test_one_step_of_any_shipped_case_is_never_a_false_mismatch():
    """Issue 11 item 10, for every shipped case: at --steps 1 a check either holds or is
    inconclusive with a reason — the rules all hold at the cases' own steps."""
    from xdecay.engine.pipeline import run_cases
    outcome = run_cases([load_case(p) for p in SHIPPED], steps=1, in_process=True)
    verdicts = [c.verdict for r in outcome.results for c in r.checks]
    assert "mismatch" not in verdicts and "inconclusive" in verdicts
    for r in outcome.results:
        for c in r.inconclusive:
            assert c.power.reason and (c.power.suggestion or "min power" in c.problem), c


def test_a_tolerance_wider_than_the_decay_makes_equal_checks_inconclusive():
    """--atol 0.01 on the adam case: the comparisons cannot see a decay of lr*c*|w| ~ 1e-4,
    so no equal check over decayed runs can pass as "ok"; the differ checks fail as
    mismatches (inference tells the rules apart; the user's tolerance does not)."""
    case = load_case(ADAM)
    tol = Tolerance.for_case(case, atol=0.01)
    result = compare_case(case, 0, run(case), case.steps, tol)
    for c in result.comparisons:
        if c.expected == "differ":
            assert c.verdict == "mismatch" and "by less than the comparison's tolerance" in c.problem
        elif c.a.endswith(":none") and c.b.endswith(":none"):
            assert c.ok
        else:
            assert c.verdict == "inconclusive" and "left out or doubled" in c.problem, c
