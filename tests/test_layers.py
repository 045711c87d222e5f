"""Layers beyond one Linear (engine/layers.py), against real torch and paddle.

The layout table is checked by running: both frameworks, built from the same
canonical values through the table's name map and transforms, give the same
forward output, and each one's gradient is the float64 reference's (engine/nets.py)
within its derived rounding bound gamma_n * G. A wrong layout (a kernel with kh and
kw swapped, q and k swapped in torch's packed in_proj_weight) is far outside the
same bound, so the check can fail. Then every verdict of the shipped layer cases is
pinned: the rule of each parameter of each run, and which embedding rows a decay on
a sparse gradient touches.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import paddle
import pytest
import torch

from xdecay.case import load_case
from xdecay.engine.compare import EPS32, Tolerance
from xdecay.engine.layers import KINDS, Layer, canonical_view, to_native
from xdecay.engine.nets import grads_and_bounds
from xdecay.engine.pipeline import compare_case
from xdecay.engine.spec import build_layer_spec
from xdecay.frameworks import paddle_adapter, torch_adapter

from .conftest import ROOT, run

LAYERS = {
    "conv2d": Layer(kind="conv2d", sizes=(("in_channels", 2), ("out_channels", 3), ("kernel_size", 2),
                                          ("size", 4), ("bias", True))),
    "embedding": Layer(kind="embedding", sizes=(("num_embeddings", 6), ("embedding_dim", 3), ("lookups", 3),
                                                ("sparse", False))),
    "block": Layer(kind="block", sizes=(("in_features", 3), ("hidden", 4), ("out_features", 2))),
    "mha": Layer(kind="mha", sizes=(("embed_dim", 4), ("num_heads", 2), ("seq", 3))),
}
BATCH = 2


def _forward(spec):
    """Both frameworks' float64 outputs and losses' gradients by canonical name."""
    out, grads = {}, {}
    for fw, adapter in (("torch", torch_adapter), ("paddle", paddle_adapter)):
        with adapter.isolated():
            model = adapter.Model(spec)
            if fw == "torch":
                y = model(torch.from_numpy(spec.x))
                loss = ((y - torch.from_numpy(spec.target)) ** 2).mean()
                loss.backward()
                own = dict(model.named_parameters())
                grads[fw] = {d.name: canonical_view(d.torch, own[d.torch.name].grad).numpy()
                             for d in spec.layer.defs}
                out[fw] = y.detach().numpy().astype(np.float64)
            else:
                y = model(paddle.to_tensor(spec.x))
                paddle.mean((y - paddle.to_tensor(spec.target)) ** 2).backward()
                named = model.named()
                grads[fw] = {d.name: (named[d.name].grad.numpy().T if d.paddle.transpose
                                      else named[d.name].grad.numpy()) for d in spec.layer.defs}
                out[fw] = y.numpy().astype(np.float64)
    return out, grads


def _gamma(layer: Layer) -> float:
    return layer.operation_count(BATCH) * EPS32 / 2


@pytest.mark.parametrize("kind", LAYERS)
def test_both_frameworks_compute_the_reference_from_the_tables_layouts(kind):
    layer = LAYERS[kind]
    spec = build_layer_spec(layer, 7, BATCH, True)
    out, grads = _forward(spec)
    g64, bounds = grads_and_bounds(layer, spec.params, spec.x, spec.target, "mse")
    gamma = _gamma(layer)
    largest = max(np.abs(g).max() for g in g64.values())
    # Forward: the two frameworks within both runs' rounding of the output.
    scale = np.abs(out["torch"]) + np.abs(out["paddle"])
    assert np.all(np.abs(out["torch"] - out["paddle"]) <= 2 * gamma * np.maximum(scale, 1.0))
    for fw in ("torch", "paddle"):
        for name in layer.params:
            err = np.abs(grads[fw][name] - g64[name])
            assert np.all(err <= gamma * bounds[name]), (fw, name, float(np.max(err / (gamma * bounds[name]))))
            # A rounding bound, not a blanket: a thousandth of the layer's largest gradient
            # (mha's k_bias has no gradient at all, only rounding: softmax ignores a shift).
            assert gamma * bounds[name].max() <= 1e-3 * largest, name


def test_a_wrong_layout_is_far_outside_the_bound():
    """The check above can fail: the conv kernel with kh and kw swapped (a layout the
    frameworks do not share), and torch's packed q and k rows swapped."""
    conv = LAYERS["conv2d"]
    spec = build_layer_spec(conv, 7, BATCH, True)
    swapped = dataclasses.replace(spec, params={**spec.params,
                                                "weight": spec.params["weight"].transpose(0, 1, 3, 2).copy()})
    out, _ = _forward(spec)
    wrong, _ = _forward(swapped)
    gamma = _gamma(conv)
    assert np.max(np.abs(wrong["torch"] - out["paddle"])) > 1e3 * gamma * np.max(np.abs(out["paddle"]))

    mha = LAYERS["mha"]
    spec = build_layer_spec(mha, 7, BATCH, True)
    packed = to_native(mha, "torch", spec.params)["attention.in_proj_weight"]
    e = mha.get("embed_dim")
    assert np.array_equal(packed[:e], spec.params["q_weight"]) and np.array_equal(packed[e:2 * e],
                                                                                   spec.params["k_weight"])
    qk = dataclasses.replace(spec, params={**spec.params, "q_weight": spec.params["k_weight"],
                                           "k_weight": spec.params["q_weight"]})
    out, _ = _forward(spec)
    wrong, _ = _forward(qk)
    assert np.max(np.abs(wrong["torch"] - out["paddle"])) > 1e3 * _gamma(mha) * np.max(np.abs(out["paddle"]))


