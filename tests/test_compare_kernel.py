"""The compiled comparison loop (engine/compare_kernel.py) gives what the numpy passes
give, bit for bit: every maximum, the finite flag, and the elements kept for a replay,
on random runs with zeros, signed zeros, subnormals, the largest float32, Inf and NaN."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdecay.engine import compare
from xdecay.engine.compare import Pair, Tolerance, _compare_chunk, compare_pair
from xdecay.frameworks.records import RunRecord

SPECIAL = [0.0, -0.0, 1e-45, -1e-45, 1.1754942e-38, 1.1754944e-38, 3.4028235e38, -3.4028235e38,
           np.inf, -np.inf, np.nan, 1.0, 0.5]


def _runs(seed: int, noise: float, specials: int, steps: int = 3, size: int = 300) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = np.cumsum(rng.standard_normal((steps + 1, size)) * 1e-2, axis=0).astype(np.float32)
    snaps = {"torch:a": a}
    for name in ("torch:b", "paddle:c"):
        b = (a * (1 + noise * rng.standard_normal(a.shape))).astype(np.float32)
        b[:, :5] = a[:, :5]                       # zero differences
        b[1:, 5:8] = b[0, 5:8]                    # zero deltas
        snaps[name] = b
    for _ in range(specials):
        name = rng.choice(list(snaps))
        snaps[name][rng.integers(0, steps + 1), rng.integers(0, size)] = rng.choice(SPECIAL)
    return snaps


def _chunk_results(snaps, tol, thresholds, full, compiled, k, cut):
    records = {n: RunRecord(*n.split(":")) for n in snaps}
    pairs = [(0, Pair(records["torch:a"], records["torch:b"], "equal"), full),
             (1, Pair(records["torch:a"], records["paddle:c"], "equal"), None),
             (2, Pair(records["torch:b"], records["paddle:c"], "equal"), full)]
    out = []
    with np.errstate(all="ignore"):
        for i, values, far in _compare_chunk(k, cut, snaps, pairs, tol, thresholds, compiled):
            out.append((i, {key: float(v) for key, v in values.items()},
                        None if far is None else tuple(np.asarray(x).tolist() for x in far)))
    return out


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 1e-7, 1e-3, 1.0]), st.integers(0, 6),
       st.sampled_from(["derived", "fixed", "computed16"]), st.booleans(), st.sampled_from([0.5, 1.0, 3.0]))
def test_the_compiled_loop_equals_the_numpy_passes(seed, noise, specials, kind, with_full, threshold):
    snaps = _runs(seed, noise, specials)
    tol = {"derived": Tolerance(ops=37), "fixed": Tolerance(ops=37, atol=1e-6, rtol=1e-3),
           "computed16": Tolerance(ops=37, computed="float16")}[kind]
    full = np.abs(np.random.default_rng(seed).standard_normal((3, 300))) * 1e-9 if with_full else None
    for k in (1, 3):
        for cut in (slice(0, 300), slice(7, 190)):
            # A pair whose sensitivity is replayed lazily keeps its elements beyond the threshold.
            thresholds = {} if kind == "fixed" else {1: threshold, 2: threshold}
            expected = _chunk_results(snaps, tol, thresholds, full, False, k, cut)
            got = _chunk_results(snaps, tol, thresholds, full, True, k, cut)
            assert _same(got, expected), (k, cut)


def _same(got, expected) -> bool:
    """Equal as numbers, NaN equal to NaN."""
    def norm(x):
        if isinstance(x, float):
            return "nan" if np.isnan(x) else x
        if isinstance(x, (list, tuple)):
            return [norm(v) for v in x]
        if isinstance(x, dict):
            return {k: norm(v) for k, v in x.items()}
        return x
    return norm(got) == norm(expected)


@pytest.mark.parametrize("bad", [False, True])
def test_a_comparison_large_enough_for_the_loop_gives_the_numpy_verdict(monkeypatch, bad):
    snaps = _runs(11, 1e-6, 0, steps=4, size=5000)
    if bad:
        snaps["torch:b"][2, 17] = np.nan
    a, b = (RunRecord(*n.split(":"), {"weight": snaps[n].reshape(5, 50, 100)}) for n in ("torch:a", "torch:b"))
    tol = Tolerance(ops=37)
    monkeypatch.setattr(compare, "KERNEL_MIN_ELEMENTS", 1 << 62)
    expected = compare_pair(a, b, "equal", tol)
    monkeypatch.setattr(compare, "KERNEL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(compare, "KERNEL_CHUNK", 777)          # many chunks, a ragged last one
    got = compare_pair(a, b, "equal", tol)
    assert _same([got.ok, got.max_abs, got.max_rel, got.max_ulp, got.excess, got.problem],
                 [expected.ok, expected.max_abs, expected.max_rel, expected.max_ulp, expected.excess, expected.problem])
    assert got.problem == ("NaN/Inf in a run" if bad else "differ: max_abs 0.0148 is 2.25e+05x the tolerance")


def test_the_loop_divides_wherever_a_quotient_could_be_a_new_maximum():
    # Ratios rising by ~2**-28 from element to element (consecutive float32 deltas in one
    # binade): the loop skips a division only when the quotient cannot beat the running
    # maximum, so a skip margin coarser than the float64 rounding would miss the last.
    rising = np.float32(1.0) + np.arange(2000, dtype=np.float32) * np.float32(2.0 ** -23)
    zero, half = np.zeros_like(rising), np.full_like(rising, 0.5)
    # |da - db| / max(|da|, |db|) = 1 - 0.5/x and |da - db| / allowed both rise with x.
    snaps = {"torch:a": np.stack([zero, rising]), "torch:b": np.stack([zero, half]), "paddle:c": np.stack([zero, half])}
    for order in (slice(None), slice(None, None, -1)):
        ordered = {n: np.ascontiguousarray(v[:, order]) for n, v in snaps.items()}
        expected = _chunk_results(ordered, Tolerance(ops=37), {}, None, False, 1, slice(0, 2000))
        got = _chunk_results(ordered, Tolerance(ops=37), {}, None, True, 1, slice(0, 2000))
        assert _same(got, expected)
