"""Every optimizer a case can name, described once (STYLE.md, torch/optim 1).

An optimizer has a neutral name (the user-level optimizer: "rmsprop" is torch's
RMSprop and paddle's RMSProp) and, per framework, a `Native` record: the class,
the name of its learning-rate argument, the argument decay is given through and
what leaving it out applies, and how the `decoupled` way is built. Its
hyper-parameters are `Word`s: the key a case writes, and per framework the
native argument (or a slot of a tuple argument, "betas.0") with its default.

Case loading, both adapters, rule inference, the reports and the cause of a
cross-framework difference all read this table; no other module names an
optimizer class. numpy-free and framework-free: tests/test_optimizers.py checks
every native name and default against the installed frameworks' signatures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .clipping import Clip
from .regularizers import Regularizer


@dataclass(frozen=True)
class Word:
    """A hyper-parameter in the user's words, with its native name and default per framework."""
    name: str
    # What a case may give it (case.py validates, naming the key): "fraction" [0, 1),
    # "positive" > 0, "number" >= 0, "real" finite, "flag" boolean, "count" integer >= 1.
    kind: str
    native: dict[str, tuple[str, Any]]        # framework -> (native name or "tuple_arg.slot", default)

    def native_name(self, framework: str) -> str | None:
        found = self.native.get(framework)
        return None if found is None else found[0]

    def default(self, framework: str) -> Any:
        return self.native[framework][1]

    @property
    def aliases(self) -> tuple[str, ...]:
        """Native names a case may write instead (epsilon for eps, alpha for RMSprop's rho)."""
        return tuple(sorted({n for n, _ in self.native.values() if "." not in n and n != self.name}))


@dataclass(frozen=True)
class Native:
    """One framework's class for an optimizer."""
    cls: str
    lr: str                            # "lr" (torch) | "learning_rate" (paddle)
    decay_arg: str | None              # the argument decay is given through; None: it has none
    default_decay: float | None        # what leaving decay_arg out applies (None: no decay)
    # How way "decoupled" is built: "explicit" (the class, with p *= 1 - lr*c as its own
    # step before each update: SGDW), "flag" (decoupled_weight_decay=True), or the name of
    # the class that decays decoupled ("AdamW"); None: the way is not defined.
    decoupled: str | None = None
    shown_as: str = ""                 # how reports name it, if not by the class ("SGD(momentum)")
    # The argument that restricts decay to some parameters (way apply_decay_param_fun):
    # AdamW's apply_decay_param_fun(name) -> decay?, Lamb's exclude_from_weight_decay_fn(param) -> skip?
    decay_filter: str = ""

    @property
    def label(self) -> str:
        return self.shown_as or self.cls

    @property
    def decays_by_default(self) -> bool:
        return bool(self.default_decay)


@dataclass(frozen=True)
class OptimizerInfo:
    name: str
    doc: str
    words: tuple[Word, ...] = ()
    required: tuple[str, ...] = ()     # words a case must give
    torch: Native | None = None
    paddle: Native | None = None

    def native(self, framework: str) -> Native | None:
        return getattr(self, framework)

    @property
    def frameworks(self) -> tuple[str, ...]:
        return tuple(fw for fw in ("torch", "paddle") if self.native(fw) is not None)

    def word(self, name: str) -> Word | None:
        """The word a case key means: its name or one of its aliases."""
        return next((w for w in self.words if name == w.name or name in w.aliases), None)


def _both(name: str, kind: str, torch: tuple[str, Any] | None, paddle: tuple[str, Any] | None) -> Word:
    return Word(name, kind, {fw: v for fw, v in (("torch", torch), ("paddle", paddle)) if v is not None})


def _eps(torch: float | None, paddle: float | None) -> Word:
    return _both("eps", "positive", None if torch is None else ("eps", torch),
                 None if paddle is None else ("epsilon", paddle))


BETA1 = _both("beta1", "fraction", ("betas.0", 0.9), ("beta1", 0.9))
BETA2 = _both("beta2", "fraction", ("betas.1", 0.999), ("beta2", 0.999))
AMSGRAD = _both("amsgrad", "flag", ("amsgrad", False), ("amsgrad", False))


