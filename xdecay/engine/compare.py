"""The comparison engine: pairwise float64 diffs between runs, checked against expectations.

Tolerance (derived, not tuned). Two correct float32 implementations of one
update formula differ, per step and element, by
  * the rounding of each stored weight: together at most 1 float32 ULP of the
    weight (0.5 each), and
  * the rounding inside the update, bounded by gamma_n = n*u relative to |delta|
    per run (Higham), u = eps32/2, where n = in_features + batch + 16 is the
    longest chain of float32 operations feeding one update (layers.Layer.operation_count;
    other layers count theirs);
    for two runs that is n*eps32.
  * where the gradient's terms cancel, its rounding is gamma_n of the terms, not of
    the gradient, and an adaptive optimizer's normalisation carries that into the
    update: each run's replay with the float64 reference measures this
    (infer.Inferred.sensitivity, with a decoupled decay's own rounding and, between
    frameworks, paddle's float32 beta^t products), and the two runs' are added.
Step k inherits the differences of the k-1 before it through the weights, so
the bound is scaled by k:
    |da - db| <= k * (ulp32(w) + n * eps32 * |delta|)
Under [precision] (engine/precision.py) the same bound holds at the precision in use:
ulp32 becomes the ULP of the dtype the parameters are stored in (bfloat16 2^-7 |w|
relative, float16 2^-10), and eps32 the eps of the dtype the gradient is computed in
(the forward's operands are rounded to it: bfloat16 eps 2^-7 = 2u, u = 2^-8; float16
2^-10 = 2u, u = 2^-11), every operation of the chain then rounding at that u:
    |da - db| <= k * (ulp_stored(w) + n * eps_computed * |delta|)
A case (or --atol/--rtol) may replace this with fixed |da-db| <= atol + rtol*|delta|.
NaN or Inf in either run is always a mismatch.

On a large layer the sensitivity term is known only on rule inference's sample; a
comparison replays it where it can matter: at the elements beyond the plain bound,
farthest first, until the verdict is settled (all of them, a chunk at a time, when
the MAX_REPLAYED farthest all come back within tolerance). Elsewhere the plain bound,
which is stricter, stands: a reported ratio above 1 is then an upper bound.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..case import Case, Expectation
from ..frameworks.records import RunRecord
from . import compare_kernel
from .blas import one_thread_here
from .precision import eps as dtype_eps
from .precision import ulp as dtype_ulp

EPS32 = float(np.finfo(np.float32).eps)
CHUNK = 1 << 14          # elements compared at a time (fastest here: 128 KiB float64 buffers stay in the core's cache)
KERNEL_CHUNK = 1 << 18   # ... by compare_kernel: two 2 MiB buffers, the Python per chunk 16x rarer
MAX_REPLAYED = 1 << 16   # elements beyond the plain bound whose sensitivity is replayed
REPLAY_BATCH = 1 << 10   # the first batch of them
# Pair-elements (pairs x steps x elements of a parameter) from which the compiled loop
# (compare_kernel) pays for compiling it, ~0.5 s: numpy's passes take ~8 ns a pair-element.
KERNEL_MIN_ELEMENTS = 1 << 27


class Sensitivity(Protocol):
    """A run's sensitivity to float32 rounding, per step and element (infer.RunSensitivity),
    within its framework or, `across`, against another framework."""
    framework: str

    def full(self, param: str, across: bool = False) -> np.ndarray | None: ...        # [steps, ...]
    def at(self, param: str, idx: np.ndarray, across: bool = False,            # [steps, len(idx)]
           keep: bool = True) -> np.ndarray: ...


@dataclass(frozen=True)
class PairSensitivity:
    """Two runs' sensitivities, added (the comparison's sa + sb)."""
    a: Sensitivity
    b: Sensitivity

    @property
    def across(self) -> bool:
        return self.a.framework != self.b.framework

    def full(self, param: str) -> np.ndarray | None:
        fa, fb = self.a.full(param, self.across), self.b.full(param, self.across)
        return None if fa is None or fb is None else fa + fb

    def at(self, param: str, idx: np.ndarray, keep: bool = True) -> np.ndarray:
        return self.a.at(param, idx, self.across, keep) + self.b.at(param, idx, self.across, keep)


@dataclass(frozen=True)
class Tolerance:
    """Either the derived bound (atol/rtol None) or a fixed one; `stored` is the dtype
    whose ULP the stored weight is rounded at, `computed` the dtype whose eps the
    update's chain of operations rounds at (both float32 but under [precision])."""
    ops: int                        # n in the derived bound
    atol: float | None = None
    rtol: float | None = None
    stored: str = "float32"
    computed: str = "float32"

    @classmethod
    def for_case(cls, case: Case, atol: float | None = None, rtol: float | None = None):
        p = case.precision
        return cls(ops=case.layer.operation_count(case.batch),
                   atol=atol if atol is not None else case.atol,
                   rtol=rtol if rtol is not None else case.rtol,
                   stored=p.stored if p else "float32", computed=p.dtype if p else "float32")

    @property
    def eps(self) -> float:
        return dtype_eps(self.computed)

    def for_runs(self, a: RunRecord, b: RunRecord) -> Tolerance:
        """The bound for a pair at the precision the two runs really used: the coarser
        stored and computed dtypes of the two (a framework whose mixed precision made no
        effect is held to float32, not to the dtype the case asked for)."""
        if self.fixed:
            return self
        return dataclasses.replace(self, stored=coarser(a.dtype, b.dtype), computed=coarser(a.forward, b.forward))

    def ulp(self, w: np.ndarray) -> np.ndarray:
        """Spacing of the stored dtype at |w| (as float64)."""
        return dtype_ulp(w, self.stored)

    @property
    def fixed(self) -> bool:
        return self.atol is not None or self.rtol is not None

    def allowed(self, w: np.ndarray, delta_a: np.ndarray, delta_b: np.ndarray,
                step: int | None = None) -> np.ndarray:
        """Allowed |da - db| per element for steps stacked on axis 0 (or of one `step`,
        counted from 1); w is the larger of |w| before and after the step (the stored
        weight is rounded at that magnitude)."""
        mag = np.maximum(np.abs(delta_a), np.abs(delta_b))
        if self.fixed:
            return self.allowed_from(None, mag, 0)
        k = step if step is not None else np.arange(1, len(delta_a) + 1).reshape(
            (-1,) + (1,) * (delta_a.ndim - 1))
        return self.allowed_from(self.ulp(w), mag, k)

    def allowed_from(self, ulp: np.ndarray | None, mag: np.ndarray, step) -> np.ndarray:
        """allowed() from ulp(w) in the stored dtype (unused by a fixed tolerance) and
        max(|da|, |db|), at step k (a number, or an array broadcast over stacked steps)."""
        if self.fixed:
            return (self.atol or 0.0) + (self.rtol or 0.0) * mag
        return step * (ulp + self.ops * self.eps * mag)

    def allowed_into(self, out: np.ndarray, ulp: np.ndarray, mag: np.ndarray, step: int) -> None:
        """allowed_from(ulp, mag, step) for one step, written into `out`: the same
        operations on the same operands (products and sums commute exactly)."""
        if self.fixed:
            np.multiply(mag, self.rtol or 0.0, out=out)
            out += self.atol or 0.0
            return
        np.multiply(mag, self.ops * self.eps, out=out)
        out += ulp
        if step != 1:           # 1 * x is x
            out *= step

    def describe(self) -> str:
        if self.fixed:
            return f"|da-db| <= {self.atol or 0.0:g} + {self.rtol or 0.0:g}*|delta|"
        if (self.stored, self.computed) != ("float32", "float32"):
            return (f"|da-db| <= k*(ulp_{self.stored}(w) + {self.ops}*eps_{self.computed}*|delta|) + sa + sb "
                    f"at step k, eps_{self.computed} = {self.eps:.3g} (rounding of the weight stored in "
                    f"{self.stored} + gamma_n of an update computed from {self.computed} operands, "
                    f"n={self.ops}, + each run's replayed sensitivity to gradient rounding; float32 for a pair of "
                    f"runs that stored and computed float32)")
        return (f"|da-db| <= k*(ulp32(w) + {self.ops}*eps32*|delta|) + sa + sb at step k "
                f"(rounding of the stored weight + gamma_n of the update, n={self.ops}, + each "
                f"run's replayed sensitivity to gradient rounding)")


