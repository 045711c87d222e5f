"""Learning-rate schedules inside compare cases: written once ([schedule]), built natively
by each adapter (torch.optim.lr_scheduler / paddle.optimizer.lr, the lr scheduler
stepped once after every optimizer step), and computed here in float64 — the per-step
lr rule inference replays with (a decoupled decay then removes lr_t*c*w at step t).

Each adapter records the lr its optimizer used at every step (torch
param_groups[0]["lr"], paddle optimizer.get_lr(); paddle's scheduler.get_lr() would
step the schedule again) and the comparison checks it against lrs() here.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:      # records imports case, which imports this
    from ..frameworks.records import RunRecord

# How closely a framework's lr must match lrs(): both compute in float64, the frameworks
# mostly recursively (lr_t from lr_{t-1}), which drifts from the closed form by a few
# float64 ULPs per step — far below this, which is itself far below float32's 6e-8.
LR_RTOL = 1e-9

# kind -> (torch class, paddle class, {word: (torch argument, paddle argument)}); a word
# with a None argument is that framework's alone, one missing is computed (Schedule.native).
NATIVE: dict[str, tuple[str, str, dict[str, tuple[str | None, str | None]]]] = {
    "step": ("StepLR", "StepDecay", {"step_size": ("step_size", "step_size"), "gamma": ("gamma", "gamma")}),
    "multistep": ("MultiStepLR", "MultiStepDecay", {"milestones": ("milestones", "milestones"),
                                                    "gamma": ("gamma", "gamma")}),
    "cosine": ("CosineAnnealingLR", "CosineAnnealingDecay", {"t_max": ("T_max", "T_max"),
                                                             "eta_min": ("eta_min", "eta_min")}),
    "cosine_restarts": ("CosineAnnealingWarmRestarts", "CosineAnnealingWarmRestarts",
                        {"t_0": ("T_0", "T_0"), "t_mult": ("T_mult", "T_mult"), "eta_min": ("eta_min", "eta_min")}),
    "linear": ("LinearLR", "LinearLR", {"start_factor": ("start_factor", "start_factor"),
                                        "end_factor": ("end_factor", "end_factor"),
                                        "total_steps": ("total_iters", "total_steps")}),
    # [optimizer] lr is the peak (torch max_lr, paddle max_learning_rate); torch's
    # final_div_factor is paddle's end_learning_rate = lr / div_factor / final_div_factor.
    "onecycle": ("OneCycleLR", "OneCycleLR", {"total_steps": ("total_steps", "total_steps"),
                                              "pct_start": ("pct_start", "phase_pct"),
                                              "div_factor": ("div_factor", "divide_factor"),
                                              "final_div_factor": ("final_div_factor", None),
                                              "anneal_strategy": ("anneal_strategy", "anneal_strategy"),
                                              "three_phase": ("three_phase", "three_phase"),
                                              "cycle_momentum": ("cycle_momentum", None)}),
}
KINDS = tuple(NATIVE)
# The lr's own argument where the scheduler takes it (torch's others read the optimizer's).
LR_ARG = {"torch": {"onecycle": "max_lr"}, "paddle": {"onecycle": "max_learning_rate"}}
# A linear warm-up before any kind but onecycle (which warms up itself): torch
# SequentialLR([LinearLR, the kind], milestones=[warmup_steps]), paddle
# LinearWarmup(learning_rate=the kind); the kind starts from its step 0 after it.
WARMUP = ("warmup_steps", "warmup_start_factor")


class Shown(str):
    """An argument shown as an expression, not a value (paddle's warm-up start `0.1*lr`)."""

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Call:
    """A scheduler constructor, in the framework's words: torch's take the optimizer
    first; an argument may be another Call (paddle's LinearWarmup) or a list of them
    (torch's SequentialLR)."""
    cls: str
    kwargs: dict

    def code(self, framework: str, optimizer: str | None, module: bool = True,
             render: Callable[[str, Any], str] = lambda _, v: repr(v)) -> str:
        """The constructor as Python: `optimizer` None leaves it out, `module` False the
        module path (as reports show it); `render(name, value)` spells a plain argument
        (pycode.value for the code xdecay writes)."""
        def value(k: str, v: Any) -> str:
            if isinstance(v, Call):
                return v.code(framework, optimizer, module, render)
            if isinstance(v, list) and v and isinstance(v[0], Call):
                return "[" + ", ".join(value(k, x) for x in v) + "]"
            return render(k, v)
        prefix = ("torch.optim.lr_scheduler." if framework == "torch" else "paddle.optimizer.lr.") if module else ""
        args = ([optimizer] if framework == "torch" and optimizer else []) + [
            f"{k}={value(k, v)}" for k, v in self.kwargs.items()]
        return f"{prefix}{self.cls}({', '.join(args)})"

    def build(self, module, optimizer=None):
        """The scheduler object: classes from `module`, torch's given `optimizer`."""
        def value(v):
            if isinstance(v, Call):
                return v.build(module, optimizer)
            if isinstance(v, list) and v and isinstance(v[0], Call):
                return [value(x) for x in v]
            return v
        kwargs = {k: value(v) for k, v in self.kwargs.items()}
        cls = getattr(module, self.cls)
        return cls(**kwargs) if optimizer is None else cls(optimizer, **kwargs)


@dataclass(frozen=True)
class Schedule:
    """[schedule]: a kind of NATIVE and its words (defaults filled in by case.py),
    optionally WARMUP's words."""
    kind: str
    words: dict[str, float | int | str | bool | list[int]] = field(default_factory=dict)

    @property
    def warmup(self) -> tuple[int, float] | None:
        """(warmup_steps, warmup_start_factor), or None without a warm-up."""
        return (self.words[WARMUP[0]], self.words[WARMUP[1]]) if WARMUP[0] in self.words else None

    def native(self, framework: str, lr: float | None = None) -> Call:
        """The framework's scheduler; `lr` None leaves the lr arguments out (as shown)."""
        torch_cls, paddle_cls, names = NATIVE[self.kind]
        i = 0 if framework == "torch" else 1
        kwargs: dict = {}
        lr_arg = LR_ARG[framework].get(self.kind, None if framework == "torch" else "learning_rate")
        if lr_arg and lr is not None:
            kwargs[lr_arg] = lr
        kwargs.update({names[w][i]: v for w, v in self.words.items() if w in names and names[w][i]})
        if self.kind == "onecycle" and framework == "paddle" and lr is not None:
            kwargs["end_learning_rate"] = lr / self.words["div_factor"] / self.words["final_div_factor"]
        call = Call((torch_cls, paddle_cls)[i], kwargs)
        if self.warmup is None:
            return call
        steps, start = self.warmup
        if framework == "torch":
            ramp = Call("LinearLR", {"start_factor": start, "end_factor": 1.0, "total_iters": steps})
            return Call("SequentialLR", {"schedulers": [ramp, call], "milestones": [steps]})
        if lr is None:
            return Call("LinearWarmup", {"learning_rate": call, "warmup_steps": steps,
                                         "start_lr": Shown(f"{start}*lr"), "end_lr": Shown("lr")})
        return Call("LinearWarmup", {"learning_rate": call, "warmup_steps": steps, "start_lr": start * lr,
                                     "end_lr": lr})

    def shown(self, framework: str) -> str:
        return self.native(framework).code(framework, None, module=False)

    def lrs(self, lr: float, steps: int) -> np.ndarray:
        """[steps] the lr of each step (t = 0 the first), in closed form."""
        return np.array([lr * self._warm(t, lr) for t in range(steps)])

    def _warm(self, t: int, lr: float) -> float:
        if self.warmup is None:
            return self._factor(t, lr)
        steps, start = self.warmup
        return start + (1 - start) * t / steps if t < steps else self._factor(t - steps, lr)

    def _factor(self, t: int, lr: float) -> float:
        w = self.words
        if self.kind == "step":
            return w["gamma"] ** (t // w["step_size"])
        if self.kind == "multistep":
            return w["gamma"] ** sum(1 for m in w["milestones"] if m <= t)
        if self.kind == "linear":
            done = min(t, w["total_steps"]) / w["total_steps"]
            return w["start_factor"] + (w["end_factor"] - w["start_factor"]) * done
        if self.kind == "onecycle":
            return _one_cycle(t, w)
        if self.kind == "cosine":
            t_cur, t_i = t, w["t_max"]
        else:
            t_cur, t_i = t, w["t_0"]
            while t_cur >= t_i:
                t_cur, t_i = t_cur - t_i, t_i * w["t_mult"]
        eta = w["eta_min"]
        return (eta + (lr - eta) * (1 + math.cos(math.pi * t_cur / t_i)) / 2) / lr


def _one_cycle(t: int, w: dict) -> float:
    """torch OneCycleLR's factor of the peak lr (torch/optim/lr_scheduler.py): phases
    (end step, from, to) of factors, annealed by cos or linearly within each."""
    total, pct = w["total_steps"], w["pct_start"]
    start, low = 1 / w["div_factor"], 1 / w["div_factor"] / w["final_div_factor"]
    if w["three_phase"]:
        phases = [(pct * total - 1, start, 1.0), (2 * pct * total - 2, 1.0, start), (total - 1, start, low)]
    else:
        phases = [(pct * total - 1, start, 1.0), (total - 1, 1.0, low)]
    begin = 0.0
    for end, a, b in phases:
        if t <= end or end == total - 1:     # the last phase takes every later step
            break
        begin = end
    done = (t - begin) / (end - begin)
    if w["anneal_strategy"] == "cos":
        return b + (a - b) / 2 * (math.cos(math.pi * done) + 1)
    return (b - a) * done + a


def report(schedule: Schedule, lr: float, runs: list[RunRecord]) -> tuple[str, list[str]]:
    """A note naming each framework's scheduler and the lr of each step; a warning for
    every run whose recorded lr left the schedule (the replay would use the wrong lr)."""
    steps = max(r.steps for r in runs)
    expected = schedule.lrs(lr, steps)
    shown = ", ".join(f"{v:.6g}" for v in expected[:12]) + (", ..." if steps > 12 else "")
    note = (f"schedule: torch {schedule.shown('torch')}, paddle {schedule.shown('paddle')}, "
            f"stepped after every step; lr per step {shown}")
    wrong = []
    for r in runs:
        used = r.series.get("lr")
        want = expected[:r.steps]
        if used is None or len(used) != len(want):
            wrong.append(f"schedule: {r.name} recorded no lr for its {r.steps} steps")
            continue
        bad = np.flatnonzero(~(np.abs(used - want) <= LR_RTOL * np.abs(want)))
        if bad.size:
            k = int(bad[0])
            wrong.append(f"schedule: {r.name} used lr {used[k]!r} at step {k + 1}, the schedule gives {want[k]!r}")
    return note, wrong
