"""`xdecay audit` inside a framework's worker: the user's factory builds (model, optimizer,
inputs), and the user's own optimizer steps the user's own model `steps` times.

The loss is xdecay's, fixed and documented: each floating-point output y_i of
`model(*inputs)` (`model(**inputs)` for a dict; the outputs a tensor, a tuple or list, or
a dict -- a transformers ModelOutput is one; its other items are left out) is projected
on a seeded standard-normal array R_i of its shape, loss = sum_i sum(y_i * R_i) / y_i.size
-- a generic, nonzero gradient for every parameter that reaches an output, the same at
every run. Per step, every stepped
parameter's weight before the step, its gradient and its lr are kept, and the weight
after the last step: on infer.flat_sample's elements (a decay rule treats every element
alike), so a large model costs its own steps plus a few thousand numbers per parameter.
Besides, what the optimizer object says about each parameter (group, hyper-parameters,
where a decay could come from) is read for the report and the float64 replay.

Framework-neutral: each adapter passes its Hooks, the few calls that differ.
"""
from __future__ import annotations

import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..engine.infer import flat_sample
from ..engine.reference import RULES
from ..errors import UsageError
from .factory import call_factory
from .records import AuditJob, RunRecord

# Parameter statuses besides "stepped": not in the optimizer (or requiring no gradient),
# or in it but reached by no gradient (both frameworks then skip it).
FROZEN, NO_GRADIENT, STEPPED = "frozen", "no gradient", "stepped"
# The parameter dtypes a replay's tolerance and rounding are derived for (engine/precision.py);
# captured as float32, which holds bfloat16 and float16 values exactly.
DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class Hooks:
    """What one framework does differently; `optimizer_params` returns None for an object
    that is not one of its optimizers, else [(parameter, group index)]."""
    framework: str
    is_model: Callable[[Any], bool]
    is_tensor: Callable[[Any], bool]
    is_float: Callable[[Any], bool]
    dtype: Callable[[Any], str]
    trainable: Callable[[Any], bool]
    take: Callable[[Any, np.ndarray | None], np.ndarray]     # flat elements as float32 numpy (all: None)
    constant: Callable[[np.ndarray, Any], Any]               # numpy array -> tensor of `like`'s dtype
    optimizer_params: Callable[[Any], list[tuple[Any, int]] | None]
    refusal: Callable[[Any, list], str | None]               # (optimizer, its parameters): why it cannot be audited
    zero_grad: Callable[[Any], None]
    lr: Callable[[Any, Any, int], float]                     # (optimizer, param, group) -> lr in use
    # (optimizer, param, group, number of groups) -> (native hyper-parameters, sources): each
    # source a place a decay of this parameter is set, and its coefficient (None: set to none)
    describe: Callable[[Any, Any, int, int], tuple[dict[str, Any], list[tuple[str, float | None]]]]


@dataclass
class AuditParam:
    """What the objects say about one parameter (the rule is measured in the parent)."""
    name: str
    shape: list[int]
    dtype: str
    status: str
    group: int | None = None
    sources: list[tuple[str, float | None]] = field(default_factory=list)   # Hooks.describe
    sample: int | None = None                             # elements looked at (None: all)


def run_audit(job: AuditJob, hooks: Hooks) -> RunRecord:
    """The captured steps, or a record whose error is one line about the user's setup."""
    try:
        return _capture(job, hooks)
    except UsageError as exc:
        return RunRecord(hooks.framework, "audit", error=str(exc))


