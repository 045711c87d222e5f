"""Which module adapts which framework. Importing one imports its framework."""
from __future__ import annotations

import importlib
from types import ModuleType

ADAPTERS = {"torch": "xdecay.torch_adapter", "paddle": "xdecay.paddle_adapter"}


def load_adapter(framework: str) -> ModuleType:
    """The adapter module: `version()` and `run_job(job) -> list[RunRecord]`."""
    return importlib.import_module(ADAPTERS[framework])
