"""What the training loop around the step does to the gradient and the lr, as rule
inference must replay it: gradient accumulation over micro-batches, clipping, and a
schedule's lr of each step. Built from a case by Case.loop().
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .clipping import EPS32, Clip, clip_grads
from .reference import layer_grads
from .spec import Spec


@dataclass(frozen=True, eq=False)
class Loop:
    clip: Clip | None = None
    lrs: np.ndarray | None = None      # [steps] a schedule's lr of each step
    micro_batches: int = 1             # backward passes accumulated into one step
    divide_loss: bool = True           # each micro-batch's loss divided by micro_batches
    lr_scales: dict[str, float] | None = None   # groups ways: a parameter's lr = lr_scale * lr
    base_lr: float | None = None       # [optimizer] lr, which lr_scales multiply
    param_attr_lr: dict[str, float] | None = None   # paddle param_attr ways: ParamAttr(learning_rate=k)
    group_of: dict[str, int] | None = None   # torch groups ways: each parameter's group (its hyper-parameters)

    def group(self, framework: str, way: str, param: str, position: int) -> int:
        """Which of a run's recorded hyper-parameter groups `param` steps with: its
        [[decay.groups]] entry in torch's groups ways (the groups need not follow the
        parameters' order), else its position (paddle records one group)."""
        if framework == "torch" and way.startswith("groups") and self.group_of and param in self.group_of:
            return self.group_of[param]
        return position

    def lr_scale(self, framework: str, way: str, param: str) -> float:
        """The factor on [optimizer] lr that `param` steps with in a run of `way`: its
        group's lr_scale in the ways the adapters build with groups (torch: groups*,
        paddle: every way naming groups), its ParamAttr learning_rate in paddle's other
        param_attr ways, 1 elsewhere."""
        grouped = way.startswith("groups") if framework == "torch" else "groups" in way
        if grouped:
            # paddle: building with groups sets every member's lr multiplier, a ParamAttr's
            # learning_rate included (a group without lr_scale resets it to 1).
            return (self.lr_scales or {}).get(param, 1.0)
        if framework == "paddle" and way.startswith("param_attr"):
            return (self.param_attr_lr or {}).get(param, 1.0)
        return 1.0

    @property
    def whole(self) -> bool:
        """Whether the gradient mixes elements (a clip's norm): inference needs all of them."""
        return self.clip is not None

    @property
    def accumulates(self) -> bool:
        return self.micro_batches > 1

    def loss_grads(self, params: dict[str, np.ndarray], spec: Spec, loss: str,
                   framework: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The loss gradient the optimizer receives, in float64, and its rounding bound:
        the sum over micro-batches (contiguous rows of the batch; each loss divided by
        their number if divide_loss), then clipped as `framework` clips. The bound of a
        sum of m gradients is the sum of their bounds plus the m-1 float32 additions'
        rounding (m * eps32 of the sum's magnitude, a bound on recursive summation)."""
        grads, bounds = _accumulated(params, spec, loss, self.micro_batches, self.divide_loss)
        if self.clip is None:
            return grads, bounds
        return clip_grads(self.clip, framework, grads, bounds)


    def unclipped(self, params: dict[str, np.ndarray], spec: Spec,
                  loss: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The accumulated loss gradient before any clip, and its bound."""
        return _accumulated(params, spec, loss, self.micro_batches, self.divide_loss)

    def l2_in_clip(self, params: dict[str, np.ndarray], unclipped: tuple[dict, dict], framework: str,
                   c: float) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The gradient a manual L2 term 0.5*c*sum(w^2) on every parameter gives under the
        clip (rule clipped_l2@c): clip(g + c*w), the term summed into the loss gradient
        (`unclipped`, with its bound) before the clip. Its bound adds the term's float32
        rounding: the product c*w and its addition to g, one rounding each, within
        eps32*(|c*w| + |g|)."""
        grads, bounds = unclipped
        terms = {n: c * np.asarray(params[n], np.float64) for n in grads}
        return clip_grads(self.clip, framework, {n: g + terms[n] for n, g in grads.items()},
                          {n: b + EPS32 * (np.abs(terms[n]) + np.abs(grads[n])) for n, b in bounds.items()})


def _accumulated(params: dict[str, np.ndarray], spec: Spec, loss: str, m: int,
                 divide: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    if m == 1:
        return layer_grads(spec.layer, params, spec.x, spec.target, loss)
    rows = len(spec.x) // m
    parts = [(spec.x[i * rows:(i + 1) * rows], None if spec.target is None else spec.target[i * rows:(i + 1) * rows])
             for i in range(m)]
    scale = 1.0 / m if divide else 1.0
    grads, bounds = zip(*(layer_grads(spec.layer, params, x, t, loss) for x, t in parts))
    total = {n: sum(g[n] for g in grads) * scale for n in params}
    eps32 = float(np.finfo(np.float32).eps)
    bound = {n: sum(b[n] for b in bounds) * scale
             + m * eps32 * sum(np.abs(g[n]) for g in grads) * scale for n in params}
    return total, bound
