"""The layers a case can build, as data: one place read by both adapters, the
reference replay, the case reader and the reports.

Each kind declares its parameters by canonical name, with their canonical layout,
their role (seed 001's rule: decay weights, not gains and biases) and, per
framework, the native parameter they live in and the transform to the canonical
layout: `transpose` (paddle stores a Linear weight [in, out]) and `part` (torch's
MultiheadAttention packs q, k and v into one in_proj_weight [3E, E]: canonical
q_weight is its first third of rows). Everything outside the adapters speaks the
canonical names and layouts.

Torch and paddle share Conv2d's [out, in, kh, kw] and Embedding's [num, dim]
layouts (no transform; tests/test_layers.py checks it by running both frameworks
on the same values).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LAYER_NORM_EPS = 1e-5     # both frameworks' default


@dataclass(frozen=True)
class Native:
    """Where a canonical parameter lives in one framework's module."""
    name: str                           # the native parameter (named_parameters())
    transpose: bool = False             # stored as the canonical layout's transpose
    part: tuple[int, int] | None = None  # (i, n): the i-th of n equal row blocks of a packed parameter


@dataclass(frozen=True)
class ParamDef:
    name: str              # canonical
    role: str              # "weight" | "bias" | "gain"
    layout: str            # the canonical layout, in words
    torch: Native
    paddle: Native
    when: str = ""         # a boolean [layer] key the parameter needs ("" always there)

    def native(self, framework: str) -> Native:
        return self.torch if framework == "torch" else self.paddle


@dataclass(frozen=True)
class Key:
    name: str
    kind: str              # "int" | "bool"
    default: Any = None    # None: required
    low: int = 1


@dataclass(frozen=True)
class Kind:
    keys: tuple[Key, ...]
    params: tuple[ParamDef, ...]
    # Paddle's constructors take a ParamAttr per canonical parameter (the param_attr ways);
    # MultiHeadAttention's one weight_attr / bias_attr goes to all four projections.
    param_attr: bool = True


def _same(name: str) -> tuple[Native, Native]:
    """The same name and layout in both frameworks."""
    return Native(name), Native(name)


def _linear(prefix: str, role: str) -> tuple[Native, Native]:
    """A Linear's weight or bias: paddle stores the weight [in, out]."""
    return Native(f"{prefix}.{role}"), Native(f"{prefix}.{role}", transpose=role == "weight")


def _p(name: str, role: str, layout: str, natives: tuple[Native, Native], when: str = "") -> ParamDef:
    return ParamDef(name, role, layout, natives[0], natives[1], when)


def _mha() -> tuple[ParamDef, ...]:
    out = []
    for i, x in enumerate("qkv"):
        out.append(_p(f"{x}_weight", "weight", "[E_out, E_in]",
                      (Native("attention.in_proj_weight", part=(i, 3)),
                       Native(f"attention.{x}_proj.weight", transpose=True))))
    for i, x in enumerate("qkv"):
        out.append(_p(f"{x}_bias", "bias", "[E]", (Native("attention.in_proj_bias", part=(i, 3)),
                                                   Native(f"attention.{x}_proj.bias"))))
    out.append(_p("out_weight", "weight", "[E_out, E_in]", _linear("attention.out_proj", "weight")))
    out.append(_p("out_bias", "bias", "[E]", _linear("attention.out_proj", "bias")))
    return tuple(out)


KINDS: dict[str, Kind] = {
    "linear": Kind(
        (Key("in_features", "int"), Key("out_features", "int"), Key("bias", "bool", False),
         Key("norm", "bool", False)),
        (_p("weight", "weight", "[out, in]", _linear("linear", "weight")),
         _p("bias", "bias", "[out]", _linear("linear", "bias"), "bias"),
         _p("norm_gain", "gain", "[out]", _same("norm.weight"), "norm"),
         _p("norm_bias", "bias", "[out]", _same("norm.bias"), "norm")),
    ),
    "conv2d": Kind(
        (Key("in_channels", "int"), Key("out_channels", "int"), Key("kernel_size", "int"),
         Key("size", "int"), Key("bias", "bool", False)),
        (_p("weight", "weight", "[out, in, kh, kw]", _same("conv.weight")),
         _p("bias", "bias", "[out]", _same("conv.bias"), "bias")),
    ),
    "embedding": Kind(
        (Key("num_embeddings", "int", low=2), Key("embedding_dim", "int"), Key("lookups", "int"),
         Key("sparse", "bool", False)),
        (_p("weight", "weight", "[num, dim]", _same("embedding.weight")),),
    ),
    "block": Kind(
        (Key("in_features", "int"), Key("hidden", "int"), Key("out_features", "int")),
        (_p("fc1_weight", "weight", "[hidden, in]", _linear("fc1", "weight")),
         _p("fc1_bias", "bias", "[hidden]", _linear("fc1", "bias")),
         _p("norm_gain", "gain", "[hidden]", _same("norm.weight")),
         _p("norm_bias", "bias", "[hidden]", _same("norm.bias")),
         _p("fc2_weight", "weight", "[out, hidden]", _linear("fc2", "weight")),
         _p("fc2_bias", "bias", "[out]", _linear("fc2", "bias"))),
    ),
    "mha": Kind(
        (Key("embed_dim", "int"), Key("num_heads", "int"), Key("seq", "int")),
        _mha(), param_attr=False),
}