def _torch(cls: str, default_decay: float | None = 0, decoupled: str | None = None,
           decay_arg: str | None = "weight_decay", shown_as: str = "") -> Native:
    return Native(cls, "lr", decay_arg, default_decay, decoupled, shown_as)


def _paddle(cls: str, default_decay: float | None = None, decoupled: str | None = None,
            decay_arg: str | None = "weight_decay", decay_filter: str = "") -> Native:
    return Native(cls, "learning_rate", decay_arg, default_decay, decoupled, decay_filter=decay_filter)


_LIST = [
    OptimizerInfo("sgd", "plain SGD: w <- w - lr*g", (),
                  torch=_torch("SGD", decoupled="explicit"), paddle=_paddle("SGD", decoupled="explicit")),
    OptimizerInfo("momentum", "SGD with momentum: torch SGD(momentum=...), paddle Momentum", (
        _both("momentum", "fraction", ("momentum", 0), ("momentum", 0.9)),
        _both("nesterov", "flag", ("nesterov", False), ("use_nesterov", False)),
        _both("dampening", "fraction", ("dampening", 0), None)),
        required=("momentum",),
        torch=_torch("SGD", decoupled="explicit", shown_as="SGD(momentum)"),
        paddle=_paddle("Momentum", decoupled="explicit")),
    OptimizerInfo("adam", "Adam; way decoupled runs AdamW", (BETA1, BETA2, _eps(1e-8, 1e-8), AMSGRAD),
                  torch=_torch("Adam", decoupled="AdamW"), paddle=_paddle("Adam", decoupled="AdamW")),
    OptimizerInfo("adamw", "AdamW (decoupled decay; both default to weight_decay=0.01)",
                  (BETA1, BETA2, _eps(1e-8, 1e-8), AMSGRAD),
                  torch=_torch("AdamW", 0.01, decoupled="AdamW"),
                  paddle=_paddle("AdamW", 0.01, decoupled="AdamW", decay_filter="apply_decay_param_fun")),
    OptimizerInfo("adamax", "Adamax", (BETA1, BETA2, _eps(1e-8, 1e-8)),
                  torch=_torch("Adamax"), paddle=_paddle("Adamax")),
    OptimizerInfo("adagrad", "Adagrad (eps: torch 1e-10, paddle 1e-6)", (
        _eps(1e-10, 1e-6),
        _both("initial_accumulator_value", "number", ("initial_accumulator_value", 0),
              ("initial_accumulator_value", 0.0)),
        _both("lr_decay", "number", ("lr_decay", 0), None)),
        torch=_torch("Adagrad"), paddle=_paddle("Adagrad")),
    OptimizerInfo("adadelta", "Adadelta (rho: torch 0.9, paddle 0.95)", (
        _both("rho", "fraction", ("rho", 0.9), ("rho", 0.95)), _eps(1e-6, 1e-6)),
        torch=_torch("Adadelta"), paddle=_paddle("Adadelta")),
    OptimizerInfo("rmsprop", "RMSprop / RMSProp (rho is torch's alpha; eps inside paddle's sqrt)", (
        _both("rho", "fraction", ("alpha", 0.99), ("rho", 0.95)), _eps(1e-8, 1e-6),
        _both("momentum", "fraction", ("momentum", 0), ("momentum", 0.0)),
        _both("centered", "flag", ("centered", False), ("centered", False))),
        torch=_torch("RMSprop"), paddle=_paddle("RMSProp")),
    OptimizerInfo("nadam", "NAdam", (BETA1, BETA2, _eps(1e-8, 1e-8),
                                      _both("momentum_decay", "positive", ("momentum_decay", 0.004),
                                            ("momentum_decay", 0.004))),
                  torch=_torch("NAdam", decoupled="flag"), paddle=_paddle("NAdam")),
    OptimizerInfo("radam", "RAdam", (BETA1, BETA2, _eps(1e-8, 1e-8)),
                  torch=_torch("RAdam", decoupled="flag"), paddle=_paddle("RAdam")),
    OptimizerInfo("asgd", "ASGD: torch's averaged SGD; paddle's is SAG (another algorithm)", (
        _both("lambd", "number", ("lambd", 1e-4), None),
        _both("alpha", "positive", ("alpha", 0.75), None),
        _both("t0", "positive", ("t0", 1e6), None),
        _both("batch_num", "count", None, ("batch_num", 1))),
        torch=_torch("ASGD"), paddle=_paddle("ASGD")),
    OptimizerInfo("rprop", "Rprop: no decay argument in either framework (ParamAttr and manual only)", (
        _both("eta_minus", "fraction", ("etas.0", 0.5), ("etas.0", 0.5)),
        _both("eta_plus", "positive", ("etas.1", 1.2), ("etas.1", 1.2)),
        _both("step_size_min", "positive", ("step_sizes.0", 1e-6), ("learning_rate_range.0", 1e-5)),
        _both("step_size_max", "positive", ("step_sizes.1", 50), ("learning_rate_range.1", 50))),
        torch=_torch("Rprop", None, decay_arg=None), paddle=_paddle("Rprop", decay_arg=None)),
    OptimizerInfo("adafactor", "Adafactor (torch only; its weight_decay is decoupled)", (
        _both("beta2_decay", "real", ("beta2_decay", -0.8), None),
        _both("d", "positive", ("d", 1.0), None)),
        torch=_torch("Adafactor", 0.0)),
    OptimizerInfo("lamb", "Lamb (paddle only; decay inside the trust ratio, default 0.01)", (
        BETA1, BETA2, _eps(None, 1e-6), _both("always_adapt", "flag", None, ("always_adapt", False))),
        paddle=_paddle("Lamb", 0.01, decay_arg="lamb_weight_decay", decay_filter="exclude_from_weight_decay_fn")),
]
# A shared word (BETA1) keeps only the frameworks that have the optimizer.
_LIST = [OptimizerInfo(o.name, o.doc, tuple(Word(w.name, w.kind, {fw: v for fw, v in w.native.items()
                                                                  if fw in o.frameworks})
                                            for w in o.words if set(w.native) & set(o.frameworks)),
                       o.required, o.torch, o.paddle) for o in _LIST]
