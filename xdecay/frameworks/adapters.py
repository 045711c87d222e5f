"""Which module adapts which framework. Importing one imports its framework."""
from __future__ import annotations

import importlib
from types import ModuleType

from ..training import TrainJob
from .records import Allocate, AuditJob, ExplainJob, Job, RunRecord, in_memory

ADAPTERS = {"torch": "xdecay.frameworks.torch_adapter", "paddle": "xdecay.frameworks.paddle_adapter"}


def load_adapter(framework: str) -> ModuleType:
    """The adapter module: `version()` and `run_job(job, allocate) -> list[RunRecord]`."""
    return importlib.import_module(ADAPTERS[framework])


def execute(adapter: ModuleType, request: list[Job] | ExplainJob | TrainJob | AuditJob,
            allocate: Allocate = in_memory) -> list[list[RunRecord]]:
    """Run a request with an adapter: per compare job its ways; an explain, a training or
    an audit job is one list. Compare snapshots go where `allocate` puts them."""
    if isinstance(request, AuditJob):
        return [[adapter.run_audit(request)]]
    if isinstance(request, TrainJob):
        return [adapter.run_train(request)]
    if isinstance(request, ExplainJob):
        return [[adapter.run_native(item, request) for item in request.items]]
    return [adapter.run_job(job, allocate) for job in request]


