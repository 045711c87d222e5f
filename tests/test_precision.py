"""Mixed precision ([precision]), against real torch and paddle.

The shipped bf16_* / autocast_grad_scaler / fp16_grad_scaler cases' expectations are
checked and flipped by test_semantics; here: what each framework really stored and
computed in, that a decay below bfloat16 resolution makes an equal claim INCONCLUSIVE
(and the same decay in float32 does not), that the tolerance and the replay are taken
at the precision in use, and the arithmetic they rest on (numpy only).
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from xdecay.case import Expectation, load_case
from xdecay.engine.compare import Tolerance
from xdecay.engine.infer import infer_run
from xdecay.engine.pipeline import compare_case
from xdecay.engine.precision import as_stored, eps, round_to, ulp
from xdecay.writers.compare_report import case_outcome, json_report, markdown

from .conftest import ROOT, run

NAMES = ("bf16_momentum", "bf16_vanish", "autocast_grad_scaler", "fp16_grad_scaler", "bf16_master_weights")


@pytest.fixture(scope="module")
def done():
    cases = {n: load_case(ROOT / "cases" / f"{n}.toml") for n in NAMES}
    return {n: (c, run(c)) for n, c in cases.items()}


def _record(results, name):
    fw, way = name.split(":")
    return next(r for r in results[fw].records[0] if r.way == way)


def _result(case, results):
    return compare_case(case, 0, results, case.steps, Tolerance.for_case(case))


# ---------------------------------------------------------------- arithmetic (numpy only)

def test_eps_is_the_spacing_of_one():
    assert eps("float32") == 2.0 ** -23 and eps("bfloat16") == 2.0 ** -7 and eps("float16") == 2.0 ** -10
    assert ulp(np.array([1.0]), "bfloat16")[0] == 2.0 ** -7
    assert ulp(np.array([0.3]), "bfloat16")[0] == 2.0 ** -9      # 0.3 in [0.25, 0.5)
    assert ulp(np.array([0.3]), "float16")[0] == 2.0 ** -12


def test_round_to_bfloat16_is_to_nearest_ties_to_even():
    one = 1.0
    # Half an ULP above 1 ties to 1 (even); above a tie rounds up; 1 + ULP stays.
    assert round_to(np.array([one + 2.0 ** -8]), "bfloat16")[0] == one
    assert round_to(np.array([one + 2.0 ** -8 + 2.0 ** -20]), "bfloat16")[0] == one + 2.0 ** -7
    assert round_to(np.array([one + 3 * 2.0 ** -8]), "bfloat16")[0] == one + 2 * 2.0 ** -7   # tie to even
    assert round_to(np.array([-0.3]), "bfloat16")[0] == -round_to(np.array([0.3]), "bfloat16")[0]


def test_a_bfloat16_tolerance_is_the_float32_formula_at_bfloat16():
    """k*(ulp_stored(w) + n*eps_computed*|delta|): the same formula, the dtype's numbers."""
    w, d = np.array([0.3]), np.array([0.01])
    f32 = Tolerance(ops=27)
    bf16 = Tolerance(ops=27, stored="bfloat16", computed="bfloat16")
    autocast = Tolerance(ops=27, stored="float32", computed="bfloat16")
    assert f32.allowed(w, d, d, step=1)[0] == pytest.approx(2.0 ** -25 + 27 * 2.0 ** -23 * 0.01)
    assert bf16.allowed(w, d, d, step=2)[0] == pytest.approx(2 * (2.0 ** -9 + 27 * 2.0 ** -7 * 0.01))
    assert autocast.allowed(w, d, d, step=1)[0] == pytest.approx(2.0 ** -25 + 27 * 2.0 ** -7 * 0.01)
    assert "ulp_bfloat16(w) + 27*eps_bfloat16" in bf16.describe()


# ---------------------------------------------------------------- the frameworks

def test_torch_stores_bfloat16_and_paddle_stays_float32_on_cpu(done):
    """torch's model.to(bfloat16) trains bfloat16 weights; paddle's O2 recipe leaves them
    float32 on a CPU build, and says so (recorded, never skipped silently)."""
    case, results = done["bf16_momentum"]
    t, p = _record(results, "torch:weight_decay"), _record(results, "paddle:weight_decay")
    assert (t.dtype, t.forward) == ("bfloat16", "bfloat16")
    assert (p.dtype, p.forward) == ("float32", "float32")
    # bfloat16 values have 16 zero low bits as float32: the snapshots hold them exactly.
    bits = t.params["weight"].view(np.uint32)
    assert not np.any(bits & 0xFFFF)
    assert any("so it makes no effect" in line for line in p.logs)
    note = _result(case, results).notes[0]
    assert "paddle ran in float32 throughout" in note and "torch:weight_decay" in note


def test_torch_weight_decay_is_the_manual_term_to_the_bit_in_bfloat16(done):
    _, results = done["bf16_momentum"]
    a, b = _record(results, "torch:weight_decay"), _record(results, "torch:manual")
    assert np.array_equal(a.params["weight"], b.params["weight"])