def test_every_kind_names_each_native_parameter_of_both_frameworks():
    """The table's native names are every parameter each framework's module has."""
    for kind, layer in LAYERS.items():
        spec = build_layer_spec(layer, 7, BATCH, False)
        torch_names = set(dict(torch_adapter.Model(spec).named_parameters()))
        with paddle_adapter.isolated():
            paddle_names = set(dict(paddle_adapter.Model(spec).named_parameters()))
        assert torch_names == {d.torch.name for d in layer.defs}, kind
        assert paddle_names == {d.paddle.name for d in layer.defs}, kind
    assert set(KINDS) == {"linear", *LAYERS}


# ---------------------------------------------------------------- the shipped layer cases

CASES = ["conv2d", "embedding", "embedding_sparse", "embedding_sparse_adagrad", "embedding_sparse_adam",
         "block_groups", "block_param_attr", "block_norm_decayed", "mha_groups"]

# Every rule inferred, per run: (run, {param: rule}); a parameter left out has the run's
# default (the first entry's value for "*").
RULES = {
    "conv2d": {"torch:none": "none", "paddle:none": "none",
               **{r: "coupled_l2@0.1" for r in ("torch:weight_decay", "torch:manual", "paddle:weight_decay",
                                                "paddle:l2decay", "paddle:manual")},
               "torch:groups": {"weight": "coupled_l2@0.1", "bias": "none"},
               "paddle:groups": {"weight": "coupled_l2@0.1", "bias": "none"}},
    "embedding": {"torch:none": "none", "paddle:none": "none", "torch:weight_decay": "coupled_l2@0.1",
                  "paddle:weight_decay": "coupled_l2@0.1", "torch:decoupled": "decoupled_lr@0.1",
                  "paddle:decoupled": "decoupled_lr@0.1"},
    "embedding_sparse": {"torch:none": "none", "paddle:none": "none", "torch:manual": "coupled_l2@0.1",
                         "paddle:weight_decay": "coupled_l2@0.1", "paddle:l2decay": "coupled_l2@0.1",
                         "paddle:manual": "coupled_l2@0.1"},
    "embedding_sparse_adagrad": {"torch:none": "none", "paddle:none": "none",
                                 "paddle:weight_decay": "coupled_l2@0.1"},
    "embedding_sparse_adam": {"paddle:none": "unexplained", "paddle:manual": "coupled_l2@0.1"},
    "block_groups": {r: {"fc1_weight": "decoupled_lr@0.1", "fc2_weight": "decoupled_lr@0.1", "fc1_bias": "none",
                         "norm_gain": "none", "norm_bias": "none", "fc2_bias": "none"}
                     for r in ("torch:groups", "paddle:groups", "paddle:apply_decay_param_fun")},
    "block_param_attr": {"torch:weight_decay": "coupled_l2@0.1", "paddle:weight_decay": "coupled_l2@0.1",
                         **{r: {"fc1_weight": "coupled_l2@0.1", "fc2_weight": "coupled_l2@0.1", "fc1_bias": "none",
                                "norm_gain": "none", "norm_bias": "none", "fc2_bias": "none"}
                            for r in ("torch:groups", "paddle:groups", "paddle:param_attr+weight_decay")}},
    "block_norm_decayed": {"torch:weight_decay": "decoupled_lr@0.1", "paddle:weight_decay": "decoupled_lr@0.1",
                           "torch:groups": {"fc1_weight": "decoupled_lr@0.1", "fc2_weight": "decoupled_lr@0.1",
                                            "fc1_bias": "none", "norm_gain": "none", "norm_bias": "none",
                                            "fc2_bias": "none"}},
    "mha_groups": {"torch:weight_decay": "coupled_l2@0.1", "paddle:weight_decay": "coupled_l2@0.1",
                   "paddle:l2decay": "coupled_l2@0.1",
                   **{r: {**{f"{x}_weight": "coupled_l2@0.1" for x in ("q", "k", "v", "out")},
                          **{f"{x}_bias": "none" for x in ("q", "k", "v", "out")}}
                      for r in ("torch:groups", "paddle:groups")}},
}


