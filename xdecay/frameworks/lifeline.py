"""A worker ends when its parent does, however the parent ends.

The parent makes a pipe per worker and keeps the only write end; the worker blocks
reading the other end in a thread. Nothing is ever written, so the read returns only
at end of file: when the kernel closes the parent's descriptors, which it does on any
death (SIGKILL and the OOM killer included, where no handler of the parent runs). The
worker then removes the parent's temporary folder (snapshots can be GBs) and kills its
own process group.

Why not prctl(PR_SET_PDEATHSIG): it is Linux only, fires when the *thread* that started
the worker ends rather than the process, needs a getppid() check against a parent that
died before the call, and its signal (SIGKILL) leaves the folder behind. A pipe works
under any interpreter given to --python and has no such race: the write end exists
before the worker does.
"""
from __future__ import annotations

import os
import shutil
import signal
import threading

LIFELINE_ENV = "XDECAY_LIFELINE_FD"     # the read end's descriptor number in the worker
SCRATCH_ENV = "XDECAY_SCRATCH"          # the parent's temporary folder


def watch_parent() -> None:
    """In a worker started by the runner: end with the parent (no-op when run by hand)."""
    fd = os.environ.get(LIFELINE_ENV)
    if fd is None:
        return
    threading.Thread(target=_wait, args=(int(fd), os.environ.get(SCRATCH_ENV)), daemon=True,
                     name="xdecay-lifeline").start()


def _wait(fd: int, scratch: str | None) -> None:
    try:
        while os.read(fd, 1):
            pass
    except OSError:
        pass
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    # The worker leads its own process group (start_new_session): this ends it and
    # anything a framework started.
    os.killpg(os.getpgrp(), signal.SIGKILL)