OPTIMIZERS: dict[str, OptimizerInfo] = {o.name: o for o in _LIST}


def native_of(framework: str, cls: str) -> Native | None:
    """The model's record of a framework class (the first optimizer built with it)."""
    return next((i.native(framework) for i in OPTIMIZERS.values()
                 if i.native(framework) is not None and i.native(framework).cls == cls), None)


# Native arguments paddle wants as a function: a number given for one in
# [optimizer.paddle] is passed as `lambda param: number` (TOML has no functions).
CONSTANT_FUNCTIONS = {"paddle": ("lr_ratio",)}


# ---------------------------------------------------------------- constructions

@dataclass(frozen=True)
class TensorValue:
    """A decay argument given as a 0-d float32 tensor of the framework (way weight_decay_tensor)."""
    value: float | int


@dataclass(frozen=True)
class Construction:
    """How one run builds its optimizer: the class, its keyword arguments besides the
    parameters (a Regularizer value means the framework's L2Decay/L1Decay, a TensorValue
    its tensor), and whether decoupled decay is applied as its own step before each
    update (SGDW)."""
    cls: str
    kwargs: dict[str, Any]
    explicit_decoupled: bool = False


# Ways whose optimizer gets the case's coefficient as its decay argument, and the
# regularizer kind of the ways that pass a paddle regularizer object instead.
WITH_COEFF = ("weight_decay", "manual+weight_decay", "groups+weight_decay", "param_attr+weight_decay",
              "apply_decay_param_fun")
WITH_REGULARIZER = {"l2decay": "l2", "l1decay": "l1", "param_attr+l2decay": "l2", "param_attr+l1decay": "l1"}
# Ways whose groups say their own decay: the optimizer-level argument is left out, so a
# group without the key gets what leaving it out means (AdamW: 0.01).
GROUP_DEFAULT = ("groups", "param_attr+groups")