def test_a_decay_below_bfloat16_resolution_is_inconclusive_not_equal(done):
    """lr*c*|w| ~ 3e-5 against a bfloat16 half-ULP of ~1e-3: torch's bfloat16 steps round
    the decay away (the weights are torch:none's to the bit), and a claim that the decay
    was applied as in paddle is INCONCLUSIVE."""
    case, results = done["bf16_vanish"]
    none, wd = _record(results, "torch:none"), _record(results, "torch:weight_decay")
    assert np.array_equal(none.params["weight"], wd.params["weight"])
    claims = (Expectation("equal", ("torch:none", "torch:weight_decay")),
              Expectation("equal", ("torch:weight_decay", "paddle:weight_decay")))
    result = _result(dataclasses.replace(case, expectations=claims), results)
    assert [c.verdict for c in result.comparisons] == ["inconclusive", "inconclusive"]
    assert "cannot see the decay" in result.comparisons[0].problem
    # The shipped claim is the invisibility itself (none among the rules): conclusive.
    (check,) = [c for c in _result(case, results).rule_checks if c.run == "torch:weight_decay"]
    assert check.got.startswith("ambiguous(none|") and check.ok and check.power.verdict == "conclusive"


def test_the_same_decay_is_visible_in_float32(done):
    """The vanish case without [precision]: torch's float32 run shows the decay."""
    case, _ = done["bf16_vanish"]
    plain = dataclasses.replace(case, precision=None)
    results = run(plain)
    rules = {(r, p): rule for r, p, rule in _result(plain, results).rules}
    assert rules[("torch:weight_decay", "weight")] == "ambiguous(coupled_l2@0.001|decoupled_lr@0.001)"
    assert _record(results, "torch:weight_decay").dtype == "float32"


def test_inference_needs_the_replay_rounded_to_bfloat16(done):
    """torch's bfloat16 weights are explained only by a replay rounded to bfloat16 at the
    bfloat16 tolerance: held to float32 (the run's dtype forgotten) nothing fits."""
    case, results = done["bf16_momentum"]
    record = _record(results, "torch:weight_decay")
    coeffs = case.decay.coefficients()
    spec = as_stored(case.spec(), "bfloat16")          # torch cast the inputs too
    found = infer_run(record, spec, case.loss, coeffs, loop=case.loop(case.steps))
    assert found[0].rule == "ambiguous(coupled_l2@0.5|decoupled_lr@0.5)"
    as_float32 = dataclasses.replace(record, dtype="float32", forward="float32")
    assert infer_run(as_float32, spec, case.loss, coeffs, loop=case.loop(case.steps))[0].rule == "unexplained"


def test_grad_scaler_unscales_the_manual_term_before_the_step(done):
    """Under torch's GradScaler(init_scale=1024) the manual L2 term is scaled with the
    loss: were it not unscaled before the step it would decay at 1024*c. It decays at c,
    to the bit as the optimizer's weight_decay, which joins after unscaling."""
    _, results = done["autocast_grad_scaler"]
    a, b = _record(results, "torch:weight_decay"), _record(results, "torch:manual")
    assert (a.dtype, a.forward) == ("float32", "bfloat16")
    assert np.array_equal(a.params["weight"], b.params["weight"])
    paddle = _record(results, "paddle:manual")
    assert any("AmpScaler can only be enabled" in line for line in paddle.logs)


def test_torch_refuses_a_grad_scaler_on_float16_parameters(done):
    _, results = done["fp16_grad_scaler"]
    assert _record(results, "torch:weight_decay").error == "ValueError: Attempting to unscale FP16 gradients."


def test_precision_is_recorded_in_json_and_markdown(done):
    case, results = done["autocast_grad_scaler"]
    from xdecay.engine.pipeline import Outcome
    result = _result(case, results)
    outcome = Outcome({fw: r.version for fw, r in results.items()}, [result])
    data = json.loads(json_report(case_outcome(outcome, result)))
    assert data["precision"]["dtype"] == "bfloat16" and data["precision"]["autocast"] is True
    assert data["precision"]["grad_scaler"] == {"init_scale": 1024.0}
    assert {r["run"]: (r["dtype"], r["forward"]) for r in data["runs"]}["torch:manual"] == ("float32", "bfloat16")
    assert "precision bfloat16 autocast, GradScaler(init_scale=1024)" in markdown(outcome)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_paddle_cpu_has_no_low_precision_linear(dtype):
    """Why paddle's O2 cannot be made to store low precision here: its CPU build has no
    bfloat16/float16 matmul kernel (README, [precision])."""
    from xdecay.frameworks.paddle_adapter import paddle
    layer = paddle.nn.Linear(3, 4)
    layer.to(dtype=dtype)
    with pytest.raises(RuntimeError, match=f"kernel `matmul` is not registered. Selected wrong DataType `{dtype}`"):
        layer(paddle.ones([2, 3]).astype(dtype))
