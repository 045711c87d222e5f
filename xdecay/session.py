"""Warm workers for many run_case calls: each framework is imported once per session.

    import xdecay
    with xdecay.Session() as s:
        for name in ("momentum", "precedence", "groups"):
            assert s.run_case(name).ok

The plain `xdecay.run_case` uses one process-wide session, closed when the program
exits; the pytest plugin's `xdecay_session` fixture hands that same session to tests.
Each request starts from the frameworks' fresh state (the adapters' `isolated()`):
results do not depend on what ran before in the same workers.
"""
from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path

from .case import FRAMEWORKS
from .engine.pipeline import CaseResult, run_cases
from .frameworks.runner import DEFAULT_TIMEOUT
from .frameworks.warm import WarmWorkers


class Session:
    """Worker processes kept warm between run_case calls; close() (or the end of a
    `with` block) ends them. `pythons` runs a framework under another interpreter, as
    `--python` does; `timeout` is per call and framework, in seconds."""

    def __init__(self, *, pythons: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT):
        self.pythons = dict(pythons or {})
        self.timeout = timeout
        self.workers = WarmWorkers()

    def run_case(self, case: str | Path, *, steps: int | None = None,
                 frameworks: tuple[str, ...] = FRAMEWORKS, cases: str | Path | None = None,
                 min_power: float | None = None) -> CaseResult:
        """As xdecay.run_case, in this session's workers."""
        from .api import one_case           # api imports this module for the shared session
        loaded = one_case(case, steps, frameworks, cases, min_power)
        outcome = run_cases([loaded], steps=steps, frameworks=frameworks, pythons=self.pythons,
                            timeout=self.timeout, min_power=min_power, warm=self.workers)
        return outcome.results[0]

    def close(self) -> None:
        self.workers.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_shared: tuple[int, Session] | None = None
_shared_lock = threading.Lock()


def shared_session() -> Session:
    """The process-wide session behind xdecay.run_case, started on first use and closed at
    exit. A forked child gets its own: the parent's workers answer only the parent."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():
            _shared = os.getpid(), Session()
            atexit.register(_shared[1].close)
        return _shared[1]


def close_shared_session() -> None:
    """End the process-wide session's workers now (the next run_case starts new ones)."""
    global _shared
    with _shared_lock:
        if _shared is not None and _shared[0] == os.getpid():
            _shared[1].close()
        _shared = None
