"""Which module adapts which framework. Importing one imports its framework."""
from __future__ import annotations

import importlib
from types import ModuleType

from .records import ExplainJob, Job, RunRecord
from .training import TrainJob

ADAPTERS = {"torch": "xdecay.torch_adapter", "paddle": "xdecay.paddle_adapter"}


def load_adapter(framework: str) -> ModuleType:
    """The adapter module: `version()` and `run_job(job) -> list[RunRecord]`."""
    return importlib.import_module(ADAPTERS[framework])


def execute(adapter: ModuleType, request: list[Job] | ExplainJob | TrainJob) -> list[list[RunRecord]]:
    """Run a request with an adapter: per compare job its ways; an explain or a training
    job is one list."""
    if isinstance(request, TrainJob):
        return [adapter.run_train(request)]
    if isinstance(request, ExplainJob):
        return [[adapter.run_native(item, request) for item in request.items]]
    return [adapter.run_job(job) for job in request]
