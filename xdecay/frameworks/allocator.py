"""How a worker's C heap (glibc's malloc, under torch's and paddle's CPU allocators) keeps
memory it has freed.

By default glibc gives a large block its own mmap and unmaps it when it is freed: from
128 KiB, a threshold it raises as such blocks are freed, never above 32 MiB. A 4096x4096
float32 tensor is 64 MiB, so each step's gradient, moment
temporaries and outputs came from the kernel again, faulted in a page at a time and
zeroed; on a virtual machine whose host takes freed pages back, a fresh page costs
microseconds. benchmarks/large_adam.toml, each worker alone on this project's 2-core KVM
machine: the torch worker 3.1M page faults and 7.7 s of system CPU against 6.7 s of user
CPU, paddle's 2.5M and 6.2 s; with freed blocks kept in the heap 0.9M and 3.0 s, 0.9M
and 3.6 s. The price: heap fragmentation, each worker's peak 0.5-0.6 GiB higher there
over 10 steps. Only
where memory comes from changes, never what is computed in it: the snapshots are the
same bytes (tests/test_allocator.py).

A warm worker (--serve) hands the memory back after each batch (release_freed_memory),
so an idle worker does not hold the largest case it ran. Outside glibc (macOS) nothing
changes, and a user's own malloc settings (GLIBC_TUNABLES, any MALLOC_* variable, or
another malloc through LD_PRELOAD such as jemalloc) are left alone.
"""
from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1         # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
USER_SETTINGS = ("GLIBC_TUNABLES", "LD_PRELOAD")
USER_PREFIX = "MALLOC_"        # glibc's MALLOC_ARENA_MAX, MALLOC_MMAP_MAX_, MALLOC_TOP_PAD_, ...


def glibc() -> ctypes.CDLL | None:
    """The process's C library if it has glibc's mallopt and malloc_trim, else None."""
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):         # TypeError: Windows has no dlopen(NULL)
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def user_setting(name: str) -> bool:
    """Whether a variable of this name configures malloc: set (non-empty), it is the user's choice."""
    return name in USER_SETTINGS or name.startswith(USER_PREFIX)


def keep_freed_memory() -> bool:
    """Large blocks from the heap instead of their own mappings, and freed memory kept for
    the next allocation rather than returned at once. Before the framework loads; whether
    it was applied."""
    libc = glibc()
    if libc is None or any(value and user_setting(name) for name, value in os.environ.items()):
        return False
    # Up to 2 GiB free at the heap's top stays there, and no block of the main arena gets a
    # mapping of its own (a thread's arena, at most 64 MiB, still maps a larger block). Both
    # calls are made: a half-applied setting is still one to hand back (release_freed_memory).
    trim = libc.mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1)
    mapped = libc.mallopt(M_MMAP_MAX, 0)
    return bool(trim or mapped)


def release_freed_memory() -> None:
    """Return the heap's free memory to the system (malloc_trim)."""
    libc = glibc()
    if libc is not None:
        libc.malloc_trim(0)
