"""What `xdecay explain` runs: every optimizer of the model (optimizers.py), plain and
in the variants users switch on, in each framework that has it, with the ways that
framework accepts decay (numpy only).

An entry is written like a case's [optimizer]: the neutral name, lr and words in the
user's words, native arguments per framework; the model translates them into each
framework's class and keyword arguments, and pairs the frameworks for the
cross-framework table. lr is set so that decay effects sit far above float32
rounding in three steps. Left out: paddle LBFGS needs a closure per step (a
different training loop), torch SparseAdam takes no dense gradients.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..frameworks.records import ExplainItem
from .optimizers import OPTIMIZERS, native_kwargs

TORCH_WAYS = ("default", "none", "weight_decay", "decoupled", "groups", "manual")
PADDLE_WAYS = ("default", "none", "weight_decay", "l2decay", "l1decay", "param_attr",
               "param_attr+weight_decay", "groups", "manual", "param_attr_l1", "param_attr_bias")
WAYS = {"torch": TORCH_WAYS, "paddle": PADDLE_WAYS}
# Under a gradient clip (optimizers.EXPLAIN_CLIP), for every plain entry: the rule a manual
# term follows changes (clipped_l2, inside the clip), the optimizer's decay does not.
CLIP_WAYS = ("clip+manual", "clip+weight_decay")


@dataclass(frozen=True)
class Entry:
    optimizer: str                                  # optimizers.OPTIMIZERS
    variant: str                                    # what the words beyond lr switch on ("" plain)
    lr: float
    words: dict[str, Any] = field(default_factory=dict)
    native: dict[str, dict[str, Any]] = field(default_factory=dict)
    only: str = ""                                  # a framework, if the variant exists in one only
    labels: dict[str, str] = field(default_factory=dict)   # the variant's label per framework, if not `variant`

    @property
    def frameworks(self) -> tuple[str, ...]:
        return tuple(fw for fw in OPTIMIZERS[self.optimizer].frameworks if self.only in ("", fw))

    def label(self, framework: str) -> str:
        return self.labels.get(framework, self.variant)

    def item(self, framework: str, way: str) -> ExplainItem:
        info = OPTIMIZERS[self.optimizer]
        options = native_kwargs(info, framework, self.lr, self.words, self.native.get(framework, {}))
        return ExplainItem(info.native(framework).cls, self.label(framework), options, way)


MOMENTUM = {"momentum": 0.9}
CATALOGUE = [
    Entry("sgd", "", 0.1),
    # torch's class is SGD: its label says which SGD.
    Entry("momentum", "", 0.1, MOMENTUM, labels={"torch": "momentum"}),
    Entry("momentum", "nesterov", 0.1, {**MOMENTUM, "nesterov": True}),
    Entry("momentum", "dampening", 0.1, {**MOMENTUM, "dampening": 0.5}, only="torch"),
    Entry("momentum", "maximize", 0.1, MOMENTUM, native={"torch": {"maximize": True}}, only="torch",
          labels={"torch": "momentum+maximize"}),
    Entry("momentum", "foreach", 0.1, MOMENTUM, native={"torch": {"foreach": True}}, only="torch",
          labels={"torch": "momentum+foreach"}),
    Entry("momentum", "use_multi_tensor", 0.1, MOMENTUM, native={"paddle": {"use_multi_tensor": True}},
          only="paddle"),
    Entry("adam", "", 0.01),
    Entry("adam", "amsgrad", 0.01, {"amsgrad": True}),
    Entry("adam", "foreach", 0.01, native={"torch": {"foreach": True}}, only="torch"),
    Entry("adam", "use_multi_tensor", 0.01, native={"paddle": {"use_multi_tensor": True}}, only="paddle"),
    Entry("adamw", "", 0.01),
    Entry("adamw", "fused", 0.01, native={"torch": {"fused": True}}, only="torch"),
    # "weight": decay the weight only, by parameter name (the adapter makes the function).
    Entry("adamw", "apply_decay_param_fun", 0.01, native={"paddle": {"apply_decay_param_fun": "weight"}},
          only="paddle"),
    Entry("adamax", "", 0.01),
    Entry("adagrad", "", 0.1),
    Entry("adadelta", "", 1.0),
    Entry("rmsprop", "", 0.01),
    Entry("rmsprop", "centered", 0.01, {"centered": True}),
    Entry("rmsprop", "momentum", 0.01, {"momentum": 0.9}),
    Entry("rmsprop", "centered+momentum", 0.01, {"centered": True, "momentum": 0.9}),
    Entry("lamb", "", 0.01),
    Entry("nadam", "", 0.01),
    Entry("radam", "", 0.01),
    Entry("asgd", "", 0.1),
    # paddle's ASGD averages the last batch_num gradients: 1 makes it plain SGD.
    Entry("asgd", "batch_num", 0.1, {"batch_num": 2}, only="paddle"),
    Entry("rprop", "", 0.01),
    Entry("adafactor", "", 0.01),
]

# (class, variant label, native options) per framework, in catalogue order.
ENTRIES = {fw: [(e.item(fw, "").optimizer, e.label(fw), e.item(fw, "").options)
                for e in CATALOGUE if fw in e.frameworks] for fw in ("torch", "paddle")}

# The same user-level optimizer in both frameworks, each run with the way that gives it
# weight_decay=c: (torch class, label, way), (paddle class, label, way). Every entry both
# frameworks have, and torch's Adam(decoupled_weight_decay=True) against paddle's AdamW.
PAIRS = [((OPTIMIZERS[e.optimizer].torch.cls, e.label("torch"), "weight_decay"),
          (OPTIMIZERS[e.optimizer].paddle.cls, e.label("paddle"), "weight_decay"))
         for e in CATALOGUE if e.frameworks == ("torch", "paddle")]
PAIRS.insert(next(i for i, (t, _) in enumerate(PAIRS) if t[0] == "AdamW") + 1,
             (("Adam", "", "decoupled"), ("AdamW", "", "weight_decay")))


def items(framework: str, optimizers: set[str] | None = None) -> list[ExplainItem]:
    """Every (class, variant, way) to run for a framework, optionally only some classes."""
    return [e.item(framework, way) for e in CATALOGUE if framework in e.frameworks
            if optimizers is None or OPTIMIZERS[e.optimizer].native(framework).cls.lower() in optimizers
            for way in WAYS[framework] + (() if e.variant else CLIP_WAYS)]


def known_optimizers() -> set[str]:
    return {cls.lower() for entries in ENTRIES.values() for cls, _, _ in entries}


def classes(framework: str) -> dict[str, str]:
    """A framework's optimizer classes: lower-case name -> class name."""
    return {cls.lower(): cls for cls, _, _ in ENTRIES[framework]}
