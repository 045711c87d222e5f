"""Float64 gradients of the non-Linear case layers (engine/layers.py), and their
float32 rounding scales, for the reference replay (reference.model_grads).

Every pass is written twice in one: values, and the same sums and products over
absolute values with every subtraction an addition (Higham's running bound, as
reference.gradient_bounds does for the Linear): |fl(g) - g| <= gamma_n * G, n the
layer's operation count (layers.Layer.operation_count). As there, the forward pass's
rounding scale reaches the gradient through dL/dout (the mse loss), and the backward
pass multiplies by the forward values' exact magnitudes: taking their rounding scales
there instead would multiply two scales that each stand for a gamma_n-small error
(a LayerNorm's (|y| + mean|y|)/s is ~100x |yh| where the features vary little), and
G would exceed |g| a thousandfold for an error the frameworks never make. Softmax:
an absolute error e of a score is a relative error e of its exp, so P's rounding
scale is P * (1 + S_abs + sum(P * S_abs)).

mean: L = mean(out) -> dL/dout = 1/out.size; mse: L = mean((out - target)^2) ->
dL/dout = 2 (out - target)/out.size, its scale 2 (|out - target| + out_abs)/out.size.
"""
from __future__ import annotations

import numpy as np

from .layers import LAYER_NORM_EPS, Layer


def grads_and_bounds(layer: Layer, params: dict[str, np.ndarray], x: np.ndarray,
                     target: np.ndarray | None, loss: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    p = {n: np.asarray(v, np.float64) for n, v in params.items()}
    forward, backward = _PASSES[layer.kind]
    out, out_abs, cache = forward(layer, p, x)
    if loss != "mse":          # "zero": mean(out) * 0, no gradient at all
        dout = dout_b = np.full_like(out, (loss == "mean") / out.size)
    else:
        miss = out - np.asarray(target, np.float64)
        dout, dout_b = 2.0 * miss / out.size, 2.0 * (np.abs(miss) + out_abs) / out.size
    return backward(layer, p, x, cache, dout, dout_b)


# ---------------------------------------------------------------- building blocks

def _linear(x, x_abs, w, b):
    """y = x @ w.T + b over the last axis, and its running magnitude."""
    y = x @ w.T + (0.0 if b is None else b)
    return y, x_abs @ np.abs(w).T + (0.0 if b is None else np.abs(b))


def _linear_back(x, w, dy, dy_b):
    """(dw, dw_b, db, db_b, dx, dx_b) with the rows of every leading axis summed."""
    x2 = x.reshape(-1, x.shape[-1])
    xa2 = np.abs(x2)
    d2, db2 = dy.reshape(-1, dy.shape[-1]), dy_b.reshape(-1, dy.shape[-1])
    return (d2.T @ x2, db2.T @ xa2, d2.sum(axis=0), db2.sum(axis=0), dy @ w, dy_b @ np.abs(w))


def _norm(y, y_abs, gain, beta):
    s = np.sqrt(y.var(axis=-1, keepdims=True) + LAYER_NORM_EPS)
    yh = (y - y.mean(axis=-1, keepdims=True)) / s
    yh_abs = (y_abs + y_abs.mean(axis=-1, keepdims=True)) / s
    return yh * gain + beta, yh_abs * np.abs(gain) + np.abs(beta), (s, yh)


def _norm_back(cache, gain, dz, dz_b):
    s, yh = cache
    yh_abs = np.abs(yh)
    dyh, dyh_b = dz * gain, dz_b * np.abs(gain)
    dy = (dyh - dyh.mean(axis=-1, keepdims=True) - yh * (dyh * yh).mean(axis=-1, keepdims=True)) / s
    dy_b = (dyh_b + dyh_b.mean(axis=-1, keepdims=True)
            + yh_abs * (dyh_b * yh_abs).mean(axis=-1, keepdims=True)) / s
    return ((dz * yh).sum(axis=0), (dz_b * yh_abs).sum(axis=0), dz.sum(axis=0), dz_b.sum(axis=0), dy, dy_b)


# ---------------------------------------------------------------- Conv2d: a Linear over patches

def _patches(layer: Layer, x: np.ndarray) -> np.ndarray:
    """[batch * positions, in * kh * kw], in the canonical weight's flattening order."""
    k = layer.get("kernel_size")
    win = np.lib.stride_tricks.sliding_window_view(np.asarray(x, np.float64), (k, k), axis=(2, 3))
    b, c, ho, wo = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(b * ho * wo, c * k * k)


def _conv_forward(layer, p, x):
    cols = _patches(layer, x)
    w = p["weight"].reshape(len(p["weight"]), -1)
    y, y_abs = _linear(cols, np.abs(cols), w, p.get("bias"))
    b, side = len(x), layer.get("size") - layer.get("kernel_size") + 1

    def image(a):
        return a.reshape(b, side, side, -1).transpose(0, 3, 1, 2)
    return image(y), image(y_abs), cols


def _conv_backward(layer, p, x, cols, dout, dout_b):
    def rows(a):
        return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])
    dw, dw_b, db, db_b, _, _ = _linear_back(cols, p["weight"].reshape(len(p["weight"]), -1),
                                            rows(dout), rows(dout_b))
    shape = p["weight"].shape
    grads, bounds = {"weight": dw.reshape(shape)}, {"weight": dw_b.reshape(shape)}
    if "bias" in p:
        grads["bias"], bounds["bias"] = db, db_b
    return grads, bounds


