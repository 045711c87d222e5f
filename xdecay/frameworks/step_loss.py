"""The loss of one backward pass and the micro-batches of a step, written once for both
adapters: only tensor methods both frameworks share (`mean`, `sum`, `abs`, `**`) are used,
so this module imports neither framework."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..case import Accumulate, Regularizer


def micro_batches(batch: int, accumulate: Accumulate | None) -> list[slice]:
    """The rows of each backward pass of a step: the whole batch, or contiguous micro-batches."""
    m = 1 if accumulate is None else accumulate.micro_batches
    return [slice(i * (batch // m), (i + 1) * (batch // m)) for i in range(m)]


def loss(out: Any, target: Any, kind: str, manual: Mapping[str, Regularizer], params: Mapping[str, Any]) -> Any:
    """The case's loss on `out`, plus the manual terms (0.5*c*sum(w^2) for L2, c*sum|w| for L1)."""
    value = ((out - target) ** 2).mean() if kind == "mse" else out.mean()
    if kind == "zero":
        value = value * 0.0      # every gradient exactly 0: the decay alone moves the weights
    for name, reg in manual.items():
        p = params[name]
        value = value + (0.5 * reg.coeff * (p ** 2).sum() if reg.kind == "l2" else reg.coeff * p.abs().sum())
    return value
