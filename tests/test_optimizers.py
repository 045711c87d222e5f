"""The optimizer model (engine/optimizers.py) against the installed frameworks: every
class, native name and default it states is what torch and paddle really have."""
from __future__ import annotations

import inspect

import pytest

from xdecay.engine.optimizers import (
    OPTIMIZERS,
    TensorValue,
    construction,
    default_differences,
    native_kwargs,
)
from xdecay.engine.reference import RULES
from xdecay.engine.regularizers import Regularizer
from xdecay.frameworks.adapters import load_adapter


def _signature(framework: str, cls: str) -> dict[str, object]:
    module = load_adapter(framework)
    owner = module.torch.optim if framework == "torch" else module.paddle.optimizer
    return {k: p.default for k, p in inspect.signature(getattr(owner, cls).__init__).parameters.items()}


NATIVES = [(info.name, fw) for info in OPTIMIZERS.values() for fw in info.frameworks]


@pytest.mark.parametrize("name,framework", NATIVES, ids=[f"{n}-{f}" for n, f in NATIVES])
def test_native_names_and_defaults_are_the_frameworks(name, framework):
    info = OPTIMIZERS[name]
    native = info.native(framework)
    signature = _signature(framework, native.cls)
    assert native.lr in signature
    if native.decay_arg is None:
        assert "weight_decay" not in signature
    else:
        default = signature[native.decay_arg]
        assert default == native.default_decay and type(default) is type(native.default_decay)
    for word in info.words:
        if framework not in word.native:
            continue
        base, dot, slot = word.native_name(framework).partition(".")
        value = signature[base][int(slot)] if dot else signature[base]
        assert value == word.default(framework) and type(value) is type(word.default(framework)), word
    if native.decoupled == "flag":
        assert signature["decoupled_weight_decay"] is False
    # Rule inference replays every class the model builds.
    assert (framework, native.cls) in RULES


def test_words_translate_to_each_frameworks_names():
    rmsprop = OPTIMIZERS["rmsprop"]
    words = {"rho": 0.9, "eps": 1e-8, "centered": True}
    assert native_kwargs(rmsprop, "torch", 0.01, words, {}) == {"lr": 0.01, "alpha": 0.9, "eps": 1e-8,
                                                                 "centered": True}
    assert native_kwargs(rmsprop, "paddle", 0.01, words, {}) == {"learning_rate": 0.01, "rho": 0.9,
                                                                  "epsilon": 1e-8, "centered": True}
    # A tuple argument given in part keeps torch's default in the other slot.
    assert native_kwargs(OPTIMIZERS["adam"], "torch", 0.1, {"beta2": 0.99}, {})["betas"] == (0.9, 0.99)
    # Native overrides are passed verbatim, after the words.
    assert native_kwargs(OPTIMIZERS["adam"], "torch", 0.1, {}, {"foreach": False})["foreach"] is False


def test_ways_build_the_decay_argument_as_written():
    adamw, lamb = OPTIMIZERS["adamw"], OPTIMIZERS["lamb"]
    assert "weight_decay" not in construction(adamw, "torch", 0.01, {}, {}, "default", 0.1).kwargs
    assert construction(adamw, "paddle", 0.01, {}, {}, "none", 0.1).kwargs["weight_decay"] == 0.0
    assert construction(lamb, "paddle", 0.01, {}, {}, "none", 0.1).kwargs["lamb_weight_decay"] == 0.0
    built = construction(adamw, "torch", 0.01, {}, {}, "weight_decay", 1)
    assert built.kwargs["weight_decay"] == 1 and type(built.kwargs["weight_decay"]) is int
    assert construction(OPTIMIZERS["adam"], "paddle", 0.01, {}, {}, "l1decay", 0.1).kwargs[
        "weight_decay"] == Regularizer("l1", 0.1)
    assert construction(OPTIMIZERS["adam"], "torch", 0.01, {}, {}, "decoupled", 0.1).cls == "AdamW"
    nadam = construction(OPTIMIZERS["nadam"], "torch", 0.01, {}, {}, "decoupled", 0.1)
    assert nadam.kwargs["decoupled_weight_decay"] is True
    assert construction(OPTIMIZERS["sgd"], "paddle", 0.1, {}, {}, "decoupled", 0.1).explicit_decoupled


def test_default_differences_are_the_unset_words_whose_defaults_differ():
    found = {d.word: d for d in default_differences(OPTIMIZERS["adagrad"], {}, {})}
    assert set(found) == {"eps"} and str(found["eps"]) == (
        "eps not set: torch eps=1e-10 vs paddle epsilon=1e-06")
    assert default_differences(OPTIMIZERS["adagrad"], {"eps": 1e-10}, {}) == []
    assert default_differences(OPTIMIZERS["adagrad"], {}, {"paddle": {"epsilon": 1e-10}}) == []
    assert {d.word for d in default_differences(OPTIMIZERS["rmsprop"], {}, {})} == {"rho", "eps"}
    assert default_differences(OPTIMIZERS["adam"], {}, {}) == []
    assert {d.word for d in default_differences(OPTIMIZERS["rprop"], {}, {})} == {"step_size_min"}


def test_a_tensor_way_gives_the_coefficient_as_a_tensor_value():
    built = construction(OPTIMIZERS["adamw"], "paddle", 0.01, {}, {}, "weight_decay_tensor", 0.1)
    assert built.kwargs["weight_decay"] == TensorValue(0.1)
