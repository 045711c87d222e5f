"""numpy's OpenBLAS on one thread per calling thread while the parent analyses runs.

Measured here (2 cores shared with other processes, load average 6.6): the float64
forward pass of a 4096x4096 layer (reference.linear_forward_rows) took 2.5-6 s with
OpenBLAS's default 2 threads and 0.3 s with one: OpenBLAS's threads spin while
they wait for a core that another process holds. The analysis spreads its work over
the cores with its own threads (compare.on_cores) and runs next to the workers,
so one BLAS thread per caller loses nothing on a quiet machine either.

OpenBLAS (>= 0.3.27) sets this per thread (openblas_set_num_threads_local): the
user's own numpy calls (the API runs in their process) keep their threads. Nothing
changes with another BLAS or where the symbol is missing.
"""
from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy

# numpy's wheels carry their OpenBLAS in numpy.libs/ beside numpy/: only that copy is
# touched, never one a framework imported into this process loads (in_process runs).
NUMPY_FILES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(numpy.__file__))), "numpy")


@functools.cache
def _set_local() -> Callable[[int], int] | None:
    """openblas_set_num_threads_local of the OpenBLAS numpy has loaded, or None."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps
                     if "openblas" in line.lower() and line.split()[-1].startswith(NUMPY_FILES)}
    except OSError:          # not Linux: leave BLAS as it is
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
            fn = lib.openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
        return fn
    return None


def one_thread_here() -> None:
    """This thread's BLAS calls on one thread (for a pool thread that ends with the pool)."""
    set_local = _set_local()
    if set_local is not None:
        set_local(1)


@contextmanager
def one_thread() -> Iterator[None]:
    """This thread's BLAS calls on one thread within the block, as before after it."""
    set_local = _set_local()
    if set_local is None:
        yield
        return
    before = set_local(1)
    try:
        yield
    finally:
        set_local(before)
