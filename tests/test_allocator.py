"""A worker keeps the C heap's freed memory (frameworks/allocator.py): large blocks come from
the heap and stay there, a warm worker hands them back after a request, and nothing the
frameworks compute changes."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from xdecay.case import FRAMEWORKS, load_case
from xdecay.frameworks import allocator, runner
from xdecay.frameworks.records import Job

from .conftest import write_case

glibc = pytest.mark.skipif(allocator._glibc() is None, reason="glibc's malloc only")

# In a fresh process: mallopt changes its whole process, and the pages are counted there.
HEAP = textwrap.dedent("""\
    import sys
    import numpy as np
    from xdecay.frameworks.allocator import keep_freed_memory, release_freed_memory

    def resident():
        status = open("/proc/self/status").read()
        return int(status.split("VmRSS:")[1].split()[0]) << 10

    keep = sys.argv[1] == "keep"
    if keep:
        assert keep_freed_memory()
    block = np.ones(1 << 25)          # 256 MiB: glibc maps such a block on its own
    before = resident()
    del block
    freed = resident()
    release_freed_memory()
    print(before - freed, before - resident())
""")


def returned_bytes(mode: str) -> tuple[int, int]:
    """(bytes returned to the system when a 256 MiB block is freed, and after malloc_trim)."""
    out = subprocess.run([sys.executable, "-c", HEAP, mode], capture_output=True, text=True, check=True)
    at_free, after_trim = map(int, out.stdout.split())
    return at_free, after_trim


@glibc
def test_a_large_block_is_kept_when_freed_and_handed_back_by_release():
    at_free, after_trim = returned_bytes("keep")
    assert at_free < 16 << 20            # kept for the next allocation: no new pages to fault in
    assert after_trim > 200 << 20        # a warm worker between requests


@glibc
def test_by_default_glibc_unmaps_a_large_block_at_once():
    # What keep_freed_memory changes: without it the block is returned on free, and the
    # next step's tensor of that size is faulted in from the system again.
    at_free, _ = returned_bytes("default")
    assert at_free > 200 << 20


def test_a_users_own_malloc_settings_are_left_alone(monkeypatch):
    for name in allocator.USER_SETTINGS:
        monkeypatch.setenv(name, "1")
        assert allocator.keep_freed_memory() is False
        monkeypatch.delenv(name)


ADAM_512 = """\
description = "a layer whose tensors (1 MiB) glibc would map on their own"
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
def test_kept_memory_leaves_every_snapshot_bit_for_bit(tmp_path, monkeypatch):
    case = load_case(write_case(tmp_path, ADAM_512))
    jobs = {fw: [Job.from_case(case, fw)] for fw in FRAMEWORKS}
    kept = runner.run(jobs)
    # glibc's own default, set by "the user": the workers leave malloc as it is.
    monkeypatch.setenv("MALLOC_MMAP_MAX_", "65536")
    default = runner.run(jobs)
    for fw in FRAMEWORKS:
        assert kept[fw].error is None and default[fw].error is None
        for a, b in zip(kept[fw].records[0], default[fw].records[0], strict=True):
            assert a.params.keys() == b.params.keys()
            for name in a.params:
                assert np.asarray(a.params[name]).tobytes() == np.asarray(b.params[name]).tobytes(), (a.name, name)
