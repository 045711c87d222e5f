"""A decay term written in a case: paddle's L2Decay / L1Decay, a ParamAttr's or a loss term's."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Regularizer:
    """An L2 (0.5*c*sum(p^2), paddle L2Decay) or L1 (c*sum(|p|), L1Decay) term."""
    kind: str             # "l2" | "l1"
    coeff: float

    def __str__(self) -> str:
        return f"{self.kind}@{self.coeff:g}"
