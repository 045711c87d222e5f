"""The comparison engine on hand-made runs: tolerance, NaN/Inf, visibility, JSON."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdecay.case import load_case
from xdecay.engine.compare import EPS32, Tolerance, _ulp_of_larger, compare_pair, ulp32
from xdecay.engine.pipeline import Outcome, compare_case
from xdecay.frameworks.records import RunRecord
from xdecay.writers.compare_report import json_report, markdown, table

from .conftest import MINIMAL, SHIPPED, run, write_case

W0 = np.array([[0.5, -0.25], [1.0, 2.0]], dtype=np.float32)


def record(way: str, *steps: np.ndarray) -> RunRecord:
    return RunRecord("torch", way, {"weight": np.stack([W0, *steps]).astype(np.float32)})


def test_one_ulp_of_the_weight_is_equal_two_are_not():
    tol = Tolerance(ops=0)                  # the update-rounding term switched off
    after = W0 - np.float32(0.01)
    one_ulp = np.nextafter(after, np.float32(np.inf))
    two_ulp = np.nextafter(one_ulp, np.float32(np.inf))
    same = compare_pair(record("a", after), record("b", one_ulp), "equal", tol)
    assert same.ok and same.max_ulp == pytest.approx(1.0) and same.excess <= 1
    apart = compare_pair(record("a", after), record("b", two_ulp), "equal", tol)
    assert not apart.ok and apart.max_ulp == pytest.approx(2.0) and "differ" in apart.problem


def test_tolerance_grows_with_the_step_and_the_update():
    tol = Tolerance(ops=10)
    w = np.ones((2, 3))
    d = np.full((2, 3), 0.5)
    allowed = tol.allowed(w, d, d)
    one = float(ulp32(1.0)) + 10 * EPS32 * 0.5
    np.testing.assert_allclose(allowed[0], one)
    np.testing.assert_allclose(allowed[1], 2 * one)


def test_fixed_tolerance_replaces_the_derived_one():
    tol = Tolerance(ops=10, atol=1e-3, rtol=0.0)
    assert tol.fixed and "1e-03" not in tol.describe()
    a, b = record("a", W0 - 0.01), record("b", W0 - 0.0105)
    assert compare_pair(a, b, "equal", tol).ok
    assert not compare_pair(a, b, "equal", Tolerance(ops=10)).ok


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_always_a_mismatch(bad):
    broken = W0.copy()
    broken[0, 0] = bad
    for expected in ("equal", "differ"):
        c = compare_pair(record("a", broken), record("b", broken), expected, Tolerance(ops=10))
        assert not c.ok and c.problem == "NaN/Inf in a run"


def test_differ_within_tolerance_is_flagged():
    c = compare_pair(record("a", W0 - 0.01), record("b", W0 - 0.01), "differ", Tolerance(ops=10))
    assert not c.ok and c.max_abs == 0 and "expected to differ" in c.problem


def test_decay_the_runs_cannot_show_is_not_ok_even_if_runs_look_equal(tmp_path):
    """Replaces the lr*c*|w| "below float32 resolution" estimate: the decayed run is
    replayed without decay (power.visibility); within tolerance, the equal check is
    inconclusive and the case not ok."""
    text = MINIMAL.replace("coeff = 0.1", "coeff = 1e-7") + (
        '\n[[expect]]\nequal = ["torch:none", "torch:weight_decay"]\n')
    case = load_case(write_case(tmp_path, text))
    result = compare_case(case, 0, run(case), 1, Tolerance.for_case(case))
    (c,) = result.comparisons
    assert c.excess <= 1 and c.verdict == "inconclusive"   # rounding cannot see the decay...
    assert not result.ok and result.exit_code == 1          # ...so the case is not called equal
    assert "INCONCLUSIVE" in table(Outcome({}, [result]))
    loud = load_case(write_case(tmp_path, MINIMAL.replace("[runs]", "[runs]") + (
        '\n[[expect]]\nequal = ["torch:weight_decay", "paddle:weight_decay"]\n'), "loud.toml"))
    assert compare_case(loud, 0, run(loud), 1, Tolerance.for_case(loud)).ok


@pytest.fixture(scope="module")
def momentum_outcome():
    case = load_case(SHIPPED[[p.stem for p in SHIPPED].index("momentum")])
    done = run(case, steps=2)
    result = compare_case(case, 0, done, 2, Tolerance.for_case(case))
    return Outcome({fw: r.version for fw, r in done.items()}, [result])


def test_json_follows_the_contract_and_round_trips_exactly(momentum_outcome):
    text = json_report(momentum_outcome)
    doc = json.loads(text)
    assert doc["xdecay"] and set(doc["frameworks"]) == {"torch", "paddle"}
    assert doc["case"] == "momentum" and doc["ok"] is True
    result = momentum_outcome.results[0]
    for run_doc, r in zip(doc["runs"], result.runs):
        assert run_doc["run"] == f"{run_doc['framework']}:{run_doc['way']}" == r.name
        assert len(run_doc["steps"]) == 2
        for k, step in enumerate(run_doc["steps"]):
            assert set(step) == {"delta_weight", "delta_bias"} and step["delta_bias"] is None
            np.testing.assert_array_equal(np.array(step["delta_weight"]), r.delta("weight")[k])
    for c in doc["comparisons"]:
        assert {"a", "b", "max_abs", "max_rel", "max_ulp", "expected", "ok"} <= set(c)
    assert "rules" in doc
    assert json_report(momentum_outcome) == text


def test_markdown_and_table_name_the_layout(momentum_outcome):
    md = markdown(momentum_outcome)
    assert "[out, in]" in md and "| element" in md and "**Verdict:** OK" in md
    txt = table(momentum_outcome)
    assert "canonical layout [out=4, in=3]" in txt and "verdict: OK" in txt


FLOATS32 = st.floats(width=32, allow_nan=True, allow_infinity=True)


@given(st.lists(st.tuples(FLOATS32, FLOATS32), min_size=1, max_size=40))
def test_the_ulp_of_the_larger_weight_is_np_spacing(values):
    # compare reads the spacing from the exponent bits: it must be np.spacing exactly,
    # at zero, subnormals, the largest float32, Inf and NaN too.
    before, after = (np.array(v, np.float32) for v in zip(*values))
    with np.errstate(all="ignore"):
        expected = np.spacing(np.maximum(np.abs(before), np.abs(after))).astype(np.float64)
    assert np.array_equal(_ulp_of_larger(before, after), expected, equal_nan=True)


def _plain(a: np.ndarray, b: np.ndarray, ops: int) -> tuple[float, ...]:
    """A comparison's maxima written out plainly, whole arrays at once: what the chunked,
    fused pass of compare_pair must reproduce bit for bit."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    da, db = np.diff(a.astype(np.float64), axis=0), np.diff(b.astype(np.float64), axis=0)
    ulp = np.spacing(np.maximum(np.abs(a[:-1]), np.abs(a[1:]))).astype(np.float64)
    diff, mag = np.abs(da - db), np.maximum(np.abs(da), np.abs(db))
    k = np.arange(1, len(da) + 1)[:, None]
    with np.errstate(all="ignore"):
        return (np.max(diff), np.max(np.where(mag > 0, diff / mag, 0.0)), np.max(diff / ulp),
                np.max(diff / (k * (ulp + ops * EPS32 * mag))))


@settings(max_examples=60)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 1e-7, 1e-3]), st.booleans())
def test_the_fused_chunked_pass_equals_the_plain_formulas(seed, noise, bad):
    rng = np.random.default_rng(seed)
    a = np.cumsum(rng.standard_normal((4, 9, 7)) * 1e-2, axis=0).astype(np.float32)
    b = (a * (1 + noise * rng.standard_normal(a.shape))).astype(np.float32)
    b[:, 0, :3] = a[:, 0, :3]              # zero differences, and zero deltas below
    a[1:, 1, :2] = a[0, 1, :2]
    b[1:, 1, :2] = b[0, 1, :2]
    if bad:
        b[2, 3, 4] = rng.choice([np.nan, np.inf])
    tol = Tolerance(ops=7)
    got = compare_pair(RunRecord("torch", "x", {"weight": a}), RunRecord("paddle", "y", {"weight": b}),
                       "equal", tol)
    expected = _plain(a, b, tol.ops)
    assert got.ok == (not bad and expected[3] <= 1)
    assert [got.max_abs, got.max_rel, got.max_ulp, got.excess] == pytest.approx(expected, rel=0, abs=0, nan_ok=True)
