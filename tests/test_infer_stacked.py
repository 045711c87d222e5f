"""Stacked replays (engine/infer.py step's `width`, power.ParamPower) against the
replays of one option at a time, bit for bit (numpy only: the reference rules on
random arrays, no framework).

Rule inference, power and cause replay many decay options of one parameter together,
stacked on a new first axis, with the unjittered replay riding in the jitter replay.
Every element must get the very operations of its own replay: the same float64 bits
(the sign of a zero, NaN and inf where a replay overflows included), so no verdict,
rule string or figure moves. The fitted-coefficient search asks for several golden-
section iterations and several families at once: it must visit the very points, and
return the very coefficient, of the search that asks for one iteration at a time.
"""
from __future__ import annotations

import math
from unittest import mock

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from xdecay.engine import power as power_module
from xdecay.engine.compare import Tolerance
from xdecay.engine.infer import (
    FAMILIES,
    LOOKAHEAD,
    MIXING_RULES,
    ParamReplay,
    _family_grads,
    _fit,
    _option_ratios,
    _option_stack,
    _ratios_options,
    _replay,
    _stacked,
    _stored,
    infer_param,
    infer_params,
    rule_args,
    step,
)
from xdecay.engine.power import GRID, ParamPower, alternatives
from xdecay.engine.reference import RULES, hyper_value, rule_kwargs

# One key per element-wise reference rule (AdamW's rule is Adam's).
ELEMENTWISE = sorted({rule.__name__: key for key, rule in RULES.items()
                      if rule.__name__ not in MIXING_RULES}.values())