@pytest.fixture(scope="module")
def layer_cases():
    out = {}
    for name in CASES:
        case = load_case(ROOT / "cases" / f"{name}.toml")
        done = run(case)
        out[name] = case, done, compare_case(case, 0, done, case.steps, Tolerance.for_case(case))
    return out


@pytest.mark.parametrize("name", CASES)
def test_layer_case_verdicts(layer_cases, name):
    case, _, result = layer_cases[name]
    assert result.ok and not result.warnings and not result.skipped
    got = {(r, p): rule for r, p, rule in result.rules}
    for run_name, rules in RULES[name].items():
        for param in case.layer.params:
            want = rules if isinstance(rules, str) else rules[param]
            assert got[(run_name, param)] == want, (run_name, param, got[(run_name, param)])
    # Only the paddle ways are unpinned here where a rule is ambiguous (block_norm_decayed's groups).
    assert {r for r, _ in got} - set(RULES[name]) <= {"paddle:groups"}


def _untouched(case) -> np.ndarray:
    """The rows no id of the batch looks up (the ids come from the first half)."""
    ids = case.spec().x
    rows = np.setdiff1d(np.arange(case.layer.get("num_embeddings")), ids)
    assert len(rows) >= case.layer.get("num_embeddings") // 2
    return rows


@pytest.mark.parametrize("name", ["embedding_sparse", "embedding_sparse_adagrad"])
def test_a_decay_on_a_sparse_gradient_touches_every_row_in_paddle(layer_cases, name):
    """Which rows a decay on a sparse gradient moves: in paddle (SGD/Momentum, Adagrad)
    every row, the never looked-up ones by exactly the decay's own step; torch refuses
    the decay argument (its sparse kernels would touch the looked-up rows only) and
    moves no untouched row without decay."""
    case, done, result = layer_cases[name]
    rows = _untouched(case)
    runs = {r.name: r for fw in done.values() for r in fw.records[0]}
    for quiet in ("torch:none", "paddle:none"):
        assert np.all(runs[quiet].delta("weight")[:, rows] == 0)
    decayed = runs["paddle:weight_decay"]
    w0 = decayed.params["weight"][0][rows].astype(np.float64)
    first = decayed.delta("weight")[0][rows]
    lr, c = float(case.optimizer.lr), case.decay.coeff
    # Step 1 of an untouched row: gradient 0 + c*w, so the step's size is that of c*w
    # (SGD/Momentum: lr*c*w; Adagrad: lr*sign(w), its accumulator being (c*w)^2).
    expect = -lr * c * w0 if case.optimizer.name == "momentum" else -lr * np.sign(w0)
    assert np.allclose(first, expect, rtol=1e-5, atol=0)
    assert [c.ok for c in result.reject_checks] == [True]