@dataclass(frozen=True)
class Layer:
    """A case's [layer]: its kind and that kind's keys. The Linear's keys are fields
    of their own (every report of the original cases reads them); other kinds keep
    theirs in `sizes`."""
    in_features: int = 0
    out_features: int = 0
    bias: bool = False
    norm: bool = False
    kind: str = "linear"
    sizes: tuple[tuple[str, Any], ...] = field(default=())

    def get(self, key: str) -> Any:
        return getattr(self, key) if self.kind == "linear" else dict(self.sizes)[key]

    @property
    def defs(self) -> tuple[ParamDef, ...]:
        return tuple(d for d in KINDS[self.kind].params if not d.when or self.get(d.when))

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.defs)

    def roles(self, role: str) -> tuple[str, ...]:
        return tuple(d.name for d in self.defs if d.role == role)

    def describe(self) -> str:
        if self.kind == "linear":
            return (f"Linear({self.in_features}->{self.out_features}{', bias' if self.bias else ''}"
                    f"{', LayerNorm' if self.norm else ''})")
        return f"{self.kind}(" + ", ".join(f"{k}={v}" for k, v in self.sizes) + ")"

    def element_count(self) -> int:
        """Parameter elements (float32 each): what a snapshot of one step holds."""
        return sum(int(np.prod(s)) for s in self.shapes().values())

    def largest_side(self) -> int:
        return max(max(s) for s in self.shapes().values())

    def shapes(self) -> dict[str, tuple[int, ...]]:
        if self.kind == "linear":
            out = {"weight": (self.out_features, self.in_features)}
            out.update({n: (self.out_features,) for n in self.params if n != "weight"})
            return out
        g = self.get
        if self.kind == "conv2d":
            return {"weight": (g("out_channels"), g("in_channels"), g("kernel_size"), g("kernel_size")),
                    **({"bias": (g("out_channels"),)} if g("bias") else {})}
        if self.kind == "embedding":
            return {"weight": (g("num_embeddings"), g("embedding_dim"))}
        if self.kind == "block":
            i, h, o = g("in_features"), g("hidden"), g("out_features")
            return {"fc1_weight": (h, i), "fc1_bias": (h,), "norm_gain": (h,), "norm_bias": (h,),
                    "fc2_weight": (o, h), "fc2_bias": (o,)}
        e = g("embed_dim")
        return {d.name: (e, e) if d.role == "weight" else (e,) for d in self.defs}

    def operation_count(self, batch: int) -> int:
        """n of gamma_n: the longest chain of float32 operations feeding one element's
        update (compare.py): each reduction's length on the way forward and back, 16
        for each elementwise stretch (a LayerNorm's, a softmax's) and 16 for the rule."""
        g = self.get
        if self.kind == "linear":
            return self.in_features + batch + 16 + (self.out_features + 16 if self.norm else 0)
        if self.kind == "conv2d":
            k, side = g("kernel_size"), g("size") - g("kernel_size") + 1
            return g("in_channels") * k * k + batch * side * side + 16
        if self.kind == "embedding":
            return batch * g("lookups") + 16      # the gather is exact; a row's gradient sums its lookups
        if self.kind == "block":
            i, h, o = g("in_features"), g("hidden"), g("out_features")
            # fc1's dot, LayerNorm's mean and variance, fc2's dot; back: fc2's dx, LayerNorm's
            # two means, the weight gradients' sums over the batch.
            return i + 2 * h + 16 + h + o + 2 * h + 16 + batch + 16
        e, t = g("embed_dim"), g("seq")
        d = e // g("num_heads")
        # projections, scores, softmax (max, sum), P@v, output projection; back the same and
        # the weight gradients' sums over every token of the batch.
        return 2 * (e + d + 2 * t + e + 16) + batch * t + 16

    def check(self) -> str | None:
        """What is wrong with this layer's keys together ("" parts named by key), or None."""
        if self.kind == "conv2d" and self.get("kernel_size") > self.get("size"):
            return "kernel_size: must be <= size"
        if self.kind == "mha" and self.get("embed_dim") % self.get("num_heads"):
            return "num_heads: must divide embed_dim"
        return None



