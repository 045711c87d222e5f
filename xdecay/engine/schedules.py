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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:      # records imports case, which imports this
    from ..frameworks.records import RunRecord

# How closely a framework's lr must match lrs(): both compute in float64, the frameworks
# mostly recursively (lr_t from lr_{t-1}), which drifts from the closed form by a few
# float64 ULPs per step — far below this, which is itself far below float32's 6e-8.
LR_RTOL = 1e-9

# kind -> (torch class, paddle class, {word: (torch argument, paddle argument)})
NATIVE: dict[str, tuple[str, str, dict[str, tuple[str, str]]]] = {
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
}
KINDS = tuple(NATIVE)


@dataclass(frozen=True)
class Schedule:
    """[schedule]: a kind of NATIVE and its words (defaults filled in by case.py)."""
    kind: str
    words: dict[str, float | int | list[int]] = field(default_factory=dict)

    def native(self, framework: str) -> tuple[str, dict]:
        """The framework's scheduler class and keyword arguments (besides the base lr)."""
        torch_cls, paddle_cls, names = NATIVE[self.kind]
        i = 0 if framework == "torch" else 1
        return (torch_cls, paddle_cls)[i], {names[w][i]: v for w, v in self.words.items()}

    def shown(self, framework: str) -> str:
        cls, kwargs = self.native(framework)
        return f"{cls}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"

    def lrs(self, lr: float, steps: int) -> np.ndarray:
        """[steps] the lr of each step (t = 0 the first), in closed form."""
        return np.array([lr * self._factor(t, lr) for t in range(steps)])

    def _factor(self, t: int, lr: float) -> float:
        w = self.words
        if self.kind == "step":
            return w["gamma"] ** (t // w["step_size"])
        if self.kind == "multistep":
            return w["gamma"] ** sum(1 for m in w["milestones"] if m <= t)
        if self.kind == "linear":
            done = min(t, w["total_steps"]) / w["total_steps"]
            return w["start_factor"] + (w["end_factor"] - w["start_factor"]) * done
        if self.kind == "cosine":
            t_cur, t_i = t, w["t_max"]
        else:
            t_cur, t_i = t, w["t_0"]
            while t_cur >= t_i:
                t_cur, t_i = t_cur - t_i, t_i * w["t_mult"]
        eta = w["eta_min"]
        return (eta + (lr - eta) * (1 + math.cos(math.pi * t_cur / t_i)) / 2) / lr


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
