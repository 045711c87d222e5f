"""Worker entry point, in one of two modes:

    python -m xdecay.frameworks.worker FRAMEWORK (REQUEST RESULT_DIR)...
        answers the requests given, then exits (the command line);
    python -m xdecay.frameworks.worker FRAMEWORK --serve
        a warm worker (xdecay.Session): reads one batch per line on stdin, a JSON list
        of [REQUEST, RESULT_DIR] pairs, answers it and writes "done" on stdout;
        exits at the end of stdin (its parent closed the pipe or died).

Runs in its own process so that each framework's import, crash or hang, and
paddle's logging side effects, stay out of the parent (README, "How it works"). Each
request runs inside the adapter's `isolated()`: the next one finds the framework's
global state (default dtype, seeds, parameter names) as a fresh worker would.
"""
from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path
from types import ModuleType

from .adapters import execute, load_adapter
from .allocator import keep_freed_memory, release_freed_memory
from .lifeline import watch_parent
from .protocol import ResultFiles, read_request

SERVE = "--serve"
DONE = "done"
# OpenMP's idle threads sleep instead of spinning (unless the user chose otherwise). The
# parent and both workers run at once, more busy processes than this machine's 2 cores:
# a spinning thread holds a core the others need, and a parallel region of torch's waits
# for a thread that has none. Measured with two busy processes beside the torch worker,
# its 83 runs of `compare --case all` took 2.24 CPU s spinning, 0.42 s sleeping. Only
# how a waiting thread waits changes: the number of threads and how work is split among
# them stay torch's and paddle's own (the same snapshots, byte for byte).
WAIT_POLICY = ("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str]) -> int:
    watch_parent()
    os.environ.setdefault(*WAIT_POLICY)    # read once, when the framework loads OpenMP
    kept = keep_freed_memory()
    framework, files = argv[0], argv[1:]
    serving = files == [SERVE]
    if serving:
        replies = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)     # whatever a framework prints goes to stderr, never among the replies
    else:
        pairs = [(Path(files[i]), Path(files[i + 1])) for i in range(0, len(files), 2)]
        requests = [read_request(request) for request, _ in pairs]
    try:
        adapter = loaded(framework)
    except ImportError as exc:
        print(f"xdecay worker: cannot import {framework}: {exc}", file=sys.stderr)
        return 3
    if not serving:
        for i, (request, (_, result)) in enumerate(zip(requests, pairs)):
            _answer(adapter, framework, request, result)
            if i + 1 < len(requests):      # before exiting, the process's end frees it all
                collecting()
        return 0
    for line in sys.stdin:
        for request, result in json.loads(line):
            _answer(adapter, framework, read_request(Path(request)), Path(result))
            collecting()
        print(DONE, file=replies, flush=True)
        if kept:        # a warm worker waits, maybe long, for its next batch
            release_freed_memory()
    return 0


# Python's cyclic garbage collector is off from the framework's import to the end of the
# first request: the modules they load live as long as the worker, but their objects are
# so many that the collector's passes over them were a fifth of the torch worker's start
# (importing torch: five full collections, 0.55-0.60 s; building its first optimizer, which
# imports torch._dynamo: 0.15-0.19 s; paddle's import 0.11 s). Then one pass frees the first
# request's cycles (its models hold some of their parameters in cycles), what remains is
# frozen out of later passes (gc.freeze), and the runs are collected as usual.

def loaded(framework: str) -> ModuleType:
    """The framework's adapter, imported with the collector off (until collecting())."""
    gc.disable()
    try:
        adapter = load_adapter(framework)
    except BaseException:
        gc.enable()
        raise
    gc.freeze()
    return adapter


def collecting() -> None:
    """After a request: the collector back on if it is not (the first request)."""
    if not gc.isenabled():
        gc.collect()
        gc.freeze()
        gc.enable()


def _answer(adapter: ModuleType, framework: str, request, result: Path) -> None:
    files = ResultFiles(result)
    with adapter.isolated():
        records = execute(adapter, request, files.allocate)
    files.write(framework, adapter.version(), records)


def leave(code: int) -> None:
    """Exit without the interpreter's teardown, as multiprocessing's children do: every
    result is on disk (meta.json last), and tearing torch down after `compare --case all`
    took 0.9 s, which the parent waited for before it could finish."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    leave(main(sys.argv[1:]))
