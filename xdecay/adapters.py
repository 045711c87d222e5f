"""Which module adapts which framework. Importing one imports its framework."""
from __future__ import annotations

import importlib
from types import ModuleType

from .records import ExplainJob, Job, RunRecord

ADAPTERS = {"torch": "xdecay.torch_adapter", "paddle": "xdecay.paddle_adapter"}


def load_adapter(framework: str) -> ModuleType:
    """The adapter module: `version()` and `run_job(job) -> list[RunRecord]`."""
    return importlib.import_module(ADAPTERS[framework])


def execute(adapter: ModuleType, request: list[Job] | ExplainJob) -> list[list[RunRecord]]:
    """Run a request with an adapter: per compare job its ways; an explain job is one list."""
    if isinstance(request, ExplainJob):
        return [[adapter.run_native(item, request) for item in request.items]]
    return [adapter.run_job(job) for job in request]
