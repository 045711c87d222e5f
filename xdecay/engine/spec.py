"""The framework-independent start of every run: parameters, input, target.

Everything comes from numpy's generator seeded by the case, never from a
framework's RNG, so every run of every framework starts from identical float32
values. Arrays are in the canonical layout: weight [out, in] (torch's).

Parameters, by canonical name: "weight" and "bias" of the Linear, and with a
LayerNorm after it "norm_gain" and "norm_bias" (a gain and a bias that decay
setups usually exclude, seed 001). Other layers (engine/layers.py) name theirs in
their table and carry it as `layer`.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from .layers import Layer, draw

PARAMS = ("weight", "bias", "norm_gain", "norm_bias")


@dataclass(frozen=True)
class Spec:
    params: dict[str, np.ndarray]   # float32, canonical names and layout, in PARAMS order
    x: np.ndarray                   # float32 [batch, in] (other layers: layers.draw), the first step's
    target: np.ndarray | None       # float32 [batch, out] for loss "mse"
    layer: Layer | None = None      # a non-Linear kind (None: the Linear of build_spec)
    fresh: int | None = None        # [data] fresh (Linear only): the case's seed, drawing a new batch every step

    @property
    def has_norm(self) -> bool:
        return "norm_gain" in self.params

    @property
    def model(self) -> Layer:
        """The layer to build: `layer`, or the Linear its arrays describe."""
        if self.layer is not None:
            return self.layer
        out_f, in_f = self.params["weight"].shape
        return Layer(in_f, out_f, "bias" in self.params, self.has_norm)

    def step(self, k: int) -> Spec:
        """The data of step k (from 0): x and target, the same every step unless fresh,
        then drawn from numpy's generator seeded by (seed, k) for k >= 1 — in the parent
        and in every framework's worker alike, and independent of the number of steps."""
        if self.fresh is None or k == 0:
            return self
        x, target = _fresh_batch(self.fresh, k, self.x.shape, None if self.target is None else self.target.shape)
        return dataclasses.replace(self, x=x, target=target)


@functools.lru_cache(maxsize=64)
def _fresh_batch(seed: int, k: int, x_shape: tuple[int, ...],
                 target_shape: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng([seed, k])
    x = rng.uniform(0.0, 1.0, x_shape).astype(np.float32)
    return x, None if target_shape is None else rng.uniform(0.0, 1.0, target_shape).astype(np.float32)


# Cached: a case's start is needed by each framework's job and by the comparison, and
# drawing a 4096x4096 layer takes a noticeable fraction of a second. Nobody writes into it.
@functools.lru_cache(maxsize=4)
def build_spec(seed: int, in_features: int, out_features: int, batch: int, *, bias: bool,
               norm: bool, target: bool, fresh: bool = False) -> Spec:
    rng = np.random.default_rng(seed)
    # torch.nn.Linear's default init range, U(-1/sqrt(in), 1/sqrt(in)).
    bound = 1.0 / np.sqrt(in_features)
    params = {"weight": rng.uniform(-bound, bound, (out_features, in_features)).astype(np.float32)}
    if bias:
        params["bias"] = rng.uniform(-bound, bound, out_features).astype(np.float32)
    x = rng.uniform(0.0, 1.0, (batch, in_features)).astype(np.float32)
    y = rng.uniform(0.0, 1.0, (batch, out_features)).astype(np.float32) if target else None
    if norm:
        # Not the frameworks' 1 and 0: a zero bias would hide its decay on the first step.
        params["norm_gain"] = rng.uniform(0.5, 1.5, out_features).astype(np.float32)
        params["norm_bias"] = rng.uniform(-0.5, 0.5, out_features).astype(np.float32)
    return Spec(params, x, y, fresh=seed if fresh else None)


@functools.lru_cache(maxsize=4)
def build_layer_spec(layer: Layer, seed: int, batch: int, target: bool) -> Spec:
    """The start of a non-Linear layer (layers.draw), from the case's seed."""
    params, x, y = draw(layer, np.random.default_rng(seed), batch, target)
    return Spec(params, x, y, layer)
