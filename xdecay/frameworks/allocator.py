"""How a worker's C heap (glibc's malloc, under torch's and paddle's CPU allocators) keeps
memory it has freed.

By default glibc gives every block of 32 MiB or more its own mmap and unmaps it when
it is freed. A 4096x4096 float32 tensor is 64 MiB, so each step's gradient, moment
temporaries and outputs came from the kernel again, faulted in a page at a time and
zeroed; on a virtual machine whose host takes freed pages back, a fresh page costs
microseconds. benchmarks/large_adam.toml, each worker alone on this project's 2-core KVM
machine: the torch worker 3.1M page faults and 7.7 s of system CPU against 6.7 s of user
CPU, paddle's 2.5M and 6.2 s; with freed blocks kept in the heap 0.9M and 3.0 s, 0.9M
and 3.6 s. The price: heap fragmentation, each worker's peak 0.5-0.6 GiB higher there. Only
where memory comes from changes, never what is computed in it: the snapshots are the
same bytes (tests/test_allocator.py).

A warm worker (--serve) hands the memory back after each batch (release_freed_memory),
so an idle worker does not hold the largest case it ran. Outside glibc (macOS) nothing
changes, and a user's own malloc settings are left alone.
"""
from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1         # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
USER_SETTINGS = ("GLIBC_TUNABLES", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_",
                 "LD_PRELOAD")      # LD_PRELOAD: another malloc (jemalloc, tcmalloc) chosen by the user


def _glibc() -> ctypes.CDLL | None:
    """The process's C library if it has glibc's mallopt and malloc_trim, else None."""
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """Large blocks from the heap instead of their own mappings, and freed memory kept for
    the next allocation rather than returned at once. Before the framework loads; whether
    it was applied."""
    libc = _glibc()
    if libc is None or any(os.environ.get(name) for name in USER_SETTINGS):
        return False
    # Up to 2 GiB free at the heap's top stays there; no block gets a mapping of its own.
    return bool(libc.mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1)) and bool(libc.mallopt(M_MMAP_MAX, 0))


def release_freed_memory() -> None:
    """Return the heap's free memory to the system (malloc_trim)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