# ---------------------------------------------------------------- the start of a run

def draw(layer: Layer, rng: np.random.Generator, batch: int,
         target: bool) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
    """A non-Linear layer's start (spec.build_spec draws the Linear's): float32
    parameters in the canonical layout, the input, and the mse target."""
    shapes = layer.shapes()
    params: dict[str, np.ndarray] = {}
    for d in layer.defs:
        if d.role == "gain":        # not the frameworks' 1 and 0: their decay must show from step 1
            params[d.name] = rng.uniform(0.5, 1.5, shapes[d.name])
        elif d.name == "norm_bias":
            params[d.name] = rng.uniform(-0.5, 0.5, shapes[d.name])
        else:                       # torch's default range for a layer of this fan-in
            fan_in = int(np.prod(shapes[_weight_of(layer, d.name)][1:]))
            bound = 1.0 if layer.kind == "embedding" else 1.0 / math.sqrt(fan_in)
            params[d.name] = rng.uniform(-bound, bound, shapes[d.name])
    params = {n: v.astype(np.float32) for n, v in params.items()}
    g = layer.get
    if layer.kind == "embedding":
        x = rng.integers(0, g("num_embeddings") // 2, (batch, g("lookups"))).astype(np.int64)
    elif layer.kind == "conv2d":
        x = rng.uniform(0.0, 1.0, (batch, g("in_channels"), g("size"), g("size"))).astype(np.float32)
    elif layer.kind == "block":
        x = rng.uniform(0.0, 1.0, (batch, g("in_features"))).astype(np.float32)
    else:
        x = rng.uniform(-1.0, 1.0, (batch, g("seq"), g("embed_dim"))).astype(np.float32)
    y = rng.uniform(0.0, 1.0, output_shape(layer, batch)).astype(np.float32) if target else None
    return params, x, y


def _weight_of(layer: Layer, name: str) -> str:
    """The weight whose fan-in sets a parameter's init range (a bias takes its layer's)."""
    if layer.kind in ("conv2d", "embedding"):
        return "weight"
    return name.rsplit("_", 1)[0] + "_weight"


def output_shape(layer: Layer, batch: int) -> tuple[int, ...]:
    """A non-Linear layer's output (the mse target's shape)."""
    g = layer.get
    if layer.kind == "conv2d":
        side = g("size") - g("kernel_size") + 1
        return (batch, g("out_channels"), side, side)
    if layer.kind == "embedding":
        return (batch, g("lookups"), g("embedding_dim"))
    if layer.kind == "block":
        return (batch, g("out_features"))
    return (batch, g("seq"), g("embed_dim"))


# ---------------------------------------------------------------- canonical <-> native (numpy)

def to_native(layer: Layer, framework: str, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Canonical arrays -> each native parameter's value (packed parts joined in order)."""
    parts: dict[str, list[tuple[int, np.ndarray]]] = {}
    for d in layer.defs:
        nat = d.native(framework)
        v = values[d.name].T if nat.transpose else values[d.name]
        parts.setdefault(nat.name, []).append((nat.part[0] if nat.part else 0, v))
    return {n: np.ascontiguousarray(np.concatenate([v for _, v in sorted(p, key=lambda t: t[0])]))
            for n, p in parts.items()}


def canonical_view(native: Native, value: Any) -> Any:
    """A native parameter's (numpy or framework tensor) canonical part, untransposed: the
    adapter transposes with its own framework when `native.transpose`."""
    if native.part is None:
        return value
    i, n = native.part
    rows = value.shape[0] // n
    return value[i * rows:(i + 1) * rows]


def packed_together(layer: Layer, framework: str) -> list[tuple[str, ...]]:
    """Canonical parameters sharing one native parameter: an optimizer sees them as one
    (one parameter group, one clip norm)."""
    by: dict[str, list[str]] = {}
    for d in layer.defs:
        by.setdefault(d.native(framework).name, []).append(d.name)
    return [tuple(v) for v in by.values() if len(v) > 1]