def test_sparse_embedding_is_built_sparse_in_both_frameworks(layer_cases):
    case, _, _ = layer_cases["embedding_sparse"]
    spec = case.spec()
    t = torch_adapter.Model(spec)
    t(torch.from_numpy(spec.x)).sum().backward()
    assert t.embedding.weight.grad.is_sparse
    with paddle_adapter.isolated():
        p = paddle_adapter.Model(spec)
        assert p.embedding._sparse


def test_paddles_sparse_adam_is_not_the_dense_formula(layer_cases):
    """paddle Adam on a sparse gradient (lazy_mode): the first step of a looked-up row is
    lr*sqrt(1+beta2)/(1+beta1) per element (dense Adam: lr), the bias correction of step
    2 at step 1; rows no id looks up stay put. Torch's Adam refuses sparse gradients."""
    case, done, result = layer_cases["embedding_sparse_adam"]
    run = next(r for r in done["paddle"].records[0] if r.way == "none")
    rows = _untouched(case)
    looked_up = np.setdiff1d(np.arange(case.layer.get("num_embeddings")), rows)
    first = run.delta("weight")[0]
    lr, b1, b2 = float(case.optimizer.lr), 0.9, 0.999
    assert np.all(run.delta("weight")[:, rows] == 0)
    assert np.allclose(np.abs(first[looked_up]), lr * np.sqrt(1 + b2) / (1 + b1), rtol=1e-5, atol=0)
    assert not np.allclose(np.abs(first[looked_up]), lr, rtol=0.1, atol=0)
    assert all(c.ok for c in result.reject_checks) and len(result.reject_checks) == 2
    # A manual L2 term's gradient is dense: every row moves, by the dense formula.
    manual = next(r for r in done["paddle"].records[0] if r.way == "manual")
    assert np.all(manual.delta("weight")[:, rows] != 0)


def test_adamw_cannot_see_the_decay_of_attentions_key_bias():
    """k_bias has no loss gradient (softmax ignores a shift shared by a query's scores):
    under AdamW its float32 gradient is rounding noise that Adam normalises to ~lr steps,
    so its decoupled decay cannot be told from none (README, mha_groups), while q_bias's
    can."""
    case = load_case(ROOT / "cases" / "mha_groups.toml")
    case = dataclasses.replace(case, optimizer=dataclasses.replace(case.optimizer, name="adamw", lr=0.01, hyper={}),
                               runs={"torch": ("weight_decay",), "paddle": ("weight_decay",)}, expectations=())
    result = compare_case(case, 0, run(case), case.steps, Tolerance.for_case(case))
    rules = {(r, p): rule for r, p, rule in result.rules}
    for fw in ("torch", "paddle"):
        assert rules[(f"{fw}:weight_decay", "q_bias")] == "decoupled_lr@0.1"
        assert rules[(f"{fw}:weight_decay", "k_bias")] == "ambiguous(none|decoupled_lr@0.1)"
