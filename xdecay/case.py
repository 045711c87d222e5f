"""Case files: strict TOML loading into typed records.

A case fixes everything a run needs — layer, seed, data, optimizer, decay
coefficients, steps — plus the runs to make and what is expected of them.
Unknown keys and wrong types are errors, because a typo in a verifier's input
would otherwise silently verify something else.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine.clipping import KINDS as CLIP_KINDS, Clip
from .engine.schedules import KINDS as SCHEDULE_KINDS, WARMUP, Schedule
from .engine.loop import Loop
from .engine.precision import DTYPES, Precision
from .engine.optimizers import OPTIMIZERS, OptimizerInfo, Word, defines
from .engine.regularizers import Regularizer
from .engine.rules import FLOAT32_MAX, RULE_FAMILIES, canonical_rule, float32_problem, parse_decimal
from .engine.layers import KINDS, Layer, packed_together
from .engine.spec import Spec, build_layer_spec, build_spec
from .errors import CaseError, UsageError

FRAMEWORKS = ("torch", "paddle")
# "zero": mean(output) * 0, a zero loss gradient (the decay acting alone).
LOSSES = ("mean", "mse", "zero")

# The ways each adapter implements (README, "Ways"). The configurable parts — which
# ParamAttr regularizers, which manual terms, which groups — come from [decay]; which
# optimizer builds each way comes from engine/optimizers.py.
WAYS: dict[str, tuple[str, ...]] = {
    "torch": ("none", "default", "weight_decay", "weight_decay_tensor", "manual", "manual+weight_decay", "decoupled", "groups",
              "groups+weight_decay", "after_groups"),
    "paddle": ("none", "default", "weight_decay", "weight_decay_tensor", "l2decay", "l1decay", "param_attr",
               "param_attr+weight_decay", "param_attr+l2decay", "param_attr+l1decay", "manual",
               "manual+weight_decay", "decoupled", "groups", "groups+weight_decay",
               "param_attr+groups", "after_groups",
               "apply_decay_param_fun"),
}

# Which ways each optimizer supports in each framework: a way is there only if the
# adapter builds the decay its name promises with that optimizer (issue 11's table, now
# derived from the optimizer model: optimizers.defines says why a way is not). A pair
# missing is an optimizer the framework lacks.
OPTIMIZER_WAYS: dict[tuple[str, str], tuple[str, ...]] = {
    (fw, name): tuple(w for w in WAYS[fw] if not defines(info, fw, w))
    for name, info in OPTIMIZERS.items() for fw in info.frameworks}
MAX_FEATURES = 4096
MAX_BATCH = 4096
MAX_STEPS = 10_000
MAX_SNAPSHOT_BYTES = 16 * 2**30   # every run's snapshots of a case, together


def snapshot_bytes(elements: int, steps: int, runs: int) -> int:
    """float32 snapshots of `elements` parameters before and after each of `steps` steps, in `runs` runs."""
    return 4 * elements * (steps + 1) * runs


@dataclass(frozen=True)
class Group:
    """A parameter group; weight_decay is given (a number, or None) only if has_decay.
    lr_scale: the group's learning rate as a factor of [optimizer] lr (None: no lr key),
    written once; torch gets lr = lr_scale * lr (absolute), paddle learning_rate =
    lr_scale (its group learning_rate is a multiplier on the optimizer's)."""
    params: tuple[str, ...]
    has_decay: bool
    weight_decay: float | int | None = None
    lr_scale: float | int | None = None


@dataclass(frozen=True)
class Decay:
    coeff: float | int                    # the optimizer's weight_decay / L2Decay / L1Decay, as written
    param_attr: dict[str, Regularizer]    # ParamAttr regularizers of the param_attr* ways
    manual: dict[str, Regularizer]        # loss terms of the manual way
    groups: tuple[Group, ...]             # parameter groups of the groups ways
    decay_params: tuple[str, ...]         # way apply_decay_param_fun: the parameters decayed
    param_attr_lr: dict[str, float | int] = field(default_factory=dict)   # paddle ParamAttr(learning_rate=k)

    def coefficients(self) -> tuple[float, ...]:
        """Every coefficient in play, for rule inference and the resolution check."""
        values = [self.coeff] + [r.coeff for r in (*self.param_attr.values(), *self.manual.values())]
        values += [float(g.weight_decay) for g in self.groups
                   if g.has_decay and g.weight_decay is not None]
        # A decay applied at the optimizer's lr, not the group's lr_scale * lr, shows as
        # c / lr_scale at the group's effective lr: a candidate, so inference can name it.
        values += [float(c) / g.lr_scale for g in self.groups if g.lr_scale is not None
                   for c in [self.coeff] + ([g.weight_decay] if g.has_decay and g.weight_decay else [])]
        values += [float(c) / k for k in self.param_attr_lr.values()
                   for c in [self.coeff] + [r.coeff for r in self.param_attr.values()]]
        return tuple(sorted(set(values)))

    def lr_scales(self) -> dict[str, float]:
        """Each parameter's group lr_scale, for the groups ways (1 where none is given)."""
        return {p: float(g.lr_scale) for g in self.groups if g.lr_scale is not None for p in g.params}


@dataclass(frozen=True)
class Optimizer:
    name: str                          # engine/optimizers.py OPTIMIZERS
    lr: float | int
    hyper: dict[str, Any]              # the words the case gives (not the defaults), as written
    native: dict[str, dict[str, Any]]  # framework -> [optimizer.FRAMEWORK]: native arguments, verbatim

    @property
    def info(self) -> OptimizerInfo:
        return OPTIMIZERS[self.name]


@dataclass(frozen=True)
class Accumulate:
    """[accumulate]: the batch split into micro_batches (contiguous rows), one backward
    each, one optimizer step; a manual term joins every micro-batch's loss."""
    micro_batches: int
    divide_loss: bool        # each micro-batch's loss (manual term included) divided by micro_batches


@dataclass(frozen=True)
class Expectation:
    kind: str                  # "equal" | "differ" | "rule" | "rejects"
    runs: tuple[str, ...]
    param: str = "all"         # "all" or one parameter: which parameters are compared
    note: str = ""
    rule: str = ""             # "rule": the rule the run's parameter must follow;
                               # "rejects": words the framework's error message must contain


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    description: str
    seed: int
    steps: int
    layer: Layer
    batch: int
    loss: str
    optimizer: Optimizer
    decay: Decay
    runs: dict[str, tuple[str, ...]]          # framework -> ways
    expectations: tuple[Expectation, ...]
    atol: float | None = None                 # fixed tolerances override the derived ones
    rtol: float | None = None
    clip: Clip | None = None                  # [clip]: gradient clipping between backward and step
    schedule: Schedule | None = None          # [schedule]: the lr of each step
    accumulate: Accumulate | None = None      # [accumulate]: micro-batches per step
    precision: Precision | None = None        # [precision]: low-precision parameters or autocast
    min_power: float | None = None            # every check must catch this relative coefficient error
    fresh: bool = False                       # [data] fresh: a new batch every step (Spec.step)

    def loop(self, steps: int) -> Loop:
        """What rule inference must replay of the loop around the step, for `steps` steps."""
        a = self.accumulate or Accumulate(1, True)
        return Loop(self.clip, self.schedule.lrs(float(self.optimizer.lr), steps) if self.schedule else None,
                    a.micro_batches, a.divide_loss, self.decay.lr_scales(), float(self.optimizer.lr),
                    {p: float(k) for p, k in self.decay.param_attr_lr.items()},
                    {p: i for i, g in enumerate(self.decay.groups) for p in g.params})

    def run_names(self) -> list[str]:
        return [f"{fw}:{way}" for fw, ways in self.runs.items() for way in ways]

    def snapshot_bytes(self, steps: int | None = None) -> int:
        """What every run's float32 parameter snapshots take together (workers write them
        to files the parent maps): a case must keep it within MAX_SNAPSHOT_BYTES."""
        return snapshot_bytes(self.layer.element_count(), steps or self.steps, len(self.run_names()))

    def check_size(self, steps: int | None = None, option: str = "--steps") -> None:
        """The case's own steps (a CaseError naming the key), or `steps` given as `option`
        (a UsageError)."""
        size = self.snapshot_bytes(steps)
        if size > MAX_SNAPSHOT_BYTES:
            problem = (f"{steps or self.steps} steps of this layer in {len(self.run_names())} runs keep "
                       f"{size / 2**30:.1f} GiB of snapshots (at most {MAX_SNAPSHOT_BYTES / 2**30:g} GiB)")
            if steps is None:
                raise CaseError(self.path, "steps", problem)
            raise UsageError(f"{option}: {self.path}: {problem}")

    def spec(self, loss: str | None = None) -> Spec:
        """The start of every run (with another loss: what power.py's replays start from)."""
        target = (loss or self.loss) == "mse"
        if self.layer.kind != "linear":
            return build_layer_spec(self.layer, self.seed, self.batch, target)
        return build_spec(self.seed, self.layer.in_features, self.layer.out_features, self.batch,
                          bias=self.layer.bias, norm=self.layer.norm, target=target, fresh=self.fresh)


class _Table:
    """Reads one TOML table, tracking which keys were used so leftovers are errors."""

    def __init__(self, path: str, prefix: str, data: Any):
        self.path, self.prefix = path, prefix
        if not isinstance(data, dict):
            raise CaseError(path, prefix.rstrip(".") or None, f"must be a table, got {_kind(data)}")
        self.data, self.used = data, set()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def error(self, name: str, problem: str) -> CaseError:
        return CaseError(self.path, self.key(name), problem)

    def get(self, name: str, types: type | tuple[type, ...], default: Any = None,
            required: bool = False) -> Any:
        self.used.add(name)
        if name not in self.data:
            if required:
                raise self.error(name, "is required")
            return default
        value = self.data[name]
        # TOML booleans are ints to Python; never accept one where a number is meant.
        if isinstance(value, bool) and bool not in _as_tuple(types):
            raise self.error(name, f"must be {_names(types)}, got boolean")
        if not isinstance(value, types):
            raise self.error(name, f"must be {_names(types)}, got {_kind(value)}")
        return value

    def table(self, name: str, required: bool = True) -> _Table:
        value = self.get(name, dict, default={}, required=required)
        return _Table(self.path, f"{self.key(name)}.", value)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _names(types: type | tuple[type, ...]) -> str:
    if set(_as_tuple(types)) == {int, float}:
        return "a number"
    words = {int: "an integer", float: "a number", str: "a string", bool: "a boolean",
             list: "an array", dict: "a table"}
    return " or ".join(words.get(t, t.__name__) for t in _as_tuple(types))


def _kind(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)


def _int_in(t: _Table, name: str, lo: int, hi: int, default: int | None = None) -> int:
    value = t.get(name, int, default=default, required=default is None)
    if not lo <= value <= hi:
        raise t.error(name, f"must be in [{lo}, {hi}], got {value}")
    return value


def _number(t: _Table, name: str, default: float | None = None, *, positive: bool = False,
            below_one: bool = False, signed: bool = False, as_written: bool = False) -> float | int:
    """A finite number within float32 (>= 0 unless `signed`); a float unless `as_written`,
    which keeps an int an int (frameworks treat them differently in places)."""
    written = value = t.get(name, (int, float), default=default, required=default is None)
    if isinstance(value, int) and abs(value) > FLOAT32_MAX:     # float() of a huge int overflows
        raise t.error(name, f"must fit in float32 (|x| <= {FLOAT32_MAX:.4g}), got an integer of "
                      f"{value.bit_length()} bits")
    value = float(value)
    if not math.isfinite(value):
        raise t.error(name, f"must be finite, got {value}")
    problem = float32_problem(value)
    if problem:
        raise t.error(name, problem)
    if positive and value <= 0:
        raise t.error(name, f"must be > 0, got {value}")
    if not positive and not signed and value < 0:
        raise t.error(name, f"must be >= 0, got {value}")
    if below_one and value >= 1:
        raise t.error(name, f"must be < 1, got {value}")
    return written if as_written else value


def _choice(t: _Table, name: str, choices: tuple[str, ...], default: str | None = None) -> str:
    value = t.get(name, str, default=default, required=default is None)
    if value not in choices:
        raise t.error(name, f"unknown value {value!r} (expected one of: {', '.join(choices)})")
    return value


def _optimizer(t: _Table) -> Optimizer:
    """[optimizer]: name, lr, the optimizer's words (or their native aliases), and
    [optimizer.torch] / [optimizer.paddle] native arguments passed verbatim."""
    name = _choice(t, "name", tuple(OPTIMIZERS))
    info = OPTIMIZERS[name]
    lr = _number(t, _given_as(t, "lr", ("learning_rate",)), positive=True, as_written=True)
    hyper: dict[str, Any] = {}
    for word in info.words:
        key = _given_as(t, word.name, word.aliases)
        if key not in t.data:
            t.used.add(key)
            if word.name in info.required:
                raise t.error(word.name, "is required")
            continue
        hyper[word.name] = _word(t, key, word)
    native = {fw: _native(t, fw, info, hyper) for fw in FRAMEWORKS if fw in t.data}
    t.finish()
    return Optimizer(name, lr, hyper, native)


def _given_as(t: _Table, name: str, aliases: tuple[str, ...]) -> str:
    """The key a word is written as: its name or one alias (epsilon for eps), not two."""
    keys = [k for k in (name, *aliases) if k in t.data]
    if len(keys) > 1:
        raise t.error(keys[1], f"gives {name} a second time (as {keys[0]} and {keys[1]})")
    return keys[0] if keys else name


def _word(t: _Table, key: str, word: Word) -> Any:
    kind = word.kind
    if kind == "flag":
        return t.get(key, bool, required=True)
    if kind == "count":
        return _int_in(t, key, 1, 2**31 - 1)
    return _number(t, key, positive=kind == "positive", below_one=kind == "fraction",
                   signed=kind == "real", as_written=True)


def _native(t: _Table, fw: str, info: OptimizerInfo, hyper: dict[str, Any]) -> dict[str, Any]:
    """[optimizer.FRAMEWORK]: native keyword arguments, passed verbatim (the framework
    judges them; a refusal is the run's error)."""
    native = info.native(fw)
    if native is None:
        raise t.error(fw, f"{fw} has no optimizer {info.name!r}")
    sub = t.table(fw)
    given = {w.native_name(fw).partition(".")[0]: w.name for w in info.words
             if w.name in hyper and fw in w.native}
    out: dict[str, Any] = {}
    for key, value in sub.data.items():
        if key in ("params", "parameters"):
            raise sub.error(key, "the parameters come from the layer and [decay]")
        if key in (native.lr, "lr", "learning_rate"):
            raise sub.error(key, "give the learning rate as optimizer.lr")
        if key == native.decay_arg:
            raise sub.error(key, "the decay argument is set by [decay] and each run's way")
        if key in given:
            raise sub.error(key, f"sets what optimizer.{given[key]} already gives")
        if not _plain_value(value):
            raise sub.error(key, f"must be a finite number, a boolean, a string or an array of them, "
                            f"got {_kind(value)}")
        out[key] = sub.get(key, (bool, int, float, str, list))
    sub.finish()
    return out


def _plain_value(value: Any) -> bool:
    if isinstance(value, list):
        return all(_plain_value(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (bool, int, str))


def _runs(t: _Table, optimizer: Optimizer) -> dict[str, tuple[str, ...]]:
    info = optimizer.info
    runs: dict[str, tuple[str, ...]] = {}
    for fw in FRAMEWORKS:
        ways = t.get(fw, list, default=[])
        if ways and info.native(fw) is None:
            raise t.error(fw, f"{fw} has no optimizer {info.name!r}")
        for i, way in enumerate(ways):
            if not isinstance(way, str):
                raise t.error(f"{fw}[{i}]", f"must be a string, got {_kind(way)}")
            if way not in WAYS[fw]:
                raise t.error(fw, f"unknown way {way!r} for {fw} (expected one of: {', '.join(WAYS[fw])})")
            why = defines(info, fw, way)
            if why:
                defined = [o for o in OPTIMIZERS if way in OPTIMIZER_WAYS.get((fw, o), ())]
                raise t.error(fw, f"way {way!r} is not defined for optimizer {info.name!r} in {fw} "
                              f"(defined for: {', '.join(defined)}): {why}")
        if len(set(ways)) != len(ways):
            raise t.error(fw, "lists a way twice")
        if ways:
            runs[fw] = tuple(ways)
        for word in info.words:
            if ways and word.name in optimizer.hyper and fw not in word.native:
                raise CaseError(t.path, "optimizer." + word.name,
                                f"{fw} {info.native(fw).cls} has no such argument; set it for the other "
                                f"framework only in [optimizer.{'torch' if fw == 'paddle' else 'paddle'}]")
    t.finish()
    if not runs:
        raise CaseError(t.path, "runs", "names no runs")
    return runs


def _expectations(path: str, data: Any, known: set[str], params: tuple[str, ...]) -> tuple[Expectation, ...]:
    if not isinstance(data, list):
        raise CaseError(path, "expect", f"must be an array of tables ([[expect]]), got {_kind(data)}")
    out: list[Expectation] = []
    for i, item in enumerate(data):
        t = _Table(path, f"expect[{i}].", item)
        kinds = [k for k in ("equal", "differ", "rule", "rejects") if k in item]
        if len(kinds) != 1:
            raise CaseError(path, f"expect[{i}]",
                            "needs exactly one of 'equal', 'differ', 'rule' or 'rejects'")
        kind = kinds[0]
        if kind == "rule":
            rule = t.get("rule", str, required=True)
            if canonical_rule(rule) is None:
                raise t.error("rule", f"not a rule: {rule!r} (none, FAMILY@C joined with '+', or "
                              f"ambiguous(a|b); FAMILY one of {', '.join(RULE_FAMILIES)}, each at most "
                              f"once; C a plain decimal that float32 holds)")
            rule = canonical_rule(rule)
            runs = [t.get("run", str, required=True)]
            param = _choice(t, "param", params)
        elif kind == "rejects":
            runs = [t.get("rejects", str, required=True)]
            rule = t.get("message", str, required=True)
            if not rule.strip():
                # "" is in every error message: the check could not fail.
                raise t.error("message", "must not be empty (words the error message must contain)")
            param = "all"
        else:
            rule = ""
            runs = t.get(kind, list, required=True)
            param = _choice(t, "param", ("all",) + params, default="all")
            if len(runs) < 2:
                raise t.error(kind, "needs at least two runs")
        note = t.get("note", str, default="")
        t.finish()
        key = {"rule": "run"}.get(kind, kind)
        for run in runs:
            if not isinstance(run, str):
                raise t.error(key, f"must list run names, got {_kind(run)}")
            if run not in known:
                raise t.error(key, f"names run {run!r}, which [runs] does not make")
        if len(set(runs)) != len(runs):
            raise t.error(key, "lists a run twice")
        e = Expectation(kind, tuple(runs), param, note, rule)
        # A repeated check is a slip in the file; kept, it would be run and counted twice.
        for j, other in enumerate(out):
            again = _checks(other) & _checks(e)
            if again:
                raise CaseError(path, f"expect[{i}]", f"repeats expect[{j}] ({_says(min(again))})")
        out.append(e)
    _check_consistent(path, out)
    return tuple(out)


def _checks(e: Expectation) -> set[tuple[str, ...]]:
    """The single checks an expectation makes, whatever the order of its runs or its
    note: each pair of an equal/differ set (per param), a rule for a run's parameter
    (two for one parameter: one is a slip, or a contradiction), a refusal's words."""
    if e.kind in ("equal", "differ"):
        return {(e.kind, *sorted((a, b)), e.param) for i, a in enumerate(e.runs) for b in e.runs[i + 1:]}
    if e.kind == "rule":
        return {(e.kind, e.runs[0], e.param)}
    return {(e.kind, e.runs[0], e.rule)}


def _says(check: tuple[str, ...]) -> str:
    kind, *what = check
    if kind in ("equal", "differ"):
        return f"{kind} {what[0]} and {what[1]}, param {what[2]}"
    if kind == "rule":
        return f"a rule for {what[0]} {what[1]}"
    return f"rejects {what[0]} with {what[1]!r}"


def _check_consistent(path: str, expectations: list[Expectation]) -> None:
    """Two runs claimed both equal and different is a contradiction in the file itself."""
    equal_pairs = {(frozenset((a, b)), e.param) for e in expectations if e.kind == "equal"
                   for a in e.runs for b in e.runs if a != b}
    for i, e in enumerate(expectations):
        if e.kind == "differ":
            for a in e.runs:
                for b in e.runs:
                    if a < b and (frozenset((a, b)), e.param) in equal_pairs:
                        raise CaseError(path, f"expect[{i}].differ",
                                        f"contradicts an 'equal' expectation for {a} and {b}")


def _regularizer(t: _Table, key: str, value: Any) -> Regularizer:
    """"l2@0.5" or "l1@0.1": C a plain decimal or scientific number (rules.DECIMAL)."""
    kind, sep, coeff = value.partition("@") if isinstance(value, str) else ("", "", "")
    c = parse_decimal(coeff)
    if not sep or kind not in ("l2", "l1") or c is None or c > FLOAT32_MAX:
        raise t.error(key, f"must be \"l2@C\" or \"l1@C\" with C a plain decimal number >= 0 "
                      f"(like 0.5 or 1e-3) that fits in float32, got {value!r}")
    problem = float32_problem(c)
    if problem:
        raise t.error(key, problem)
    return Regularizer(kind, c)


def _param_map(t: _Table, name: str, params: tuple[str, ...],
               default: dict[str, Regularizer]) -> dict[str, Regularizer]:
    if name not in t.data:
        t.used.add(name)
        return default
    sub = t.table(name)
    out = {}
    for p in params:
        if p in sub.data:
            out[p] = _regularizer(sub, p, sub.get(p, str))
    sub.finish()
    return out


def _param_list(t: _Table, key: str, value: Any, params: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise t.error(key, f"must be a non-empty array of parameter names, got {_kind(value)}")
    for p in value:
        if p not in params:
            raise t.error(key, f"unknown parameter {p!r} (this layer has: {', '.join(params)})")
        if value.count(p) > 1:
            raise t.error(key, f"lists parameter {p!r} twice")
    return tuple(value)


def _groups(t: _Table, params: tuple[str, ...], weights: tuple[str, ...], coeff: float) -> tuple[Group, ...]:
    """[[decay.groups]]: params = [...], weight_decay = number | "None" | absent. The
    default: the layer's weights (seed 001) decayed by coeff, the rest without the key."""
    if "groups" not in t.data:
        t.used.add("groups")
        rest = tuple(p for p in params if p not in weights)
        return (Group(weights, True, coeff),) + ((Group(rest, False),) if rest else ())
    data = t.get("groups", list)
    groups, seen = [], []
    for i, item in enumerate(data):
        g = _Table(t.path, f"{t.key('groups')}[{i}].", item)
        members = _param_list(g, "params", g.get("params", list, required=True), params)
        has = "weight_decay" in item
        value = g.get("weight_decay", (int, float, str)) if has else None
        if isinstance(value, str) and value != "None":
            raise g.error("weight_decay", f"must be a number or \"None\", got {value!r}")
        if isinstance(value, (int, float)) and not 0 <= value <= FLOAT32_MAX:     # NaN fails too
            raise g.error("weight_decay", f"must be finite, >= 0 and fit in float32, got {value}")
        problem = float32_problem(value) if isinstance(value, (int, float)) else None
        if problem:
            raise g.error("weight_decay", problem)
        scale = _number(g, "lr_scale", None, positive=True, as_written=True) if "lr_scale" in item else None
        g.used.add("lr_scale")
        g.finish()
        seen += members
        groups.append(Group(members, has, None if value == "None" else value, scale))
    if sorted(seen) != sorted(params):
        raise t.error("groups", f"must list every parameter exactly once ({', '.join(params)})")
    return tuple(groups)


def _decay(t: _Table, layer: Layer) -> Decay:
    params, weights = layer.params, layer.roles("weight")
    coeff = _number(t, "coeff", as_written=True)
    pa = _number(t, "param_attr_coeff", coeff)
    param_attr = _param_map(t, "param_attr", params, {w: Regularizer("l2", pa) for w in weights})
    manual = _param_map(t, "manual", params, {p: Regularizer("l2", coeff) for p in params})
    groups = _groups(t, params, weights, coeff)
    decay_params = (_param_list(t, "decay_params", t.get("decay_params", list), params)
                    if "decay_params" in t.data else weights)
    t.used.add("decay_params")
    param_attr_lr = {}
    if "param_attr_lr" in t.data:
        sub = t.table("param_attr_lr")
        param_attr_lr = {p: _number(sub, p, positive=True, as_written=True) for p in params if p in sub.data}
        sub.finish()
    t.used.add("param_attr_lr")
    t.finish()
    return Decay(coeff, param_attr, manual, groups, decay_params, param_attr_lr)


def _clip(t: _Table, params: tuple[str, ...] = ()) -> Clip:
    """[clip]: kind = "global_norm" | "norm" | "value", max = a number > 0, params = the
    parameters clipped (default: all; paddle's ParamAttr(need_clip=False) on the others)."""
    clip = Clip(_choice(t, "kind", CLIP_KINDS), _number(t, "max", positive=True),
                _param_list(t, "params", t.get("params", list), params) if "params" in t.data else None)
    t.used.add("params")
    t.finish()
    return clip


def _schedule(t: _Table) -> Schedule:
    """[schedule]: kind and its words (README, "Case files"); each framework's own
    checks on them are not repeated here — a refusal is the run's error."""
    kind = _choice(t, "kind", SCHEDULE_KINDS)
    words: dict[str, Any] = {}
    if kind == "step":
        words["step_size"] = _int_in(t, "step_size", 1, MAX_STEPS)
    if kind == "multistep":
        ms = t.get("milestones", list, required=True)
        if not ms or not all(isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= MAX_STEPS for m in ms) \
                or ms != sorted(set(ms)):
            raise t.error("milestones", f"must be increasing integers in [1, {MAX_STEPS}], got {ms!r}")
        words["milestones"] = ms
    if kind in ("step", "multistep"):
        words["gamma"] = _number(t, "gamma", 0.1, positive=True)
    if kind == "cosine":
        words["t_max"] = _int_in(t, "t_max", 1, MAX_STEPS)
    if kind == "cosine_restarts":
        words["t_0"] = _int_in(t, "t_0", 1, MAX_STEPS)
        words["t_mult"] = _int_in(t, "t_mult", 1, 100, default=1)
    if kind in ("cosine", "cosine_restarts"):
        words["eta_min"] = _number(t, "eta_min", 0.0)
    if kind == "linear":
        words["start_factor"] = _number(t, "start_factor", positive=True)
        words["end_factor"] = _number(t, "end_factor", 1.0)
        words["total_steps"] = _int_in(t, "total_steps", 1, MAX_STEPS)
        for key in ("start_factor", "end_factor"):
            if words[key] > 1:
                raise t.error(key, f"must be <= 1, got {words[key]}")
    if kind == "onecycle":
        # torch OneCycleLR's words and defaults; paddle's end_learning_rate follows from them.
        words["total_steps"] = _int_in(t, "total_steps", 2, MAX_STEPS)
        words["pct_start"] = _number(t, "pct_start", 0.3, positive=True, below_one=True)
        words["div_factor"] = _number(t, "div_factor", 25.0, positive=True)
        words["final_div_factor"] = _number(t, "final_div_factor", 1e4, positive=True)
        words["anneal_strategy"] = _choice(t, "anneal_strategy", ("cos", "linear"), default="cos")
        words["three_phase"] = t.get("three_phase", bool, default=False)
        words["cycle_momentum"] = t.get("cycle_momentum", bool, default=True)
    if WARMUP[0] in t.data:
        if kind == "onecycle":
            raise t.error(WARMUP[0], "cannot warm up onecycle (it warms up itself)")
        words[WARMUP[0]] = _int_in(t, WARMUP[0], 1, MAX_STEPS)
        words[WARMUP[1]] = _number(t, WARMUP[1], 1 / 3, positive=True)
        if words[WARMUP[1]] > 1:
            raise t.error(WARMUP[1], f"must be <= 1, got {words[WARMUP[1]]}")
    elif WARMUP[1] in t.data:
        raise t.error(WARMUP[1], f"needs {WARMUP[0]}")
    t.finish()
    return Schedule(kind, words)


def _accumulate(t: _Table, batch: int) -> Accumulate:
    """[accumulate]: micro_batches (>= 2, dividing data.batch), divide_loss (default true)."""
    m = _int_in(t, "micro_batches", 2, MAX_BATCH)
    if batch % m:
        raise t.error("micro_batches", f"must divide data.batch ({batch}), got {m}")
    divide = t.get("divide_loss", bool, default=True)
    t.finish()
    return Accumulate(m, divide)


def _layer(t: _Table) -> Layer:
    """[layer]: kind (default "linear") and that kind's keys (engine/layers.py KINDS)."""
    kind = _choice(t, "kind", tuple(KINDS), default="linear")
    values = {}
    for key in KINDS[kind].keys:
        values[key.name] = (_int_in(t, key.name, key.low, MAX_FEATURES) if key.kind == "int"
                            else t.get(key.name, bool, default=key.default, required=key.default is None))
    t.finish()
    if kind == "linear":
        return Layer(**values)
    layer = Layer(kind=kind, sizes=tuple(values.items()))
    problem = layer.check()
    if problem:
        key, _, words = problem.partition(": ")
        raise t.error(key, words)
    return layer


def _check_layer_runs(path: str, layer: Layer, runs: dict[str, tuple[str, ...]], decay: Decay) -> None:
    """What a layer kind cannot build: a ParamAttr per parameter where paddle's constructor
    takes one for several (layers.Kind.param_attr); a parameter group splitting a packed
    native parameter (torch's in_proj_weight holds q, k and v)."""
    if not KINDS[layer.kind].param_attr:
        for way in runs.get("paddle", ()):
            if way.startswith("param_attr"):
                raise CaseError(path, "runs.paddle", f"way {way!r}: paddle's {layer.kind} constructor takes one "
                                f"ParamAttr for several parameters, not one per parameter")
    for fw, ways in runs.items():
        if not any("groups" in w for w in ways):     # groups, groups+weight_decay, after_groups, ...
            continue
        for packed in packed_together(layer, fw):
            groups = {next(i for i, g in enumerate(decay.groups) if p in g.params) for p in packed}
            if len(groups) > 1:
                raise CaseError(path, "decay.groups", f"{fw} holds {', '.join(packed)} in one parameter: "
                                f"they must be in the same group")


def _precision(t: _Table, runs: dict[str, tuple[str, ...]]) -> Precision:
    """[precision]: dtype, autocast (default false), master_weights (default false; paddle's
    float32 master copy, so it needs stored low-precision parameters and no torch runs:
    torch.optim keeps none), grad_scaler = {init_scale = N} (N > 0, default 65536)."""
    dtype = _choice(t, "dtype", DTYPES)
    autocast = t.get("autocast", bool, default=False)
    master = t.get("master_weights", bool, default=False)
    if master and autocast:
        raise t.error("master_weights", "needs autocast = false (under autocast the parameters are float32 "
                      "already: there is no low-precision copy to keep a master of)")
    if master and runs.get("torch"):
        raise t.error("master_weights", "is paddle's multi_precision / master_weight; torch.optim keeps no "
                      "float32 master copy: list paddle runs only, or use autocast = true for float32 "
                      "parameters with a low-precision forward")
    init_scale = None
    if "grad_scaler" in t.data:
        st = t.table("grad_scaler")
        init_scale = _number(st, "init_scale", 65536.0, positive=True)
        st.finish()
    t.used.add("grad_scaler")
    t.finish()
    return Precision(dtype, autocast, master, init_scale)


def read_toml(path: Path) -> _Table:
    """A case file's top-level table; unreadable files and bad TOML are CaseErrors."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")     # a byte order mark is not content
    except OSError as exc:
        raise CaseError(shown, None, f"cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise CaseError(shown, None, "is not UTF-8 text") from None
    # Imported here, not at the top: the worker imports this module for its records
    # (Decay, Group, Regularizer) and must run under interpreters older than 3.11,
    # which have no tomllib (README, "What the other interpreter needs").
    import tomllib
    try:
        data = tomllib.loads(text)
    except ValueError as exc:   # TOMLDecodeError, or an integer of more than 4300 digits
        raise CaseError(shown, None, f"TOML syntax error: {exc}") from None
    except RecursionError:      # tomllib recurses once per nesting level of [..] and {..}
        raise CaseError(shown, None, "TOML syntax error: arrays or tables nested too deeply") from None
    return _Table(shown, "", data)


def load_case(path: str | Path) -> Case:
    path = Path(path)
    shown = str(path)
    top = read_toml(path)
    description = top.get("description", str, required=True)
    seed = _int_in(top, "seed", 0, 2**32 - 1)
    steps = _int_in(top, "steps", 1, MAX_STEPS, default=1)
    min_power = None
    if "min_power" in top.data:
        min_power = _number(top, "min_power", positive=True)
        if min_power > 1:
            raise top.error("min_power", f"must be a relative coefficient error in (0, 1], got {min_power}")
    top.used.add("min_power")

    layer = _layer(top.table("layer"))

    dt = top.table("data")
    batch = _int_in(dt, "batch", 1, MAX_BATCH)
    loss = _choice(dt, "loss", LOSSES, default="mean")
    fresh = dt.get("fresh", bool, default=False)
    dt.finish()

    optimizer = _optimizer(top.table("optimizer"))

    decay = _decay(top.table("decay"), layer)

    runs = _runs(top.table("runs"), optimizer)
    _check_layer_runs(shown, layer, runs, decay)
    known = {f"{fw}:{way}" for fw, ways in runs.items() for way in ways}
    expectations = _expectations(shown, top.get("expect", list, default=[]), known, layer.params)

    clip = _clip(top.table("clip", required=False), layer.params) if "clip" in top.data else None
    top.used.add("clip")
    if clip is not None and clip.kind == "norm" and any(packed_together(layer, fw) for fw in runs):
        raise CaseError(shown, "clip.kind", f"\"norm\" clips each native parameter by its own norm, and "
                        f"{layer.kind} packs several canonical ones into one: use \"global_norm\" or \"value\"")
    if clip is not None and clip.params is not None:
        if "paddle" in runs and not KINDS[layer.kind].param_attr:
            raise CaseError(shown, "clip.params", f"paddle's {layer.kind} constructor takes one ParamAttr for "
                            "several parameters: need_clip=False cannot exempt some of them")
        for packed in (p for fw in runs for p in packed_together(layer, fw)):
            if 0 < len(set(packed) & set(clip.params)) < len(packed):
                raise CaseError(shown, "clip.params", f"{', '.join(packed)} are one native parameter: "
                                "clip all of them or none")
    schedule = _schedule(top.table("schedule", required=False)) if "schedule" in top.data else None
    top.used.add("schedule")
    if schedule is not None and schedule.kind == "onecycle" and decay.lr_scales():
        raise CaseError(shown, "decay.groups.lr_scale", "cannot be combined with a onecycle [schedule] "
                        "(torch's OneCycleLR sets every group's lr from its one max_lr)")
    accumulate = _accumulate(top.table("accumulate", required=False), batch) if "accumulate" in top.data else None
    top.used.add("accumulate")
    precision = _precision(top.table("precision", required=False), runs) if "precision" in top.data else None
    top.used.add("precision")
    if fresh and precision is not None:
        # The replay casts the case's one batch to the stored dtype (precision.as_stored), not each new one.
        raise CaseError(shown, "data.fresh", "cannot be combined with [precision] (a new batch every step "
                        "is not replayed at the stored precision)")
    if precision is not None and layer.kind != "linear":
        # Its casts, master weights and low-precision replays are written for the Linear.
        raise CaseError(shown, "precision", f"is built for [layer] kind \"linear\" only (got kind {layer.kind!r})")
    if fresh and layer.kind != "linear":
        # A new batch is drawn as the Linear's input (uniform floats), not another kind's.
        raise CaseError(shown, "data.fresh", f"is built for [layer] kind \"linear\" only (got kind {layer.kind!r})")

    tt = top.table("tolerance", required=False)
    atol = _number(tt, "atol", None) if "atol" in tt.data else None
    rtol = _number(tt, "rtol", None) if "rtol" in tt.data else None
    tt.finish()
    top.finish()

    case = Case(name=path.stem, path=shown, description=description, seed=seed, steps=steps,
                layer=layer, batch=batch, loss=loss, optimizer=optimizer, decay=decay,
                runs=runs, expectations=expectations,
                atol=atol, rtol=rtol, min_power=min_power, clip=clip, schedule=schedule,
                accumulate=accumulate, fresh=fresh, precision=precision)
    case.check_size()
    return case
