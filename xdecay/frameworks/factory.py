"""The user's own factory, imported only when asked: `xdecay port --torch-file F:FUNC`
(here) and `xdecay audit --torch MOD:FUNC` (call_factory, in the framework's worker).

FUNC() returns what a training script builds before its loop, in one of three shapes:
an optimizer; a tuple (optimizer, scheduler) -- a scheduler of a kind, a OneCycleLR or the
warm-up chain SequentialLR([LinearLR, KIND], milestones=[k]); or a dict {"optimizer": ..., "scheduler":
..., "clip": ...} (scheduler and clip optional), where "clip" is the call the loop makes
between backward() and step() with its limit bound:
functools.partial(torch.nn.utils.clip_grad_norm_, max_norm=1.0) (or clip_grad_value_).
Each object is read (torch itself is imported by the user's file, not here) and written
back as the call `port` parses -- the optimizer's class, `defaults` and `param_groups`,
the scheduler's class and arguments, the partial's function and keywords -- the same
literal-only path as `--torch "CALL"`, `--schedule`, `--clip`, so a factory gets no
translation a call would not.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..engine.optimizers import OPTIMIZERS, same_value
from ..engine.schedules import NATIVE as SCHEDULES
from ..errors import UsageError

CLIPS = ("clip_grad_norm_", "clip_grad_value_")


@dataclass(frozen=True)
class Factory:
    """What FUNC() returned, each part as its call's text (None: not returned)."""
    optimizer: Any
    schedule: str | None = None
    clip: str | None = None


def read_factory(value: Any, spec: str) -> Factory:
    """FUNC()'s value in one of the three shapes, the scheduler and clip read into calls."""
    opt = f"--torch-file {spec}"
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"optimizer", "scheduler", "clip"})
        if unknown or "optimizer" not in value:
            raise UsageError(f"{opt}: the dict returned needs key 'optimizer' and may have 'scheduler', 'clip'"
                             + (f" (unknown: {', '.join(map(str, unknown))})" if unknown else ""))
        optimizer, scheduler, clip = value["optimizer"], value.get("scheduler"), value.get("clip")
    elif isinstance(value, tuple):
        if len(value) != 2:
            raise UsageError(f"{opt}: a tuple returned must be (optimizer, scheduler), got {len(value)} items")
        (optimizer, scheduler), clip = value, None
    else:
        optimizer, scheduler, clip = value, None, None
    return Factory(optimizer, None if scheduler is None else _schedule_call(scheduler, optimizer, opt),
                   None if clip is None else _clip_call(clip, opt))


def _schedule_call(scheduler: Any, optimizer: Any, opt: str, fresh: int = 0) -> str:
    """The scheduler's call; `fresh` its last_epoch unstepped (SequentialLR sets its later
    schedulers' back to -1)."""
    cls = type(scheduler).__name__
    kinds = {native[0]: kind for kind, native in SCHEDULES.items()}
    if cls not in kinds and cls != "SequentialLR":
        raise UsageError(f"{opt}: the scheduler is a {cls}; known: {', '.join(sorted([*kinds, 'SequentialLR']))}")
    if getattr(scheduler, "optimizer", None) is not optimizer:
        raise UsageError(f"{opt}: the {cls} returned steps another optimizer than the one returned")
    if getattr(scheduler, "last_epoch", None) != fresh:
        raise UsageError(f"{opt}: the {cls} returned was stepped already (last_epoch "
                         f"{getattr(scheduler, 'last_epoch', None)!r}): return it fresh")
    if cls == "SequentialLR":
        # The warm-up chain: port.parse_schedule checks its shape as it does a --schedule's.
        inner = [_schedule_call(s, optimizer, opt, 0 if i == 0 else -1)
                 for i, s in enumerate(getattr(scheduler, "_schedulers", []))]
        return f"SequentialLR(optimizer, schedulers=[{', '.join(inner)}], milestones={list(scheduler._milestones)!r})"
    if cls == "OneCycleLR":
        return f"OneCycleLR(optimizer, {', '.join(_one_cycle_args(scheduler, opt))})"
    args = []
    for torch_arg, _ in SCHEDULES[kinds[cls]][2].values():
        if not hasattr(scheduler, torch_arg):
            raise UsageError(f"{opt}: cannot read {torch_arg} from the {cls} returned")
        value = getattr(scheduler, torch_arg)
        # MultiStepLR keeps its milestones as a Counter.
        value = sorted(value.elements()) if hasattr(value, "elements") else value
        args.append(f"{torch_arg}={_number(value)!r}")
    return f"{cls}(optimizer, {', '.join(args)})"