# ---------------------------------------------------------------- Embedding: an exact gather

def _embedding_forward(layer, p, x):
    out = p["weight"][x]
    return out, np.zeros_like(out), None      # a copy: no rounding


def _embedding_backward(layer, p, x, cache, dout, dout_b):
    g, b = np.zeros_like(p["weight"]), np.zeros_like(p["weight"])
    np.add.at(g, x.reshape(-1), dout.reshape(-1, g.shape[1]))
    np.add.at(b, x.reshape(-1), dout_b.reshape(-1, g.shape[1]))
    return {"weight": g}, {"weight": b}


# ---------------------------------------------------------------- Linear -> LayerNorm -> Linear

def _block_forward(layer, p, x):
    x = np.asarray(x, np.float64)
    h, h_abs = _linear(x, np.abs(x), p["fc1_weight"], p["fc1_bias"])
    z, z_abs, norm = _norm(h, h_abs, p["norm_gain"], p["norm_bias"])
    out, out_abs = _linear(z, z_abs, p["fc2_weight"], p["fc2_bias"])
    return out, out_abs, (x, z, norm)


def _block_backward(layer, p, x, cache, dout, dout_b):
    x, z, norm = cache
    g, b = {}, {}
    g["fc2_weight"], b["fc2_weight"], g["fc2_bias"], b["fc2_bias"], dz, dz_b = _linear_back(
        z, p["fc2_weight"], dout, dout_b)
    g["norm_gain"], b["norm_gain"], g["norm_bias"], b["norm_bias"], dh, dh_b = _norm_back(
        norm, p["norm_gain"], dz, dz_b)
    g["fc1_weight"], b["fc1_weight"], g["fc1_bias"], b["fc1_bias"], _, _ = _linear_back(
        x, p["fc1_weight"], dh, dh_b)
    return {n: g[n] for n in p}, {n: b[n] for n in p}


# ---------------------------------------------------------------- self-attention

def _heads(a: np.ndarray, h: int) -> np.ndarray:
    b, t, e = a.shape
    return a.reshape(b, t, h, e // h).transpose(0, 2, 1, 3)


def _merge(a: np.ndarray) -> np.ndarray:
    b, h, t, d = a.shape
    return a.transpose(0, 2, 1, 3).reshape(b, t, h * d)


def _mha_forward(layer, p, x):
    x = np.asarray(x, np.float64)
    h = layer.get("num_heads")
    proj = {c: _linear(x, np.abs(x), p[f"{c}_weight"], p[f"{c}_bias"]) for c in "qkv"}
    q, k, v = (_heads(proj[c][0], h) for c in "qkv")
    va = _heads(proj["v"][1], h)
    scale = 1.0 / np.sqrt(q.shape[-1])
    s = q @ k.swapaxes(-1, -2) * scale
    s_abs = _heads(proj["q"][1], h) @ _heads(proj["k"][1], h).swapaxes(-1, -2) * scale
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    pr = e / e.sum(axis=-1, keepdims=True)
    pr_abs = pr * (1.0 + s_abs + (pr * s_abs).sum(axis=-1, keepdims=True))
    a, a_abs = _merge(pr @ v), _merge(pr_abs @ va)
    out, out_abs = _linear(a, a_abs, p["out_weight"], p["out_bias"])
    return out, out_abs, (x, q, k, v, pr, a, scale)


def _mha_backward(layer, p, x, cache, dout, dout_b):
    x, q, k, v, pr, a, scale = cache
    h = layer.get("num_heads")
    qa, ka, va = np.abs(q), np.abs(k), np.abs(v)
    g, b = {}, {}
    g["out_weight"], b["out_weight"], g["out_bias"], b["out_bias"], da, da_b = _linear_back(
        a, p["out_weight"], dout, dout_b)
    da, da_b = _heads(da, h), _heads(da_b, h)
    dp, dp_b = da @ v.swapaxes(-1, -2), da_b @ va.swapaxes(-1, -2)
    dv, dv_b = pr.swapaxes(-1, -2) @ da, pr.swapaxes(-1, -2) @ da_b
    ds = pr * (dp - (dp * pr).sum(axis=-1, keepdims=True))
    ds_b = pr * (dp_b + (dp_b * pr).sum(axis=-1, keepdims=True))
    dq, dq_b = ds @ k * scale, ds_b @ ka * scale
    dk, dk_b = ds.swapaxes(-1, -2) @ q * scale, ds_b.swapaxes(-1, -2) @ qa * scale
    for c, d, d_b in (("q", dq, dq_b), ("k", dk, dk_b), ("v", dv, dv_b)):
        g[f"{c}_weight"], b[f"{c}_weight"], g[f"{c}_bias"], b[f"{c}_bias"], _, _ = _linear_back(
            x, p[f"{c}_weight"], _merge(d), _merge(d_b))
    return {n: g[n] for n in p}, {n: b[n] for n in p}


_PASSES = {"conv2d": (_conv_forward, _conv_backward), "embedding": (_embedding_forward, _embedding_backward),
           "block": (_block_forward, _block_backward), "mha": (_mha_forward, _mha_backward)}
