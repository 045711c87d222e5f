"""What `xdecay explain` runs: every optimizer class that takes a weight decay, in
each framework, with the ways that framework accepts decay (numpy only).

Left out: torch Rprop, SparseAdam and LBFGS take no weight decay; paddle LBFGS
needs a closure per step (a different training loop) — it is not run here.

Options are native keyword arguments besides the parameters and the decay; lr is
set so that decay effects sit far above float32 rounding in three steps.
"""
from __future__ import annotations

from ..frameworks.records import ExplainItem

TORCH_WAYS = ("default", "none", "weight_decay", "decoupled", "groups")
PADDLE_WAYS = ("default", "none", "weight_decay", "l2decay", "l1decay", "param_attr",
               "param_attr+weight_decay", "groups")

# (class, variant, options)
TORCH = [
    ("SGD", "", {"lr": 0.1}),
    ("SGD", "momentum", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", "nesterov", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("SGD", "dampening", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}),
    ("Adam", "", {"lr": 0.01}),
    ("AdamW", "", {"lr": 0.01}),
    ("Adamax", "", {"lr": 0.01}),
    ("Adagrad", "", {"lr": 0.1}),
    ("Adadelta", "", {"lr": 1.0}),
    ("RMSprop", "", {"lr": 0.01}),
    ("RMSprop", "centered", {"lr": 0.01, "centered": True}),
    ("RMSprop", "momentum", {"lr": 0.01, "momentum": 0.9}),
    ("NAdam", "", {"lr": 0.01}),
    ("RAdam", "", {"lr": 0.01}),
    ("ASGD", "", {"lr": 0.1}),
    ("Adafactor", "", {"lr": 0.01}),
]

PADDLE = [
    ("SGD", "", {"learning_rate": 0.1}),
    ("Momentum", "", {"learning_rate": 0.1, "momentum": 0.9}),
    ("Momentum", "nesterov", {"learning_rate": 0.1, "momentum": 0.9, "use_nesterov": True}),
    ("Adam", "", {"learning_rate": 0.01}),
    ("AdamW", "", {"learning_rate": 0.01}),
    ("AdamW", "apply_decay_param_fun", {"learning_rate": 0.01, "apply_decay_param_fun": "weight"}),
    ("Adamax", "", {"learning_rate": 0.01}),
    ("Adagrad", "", {"learning_rate": 0.1}),
    ("Adadelta", "", {"learning_rate": 1.0}),
    ("RMSProp", "", {"learning_rate": 0.01}),
    ("RMSProp", "centered", {"learning_rate": 0.01, "centered": True}),
    ("RMSProp", "momentum", {"learning_rate": 0.01, "momentum": 0.9}),
    ("Lamb", "", {"learning_rate": 0.01}),
    ("NAdam", "", {"learning_rate": 0.01}),
    ("RAdam", "", {"learning_rate": 0.01}),
    ("ASGD", "", {"learning_rate": 0.1}),
    ("Rprop", "", {"learning_rate": 0.01}),
]

# The same user-level optimizer in both frameworks: (torch class, variant), (paddle class, variant).
PAIRS = [
    (("SGD", ""), ("SGD", "")),
    (("SGD", "momentum"), ("Momentum", "")),
    (("SGD", "nesterov"), ("Momentum", "nesterov")),
    (("Adam", ""), ("Adam", "")),
    (("AdamW", ""), ("AdamW", "")),
    (("Adamax", ""), ("Adamax", "")),
    (("Adagrad", ""), ("Adagrad", "")),
    (("Adadelta", ""), ("Adadelta", "")),
    (("RMSprop", ""), ("RMSProp", "")),
    (("RMSprop", "centered"), ("RMSProp", "centered")),
    (("RMSprop", "momentum"), ("RMSProp", "momentum")),
    (("NAdam", ""), ("NAdam", "")),
    (("RAdam", ""), ("RAdam", "")),
    (("ASGD", ""), ("ASGD", "")),
]

WAYS = {"torch": TORCH_WAYS, "paddle": PADDLE_WAYS}
ENTRIES = {"torch": TORCH, "paddle": PADDLE}


def items(framework: str, optimizers: set[str] | None = None) -> list[ExplainItem]:
    """Every (class, variant, way) to run for a framework, optionally only some classes."""
    return [ExplainItem(cls, variant, options, way)
            for cls, variant, options in ENTRIES[framework]
            if optimizers is None or cls.lower() in optimizers
            for way in WAYS[framework]]


def known_optimizers() -> set[str]:
    return {cls.lower() for entries in ENTRIES.values() for cls, _, _ in entries}
