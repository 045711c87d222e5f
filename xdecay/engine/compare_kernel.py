"""The comparison of one pair over one chunk of elements in a single compiled loop: the
numbers compare._numpy_pairs computes with a dozen numpy passes, for a large layer.

Why compiled: numpy walks a chunk once per operation (about 15 for a pair); on a
4096x4096 layer over 10 steps that walking took most of the parent's CPU (P2 in
benchmarks/bench.py). This loop reads each float32 once, keeps the rest in registers,
and divides only where a quotient could be a new maximum (a division costs more than
the rest of an element's work). Numba is imported (and the loop compiled) only when a
comparison is large enough to pay for it (compare.KERNEL_MIN_ELEMENTS): small cases
never load it.

Equal bit for bit to the numpy path, for finite deltas (the caller falls back to numpy
for a chunk where any |da - db| is not finite): every value is the same IEEE float64
operation on the same operands in the same order (no fastmath), a maximum is one of
the quotients themselves, and a quotient is skipped only when it cannot exceed the
running maximum. Pinned by tests/test_compare_kernel.py."""
from __future__ import annotations

import math
import threading

import numpy as np

from .precision import ulp

# ulp32 by the biased exponent E of the larger |w|: precision.ulp at the smallest float32
# of each exponent (2**-149 below the normal range, 2**(E - 150) above), and its inverse:
# both powers of two, so diff * (1/ulp) is diff / ulp exactly. The largest float32's
# spacing is Inf (1/Inf = 0); E = 255 (Inf, NaN) gives a NaN delta, which the caller
# redoes in numpy.
ULP_BY_EXPONENT = np.append(ulp(np.append(0.0, np.ldexp(1.0, np.arange(-126, 128))), "float32"), np.nan)
INVERSE_ULP = 1.0 / ULP_BY_EXPONENT
FLOAT32_MAX_BITS = 0x7f7fffff
# A quotient q = diff/d can exceed the running maximum T only if diff >= T*d*(1 - 2**-40):
# fl(T*d) is within 2**-53 of T*d, and q within 2**-53 of diff/d, wherever T*d is normal
# (>= NORMAL; below it, or when it is NaN, the quotient is always computed).
NEAR = 1.0 - 2.0 ** -40
NORMAL = 2.0 ** -1000


_LOCK = threading.Lock()
_KERNEL: list = []


def kernel():
    """The compiled pair loop, compiled at the first call of a process (~1 s); once, even
    when the comparison's threads ask for it together."""
    with _LOCK:
        if not _KERNEL:
            _KERNEL.append(_compile())
        return _KERNEL[0]


def _compile():
    import numba

    @numba.njit(nogil=True, error_model="numpy", cache=False)
    def pair_chunk(a0, a1, b0, b1, a0_bits, a1_bits, k, scale, atol, rtol, fixed, full,
                   ulps, inverse_ulps, diff_out, allowed_out):
        """Maxima of |da-db|, |da-db|/max(|da|,|db|) (0/0 skipped), |da-db|/ulp32 and
        |da-db|/allowed at step k; writes |da-db| and allowed per element."""
        top_diff = 0.0
        top_rel = np.nan
        top_ulp = 0.0
        top_excess = 0.0
        has_full = full.size > 0
        for i in range(a0.size):
            da = np.float64(a1[i]) - np.float64(a0[i])
            db = np.float64(b1[i]) - np.float64(b0[i])
            diff = abs(da - db)
            mag = max(abs(da), abs(db))
            # max(|before|, |after|) of run a, compared as float32 bits (ordered as magnitudes).
            m = max(a0_bits[i] & 0x7fffffff, a1_bits[i] & 0x7fffffff)
            if m < FLOAT32_MAX_BITS:
                ulp, inverse_ulp = ulps[m >> 23], inverse_ulps[m >> 23]
            elif m == FLOAT32_MAX_BITS:
                ulp, inverse_ulp = np.inf, 0.0
            else:
                ulp, inverse_ulp = np.nan, np.nan
            if fixed:
                allowed = mag * rtol + atol
            else:
                allowed = mag * scale + ulp
                if k != 1:
                    allowed = allowed * k
            if has_full:
                allowed = allowed + full[i]
            diff_out[i] = diff
            allowed_out[i] = allowed
            if diff > top_diff:
                top_diff = diff
            elif math.isnan(diff):
                top_diff = np.nan
                break                                   # the caller redoes this chunk in numpy
            bound = top_rel * mag
            if not (diff < bound * NEAR) or not (bound >= NORMAL):
                r = diff / mag
                if not math.isnan(r) and (math.isnan(top_rel) or r > top_rel):
                    top_rel = r
            u = diff * inverse_ulp
            if u > top_ulp or math.isnan(u):      # a NaN stays: nothing is > NaN
                top_ulp = u
            bound = top_excess * allowed
            if not (diff < bound * NEAR) or not (bound >= NORMAL):
                e = 0.0 if fixed and diff == 0.0 else diff / allowed
                if e > top_excess or math.isnan(e):
                    top_excess = e
        return top_diff, top_rel, top_ulp, top_excess

    return pair_chunk
