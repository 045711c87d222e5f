"""Plain records passed between the engine, the workers and the adapters (numpy only)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..case import Accumulate, Case, Decay, snapshot_bytes
from ..engine.clipping import Clip
from ..engine.precision import Precision
from ..engine.schedules import Schedule
from ..engine.spec import Spec

# Where an adapter puts a run's float32 snapshots: allocate(shape) -> an array to fill.
# In a worker it is a file the parent maps (protocol.ResultFiles), so a large layer's
# snapshots are written once, straight from the framework, and never copied again.
Allocate = Callable[[tuple[int, ...]], np.ndarray]


def in_memory(shape: tuple[int, ...]) -> np.ndarray:
    return np.empty(shape, np.float32)


@dataclass(frozen=True)
class Job:
    """What one adapter must run for one case: every way, from the same start."""
    case: str
    optimizer: str                     # engine/optimizers.py OPTIMIZERS
    lr: float | int
    hyper: dict[str, Any]              # the case's words
    native: dict[str, Any]             # this framework's [optimizer.FRAMEWORK] arguments
    decay: Decay
    loss: str
    steps: int
    ways: tuple[str, ...]
    spec: Spec
    clip: Clip | None = None           # gradient clipping between backward and step
    schedule: Schedule | None = None   # the lr scheduler, stepped after every step
    accumulate: Accumulate | None = None   # micro-batches per step
    precision: Precision | None = None     # mixed precision: low-precision parameters or autocast

    @property
    def coeff(self) -> float:
        return self.decay.coeff

    @property
    def snapshot_bytes(self) -> int:
        """What this job's runs write (ResultFiles.allocate)."""
        return snapshot_bytes(sum(p.size for p in self.spec.params.values()), self.steps, len(self.ways))

    @classmethod
    def from_case(cls, case: Case, framework: str, steps: int | None = None) -> Job:
        return cls(case=case.name, optimizer=case.optimizer.name, lr=case.optimizer.lr,
                   hyper=dict(case.optimizer.hyper),
                   native=dict(case.optimizer.native.get(framework, {})), decay=case.decay, loss=case.loss,
                   steps=steps or case.steps, ways=case.runs.get(framework, ()),
                   spec=case.spec(), clip=case.clip, schedule=case.schedule,
                   accumulate=case.accumulate, precision=case.precision)


@dataclass(frozen=True)
class ExplainItem:
    """One optimizer construction for `xdecay explain`, in the framework's own terms."""
    optimizer: str                     # the framework's class name, e.g. "Momentum"
    variant: str                       # a label for the options, e.g. "nesterov" ("" plain)
    options: dict[str, Any]            # native keyword arguments besides params and decay
    way: str                           # how decay is given (see the adapters' run_native)


@dataclass(frozen=True)
class ExplainJob:
    """Every explain item of one framework, all from the same start."""
    spec: Spec
    loss: str
    steps: int
    coeff: float
    param_attr_coeff: float
    items: tuple[ExplainItem, ...]


AUDIT_STEPS = 2      # `xdecay audit`: two steps separate coupled from decoupled decay for SGD with momentum and Adam


@dataclass(frozen=True)
class AuditJob:
    """`xdecay audit`: the user's factory (MODULE:FUNC or FILE.py:FUNC, as given with
    `option`) run in this framework's worker for `steps` steps (frameworks/audit_capture.py).
    Its answer is one RunRecord (way "audit"): per parameter, params[name] the weights
    [steps + 1, k] and series["grad:" + name] the gradients [steps, k] on the flat
    elements inference looks at (infer.flat_sample), series["lr:" + name] its lr per
    step, hyper[i] the i-th parameter's hyper-parameters (native names) and
    options["params"][i] what the objects say about it (AuditParam)."""
    factory: str
    option: str
    search: tuple[str, ...]           # the caller's folder: where MODULE is found, as `python -m` does
    steps: int
    seed: int


@dataclass
class RunRecord:
    """One (framework, way) run: float32 parameter snapshots, canonical names and layout.

    params[name][k] is the parameter after k steps ([0] the start), so its delta of
    step k is params[name][k] - params[name][k-1]. An error replaces the snapshots
    when the framework refused or failed this way.
    """
    framework: str
    way: str
    params: dict[str, np.ndarray] = field(default_factory=dict)   # float32 [steps + 1, ...]
    error: str | None = None
    logs: list[str] = field(default_factory=list)     # what the framework logged meanwhile
    series: dict[str, np.ndarray] = field(default_factory=dict)   # training: losses, lrs
    # The class, the hyper-parameters the optimizer ended up with per parameter group
    # (defaults filled in: what rule inference replays); explain runs also keep their
    # variant label and the arguments given.
    optimizer: str = ""
    variant: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    hyper: list[dict[str, Any]] = field(default_factory=list)
    # Under [precision], what the run really did (engine/precision.py): the dtype its
    # parameters were stored in and the dtype of its forward's output (a CPU build may
    # leave either float32); snapshots stay float32, which holds bfloat16/float16 exactly.
    dtype: str = "float32"
    forward: str = "float32"

    @property
    def name(self) -> str:
        return f"{self.framework}:{self.way}"

    @property
    def steps(self) -> int:
        return len(next(iter(self.params.values()))) - 1

    def delta(self, param: str) -> np.ndarray:
        """Per-step deltas in float64 (exact: both snapshots are float32)."""
        return np.diff(self.params[param].astype(np.float64), axis=0)

    def step_delta(self, param: str, k: int, corner: int | None = None) -> np.ndarray:
        """The delta of step k (from 0) in float64; with `corner`, only its leading
        corner x corner block (what a report shows of a large layer)."""
        cut = (slice(corner),) * (self.params[param].ndim - 1)
        before, after = self.params[param][k][cut], self.params[param][k + 1][cut]
        return np.asarray(after, np.float64) - np.asarray(before, np.float64)
