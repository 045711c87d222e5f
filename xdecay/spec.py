"""The framework-independent start of every run: weights, bias, input, target.

Everything comes from numpy's generator seeded by the case, never from a
framework's RNG, so every run of every framework starts from identical float32
values. Arrays are in the canonical layout: weight [out, in] (torch's).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .case import Case


@dataclass(frozen=True)
class Spec:
    weight: np.ndarray            # float32 [out, in]
    bias: np.ndarray | None       # float32 [out]
    x: np.ndarray                 # float32 [batch, in], the same batch at every step
    target: np.ndarray | None     # float32 [batch, out] for loss "mse"


def build_spec(case: Case) -> Spec:
    rng = np.random.default_rng(case.seed)
    layer = case.layer
    # torch.nn.Linear's default init range, U(-1/sqrt(in), 1/sqrt(in)).
    bound = 1.0 / np.sqrt(layer.in_features)
    weight = rng.uniform(-bound, bound, (layer.out_features, layer.in_features)).astype(np.float32)
    bias = (rng.uniform(-bound, bound, layer.out_features).astype(np.float32)
            if layer.bias else None)
    x = rng.uniform(0.0, 1.0, (case.batch, layer.in_features)).astype(np.float32)
    target = (rng.uniform(0.0, 1.0, (case.batch, layer.out_features)).astype(np.float32)
              if case.loss == "mse" else None)
    return Spec(weight, bias, x, target)