def coarser(a: str, b: str) -> str:
    """The dtype with the larger eps of two."""
    return a if dtype_eps(a) >= dtype_eps(b) else b


EXPONENT32 = np.int32(0x7f800000)
FLOAT32_MAX = np.finfo(np.float32).max


def _ulp_of_larger(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """ulp32 of the larger of |before| and |after| (the stored weight is rounded at that
    magnitude), as float64. np.spacing is twice as slow as this: the exponent bits of a
    normal float32 m are 2**floor(log2 m), times 2**-23 its spacing (exact: a power of
    two >= 2**-149), and below the normal range the spacing is 2**-149. np.spacing
    stays where this would differ: NaN, Inf, and the largest float32 (spacing Inf)."""
    m = np.maximum(np.abs(before), np.abs(after))
    if m.size and not np.maximum.reduce(m) < FLOAT32_MAX:    # (a NaN too)
        return np.spacing(m).astype(np.float64)
    p = np.bitwise_and(m.view(np.int32), EXPONENT32).view(np.float32)
    p *= np.float32(2.0 ** -23)
    return np.maximum(p, np.float32(2.0 ** -149), out=p).astype(np.float64)


def ulp32(x: np.ndarray) -> np.ndarray:
    """Spacing of float32 numbers at |x| (as float64)."""
    return dtype_ulp(x, "float32")


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
    power: Any = None               # power.Power: what the check can see (set by the pipeline)
    inconclusive: bool = False      # not ok because the experiment cannot see what is claimed

    @property
    def verdict(self) -> str:
        return "ok" if self.ok else ("inconclusive" if self.inconclusive else "mismatch")


@dataclass(frozen=True)
class Pair:
    """One comparison to make: two successful runs, what is expected, which parameters."""
    a: RunRecord
    b: RunRecord
    expected: str                   # "equal" | "differ"
    param: str = "all"
    sensitivity: Sensitivity | None = None

    @property
    def params(self) -> list[str]:
        return list(self.a.params) if self.param == "all" else [self.param]


def compare_pair(a: RunRecord, b: RunRecord, expected: str, tol: Tolerance,
                 param: str = "all", sensitivity: Sensitivity | None = None) -> Comparison:
    """Diff two successful runs over every step, for the weight, the bias or both."""
    return compare_pairs([Pair(a, b, expected, param, sensitivity)], tol)[0]


def compare_pairs(pairs: list[Pair], tol: Tolerance) -> list[Comparison]:
    """Every pair over every step, a parameter, a step and CHUNK elements at a time: the
    float64 quantities of a run are computed once per chunk for all pairs it is in, and
    chunks are spread over the cores (numpy releases the GIL)."""
    worst = [_Worst() for _ in pairs]
    suspects = [{} for _ in pairs]         # per pair: param -> _Suspects (lazy sensitivity)
    for name in dict.fromkeys(n for p in pairs for n in p.params):
        mine = [i for i, p in enumerate(pairs) if name in p.params]
        full = {}
        for i in mine:
            sens = None if tol.fixed else pairs[i].sensitivity
            f = None if sens is None else sens.full(name)
            if f is not None:
                full[i] = f.reshape(len(f), -1)
            elif sens is not None:
                suspects[i][name] = _Suspects()
        snaps = {r.name: r.params[name] for i in mine for r in (pairs[i].a, pairs[i].b)}
        steps = len(next(iter(snaps.values()))) - 1
        # Plain views of the mapped files: numpy's memmap subclass costs on every slice.
        snaps = {n: np.asarray(v).reshape(steps + 1, -1) for n, v in snaps.items()}
        size = next(iter(snaps.values())).shape[1]
        compiled = _compiled(tol, len(mine) * steps * size)
        units = _chunks(steps, size, KERNEL_CHUNK if compiled else CHUNK)

        def unit(u: tuple[int, slice]) -> list:
            return _compare_chunk(*u, snaps, [(i, pairs[i], full.get(i)) for i in mine], tol,
                                  {i: suspects[i][name].threshold for i in mine if name in suspects[i]},
                                  compiled)

        for part in on_cores(unit, units, small=steps * size <= CHUNK):
            for i, values, far in part:
                worst[i].add(**values)
                if far is not None:
                    suspects[i][name].add(*far)
        lazy = [i for i in mine if name in suspects[i] and suspects[i][name].count]
        replayed = list(on_cores(lambda i: suspects[i][name].excess(name, pairs[i].sensitivity), lazy))
        for i, (excess, settled) in zip(lazy, replayed):
            if not settled:
                excess = _replay_everywhere(pairs[i], name, snaps, units, tol, compiled)
            worst[i].add(excess=excess)
    return [_verdict(p, w) for p, w in zip(pairs, worst)]


def _replay_everywhere(pair: Pair, name: str, snaps: dict[str, np.ndarray], units: list,
                       tol: Tolerance, compiled: bool) -> np.float64:
    """The largest ratio with the sensitivity term replayed at every element beyond the
    plain bound, a chunk at a time: for a pair with more than MAX_REPLAYED such elements
    whose farthest all came back within the tolerance (the rest could still be beyond
    it). Nothing is kept, so this costs replays, not memory."""
    def chunk(u: tuple[int, slice]) -> np.float64:
        (_, values, far), = _compare_chunk(*u, snaps, [(0, pair, None)], tol, {0: 1.0}, compiled)
        if far is None:
            return values["excess"]
        k, idx, diff, allowed, _, _ = far
        sens = pair.sensitivity.at(name, idx, keep=False)[k - 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.maximum(values["excess"], _max(diff / (allowed + sens)))

    return np.max(list(on_cores(chunk, units)))


def _compiled(tol: Tolerance, pair_elements: int) -> bool:
    """Whether compare_kernel's loop computes a comparison: float32 storage (its ULP), and
    enough elements to pay for compiling it."""
    return tol.stored == "float32" and pair_elements >= KERNEL_MIN_ELEMENTS


def _chunks(steps: int, size: int, chunk: int) -> list[tuple[int, slice]]:
    """(step k from 1, a slice of `chunk` elements): the units of work over a parameter.
    What a comparison finds does not depend on where chunks are cut (_Suspects)."""
    return [(k, slice(s, s + chunk)) for k in range(1, steps + 1) for s in range(0, size, chunk)]


def on_cores(fn, items: list, small: bool = False):
    """fn over items on every core (numpy releases the GIL), results in items' order;
    in this thread if `small` (or one item): starting threads costs more than tiny work
    gains from them (1-5 ms a thread at load 10 here)."""
    if small or len(items) <= 1:
        yield from map(fn, items)
        return
    # One BLAS thread per pool thread: the pool already fills the cores (blas.py).
    with ThreadPoolExecutor(max_workers=max(1, min(len(items), os.cpu_count() or 1)),
                            initializer=one_thread_here) as pool:
        yield from pool.map(fn, items)


def _compare_chunk(k: int, cut: slice, snaps: dict[str, np.ndarray], pairs: list, tol: Tolerance,
                   thresholds: dict[int, float], compiled: bool = False) -> list:
    """Step k of one chunk of elements, for every pair: each pair's maxima and, for a
    pair whose sensitivity is replayed lazily, its elements beyond the plain bound.
    `compiled`: the numbers from compare_kernel's loop (float32 storage only), else numpy's."""
    size = len(range(*cut.indices(next(iter(snaps.values())).shape[1])))
    diff, mag, allowed, excess, scratch = _buffers(size)
    per_pair = (_kernel_pairs if compiled else _numpy_pairs)(k, cut, snaps, pairs, tol, diff, mag, allowed,
                                                           excess, scratch)
    out = []
    for (i, _, _), values in zip(pairs, per_pair):
        far, top = None, values["excess"]
        if i in thresholds and not top <= 1:     # (a NaN goes in too, and stays in top)
            if compiled:          # the loop gives diff and allowed only: their quotients here
                with np.errstate(invalid="ignore", divide="ignore"):
                    np.divide(diff, allowed, out=excess)
            # Beyond the plain bound: kept for the replay if beyond the pair's threshold,
            # else only their largest ratio is kept (it bounds what is not replayed).
            beyond_plain = excess > 1
            # >= : ties with the threshold stay, so the kept set is the same whatever the
            # order the chunks finish in (_keep breaks ties by step and element).
            kept = beyond_plain if thresholds[i] <= 1 else excess >= thresholds[i]
            idx = np.flatnonzero(kept)
            dropped = 0.0 if kept is beyond_plain else np.max(excess, where=beyond_plain & ~kept, initial=0.0)
            far = (k, idx + cut.start, diff[idx], allowed[idx], excess[idx], dropped)
            values["excess"] = np.max(excess, where=~beyond_plain, initial=0.0)
        out.append((i, values, far))
    return out


_LOCAL = threading.local()


def _buffers(size: int) -> list[np.ndarray]:
    """Five float64 buffers of `size` for this thread, reused from chunk to chunk: a
    large chunk's fresh allocation would fault its pages in every time."""
    held = getattr(_LOCAL, "buffers", None)
    if held is None or len(held[0]) < size:
        held = _LOCAL.buffers = [np.empty(size) for _ in range(5)]
    return [b[:size] for b in held]


def _numpy_pairs(k: int, cut: slice, snaps: dict[str, np.ndarray], pairs: list, tol: Tolerance,
                 diff: np.ndarray, mag: np.ndarray, allowed: np.ndarray, excess: np.ndarray,
                 scratch: np.ndarray):
    """Each pair's maxima at step k over a chunk, a numpy pass per quantity; yielded
    one pair at a time, with `diff`, `allowed` and `excess` holding that pair's values."""
    runs = {}
    for name in dict.fromkeys(n for _, p, _ in pairs for n in (p.a.name, p.b.name)):
        before, after = snaps[name][k - 1, cut], snaps[name][k, cut]
        delta = np.subtract(after, before, dtype=np.float64)
        ulp = _ulp_of_larger(before, after)
        if tol.stored != "float32":       # [precision]: the ULP of each dtype pairs may use
            top = np.maximum(np.abs(before), np.abs(after))
            ulp = {d: ulp if d == "float32" else tol.ulp(top) for d in ("float32", tol.stored)}
        runs[name] = (delta, np.abs(delta), ulp)
    for _, p, full in pairs:
        da, abs_a, ulp = runs[p.a.name]
        db, abs_b, _ = runs[p.b.name]
        pair_tol = tol.for_runs(p.a, p.b)
        if isinstance(ulp, dict):
            ulp = ulp[pair_tol.stored]
        with np.errstate(invalid="ignore", divide="ignore"):
            # One buffer per quantity, reused by every pair: no float64 temporaries.
            np.abs(np.subtract(da, db, out=diff), out=diff)
            np.maximum(abs_a, abs_b, out=mag)
            pair_tol.allowed_into(allowed, ulp, mag, k)
            if full is not None:
                allowed += full[k - 1, cut]
            np.divide(diff, allowed, out=excess)
            if tol.fixed:                       # 0/0 where a fixed tolerance allows 0
                excess[diff == 0] = 0.0
            # Reduced here, in the worker thread; np.max keeps a NaN. A run's delta is
            # finite (a float32 difference fits in float64) iff every |da - db| is.
            top_diff = np.maximum.reduce(diff)
            finite = bool(np.isfinite(top_diff))
            yield {"abs": top_diff, "rel": _rel(diff, mag, scratch, finite),
                   "ulp": np.maximum.reduce(np.divide(diff, ulp, out=scratch)),
                   "excess": np.maximum.reduce(excess), "finite": finite}


def _kernel_pairs(k: int, cut: slice, snaps: dict[str, np.ndarray], pairs: list, tol: Tolerance,
                  diff: np.ndarray, mag: np.ndarray, allowed: np.ndarray, excess: np.ndarray,
                  scratch: np.ndarray):
    """_numpy_pairs' numbers from compare_kernel's compiled loop, one pass per pair; a
    pair whose deltas are not all finite is done by numpy (NaN and Inf rules live there)."""
    pair_chunk, none = compare_kernel.kernel(), np.empty(0)
    for i, p, full in pairs:
        a0, a1, b0, b1 = (snaps[n][j, cut] for n in (p.a.name, p.b.name) for j in (k - 1, k))
        pair_tol = tol.for_runs(p.a, p.b)       # stored float32 (_compiled), computed maybe not
        top_diff, rel, top_ulp, top_excess = pair_chunk(
            a0, a1, b0, b1, a0.view(np.int32), a1.view(np.int32), k, pair_tol.ops * pair_tol.eps,
            tol.atol or 0.0, tol.rtol or 0.0, tol.fixed, none if full is None else full[k - 1, cut],
            compare_kernel.ULP_BY_EXPONENT, compare_kernel.INVERSE_ULP, diff, allowed)
        if not np.isfinite(top_diff):
            yield from _numpy_pairs(k, cut, snaps, [(i, p, full)], tol, diff, mag, allowed, excess, scratch)
            continue
        yield {"abs": np.float64(top_diff), "rel": np.float64(0.0 if np.isnan(rel) else rel),
               "ulp": np.float64(top_ulp), "excess": np.float64(top_excess), "finite": True}


def _rel(diff: np.ndarray, mag: np.ndarray, out: np.ndarray, finite: bool) -> np.float64:
    """max |da-db| / max(|da|, |db|), 0 where both deltas are 0. With finite deltas a
    zero magnitude means a zero difference, whose 0/0 fmax skips (NaN: all were 0)."""
    if not finite:          # a NaN magnitude counts as 0 there, as before
        return _max(np.where(mag > 0, diff / mag, 0.0))
    top = np.fmax.reduce(np.divide(diff, mag, out=out))
    return np.float64(0.0) if np.isnan(top) else top


def _verdict(p: Pair, worst: "_Worst") -> Comparison:
    c = dict(a=p.a.name, b=p.b.name, expected=p.expected, param=p.param, max_abs=worst.top("abs"),
             max_rel=worst.top("rel"), max_ulp=worst.top("ulp"), excess=worst.top("excess"))
    if not worst.finite:
        return Comparison(**c, ok=False, problem="NaN/Inf in a run")
    if p.expected == "equal" and c["excess"] > 1.0:
        return Comparison(**c, ok=False,
                          problem=f"differ: max_abs {c['max_abs']:.3g} is {c['excess']:.3g}x the tolerance")
    if p.expected == "differ" and c["excess"] <= 1.0:
        return Comparison(**c, ok=False, problem="equal within tolerance, expected to differ")
    return Comparison(**c, ok=True)


def _max(x: np.ndarray) -> np.float64:
    return np.max(x) if np.size(x) else np.float64(0.0)


class _Worst:
    """The maxima of a comparison: each part's, reduced once at the end (np.maximum: a
    NaN is kept, never hidden). Kept as lists: a chunk's add costs an append, not a
    numpy call per quantity."""

    def __init__(self):
        self.parts: dict[str, list] = {key: [0.0] for key in ("abs", "rel", "ulp", "excess")}
        self.finite = True

    def add(self, finite: bool = True, **values) -> None:
        self.finite &= finite
        for key, v in values.items():
            self.parts[key].append(v)

    def top(self, key: str) -> float:
        return float(np.maximum.reduce(np.asarray(self.parts[key], np.float64)))


class _Suspects:
    """A pair's elements beyond the plain bound: the MAX_REPLAYED farthest are kept for
    a replay of their sensitivity; the farthest of the others bounds what is not
    replayed. `threshold` (the nearest kept, once MAX_REPLAYED are kept) lets chunks
    skip elements that could not be kept."""

    def __init__(self):
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.count = 0
        self.threshold = 1.0
        self.dropped = np.float64(0.0)

    def add(self, step: int, idx: np.ndarray, diff: np.ndarray, allowed: np.ndarray,
            ratio: np.ndarray, dropped: float) -> None:
        self.dropped = np.maximum(self.dropped, dropped)
        if not idx.size:
            return
        self.parts.append((np.full(idx.size, step), idx, diff, allowed, ratio))
        self.count += idx.size
        if self.count > 2 * MAX_REPLAYED:
            self._keep()

    def _keep(self) -> None:
        step, idx, diff, allowed, ratio = (np.concatenate(c) for c in zip(*self.parts))
        # Farthest first; ties by step and element, so the kept set never depends on timing.
        order = np.lexsort((idx, step, -ratio))
        if len(order) > MAX_REPLAYED:
            self.dropped = np.maximum(self.dropped, ratio[order[MAX_REPLAYED]])
            self.threshold = float(ratio[order[MAX_REPLAYED - 1]])
        keep = order[:MAX_REPLAYED]
        self.parts = [(step[keep], idx[keep], diff[keep], allowed[keep], ratio[keep])]
        self.count = len(keep)

    def excess(self, param: str, sensitivity: Sensitivity) -> tuple[np.float64, bool]:
        """The largest ratio with the sensitivity term, replayed farthest first in
        growing batches. It stops when no element left could exceed the largest found
        (their plain ratios, upper bounds of the full ones, are smaller), or when one
        found is beyond the tolerance: the verdict is settled, and the elements left
        count with their plain ratio (the result is then an upper bound). A pair that
        differs needs one batch; a pair within tolerance needs every replay. Not settled
        (False) when every kept element came back within the tolerance but some not
        kept are beyond it by the plain bound."""
        self._keep()              # sorted farthest first
        step, idx, diff, allowed, ratio = self.parts[0]
        found, start, size = np.float64(0.0), 0, REPLAY_BATCH
        while start < len(idx):
            cut = slice(start, start + size)
            where, pos = np.unique(idx[cut], return_inverse=True)
            sens = sensitivity.at(param, where)[step[cut] - 1, pos]
            with np.errstate(invalid="ignore", divide="ignore"):
                found = np.maximum(found, np.max(diff[cut] / (allowed[cut] + sens)))
            start, size = start + size, 2 * size
            if start < len(idx) and (found >= ratio[start] or found > 1):
                return np.maximum(found, ratio[start]), True
        return np.maximum(found, self.dropped), not (found <= 1 < self.dropped)


def pairs(e: Expectation) -> list[tuple[str, str]]:
    """Every pair of an expectation's runs: equality is checked pairwise, not as a chain."""
    return [(a, b) for i, a in enumerate(e.runs) for b in e.runs[i + 1:]]