def _capture(job: AuditJob, hooks: Hooks) -> RunRecord:
    opt = f"{job.option} {job.factory}"
    began = time.perf_counter()
    made = call_factory(job.factory, opt, job.search)
    model, optimizer, inputs = _unpack(made, opt, hooks)
    stepped = {id(p): (p, g) for p, g in hooks.optimizer_params(optimizer)}
    named = list(model.named_parameters())
    if not named:
        raise UsageError(f"{opt}: the model has no parameters")
    own = {id(p) for _, p in named}
    foreign = [p for key, (p, _) in stepped.items() if key not in own]
    if foreign:
        raise UsageError(f"{opt}: the optimizer steps {len(foreign)} parameter(s) that are not the model's "
                         f"(the first of shape {list(foreign[0].shape)})")
    rule = RULES.get((hooks.framework, type(optimizer).__name__))
    if rule is None:
        known = sorted(cls for fw, cls in RULES if fw == hooks.framework)
        raise UsageError(f"{opt}: {type(optimizer).__name__} has no float64 reference in xdecay "
                         f"(it replays {', '.join(known)})")
    refusal = hooks.refusal(optimizer, [p for p, _ in stepped.values()])
    if refusal:
        raise UsageError(f"{opt}: {refusal}")
    n_groups = 1 + max((g for _, g in stepped.values()), default=0)
    params, hypers, tracked = [], [], []
    for name, p in named:
        info = AuditParam(name, list(p.shape), hooks.dtype(p), FROZEN)
        hyper: dict[str, Any] = {}
        if id(p) in stepped and hooks.trainable(p):
            if info.dtype not in DTYPES:
                raise UsageError(f"{opt}: parameter {name} is {info.dtype}: xdecay audit replays "
                                 f"{', '.join(DTYPES)} parameters")
            info.status, info.group = STEPPED, stepped[id(p)][1]
            try:     # calls the user's apply_decay_param_fun / exclude_from_weight_decay_fn
                hyper, info.sources = hooks.describe(optimizer, p, info.group, n_groups)
            except Exception as exc:
                raise UsageError(f"{opt}: reading the optimizer's setting of {name} raised {_one_line(exc)}") from None
            idx = flat_sample(int(np.prod(info.shape, dtype=np.int64)), rule)
            info.sample = None if idx is None else len(idx)
            tracked.append((name, p, info, idx))
        params.append(info)
        hypers.append(hyper)
    made_at = time.perf_counter()
    weights, grads, lrs = _steps(job, hooks, model, optimizer, inputs, tracked, opt)
    record = RunRecord(hooks.framework, "audit", optimizer=type(optimizer).__name__, hyper=hypers)
    for name, _, info, _ in tracked:
        if info.status == STEPPED:
            record.params[name] = np.stack(weights[name])
            record.series["grad:" + name] = np.stack(grads[name])
            record.series["lr:" + name] = np.asarray(lrs[name], np.float64)
    record.options = {"params": [asdict(i) for i in params],
                      "seconds": {"make": made_at - began, "steps": time.perf_counter() - made_at},
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    return record


def _unpack(made: Any, opt: str, hooks: Hooks) -> tuple[Any, Any, tuple | dict]:
    if not isinstance(made, (tuple, list)) or len(made) != 3:
        raise UsageError(f"{opt}: returned {_kind(made)}, expected (model, optimizer, inputs)")
    model, optimizer, inputs = made
    if not hooks.is_model(model):
        raise UsageError(f"{opt}: returned {_kind(model)} as the model, not a {hooks.framework} model")
    if hooks.optimizer_params(optimizer) is None:
        raise UsageError(f"{opt}: returned {_kind(optimizer)} as the optimizer, not a {hooks.framework} optimizer")
    if isinstance(inputs, Mapping):
        return model, optimizer, dict(inputs)
    return model, optimizer, tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)


def _kind(value: Any) -> str:
    name = type(value).__name__
    what = f"{name} of {len(value)}" if isinstance(value, (tuple, list)) else name
    return ("an " if name[0].lower() in "aeiou" else "a ") + what


def _steps(job: AuditJob, hooks: Hooks, model: Any, optimizer: Any, inputs: tuple | dict,
           tracked: list, opt: str) -> tuple[dict, dict, dict]:
    weights: dict[str, list] = {n: [] for n, *_ in tracked}
    grads: dict[str, list] = {n: [] for n, *_ in tracked}
    lrs: dict[str, list] = {n: [] for n, *_ in tracked}
    for _ in range(job.steps):
        hooks.zero_grad(optimizer)
        try:
            outputs = model(**inputs) if isinstance(inputs, dict) else model(*inputs)
        except Exception as exc:       # the user's model: one line, exit 2
            raise UsageError(f"{opt}: model(*inputs) raised {_one_line(exc)}") from None
        loss = _loss(outputs, hooks, job.seed, opt)
        try:
            loss.backward()
        except Exception as exc:       # e.g. no output depends on a parameter that requires a gradient
            raise UsageError(f"{opt}: backward() of xdecay's loss raised {_one_line(exc)}") from None
        for name, p, info, idx in tracked:
            if p.grad is None:
                info.status = NO_GRADIENT
            if info.status == STEPPED:
                weights[name].append(hooks.take(p, idx))
                grads[name].append(hooks.take(p.grad, idx))
                lrs[name].append(hooks.lr(optimizer, p, info.group))
        try:
            optimizer.step()
        except Exception as exc:
            raise UsageError(f"{opt}: optimizer.step() raised {_one_line(exc)}") from None
    for name, p, info, idx in tracked:
        if info.status == STEPPED:
            weights[name].append(hooks.take(p, idx))
    return weights, grads, lrs


def _loss(outputs: Any, hooks: Hooks, seed: int, opt: str) -> Any:
    """sum_i sum(y_i * R_i) / y_i.size over the floating-point outputs (module docstring)."""
    # A Mapping: a dict of outputs, or a transformers ModelOutput (an OrderedDict).
    items = list(outputs.values()) if isinstance(outputs, Mapping) else outputs
    items = items if isinstance(items, (tuple, list)) else (items,)
    floats = [y for y in items if hooks.is_tensor(y) and hooks.is_float(y)]
    if not floats:
        raise UsageError(f"{opt}: model(*inputs) returned {_kind(outputs)} holding no floating-point tensor: "
                         f"expected a tensor, a tuple or a dict of tensors")
    loss = None
    for i, y in enumerate(floats):
        shape = tuple(int(s) for s in y.shape)
        r = np.random.default_rng([seed, i]).standard_normal(shape).astype(np.float32)
        term = (y * hooks.constant(r, y)).sum() / max(1, r.size)
        loss = term if loss is None else loss + term
    return loss


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