def _one_cycle_args(scheduler: Any, opt: str) -> list[str]:
    """OneCycleLR keeps only total_steps and cycle_momentum as attributes: its lrs are in
    the param group (max_lr, initial_lr = max_lr/div_factor, min_lr = initial_lr/
    final_div_factor), pct_start in its first phase's end step (pct_start*total_steps - 1),
    three_phase in the phase count, anneal_strategy in _anneal_func_type."""
    group = scheduler.optimizer.param_groups[0]
    phases = getattr(scheduler, "_schedule_phases", None)
    anneal = getattr(scheduler, "_anneal_func_type", None)
    if not phases or anneal is None or not {"max_lr", "initial_lr", "min_lr"} <= set(group):
        raise UsageError(f"{opt}: cannot read the OneCycleLR returned (this torch keeps no _schedule_phases, "
                         f"_anneal_func_type or max_lr/initial_lr/min_lr in its param group)")
    if len({(g["max_lr"], g["initial_lr"], g["min_lr"]) for g in scheduler.optimizer.param_groups}) > 1:
        raise UsageError(f"{opt}: the OneCycleLR returned has a max_lr per parameter group: one can be ported")
    if scheduler.cycle_momentum and (group.get("max_momentum"), group.get("base_momentum")) != (0.95, 0.85):
        raise UsageError(f"{opt}: OneCycleLR max_momentum={group.get('max_momentum')!r}, base_momentum="
                         f"{group.get('base_momentum')!r} cannot be ported (the defaults 0.95, 0.85 can)")
    total, initial = scheduler.total_steps, _number(group["initial_lr"])
    # Read back by division: 12 digits undo its rounding (0.3 not 0.30000000000000004),
    # a relative 1e-12, far below the runs' lr check (schedules.LR_RTOL).
    def digits(x: float) -> float:
        return float(f"{x:.12g}")
    words = {"max_lr": _number(group["max_lr"]), "total_steps": total,
             "pct_start": digits((phases[0]["end_step"] + 1) / total), "anneal_strategy": anneal,
             "div_factor": digits(_number(group["max_lr"]) / initial),
             "final_div_factor": digits(initial / _number(group["min_lr"])),
             "three_phase": len(phases) == 3, "cycle_momentum": scheduler.cycle_momentum}
    return [f"{k}={v!r}" for k, v in words.items()]


def _clip_call(clip: Any, opt: str) -> str:
    func = getattr(clip, "func", None)
    if not isinstance(clip, functools.partial) or getattr(func, "__name__", None) not in CLIPS:
        raise UsageError(f"{opt}: 'clip' must be functools.partial(torch.nn.utils.clip_grad_norm_, max_norm=...) "
                         f"or of clip_grad_value_ (the call the loop makes), got {type(clip).__name__}")
    # The parameters (a partial's first positional argument) are not read.
    args = ["params", *(repr(_number(a)) for a in clip.args[1:]),
            *(f"{k}={_number(v)!r}" for k, v in clip.keywords.items())]
    return f"{func.__name__}({', '.join(args)})"


def load_factory(spec: str) -> Any:
    """F:FUNC -> FUNC() (the optimizer). UsageError naming the option otherwise."""
    opt = f"--torch-file {spec}"
    file, sep, func = spec.rpartition(":")
    if not sep or not file or not func.isidentifier():
        raise UsageError(f"{opt}: expected FILE.py:FUNCTION")
    if not Path(file).is_file():
        raise UsageError(f"{opt}: no such file {file}")
    return call_factory(spec, opt)


