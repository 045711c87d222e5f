"""Rule inference: which decay a run really applied, per parameter.

Replays the run's steps in float64 with the optimizer's reference rule and each
candidate decay, starting every step from the run's own float32 weights (so a
step's residual measures that step's rule; the rule's state still accumulates
on its own). A candidate fits when every element is within the comparison
tolerance (compare.Tolerance), k-fold at step k like a comparison: the weights
are re-anchored every step, but the optimizer state (momentum, moments) carries
k steps of the framework's float32 rounding. Coefficients are tried from the values in play
(the ones given, the optimizer's defaults), then fitted on a log grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product

import numpy as np

from .compare import EPS32, Tolerance, operation_count
from .records import RunRecord
from .reference import (RULES, coupled_l2, decoupled_lr, gradient_bounds, hyper_value, l1,
                        model_grads, rule_kwargs)
from .rules import rule_name
from .spec import Spec

# Single decay steps; "lamb_trust" is paddle Lamb's decay inside its trust ratio.
FAMILIES = (("none",), ("coupled_l2",), ("decoupled_lr",), ("l1",),
            ("coupled_l2", "decoupled_lr"), ("lamb_trust",), ("coupled_l2", "lamb_trust"))


@dataclass(frozen=True)
class Inferred:
    param: str             # "weight" | "bias"
    rule: str              # e.g. "coupled_l2@0.1", "ambiguous(a|b)", "unexplained"
    residual: float        # best candidate's max |predicted - actual| / tolerance (<= 1 fits)
    residuals: dict[str, float]   # each family's best candidate and its residual
    # [steps, ...] how far float32 rounding of the gradient moves the fitted rule's
    # replay (None when no rule fits): the comparison adds it to its tolerance.
    sensitivity: np.ndarray | None = None


def infer_run(run: RunRecord, spec: Spec, loss: str, coeffs: tuple[float, ...],
              reference: tuple[str, str] | None = None) -> list[Inferred]:
    """Infer the decay rule of each parameter of a successful run, replayed with the
    reference rule of its own (framework, class) or with another one."""
    rule = RULES[reference or (run.framework, run.optimizer)]
    steps = run.steps
    at = [{n: v[k] for n, v in run.params.items()} for k in range(steps)]
    grads = [model_grads(p, spec.x, spec.target, loss) for p in at]
    bounds = [gradient_bounds(p, spec.x, spec.target, loss) for p in at]
    out = []
    for index, (param, snaps) in enumerate(run.params.items()):
        # Per-group hyper-parameters (torch groups): the weight is in the first group.
        hyper = run.hyper[min(index, len(run.hyper) - 1)] if run.hyper else {}
        out.append(_infer_param(run.framework, param, rule, hyper, snaps, [g[param] for g in grads],
                                [b[param] for b in bounds], spec, _candidates(coeffs, hyper)))
    return out


def _candidates(coeffs: tuple[float, ...], hyper: dict) -> list[float]:
    values = set(c for c in coeffs if c > 0)
    for key in ("weight_decay", "lamb_weight_decay", "lambd"):
        v = hyper.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            values.add(float(v))
    return sorted(values)


def _infer_param(framework: str, param: str, rule, hyper: dict, snaps: np.ndarray,
                 grads: list[np.ndarray], bounds: list[np.ndarray], spec: Spec,
                 candidates: list[float]) -> Inferred:
    batch, in_features = spec.x.shape
    tol = Tolerance(ops=operation_count(in_features, batch, spec.params["weight"].shape[0],
                                        spec.has_norm))
    kwargs = rule_kwargs(framework, rule, hyper)
    lr = kwargs.get("lr", 0.0)
    actual = snaps.astype(np.float64)

    def residual(family: tuple[str, ...], cs: tuple[float, ...]) -> float:
        return fit(family, cs)[0]

    def fit(family: tuple[str, ...], cs: tuple[float, ...]) -> tuple[float, np.ndarray]:
        cs = tuple(hyper_value(framework, c) for c in cs)
        return _residual(rule, kwargs, lr, family, cs, actual, grads, bounds, tol)

    fits, best = [], {}
    for family in FAMILIES:
        if "lamb_trust" in family and "lamb_weight_decay" not in kwargs:
            continue
        options = [()] if family == ("none",) else list(product(candidates, repeat=len(family)))
        scored = [(residual(family, cs), cs) for cs in options]
        if not scored:
            continue
        r, cs = min(scored)
        best[family] = (r, cs)
        if r <= 1:
            fits.append((family, cs, r))
    if not fits:
        # No coefficient in play explains the run: fit one (a default we did not know of).
        for family in [f for f in best if len(f) == 1 and f != ("none",)]:
            r, cs = min(best[family], _fit(lambda c, f=family: residual(f, (c,))))
            best[family] = (r, cs)
            if r <= 1:
                fits.append((family, cs, r))
    residuals = {rule_name(f, cs): r for f, (r, cs) in best.items()}
    if not fits:
        return Inferred(param, "unexplained", min(residuals.values()), residuals)
    sensitivity = np.max([fit(f, cs)[1] for f, cs, _ in fits], axis=0)
    if len(fits) == 1:
        family, cs, r = fits[0]
        return Inferred(param, rule_name(family, cs), r, residuals, sensitivity)
    names = [rule_name(f, cs) for f, cs, _ in fits]
    return Inferred(param, f"ambiguous({'|'.join(names)})", min(r for *_, r in fits), residuals,
                    sensitivity)


def _replay(rule, args: dict, lr: float, coeff: dict[str, float], actual: np.ndarray,
            grads: list[np.ndarray], bounds: list[np.ndarray] | None = None,
            jitter: float = 0.0) -> np.ndarray:
    """The predicted parameter after every step, each step from the run's own weights.

    jitter != 0 moves every decayed gradient by jitter*(G + |decay term|), G the
    gradient's rounding scale (reference.gradient_bounds): the size of float32
    rounding in the framework's gradient, to measure the replay's sensitivity to it.
    """
    state: dict = {}
    predicted = []
    for k, g0 in enumerate(grads):
        w = actual[k]
        g = g0
        if "coupled_l2" in coeff:
            g = coupled_l2(w, g, coeff["coupled_l2"])
        if "l1" in coeff:
            g = l1(w, g, coeff["l1"])
        if jitter:
            g = g + jitter * (bounds[k] + np.abs(g - g0))
        with np.errstate(all="ignore"):
            w_new = rule(w, g, state, k + 1, **args)
            if "decoupled_lr" in coeff:
                w_new = decoupled_lr(w, w_new, coeff["decoupled_lr"], lr)
        predicted.append(w_new)
    return np.stack(predicted)


def _residual(rule, kwargs: dict, lr: float, family: tuple[str, ...], cs: tuple[float, ...],
              actual: np.ndarray, grads: list[np.ndarray], bounds: list[np.ndarray],
              tol: Tolerance) -> tuple[float, np.ndarray]:
    """Max over steps and elements of |predicted - actual| / tolerance, and the replay's
    sensitivity to gradient rounding.

    The tolerance is the comparison's, plus the replay's own sensitivity to float32
    rounding of the gradient (gamma_n relative to |g| and to the decay term): where
    the gradient and a coupled decay nearly cancel, an adaptive optimizer's
    normalisation magnifies that rounding far beyond gamma_n of the update.
    """
    coeff = dict(zip(family, cs))
    args = dict(kwargs)
    if "lamb_weight_decay" in args:
        args["lamb_weight_decay"] = coeff.get("lamb_trust", 0.0)
    predicted = _replay(rule, args, lr, coeff, actual, grads)
    gamma = tol.ops * EPS32 / 2
    with np.errstate(all="ignore"):
        sensitivity = np.maximum(
            np.abs(_replay(rule, dict(args), lr, coeff, actual, grads, bounds, gamma) - predicted),
            np.abs(_replay(rule, dict(args), lr, coeff, actual, grads, bounds, -gamma) - predicted))
    sensitivity = np.where(np.isfinite(sensitivity), sensitivity, 0.0)
    before, after = actual[:-1], actual[1:]
    delta = after - before
    mag = np.maximum(np.abs(before), np.abs(after))
    with np.errstate(all="ignore"):
        allowed = tol.allowed(mag, delta, predicted - before) + sensitivity
        ratio = np.abs(predicted - after) / allowed
    ratio = np.where(predicted == after, 0.0, ratio)
    worst = float(np.max(ratio)) if ratio.size else 0.0
    return (worst if math.isfinite(worst) else math.inf), sensitivity


def _fit(f) -> tuple[float, tuple[float]]:
    """Minimise f(c) over c in [1e-4, 3]: log grid, golden-section refinement, then the
    shortest decimal (<= 3 significant digits) that fits as well."""
    grid = np.geomspace(1e-4, 3.0, 36)
    values = [f(c) for c in grid]
    i = int(np.argmin(values))
    lo, hi = math.log(grid[max(i - 1, 0)]), math.log(grid[min(i + 1, len(grid) - 1)])
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if f(math.exp(a)) < f(math.exp(b)):
            hi = b
        else:
            lo = a
    c = math.exp((lo + hi) / 2)
    best = (f(c), (c,))
    for digits in (1, 2, 3):
        short = float(f"{c:.{digits - 1}e}")
        r = f(short)
        if r <= 1:
            return (r, (short,))
    return best
