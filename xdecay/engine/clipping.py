"""Gradient clipping around the step: one knob, built natively in each framework, and its
float64 replay for rule inference.

Where each framework clips (pinned by cases/clip_*.toml and tests/test_clipping.py):
torch clips what backward() left in .grad (clip_grad_norm_ / clip_grad_value_ between
backward and step), so a manual L2 term in the loss is clipped while the optimizer's
weight_decay (added inside step) is not; paddle's grad_clip runs in the optimizer's
step before its regularization (optimizer._apply_optimize: grad_clip, then
append_regularization_ops), so weight_decay / L2Decay are not clipped either. Decoupled
decay never touches the gradient.

A clip of some parameters only (`params`): torch clips that subset (clip_grad_norm_(subset)),
paddle exempts the others with ParamAttr(need_clip=False); both leave the exempt gradients
alone and measure a global norm over the subset only (paddle/nn/clip.py skips need_clip=False
parameters when summing).

The two global-norm clippers differ by a constant: torch scales by
min(1, max / (norm + 1e-6)) (torch/nn/utils/clip_grad.py), paddle by max / max(norm, max)
(paddle/nn/clip.py). The 1e-6 is a relative difference of 1e-6 / norm, visible when the
norm is small.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)   # compare.EPS32 (compare imports case, which imports this)

KINDS = ("global_norm", "norm", "value")

# torch's clip_grad_norm_ adds this to the norm before dividing; paddle adds nothing.
NORM_EPS = {"torch": 1e-6, "paddle": 0.0}


@dataclass(frozen=True)
class Clip:
    """[clip]: kind "global_norm" (every clipped parameter's gradient together), "norm"
    (each parameter's gradient by its own norm) or "value" (each element into [-max, max]);
    params: the parameters clipped (None: all)."""
    kind: str
    max: float
    params: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.params is not None:        # a list after the trip through JSON
            object.__setattr__(self, "params", tuple(self.params))

    def clips(self, param: str) -> bool:
        return self.params is None or param in self.params

    def native(self, framework: str) -> str:
        """What the adapters write, in the framework's words (shown in reports)."""
        if framework == "torch":
            every = "model.parameters()" if self.params is None else f"[{', '.join(self.params)}]"
            return {"global_norm": f"clip_grad_norm_({every}, {self.max})",
                    "norm": f"clip_grad_norm_(p, {self.max}) for each p"
                            + ("" if self.params is None else f" in {every}"),
                    "value": f"clip_grad_value_({every}, {self.max})"}[self.kind]
        grad_clip = {"global_norm": f"grad_clip=ClipGradByGlobalNorm({self.max})",
                     "norm": f"grad_clip=ClipGradByNorm({self.max})",
                     "value": f"grad_clip=ClipGradByValue({self.max})"}[self.kind]
        return grad_clip + ("" if self.params is None else
                            f", ParamAttr(need_clip=False) on all but {', '.join(self.params)}")


def clip_grads(clip: Clip, framework: str, grads: dict[str, np.ndarray],
               bounds: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The loss gradients as the framework clips them, in float64, and their rounding
    bounds carried through the clip.

    Clipping by value is 1-Lipschitz per element: a bound stays a bound. Clipping by a
    norm multiplies by s = max / norm: the bound scales by s, plus |g'| times the
    relative error of s — the norm's own error from the gradient's (||bound|| / norm)
    and float32 rounding of a sum of N squares, a square root and a division ((N + 3)
    eps32, the textbook bound on a recursive sum)."""
    if clip.kind == "value":
        return ({n: np.clip(g, -clip.max, clip.max) if clip.clips(n) else g for n, g in grads.items()},
                dict(bounds))
    clipped = [n for n in grads if clip.clips(n)]
    groups = [clipped] if clip.kind == "global_norm" else [[n] for n in clipped]
    out_g, out_b = dict(grads), dict(bounds)
    for names in groups:
        norm = float(np.sqrt(sum(float(np.sum(grads[n] ** 2)) for n in names)))
        scale = _scale(clip.max, norm, framework)
        count = sum(grads[n].size for n in names)
        spread = float(np.sqrt(sum(float(np.sum(bounds[n] ** 2)) for n in names)))
        relative = (spread / norm if norm else 0.0) + (count + 3) * EPS32 if scale < 1 else 0.0
        for n in names:
            out_g[n] = grads[n] * scale
            out_b[n] = bounds[n] * scale + np.abs(out_g[n]) * relative
    return out_g, out_b


def _scale(limit: float, norm: float, framework: str) -> float:
    if framework == "torch":
        return min(1.0, limit / (norm + NORM_EPS["torch"]))
    return limit / max(norm, limit)


def sizes(clip: Clip, grads: dict[str, np.ndarray]) -> dict[str, float]:
    """What the clip measures of a loss gradient: the global norm ("all"), each
    parameter's norm, or each parameter's largest |element| (of the clipped ones)."""
    grads = {n: g for n, g in grads.items() if clip.clips(n)}
    if clip.kind == "global_norm":
        return {"all": float(np.sqrt(sum(float(np.sum(g ** 2)) for g in grads.values())))}
    if clip.kind == "norm":
        return {n: float(np.sqrt(np.sum(g ** 2))) for n, g in grads.items()}
    return {n: float(np.max(np.abs(g))) for n, g in grads.items()}


def report(clip: Clip, per_step: list[dict[str, np.ndarray]]) -> tuple[str, str | None]:
    """A note saying what the case clips, natively in each framework, and the sizes the
    clip saw at each step (of the loss gradient, from a run's own weights); and a
    warning when the clip left some step alone: such a case cannot show what clipping
    does to the decay, and says so instead of passing."""
    seen = [sizes(clip, g) for g in per_step]
    low = min(min(s.values()) for s in seen)
    high = max(max(s.values()) for s in seen)
    what = {"global_norm": "global norm", "norm": "per-parameter norms", "value": "largest |g| per parameter"}
    note = (f"clip: torch {clip.native('torch')}, paddle {clip.native('paddle')}; "
            f"loss-gradient {what[clip.kind]} {low:.3g}..{high:.3g} over the steps vs max {clip.max}")
    idle = [k + 1 for k, s in enumerate(seen) if max(s.values()) <= clip.max]
    warning = (f"clip inactive: at step(s) {', '.join(map(str, idle))} the loss gradient's "
               f"{what[clip.kind]} is within max {clip.max}, so clipping changes nothing there"
               if idle else None)
    return note, warning
