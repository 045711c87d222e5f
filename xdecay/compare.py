"""The comparison engine: pairwise float64 diffs between runs, checked against expectations.

Tolerance (derived, not tuned). Two correct float32 implementations of one
update formula differ, per step and element, by
  * the rounding of each stored weight: together at most 1 float32 ULP of the
    weight (0.5 each), and
  * the rounding inside the update, bounded by gamma_n = n*u relative to |delta|
    per run (Higham), u = eps32/2, where n = in_features + batch + 16 is the
    longest chain of float32 operations feeding one update (operation_count);
    for two runs that is n*eps32.
  * where the gradient's terms cancel, its rounding is gamma_n of the terms, not of
    the gradient, and an adaptive optimizer's normalisation carries that into the
    update: each run's replay with the float64 reference measures this
    (infer.Inferred.sensitivity), and the two runs' sensitivities are added.
Step k inherits the differences of the k-1 before it through the weights, so
the bound is scaled by k:
    |da - db| <= k * (ulp32(w) + n * eps32 * |delta|)
A case (or --atol/--rtol) may replace this with fixed |da-db| <= atol + rtol*|delta|.
NaN or Inf in either run is always a mismatch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .case import Case, Expectation
from .records import RunRecord

EPS32 = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class Tolerance:
    """Either the derived bound (atol/rtol None) or a fixed one."""
    ops: int                        # n in the derived bound
    atol: float | None = None
    rtol: float | None = None

    @classmethod
    def for_case(cls, case: Case, atol: float | None = None, rtol: float | None = None):
        return cls(ops=operation_count(case.layer.in_features, case.batch, case.layer.out_features,
                                       case.layer.norm),
                   atol=atol if atol is not None else case.atol,
                   rtol=rtol if rtol is not None else case.rtol)

    @property
    def fixed(self) -> bool:
        return self.atol is not None or self.rtol is not None

    def allowed(self, w: np.ndarray, delta_a: np.ndarray, delta_b: np.ndarray) -> np.ndarray:
        """Allowed |da - db| per element for steps stacked on axis 0; w is the larger of
        |w| before and after the step (the stored weight is rounded at that magnitude)."""
        mag = np.maximum(np.abs(delta_a), np.abs(delta_b))
        if self.fixed:
            return (self.atol or 0.0) + (self.rtol or 0.0) * mag
        k = np.arange(1, len(delta_a) + 1).reshape((-1,) + (1,) * (delta_a.ndim - 1))
        return k * (ulp32(w) + self.ops * EPS32 * mag)

    def describe(self) -> str:
        if self.fixed:
            return f"|da-db| <= {self.atol or 0.0:g} + {self.rtol or 0.0:g}*|delta|"
        return (f"|da-db| <= k*(ulp32(w) + {self.ops}*eps32*|delta|) + sa + sb at step k "
                f"(rounding of the stored weight + gamma_n of the update, n={self.ops}, + each "
                f"run's replayed sensitivity to gradient rounding)")


def operation_count(in_features: int, batch: int, out_features: int, norm: bool) -> int:
    """n of gamma_n: the output's dot product (in_features), the gradient's sum over the
    batch, at most 16 operations of the rule; a LayerNorm adds its reductions over the
    features (out_features) and at most 16 operations of its own."""
    return in_features + batch + 16 + (out_features + 16 if norm else 0)


def ulp32(x: np.ndarray) -> np.ndarray:
    """Spacing of float32 numbers at |x| (as float64)."""
    return np.spacing(np.abs(np.asarray(x, dtype=np.float32))).astype(np.float64)


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    expected: str                   # "equal" | "differ"
    param: str                      # "all" | "weight" | "bias"
    max_abs: float
    max_rel: float
    max_ulp: float                  # max |da-db| in float32 ULPs of max(|w| before, |w| after)
    excess: float                   # max |da-db| / allowed: <= 1 means equal within tolerance
    ok: bool
    problem: str = ""               # why it failed, in words


def compare_pair(a: RunRecord, b: RunRecord, expected: str, tol: Tolerance,
                 param: str = "all", sensitivity: dict[str, np.ndarray] | None = None) -> Comparison:
    """Diff two successful runs over every step, for the weight, the bias or both."""
    da, db = _flat(a, param, deltas=True), _flat(b, param, deltas=True)
    before = _flat(a, param, deltas=False)
    w = np.maximum(np.abs(before), np.abs(before + da))
    finite = bool(np.isfinite(da).all() and np.isfinite(db).all())
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(da - db)
        mag = np.maximum(np.abs(da), np.abs(db))
        rel = np.where(mag > 0, diff / mag, 0.0)
        ulps = diff / ulp32(w)
        allowed = tol.allowed(w, da, db)
        if sensitivity is not None and not tol.fixed:
            allowed = allowed + _flat_arrays(sensitivity, list(a.params) if param == "all" else [param],
                                             len(da))
        excess = diff / allowed
    excess = np.where(diff == 0, 0.0, excess)   # 0/0 where allowed is 0
    c = dict(a=a.name, b=b.name, expected=expected, param=param, max_abs=_max(diff), max_rel=_max(rel),
             max_ulp=_max(ulps), excess=_max(excess))
    if not finite:
        return Comparison(**c, ok=False, problem="NaN/Inf in a run")
    if expected == "equal" and c["excess"] > 1.0:
        return Comparison(**c, ok=False,
                          problem=f"differ: max_abs {c['max_abs']:.3g} is {c['excess']:.3g}x the tolerance")
    if expected == "differ" and c["excess"] <= 1.0:
        return Comparison(**c, ok=False, problem="equal within tolerance, expected to differ")
    return Comparison(**c, ok=True)


def _flat(r: RunRecord, param: str, deltas: bool) -> np.ndarray:
    """[steps, n] float64: per step the deltas (or the values before the step) of the
    compared parameters, in canonical order."""
    names = list(r.params) if param == "all" else [param]
    parts = [r.delta(n) if deltas else r.params[n][:-1] for n in names]
    return np.concatenate([np.asarray(p, dtype=np.float64).reshape(r.steps, -1) for p in parts], axis=1)


def _flat_arrays(arrays: dict[str, np.ndarray], names: list[str], steps: int) -> np.ndarray:
    return np.concatenate([arrays[n].reshape(steps, -1) for n in names], axis=1)


def _max(x: np.ndarray) -> float:
    """Max that propagates NaN (a NaN must never look like agreement)."""
    return float(np.max(x)) if x.size else 0.0


def pairs(e: Expectation) -> list[tuple[str, str]]:
    """Every pair of an expectation's runs: equality is checked pairwise, not as a chain."""
    return [(a, b) for i, a in enumerate(e.runs) for b in e.runs[i + 1:]]


def below_resolution(case: Case, baseline: RunRecord, tol: Tolerance) -> str | None:
    """Say so when the smallest decay effect, lr*c*|w|, cannot be told from rounding.

    At every element of the weight, the effect is set against the equality tolerance
    of that element, taken at the baseline run's real update; the decay must exceed
    10x the tolerance somewhere, otherwise "equal" would be a statement about float32
    rounding, not semantics.
    """
    coeffs = [c for c in case.decay.coefficients() if c > 0]
    if not coeffs:
        return None
    w = baseline.params["weight"][:-1].astype(np.float64)
    delta = baseline.delta("weight")
    effect = case.optimizer.lr * min(coeffs) * np.abs(w)
    allowed = tol.allowed(np.maximum(np.abs(w), np.abs(w + delta)), delta, delta)
    ratio = float(np.max(effect / allowed))
    if ratio < 10:
        return (f"decay below float32 resolution: lr*c*|w| (c={min(coeffs):g}) is at most "
                f"{ratio:.3g}x the tolerance, not 10x")
    return None