def call_factory(spec: str, opt: str, search: tuple[str, ...] = ()) -> Any:
    """FUNC() of FILE.py:FUNC (the file imported, its folder on sys.path meanwhile, as
    `python FILE` has it) or of MODULE:FUNC (imported from sys.path and `search`, as
    `python -m` finds it from the current folder). The user's code failing -- at import
    or inside FUNC -- is a UsageError naming `opt`, in one line."""
    file, sep, func = spec.rpartition(":")
    if not sep or not file or not func.isidentifier():
        raise UsageError(f"{opt}: expected MODULE:FUNCTION or FILE.py:FUNCTION")
    added = [str(Path(file).resolve().parent)] if _is_file(file) else list(search)
    sys.path[:0] = added
    try:
        module = _import(file, opt)
        factory = getattr(module, func, None)
        if not callable(factory):
            raise UsageError(f"{opt}: {file} has no function {func}")
        return factory()
    except UsageError:
        raise
    except Exception as exc:      # the user's code: its failure is bad input, in one line
        raise UsageError(f"{opt}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    finally:
        for entry in added:
            sys.path.remove(entry)


def _is_file(name: str) -> bool:
    """FILE.py, or a path; else a dotted module name."""
    return name.endswith(".py") or not all(part.isidentifier() for part in name.split("."))


def _import(file: str, opt: str) -> ModuleType:
    if not _is_file(file):
        return importlib.import_module(file)
    path = Path(file)
    if not path.is_file():
        raise UsageError(f"{opt}: no such file {file}")
    module_spec = importlib.util.spec_from_file_location(f"xdecay_factory_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise UsageError(f"{opt}: cannot import {file} (not a Python file)")
    module = importlib.util.module_from_spec(module_spec)
    # Registered as an import would be: a dataclass in the file looks its module up there.
    sys.modules[module_spec.name] = module
    module_spec.loader.exec_module(module)
    return module


def torch_call(optimizer: Any, spec: str, no_decay: str, lr_scales: tuple[tuple[str, float], ...] = ()) -> str:
    """The call that builds `optimizer` (non-default words only, its decay from the
    groups, its lr each group's before a scheduler changed it). A group setting that is
    neither a decay exclusion nor an lr factor said with --lr-scale cannot be ported."""
    opt = f"--torch-file {spec}"
    cls = type(optimizer).__name__
    infos = [i for i in OPTIMIZERS.values() if i.torch is not None and i.torch.cls == cls]
    groups = getattr(optimizer, "param_groups", None)
    defaults = getattr(optimizer, "defaults", None)
    if not infos or not isinstance(groups, list) or not groups or not isinstance(defaults, dict):
        raise UsageError(f"{opt}: returned {cls}, not a torch optimizer xdecay knows")
    native = infos[0].torch
    words = {w.native_name("torch"): w for i in infos for w in i.words if "torch" in w.native}
    known = {"params", native.lr, native.decay_arg, "decoupled_weight_decay",
             *(n.partition(".")[0] for n in words)}
    for key, value in defaults.items():
        # Implementation switches (foreach, fused, maximize, ...) the model has no word for:
        # only off can be ported.
        if key not in known and value not in (None, False):
            raise UsageError(f"{opt}: {cls} {key}={value!r} cannot be ported")
    decays = sorted({g.get(native.decay_arg) or 0 for g in groups} if native.decay_arg else {0})
    lr = _lr(groups, defaults, native.lr, lr_scales, opt)
    for key in known - {"params", native.decay_arg, native.lr}:
        if len({repr(g.get(key)) for g in groups}) > 1:
            raise UsageError(f"{opt}: the parameter groups differ in {key}: only a decay exclusion can be ported")
    if len(decays) > 1 and (len(decays) > 2 or decays[0] != 0):
        raise UsageError(f"{opt}: the parameter groups decay with {decays}: only one coefficient and 0 can be ported")
    if len(decays) > 1 and not no_decay:
        raise UsageError(f"{opt}: some parameter groups are not decayed: say which with --no-decay PATTERN")
    group = groups[0]
    args = ["params", f"{native.lr}={lr!r}"]
    if native.decay_arg:
        args.append(f"{native.decay_arg}={decays[-1]!r}")
    # torch's AdamW sets the flag itself: a class that decays decoupled anyway says nothing.
    if group.get("decoupled_weight_decay") and native.decoupled not in (None, "explicit", cls):
        args.append("decoupled_weight_decay=True")
    for base in dict.fromkeys(n.partition(".")[0] for n in words):
        value = group.get(base)
        slots = {n: w for n, w in words.items() if n.partition(".")[0] == base}
        if value is None:
            continue
        if isinstance(value, (tuple, list)):
            if all(same_value(value[int(n.partition(".")[2])], w.default("torch")) for n, w in slots.items()):
                continue
            args.append(f"{base}={tuple(_number(v) for v in value)!r}")
        elif not same_value(value, slots[base].default("torch")):
            args.append(f"{base}={_number(value)!r}")
    return f"{cls}({', '.join(args)})"


def _lr(groups: list[dict[str, Any]], defaults: dict[str, Any], name: str,
        lr_scales: tuple[tuple[str, float], ...], opt: str) -> Any:
    """The optimizer's lr: the groups' one lr, or -- when they differ -- the constructor's,
    each group's being it times a factor --lr-scale gives (a scheduler has moved
    group["lr"] already; "initial_lr" is what it started from)."""
    lrs = [_number(g.get("initial_lr", g[name])) for g in groups]
    declared = sorted({k for _, k in lr_scales})
    if len(set(lrs)) == 1:
        if declared:
            raise UsageError(f"{opt}: every parameter group trains at {name}={lrs[0]!r}, but --lr-scale gives "
                             f"factors {declared}")
        return lrs[0]
    base = _number(defaults[name])
    factors = sorted({f / base for f in lrs})

    def said(f: float) -> bool:
        return any(math.isclose(f, k, rel_tol=1e-9) for k in [1.0, *declared])

    if not all(said(f) for f in factors) or not all(any(math.isclose(f, k, rel_tol=1e-9) for f in factors)
                                                    for k in declared):
        raise UsageError(f"{opt}: the parameter groups train at {sorted(set(lrs))}, factors "
                         f"{[float(f'{f:.12g}') for f in factors]} of {name}={base!r}: say which parameters "
                         f"take which with --lr-scale PATTERN=FACTOR (given: {declared or 'none'})")
    return base


def _number(value: Any) -> Any:
    """A tensor-valued hyper-parameter (torch allows a Tensor lr) as its Python number."""
    return value.item() if hasattr(value, "item") else value
