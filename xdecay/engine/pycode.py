"""Python code as xdecay writes it for a user: the case pages' setup code
(writers/setup_code.py) and `xdecay port`'s translation (engine/port.py) spell numbers,
arguments, clips and lr schedulers through these functions, so the two never disagree."""
from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from typing import Any

from .clipping import Clip
from .optimizers import CONSTANT_FUNCTIONS, TensorValue
from .regularizers import Regularizer
from .schedules import Schedule


@dataclass(frozen=True)
class Code:
    """An argument written as code (a name, a lambda), not as a value."""
    text: str

    def __repr__(self) -> str:
        return self.text


def number(x: float) -> str:
    """As a person writes it: an int stays an int, a float keeps its point (paddle refuses
    an int learning rate) and shows 15 significant digits (DBL_DIG): every decimal of up
    to 15 digits reads back exactly, and a computed value (0.1 * 0.1) shows as the
    decimal it stands for (0.01), within 1e-15 relative -- far below float32's 6e-8."""
    if isinstance(x, numbers.Integral):
        return repr(int(x))
    text = f"{float(x):.15g}"
    return text if any(ch in text for ch in ".eni") else text + ".0"


def value(framework: str, name: str, v: Any) -> str:
    """An argument as a user spells it (the optimizer model's markers as the framework's objects)."""
    if isinstance(v, Code):
        return v.text
    if isinstance(v, Regularizer):
        return regularizer(v)
    if isinstance(v, TensorValue):
        return f"torch.tensor({number(v.value)})" if framework == "torch" else f"paddle.to_tensor({number(v.value)})"
    if name in CONSTANT_FUNCTIONS.get(framework, ()) and isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"lambda param: {number(v)}"
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(value(framework, "", x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return number(v)
    return repr(v)


def keywords(framework: str, kwargs: dict[str, Any]) -> list[str]:
    return [f"{k}={value(framework, k, v)}" for k, v in kwargs.items()]


def regularizer(r: Regularizer) -> str:
    return f"paddle.regularizer.{r.kind.upper()}Decay({number(r.coeff)})"


def clip_class(kind: str, framework: str) -> str:
    """The framework's clip function or class for `kind`, as clipping.Clip names it."""
    return re.match(r"(?:grad_clip=)?(\w+)\(", Clip(kind, 1.0).native(framework)).group(1)


def torch_clip(clip: Clip, params: str) -> str:
    """torch's clip between backward() and step() (per parameter: one call each)."""
    if clip.kind == "norm":
        return f"for p in {params}:\n    torch.nn.utils.clip_grad_norm_(p, {number(clip.max)})"
    return f"torch.nn.utils.{clip_class(clip.kind, 'torch')}({params}, {number(clip.max)})"


def grad_clip(clip: Clip) -> str:
    """paddle's clip object, the optimizer's grad_clip argument."""
    return f"paddle.nn.{clip_class(clip.kind, 'paddle')}({number(clip.max)})"


def scheduler(schedule: Schedule, framework: str, lr: float, optimizer: str) -> str:
    """The lr scheduler's constructor (a warm-up chain nests two): torch's wrap
    `optimizer`, paddle's hold the lr (and are the optimizer's learning_rate)."""
    return schedule.native(framework, lr).code(framework, optimizer if framework == "torch" else None,
                                               render=lambda k, v: value(framework, k, v))
