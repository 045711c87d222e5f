"""Mixed precision around the step ([precision]): one knob, built natively in each
framework, and the low-precision arithmetic rule inference and the tolerances need.

Two modes (README, "Case files"):
  * autocast = false: the parameters themselves are stored in `dtype`. torch:
    model.to(dtype), so gradients and optimizer state are in dtype too; paddle: its O2
    recipe, paddle.amp.decorate(level="O2", dtype, master_weight) and the forward under
    paddle.amp.auto_cast(level="O2"); master_weights keeps a float32 copy inside the
    optimizer (paddle multi_precision; torch.optim has none).
  * autocast = true: float32 parameters, the forward under torch.autocast("cpu", dtype) /
    paddle.amp.auto_cast(level="O1", dtype): the gradient is computed from low-precision
    operands, the step is float32.
grad_scaler: torch.amp.GradScaler("cpu", init_scale) / paddle.amp.GradScaler(
init_loss_scaling): the loss (a manual L2 term in it included) is scaled before backward,
the gradients unscaled before the optimizer adds its own decay.

What a run really stored is the run's `dtype` (RunRecord.dtype): paddle on a CPU build
leaves its O2 parameters float32 (amp_guard "makes no effect" off CUDA/XPU/custom places),
and inference replays each run at the precision it stored.

Numbers: eps is the spacing of 1 (2u, u the unit roundoff): float32 2^-23, bfloat16 2^-7
(8 significant bits), float16 2^-10 (11 bits). ulp(x) is the spacing at |x| in the dtype.
bfloat16 has float32's exponent range, so only the significand is rounded here.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .spec import Spec

DTYPES = ("bfloat16", "float16")
BITS = {"float32": 24, "bfloat16": 8, "float16": 11}      # significant bits, the implicit one included


def eps(dtype: str) -> float:
    """Spacing of 1.0 in the dtype (2u)."""
    return 2.0 ** (1 - BITS[dtype])


def ulp(x: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """Spacing of `dtype` numbers at |x| (as float64)."""
    a = np.abs(np.asarray(x, np.float64))
    if dtype == "float16":
        return np.spacing(a.astype(np.float16)).astype(np.float64)
    spacing32 = np.spacing(a.astype(np.float32)).astype(np.float64)
    if dtype == "float32":
        return spacing32
    # A bfloat16 number is a float32 with its 16 low significand bits zero: its spacing is
    # 2^16 float32 spacings (subnormals aside, far below any weight here).
    return spacing32 * 2.0 ** (BITS["float32"] - BITS[dtype])


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """float64 values rounded (to nearest, ties to even) to `dtype`, returned as float64."""
    x = np.asarray(x, np.float64)
    if dtype == "float16":
        return x.astype(np.float16).astype(np.float64)
    if dtype == "float32":
        return x.astype(np.float32).astype(np.float64)
    with np.errstate(all="ignore"):
        m, e = np.frexp(x)            # x = m * 2^e, 0.5 <= |m| < 1: m * 2^BITS holds the significand
        return np.where(np.isfinite(x), np.ldexp(np.rint(np.ldexp(m, BITS[dtype])), e - BITS[dtype]), x)


def as_stored(spec: Spec, dtype: str) -> Spec:
    """The run's start as a run storing its parameters in `dtype` sees it: its inputs and
    target cast to the dtype too (torch's model.to(dtype) run casts them), for the replay."""
    if dtype == "float32":
        return spec
    def cast(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else round_to(a, dtype).astype(np.float32)
    return dataclasses.replace(spec, x=cast(spec.x), target=cast(spec.target))


@dataclass(frozen=True)
class Precision:
    """[precision]: the low-precision dtype and how it enters the loop (module docstring)."""
    dtype: str                          # "bfloat16" | "float16"
    autocast: bool = False              # float32 parameters, low-precision forward
    master_weights: bool = False        # paddle: a float32 master copy in the optimizer
    init_scale: float | None = None     # grad_scaler's initial loss scale; None: no scaler

    @property
    def stored(self) -> str:
        """The dtype the parameters are asked to be stored in."""
        return "float32" if self.autocast else self.dtype

    def native(self, framework: str) -> str:
        """What the adapters write, in the framework's words (shown in reports)."""
        scaler = ""
        if framework == "torch":
            what = (f'torch.autocast("cpu", dtype=torch.{self.dtype})' if self.autocast
                    else f"model.to(torch.{self.dtype})")
            if self.init_scale is not None:
                scaler = f'; torch.amp.GradScaler("cpu", init_scale={self.init_scale})'
            return what + scaler
        if self.autocast:
            what = f'paddle.amp.auto_cast(level="O1", dtype="{self.dtype}")'
        else:
            what = (f'paddle.amp.decorate(level="O2", dtype="{self.dtype}", master_weight={self.master_weights}), '
                    f'paddle.amp.auto_cast(level="O2", dtype="{self.dtype}")')
        if self.init_scale is not None:
            scaler = f"; paddle.amp.GradScaler(init_loss_scaling={self.init_scale})"
        return what + scaler

    def json(self) -> dict:
        return {"dtype": self.dtype, "autocast": self.autocast, "master_weights": self.master_weights,
                "grad_scaler": None if self.init_scale is None else {"init_scale": self.init_scale},
                "torch": self.native("torch"), "paddle": self.native("paddle")}


class _Run(Protocol):
    name: str
    framework: str
    dtype: str
    forward: str


def report(precision: Precision, runs: Sequence[_Run]) -> str:
    """A note saying what the case asks of each framework and the dtypes each run really
    stored its parameters in and computed its forward in, runs alike grouped; a framework
    whose runs got none of the low precision asked for is named (never skipped silently)."""
    got: dict[tuple[str, str, str], list[str]] = {}
    for r in runs:
        got.setdefault((r.framework, r.dtype, r.forward), []).append(r.name)
    seen = "; ".join(f"{', '.join(names)}: parameters {d}, forward {f}" for (_, d, f), names in got.items())
    ignored = sorted({fw for fw, d, f in got if d == f == "float32"})
    return (f"precision: torch {precision.native('torch')}, paddle {precision.native('paddle')}; {seen}"
            + "".join(f"; {fw} ran in float32 throughout: its mixed precision made no effect on this "
                      f"build (its runs are replayed and compared at what they stored)" for fw in ignored))