def native_kwargs(info: OptimizerInfo, framework: str, lr: float, words: dict[str, Any],
                  overrides: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of a case's words, translated, then its native overrides
    verbatim. A tuple argument given in part keeps the native default in its other slots."""
    native = info.native(framework)
    out: dict[str, Any] = {native.lr: lr}
    slots: dict[str, dict[int, Any]] = {}
    for word in info.words:
        if word.name not in words or framework not in word.native:
            continue
        name = word.native_name(framework)
        base, dot, slot = name.partition(".")
        if dot:
            slots.setdefault(base, {})[int(slot)] = words[word.name]
        else:
            out[name] = words[word.name]
    for base, given in slots.items():
        defaults = {int(w.native_name(framework).partition(".")[2]): w.default(framework)
                    for w in info.words if (w.native_name(framework) or "").partition(".")[0] == base}
        out[base] = tuple(given.get(i, defaults[i]) for i in range(len(defaults)))
    out.update(overrides)
    return out


def construction(info: OptimizerInfo, framework: str, lr: float, words: dict[str, Any],
                 overrides: dict[str, Any], way: str, coeff: float | int) -> Construction:
    """The optimizer a compare run of `way` builds (README, "Ways")."""
    native = info.native(framework)
    kwargs = native_kwargs(info, framework, lr, words, overrides)
    if way == "decoupled":
        if native.decoupled == "explicit":
            return Construction(native.cls, _no_decay(native, kwargs), explicit_decoupled=True)
        if native.decoupled == "flag":
            return Construction(native.cls, {**kwargs, native.decay_arg: coeff, "decoupled_weight_decay": True})
        other = OPTIMIZERS[native.decoupled.lower()].native(framework)
        return Construction(other.cls, {**kwargs, other.decay_arg: coeff})
    if way in WITH_COEFF:
        return Construction(native.cls, {**kwargs, native.decay_arg: coeff})
    if way == "weight_decay_tensor":
        return Construction(native.cls, {**kwargs, native.decay_arg: TensorValue(coeff)})
    if way in WITH_REGULARIZER:
        return Construction(native.cls, {**kwargs, native.decay_arg: Regularizer(WITH_REGULARIZER[way], coeff)})
    if way == "default" or way in GROUP_DEFAULT:
        return Construction(native.cls, kwargs)
    return Construction(native.cls, _no_decay(native, kwargs))


# explain's ways (catalogue.WAYS): every class given its decay one way, the argument said
# explicitly ("none" is 0.0 even where leaving it out means no decay). "decoupled" is
# torch's decoupled_weight_decay=True on any class: the ones without it refuse.
EXPLAIN_DECAY = {"none": 0.0, "param_attr": 0.0, "param_attr_l1": 0.0, "param_attr_bias": 0.0, "manual": 0.0,
                 "weight_decay": "c", "param_attr+weight_decay": "c", "decoupled": "c", "l2decay": "l2",
                 "l1decay": "l1", "clip+manual": 0.0, "clip+weight_decay": "c"}
# explain's clip ways ("clip+WAY"): WAY under this gradient clip (the explain layer's loss
# gradient has a global norm ~1, so the clip scales it by ~0.1 and the rule of a manual
# term changes: clipped_l2, while the optimizer's weight_decay stays coupled_l2).
EXPLAIN_CLIP = Clip("global_norm", 0.1)
# Where the decay of an explain way comes from besides the optimizer: a ParamAttr
# regularizer (parameter, kind; coefficient param_attr_coeff) or loss terms.
EXPLAIN_ATTRS = {"param_attr": ("weight", "l2"), "param_attr+weight_decay": ("weight", "l2"),
                 "param_attr_l1": ("weight", "l1"), "param_attr_bias": ("bias", "l2")}
# The ways whose decay comes from there alone: a class without a decay argument gets none.
EXPLAIN_ALONE = ("param_attr", "param_attr_l1", "param_attr_bias", "manual", "clip+manual")


def explain_manual(coeff: float) -> dict[str, Regularizer]:
    """explain's way "manual": 0.5*c*sum(p^2) of the weight and the bias added to the loss."""
    return {"weight": Regularizer("l2", coeff), "bias": Regularizer("l2", coeff)}


def explain_construction(framework: str, cls: str, options: dict[str, Any], way: str,
                         coeff: float) -> tuple[Construction, str]:
    """An explain item's optimizer, and the name its decay argument has (a weight group
    of way "groups" carries it). A class without a decay argument is given weight_decay,
    to show how it refuses -- except under the EXPLAIN_ALONE ways."""
    native = native_of(framework, cls)
    arg = (native.decay_arg if native else None) or "weight_decay"
    kwargs = dict(options)
    value = EXPLAIN_DECAY.get(way)
    if value is not None and not (way in EXPLAIN_ALONE and native is not None and native.decay_arg is None):
        kwargs[arg] = coeff if value == "c" else Regularizer(value, coeff) if value in ("l2", "l1") else value
    if way == "decoupled":
        kwargs["decoupled_weight_decay"] = True
    return Construction(cls, kwargs), arg


def _no_decay(native: Native, kwargs: dict[str, Any]) -> dict[str, Any]:
    # Leaving the argument out decays with AdamW's and Lamb's 0.01: "no decay" says 0.0.
    return {**kwargs, native.decay_arg: 0.0} if native.decays_by_default else kwargs


def defines(info: OptimizerInfo, framework: str, way: str) -> str:
    """"" if the way is defined for this optimizer in this framework, else why not."""
    native = info.native(framework)
    if way == "decoupled" and native.decoupled is None:
        return f"{framework} {native.cls} has no decoupled decay (way 'decoupled' is not defined for it)"
    if way == "apply_decay_param_fun" and not native.decay_filter:
        return ("way 'apply_decay_param_fun' needs an optimizer that restricts its decay to some "
                "parameters (adamw: apply_decay_param_fun, lamb: exclude_from_weight_decay_fn)")
    # Groups carry the decay argument as a key too.
    needs_arg = (way in WITH_COEFF or way in WITH_REGULARIZER or "groups" in way
                 or way == "weight_decay_tensor")
    if needs_arg and native.decay_arg is None:
        others = "none, default, manual" + (", param_attr" if framework == "paddle" else "")
        return f"{framework} {native.cls} takes no decay argument (ways without one: {others})"
    return ""


# ---------------------------------------------------------------- defaults and their differences

@dataclass(frozen=True)
class DefaultDifference:
    word: str
    torch: tuple[str, Any]
    paddle: tuple[str, Any]

    def __str__(self) -> str:
        return (f"{self.word} not set: torch {_shown(self.torch[0])}={self.torch[1]!r} vs "
                f"paddle {_shown(self.paddle[0])}={self.paddle[1]!r}")


def _shown(name: str) -> str:
    base, dot, slot = name.partition(".")
    return f"{base}[{slot}]" if dot else name


def default_differences(info: OptimizerInfo, words: dict[str, Any],
                        overrides: dict[str, dict[str, Any]]) -> list[DefaultDifference]:
    """Words the case left to each framework's default where the two defaults differ
    (the bug class of converted code: torch Adagrad eps=1e-10 vs paddle epsilon=1e-6)."""
    out = []
    for w in info.words:
        if w.name in words or set(w.native) != {"torch", "paddle"}:
            continue
        t, p = w.native["torch"], w.native["paddle"]
        if any(n.partition(".")[0] in overrides.get(fw, {}) for fw, (n, _) in w.native.items()):
            continue
        if not same_value(t[1], p[1]):
            out.append(DefaultDifference(w.name, t, p))
    return out


def same_value(a: Any, b: Any) -> bool:
    """Equal, numbers within float32's resolution (paddle holds hyper-parameters in float32)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-7, abs_tol=0.0)
    return a == b


def pair_names(torch_cls: str, paddle_cls: str) -> dict[str, str]:
    """torch native name -> paddle native name for the same user word, for a class pair
    (both learning rates included); empty if no optimizer pairs these classes."""
    for info in OPTIMIZERS.values():
        if info.torch and info.paddle and (info.torch.cls, info.paddle.cls) == (torch_cls, paddle_cls):
            names = {"lr": "learning_rate"}
            names.update({w.native_name("torch"): w.native_name("paddle") for w in info.words
                          if set(w.native) == {"torch", "paddle"}})
            return names
    return {}


def get_native(hyper: dict[str, Any], name: str) -> Any:
    """A native value from an optimizer's hyper-parameters; "betas.0" reads a slot."""
    base, dot, slot = name.partition(".")
    value = hyper.get(base)
    if dot and isinstance(value, (list, tuple)) and int(slot) < len(value):
        return value[int(slot)]
    return None if dot else value


def set_native(hyper: dict[str, Any], name: str, value: Any) -> None:
    base, dot, slot = name.partition(".")
    if not dot:
        hyper[base] = value
    elif isinstance(hyper.get(base), (list, tuple)):
        items = list(hyper[base])
        items[int(slot)] = value
        hyper[base] = items