# The decay families a stacked replay composes (lamb_trust belongs to Lamb, a rule
# over whole tensors; clipped_l2 is drawn apart: its options bring their own gradients).
DECAYS = [f for f in FAMILIES if "lamb_trust" not in f and "clipped_l2" not in f]
COEFFS = st.sampled_from([1e-4, 3e-3, 0.01, 0.1, 0.5, 1.0, 2.5])


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """The same shape and float64 bits (any NaN matches any NaN; zeros by their sign)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return False
    nan = np.isnan(a)
    return bool(np.array_equal(nan, np.isnan(b)) and np.array_equal(a[~nan].view(np.int64), b[~nan].view(np.int64)))


@st.composite
def parameters(draw):
    """A rule and its arguments, a parameter's float64 snapshots [steps + 1, ...], the
    gradients and bounds per step, a tolerance, and decay options (fits), some of them
    clipped_l2 with gradients of their own."""
    framework, cls = draw(st.sampled_from(ELEMENTWISE))
    rule = RULES[(framework, cls)]
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    shape = draw(st.sampled_from([(3,), (2, 3), (4, 5)]))
    steps = draw(st.integers(1, 4))
    lr = draw(st.sampled_from([1e-3, 0.01, 0.1]))
    if draw(st.booleans()):      # a schedule: the lr of each step (engine/loop.py)
        lr = np.array([hyper_value(framework, lr * (1 + k) / steps) for k in range(steps)])
    kwargs = rule_kwargs(framework, rule, {"lr" if framework == "torch" else "learning_rate": 0.01})
    if "lr" in kwargs:
        kwargs["lr"] = lr if np.ndim(lr) else hyper_value(framework, lr)
    actual = rng.normal(0, 0.5, (steps + 1, *shape)).astype(np.float32).astype(np.float64)
    grads = [rng.normal(0, 1, shape) for _ in range(steps)]
    if draw(st.booleans()):      # zeros of either sign, an overflow: exact there too
        actual[0].flat[0], actual[-1].flat[-1] = -0.0, 0.0
        grads[0].flat[-1] = -0.0
        if draw(st.booleans()):
            actual[-1].flat[0] = np.inf if draw(st.booleans()) else np.nan
    bounds = [np.abs(g) * rng.uniform(1, 3, shape) + 1e-3 for g in grads]
    if draw(st.integers(0, 3)) == 0:       # a gradient bound that overflowed
        bounds[0].flat[0] = np.inf
    tol = Tolerance(ops=draw(st.integers(1, 40)), stored=draw(st.sampled_from(["float32", "bfloat16", "float16"])))
    fits, own = [], []
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.integers(0, 4)) == 0:
            fits.append((("clipped_l2",), (draw(COEFFS),)))
            own.append(([rng.normal(0, 1, shape) for _ in range(steps)],
                        [rng.uniform(0.5, 2, shape) for _ in range(steps)]))
            continue
        family = draw(st.sampled_from(DECAYS))
        cs = () if family == ("none",) else tuple(hyper_value(framework, draw(COEFFS)) for _ in family)
        fits.append((family, cs))
        own.append((grads, bounds))
    return framework, rule, kwargs, lr, actual, grads, bounds, tol, fits, own


@given(parameters())
def test_a_stacked_replay_is_each_options_own_replay(p):
    """The stacked replay [jitter (0, +gamma, -gamma), option, steps, ...] holds, slice
    by slice, the bits of each option's replays one at a time, unjittered and jittered
    (_replay with scalar coefficients: the replay of one candidate before stacking)."""
    _, rule, kwargs, lr, actual, _, _, tol, fits, own = p
    gamma = tol.ops * tol.eps / 2
    coeff = _stacked(fits, actual.ndim - 1)
    with np.errstate(all="ignore"):
        stacked = _replay(rule, rule_args(kwargs, coeff), lr, coeff, actual, _option_stack([g for g, _ in own]),
                          _option_stack([b for _, b in own]), (0.0, gamma, -gamma), len(fits))
    assert stacked.shape == (3, len(fits), len(actual) - 1, *actual.shape[1:])
    for i, ((family, cs), (g, b)) in enumerate(zip(fits, own)):
        one = dict(zip(family, cs))
        for j, jitter in enumerate((0.0, gamma, -gamma)):
            alone = _replay(rule, rule_args(kwargs, one), lr, one, actual, g, b, jitter)
            assert _bits_equal(stacked[j, i], alone), (family, cs, jitter)


@given(parameters(), st.booleans())
def test_stacked_ratios_are_each_options_own(p, need_across):
    """_ratios_options (inference's residuals and sensitivities of many options at once)
    against _option_ratios of each option with scalar coefficients."""
    _, rule, kwargs, lr, actual, _, _, tol, fits, own = p
    per_step, sensitivity = _ratios_options(rule, kwargs, lr, fits, actual, [g for g, _ in own],
                                            [b for _, b in own], tol, need_across)
    for i, ((family, cs), (g, b)) in enumerate(zip(fits, own)):
        ratio, sens = _option_ratios(rule, kwargs, lr, dict(zip(family, cs)), actual, g, b, tol, need_across)
        assert _bits_equal(per_step[i], ratio), (family, cs)
        assert (sensitivity is None) == (sens is None) == (not need_across)
        if need_across:
            assert _bits_equal(sensitivity[:, i], sens), (family, cs)


def _predicted_alone(replay: ParamReplay, fit) -> np.ndarray:
    """ParamReplay.predict of one decay, replayed on its own with scalar coefficients."""
    family, cs = fit
    cs = tuple(hyper_value(replay.framework, c) for c in cs)
    coeff = dict(zip(family, cs))
    grads, _ = _family_grads(family, cs, replay.grads, replay.bounds, replay.grads_for)
    with np.errstate(all="ignore"):
        return _stored(_replay(replay.rule, rule_args(replay.kwargs, coeff), replay.lr, coeff, replay.actual, grads),
                       replay.tol)


@given(parameters(), st.sampled_from([(("coupled_l2",), (0.01,)), (("decoupled_lr",), (0.1,)), (("l1",), (3e-3,)),
                                      (("coupled_l2", "decoupled_lr"), (0.5, 0.01))]),
       st.sampled_from([-9, -7, -5, -3, -1, 1]), st.integers(0, 2 ** 32 - 1), st.booleans())
def test_power_from_stacked_what_ifs_is_the_one_replay_at_a_time_figure(p, fit, exponent, seed, large):
    """ParamPower.coeff_error (on a small parameter every d of GRID and sign in one
    replay, caught() of every d from one reduction; on a large one -- `large`: every
    parameter is -- the d the bisection visits) and rules() against a bisection over
    caught() of what-ifs replayed one by one."""
    framework, rule, kwargs, lr, actual, grads, bounds, tol, *_ = p
    replay = ParamReplay(framework, rule, kwargs, lr, actual, grads, bounds, tol)
    rng = np.random.default_rng(seed)
    # The check's margin: 10**exponent of the steps (from catching every d to none).
    margin = 10.0 ** exponent * np.abs(actual[1:] - actual[:-1]).reshape(len(actual) - 1, -1) * rng.uniform(0, 2) + 1e-12
    base = _predicted_alone(replay, fit)

    def caught(other) -> bool:
        with np.errstate(all="ignore"):
            d = np.abs(_predicted_alone(replay, other) - base).reshape(len(base), -1)
            return bool(np.max(np.where(np.isnan(d), np.inf, d) / margin) > 1)

    family, cs = fit
    expected = 0.0
    for i in range(len(cs)):
        for sign in (1.0, -1.0):
            def scaled(d: float, i=i, sign=sign):
                return family, cs[:i] + (cs[i] * (1 + sign * d),) + cs[i + 1:]
            if expected is not None:
                expected = max(expected, _bisected(lambda d: caught(scaled(d)))) if caught(scaled(GRID[-1])) else None
    power = ParamPower(replay)
    with mock.patch.object(power_module, "WHAT_IF_BUDGET", 0 if large else power_module.WHAT_IF_BUDGET):
        assert power.coeff_error(fit, margin) == expected
    assert power.rules(fit, margin) == {name: caught(alt) for name, alt in alternatives(*fit).items()}


def _bisected(caught) -> float:
    """The d of GRID a bisection for the first caught d settles on (caught grows with d)."""
    lo, hi = -1, len(GRID) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if caught(GRID[mid]):
            hi = mid
        else:
            lo = mid
    return GRID[hi]


@given(st.lists(st.tuples(st.floats(0.01, 50), st.floats(math.log(1e-4), math.log(3)), st.floats(0, 2),
                          st.floats(-1, 3)), min_size=1, max_size=4),
       st.sampled_from([2, 7, 30, 200, 10 ** 6]))
def test_fit_search_visits_the_points_of_a_one_iteration_at_a_time_search(shapes, width):
    """_fit with width 1 asks for one golden-section iteration's two points at a time;
    wider, and with several searches in lockstep, it asks ahead under both outcomes:
    each search must return the very value and coefficient of the narrow one, alone."""
    def value(key: int, c: float) -> float:
        a, m, wiggle, floor = shapes[key]
        x = math.log(c)
        return a * (x - m) ** 2 + wiggle * math.sin(40 * x) + floor

    asked: list[list] = []

    def narrow(pairs):
        asked.append(pairs)
        return [value(k, c) for k, c in pairs]

    keys = list(range(len(shapes)))
    alone = {}
    for key in keys:
        asked.clear()
        alone[key] = _fit(narrow, [key], 1)[key]
        # The grid, then at most one iteration's two points a time, then the decimals.
        assert len(asked[0]) == 36 and all(len(a) <= 2 for a in asked[1:-1])
    asked.clear()
    together = _fit(narrow, keys, width)
    assert together == alone
    if width >= 100 * len(keys):
        # Lookahead at work: the grid, LOOKAHEAD iterations an ask, the decimals.
        assert len(asked) <= 2 + math.ceil(40 / LOOKAHEAD)


@st.composite
def layers(draw):
    """Two or three parameters of one run: the same element-wise rule, arguments,
    tolerance and candidates; their snapshots a float32 trajectory under a drawn decay
    (inference finds it) or noise (nothing fits: the fitted-coefficient search)."""
    framework, cls = draw(st.sampled_from(ELEMENTWISE))
    rule = RULES[(framework, cls)]
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    steps = draw(st.integers(1, 4))
    hyper = {"lr" if framework == "torch" else "learning_rate": draw(st.sampled_from([1e-3, 0.01, 0.1]))}
    kwargs = rule_kwargs(framework, rule, hyper)
    decay = draw(st.sampled_from([f for f in DECAYS if len(f) == 1]))
    coeff = {} if decay == ("none",) else {decay[0]: hyper_value(framework, draw(st.sampled_from([0.01, 0.1])))}
    follows = draw(st.booleans())
    params = []
    for shape in draw(st.lists(st.sampled_from([(3,), (2, 3), (4, 5)]), min_size=2, max_size=3)):
        grads = [rng.normal(0, 1, shape) for _ in range(steps)]
        snaps, state = [rng.normal(0, 0.5, shape).astype(np.float32).astype(np.float64)], {}
        for k, g in enumerate(grads):
            if follows:
                with np.errstate(all="ignore"):
                    w = step(rule, rule_args(kwargs, coeff), kwargs["lr"], coeff, snaps[-1], g, state, k + 1)
            else:
                w = rng.normal(0, 0.5, shape)
            snaps.append(np.asarray(w, np.float32).astype(np.float64))
        params.append((np.array(snaps), grads, [np.abs(g) * 1.5 + 1e-3 for g in grads]))
    return framework, rule, hyper, params, Tolerance(ops=20), [0.01, 0.1]


@given(layers())
def test_parameters_replayed_side_by_side_infer_as_each_alone(layer):
    """infer_params (a run's parameters on one flat axis, each one's residuals over its
    own elements) against infer_param of each parameter, field by field and bit for bit."""
    framework, rule, hyper, params, tol, candidates = layer
    names = [f"p{i}" for i in range(len(params))]
    joint = infer_params(names, [(framework, rule, hyper, s, g, b, tol, candidates, None) for s, g, b in params])
    for name, (snaps, grads, bounds), got in zip(names, params, joint):
        alone = infer_param(framework, name, rule, hyper, snaps, grads, bounds, tol, candidates)
        assert (got.param, got.rule, got.residual, got.residuals, got.fits) == \
            (alone.param, alone.rule, alone.residual, alone.residuals, alone.fits)
        assert (got.sensitivity is None) == (alone.sensitivity is None)
        if alone.sensitivity is not None:
            assert _bits_equal(got.sensitivity, alone.sensitivity)
