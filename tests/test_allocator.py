"""A worker keeps the C heap's freed memory (frameworks/allocator.py): large blocks come from
the heap and stay there, a warm worker hands them back after a call, a user's own malloc
settings win, and nothing the frameworks compute changes."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from xdecay.case import FRAMEWORKS, load_case
from xdecay.frameworks import allocator, runner
from xdecay.frameworks.records import Job

from .conftest import write_case

glibc = pytest.mark.skipif(allocator.glibc() is None, reason="glibc's malloc only")

# In a fresh process: mallopt changes its whole process, and the pages are counted there.
# A 256 MiB block is freed; printed: the bytes handed back to the system at once, and
# after malloc_trim.
HEAP = textwrap.dedent("""\
    import sys
    import numpy as np
    from xdecay.frameworks import worker
    from xdecay.frameworks.allocator import keep_freed_memory, release_freed_memory

    def resident():
        status = open("/proc/self/status").read()
        return int(status.split("VmRSS:")[1].split()[0]) << 10

    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    elif sys.argv[1] == "worker":          # a warm worker's start, then the end of its stdin
        assert worker.main(["torch", "--serve"]) == 0
    block = np.ones(1 << 25)
    before = resident()
    del block
    freed = resident()
    release_freed_memory()
    sys.stderr.write(f"bytes returned: {before - freed} {before - resident()}\\n")
""")


@pytest.fixture
def no_user_malloc(monkeypatch):
    """This environment without malloc settings of the user's (a CI's may have some)."""
    for name in list(os.environ):
        if allocator.user_setting(name):
            monkeypatch.delenv(name)


def returned_bytes(mode: str) -> tuple[int, int]:
    """(bytes returned to the system when a 256 MiB block is freed, and after malloc_trim)."""
    out = subprocess.run([sys.executable, "-c", HEAP, mode], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=120)
    assert out.returncode == 0, out.stderr
    at_free, after_trim = map(int, out.stderr.rpartition("bytes returned: ")[2].split())
    return at_free, after_trim


@glibc
def test_a_large_block_is_kept_when_freed_and_handed_back_by_release(no_user_malloc):
    at_free, after_trim = returned_bytes("keep")
    assert at_free < 16 << 20            # kept for the next allocation: no new pages to fault in
    assert after_trim > 200 << 20        # what a warm worker does after each call


@glibc
def test_by_default_glibc_unmaps_a_large_block_at_once(no_user_malloc):
    # What keep_freed_memory changes: without it the block is returned on free, and the
    # next step's tensor of that size is faulted in from the system again.
    at_free, _ = returned_bytes("default")
    assert at_free > 200 << 20


@glibc
def test_a_worker_keeps_freed_memory(no_user_malloc):
    at_free, _ = returned_bytes("worker")     # worker.main itself, framework import and all
    assert at_free < 16 << 20


class FakeLibc:
    def __init__(self):
        self.calls: list[tuple] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1


@pytest.mark.parametrize("name", [*allocator.USER_SETTINGS, "MALLOC_ARENA_MAX", "MALLOC_TOP_PAD_"])
def test_a_users_own_malloc_settings_are_left_alone(monkeypatch, no_user_malloc, name):
    libc = FakeLibc()
    monkeypatch.setattr(allocator, "glibc", lambda: libc)      # never this process's malloc
    assert allocator.keep_freed_memory() is True
    assert libc.calls == [(allocator.M_TRIM_THRESHOLD, 2 ** 31 - 1), (allocator.M_MMAP_MAX, 0)]
    monkeypatch.setenv(name, "1")
    assert allocator.keep_freed_memory() is False
    assert len(libc.calls) == 2


ADAM_512 = """\
description = "a layer whose tensors (1 MiB) glibc maps on their own until it raises its threshold"
seed = 3
steps = 3

[layer]
in_features = 512
out_features = 512

[data]
batch = 8

[optimizer]
name = "adam"
lr = 0.01

[decay]
coeff = 0.1

[runs]
torch = ["none", "weight_decay"]
paddle = ["none", "weight_decay", "l2decay"]

[[expect]]
differ = ["torch:none", "torch:weight_decay"]
"""


@glibc
def test_kept_memory_leaves_every_snapshot_bit_for_bit(tmp_path, monkeypatch, no_user_malloc):
    case = load_case(write_case(tmp_path, ADAM_512))
    jobs = {fw: [Job.from_case(case, fw)] for fw in FRAMEWORKS}
    kept = runner.run(jobs)
    # A malloc setting of the user's that changes nothing (no perturbation, glibc's
    # default): the workers then leave malloc as it is.
    monkeypatch.setenv("MALLOC_PERTURB_", "0")
    default = runner.run(jobs)
    for fw in FRAMEWORKS:
        assert kept[fw].error is None and default[fw].error is None
        for a, b in zip(kept[fw].records[0], default[fw].records[0], strict=True):
            assert a.params.keys() == b.params.keys()
            for name in a.params:
                assert np.asarray(a.params[name]).tobytes() == np.asarray(b.params[name]).tobytes(), (a.name, name)
