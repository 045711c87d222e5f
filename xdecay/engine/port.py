"""`xdecay port`: an optimizer call of one framework, translated into the other's and
verified by running both through the compare pipeline.

The call is read with `ast` and only literals are accepted (never evaluated); its
arguments are mapped to the optimizer model's words (optimizers.py), which are the one
table of classes, names and defaults. The translation is a case (a TOML text, shown to
the user) whose two runs build the two setups: the source as written, the target as
printed. Its verdict is the pipeline's: equal within the derived tolerance or not, the
rules per parameter, and -- where they differ -- the measured cause (causes.py).
"""
from __future__ import annotations

import ast
import dataclasses
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

from ..case import Case, _Table, load_case
from ..case import _clip as _case_clip, _schedule as _case_schedule
from ..errors import CaseError, UsageError
from ..frameworks.factory import Factory
from ..frameworks.runner import DEFAULT_TIMEOUT
from .clipping import KINDS as CLIP_KINDS, NORM_EPS, Clip
from .compare import Comparison, compare_pair
from .pycode import Code, clip_class, grad_clip, keywords, number, scheduler, torch_clip
from .schedules import LR_ARG, NATIVE as SCHEDULES, WARMUP, Schedule
from .pipeline import EXIT_MISMATCH, CaseResult, run_cases
from .optimizers import OPTIMIZERS, Native, OptimizerInfo, default_differences, native_kwargs, same_value

OTHER = {"torch": "paddle", "paddle": "torch"}
# The verification layer: a Linear with a bias and a LayerNorm gain, so that a
# `--no-decay "bias|norm"` exclusion is exercised. Steps: enough for the check to see
# the decay (power.py) at usual settings -- at 5, AdamW(lr=1e-3, weight_decay=0.05)
# could not tell the excluded LayerNorm bias (starting at 0) decayed from not.
VERIFY_PARAMS = ("weight", "bias", "norm_gain", "norm_bias")
VERIFY_STEPS = 10
VERIFY_SEED = 16
# The parameter argument: any expression (model.parameters()), never read.
PARAMS_ARG = {"torch": "params", "paddle": "parameters"}
REGULARIZERS = {"L2Decay": "l2", "L1Decay": "l1"}


@dataclass(frozen=True)
class Setup:
    """One framework's optimizer setup, in the model's words."""
    framework: str
    info: OptimizerInfo
    lr: float | int
    words: dict[str, Any]               # the words the call gives, as written
    # How decay is given: "omitted" (the class default), "float", "l2"/"l1" (a paddle
    # regularizer object), "decoupled" (torch decoupled_weight_decay=True); coeff its value.
    decay: str
    coeff: float | int
    no_decay: str = ""                  # the exclusion pattern, on parameter names
    # --lr-scale: (pattern, factor) -- a parameter whose name matches trains at factor*lr
    # (torch group lr, paddle group learning_rate); the first match wins.
    lr_scales: tuple[tuple[str, float | int], ...] = ()

    def lr_scale(self, param: str) -> float | int:
        return next((k for pattern, k in self.lr_scales if re.search(pattern, param)), 1)

    @property
    def native(self) -> Native:
        return self.info.native(self.framework)


@dataclass
class Translation:
    source: Setup
    call: str                           # the source as the user wrote it
    target_framework: str
    code: str                           # the target's ready-to-paste code ("" when none exists)
    source_way: str
    target_way: str
    case_toml: str
    pitfalls: list[str] = field(default_factory=list)
    why_not: str = ""                   # why no exact equivalent exists (the closest is given)
    # The same translation with the words whose defaults differ left out (what a static
    # table that only renames arguments emits): run to measure that pitfall.
    defaults_left_toml: str = ""
    # The translation with each closest word (CLOSEST) copied as is instead: its measured
    # difference beside the closest's.
    copied_toml: str = ""
    # The translation without the clip and schedule (a converter porting only the
    # optimizer call): its target run against the source's, the loop's measured effect.
    loop_left_toml: str = ""
    # The training loop's clip and lr schedule ported with the optimizer (--clip, --schedule).
    loop: LoopCalls | None = None


@dataclass(frozen=True)
class LoopCalls:
    """A clip and a schedule call of the source framework, read into the case tables'
    words (clipping.Clip, schedules.Schedule): the one table of their names."""
    clip: Clip | None = None
    clip_call: str = ""
    schedule: Schedule | None = None
    schedule_call: str = ""
    schedule_lr: float | None = None    # paddle: the scheduler's learning_rate (the optimizer's lr)


@dataclass(frozen=True)
class Closest:
    """A word no value of which makes the two frameworks' updates equal, and its closest
    value in each framework from the other's."""
    why: str
    value: dict[str, Callable[[float], float]]     # target framework -> its value from the source's


# RMSProp: torch divides by sqrt(v) + eps, paddle by sqrt(v + eps). With eps_torch =
# sqrt(eps_paddle) the denominators agree as v -> 0 and as v >> eps; their ratio
# (x + 1) / sqrt(x^2 + 1), x = sqrt(v / eps_paddle), stays in [1, sqrt(2)], worst at
# v = eps_paddle. The same value in both is off by up to 1 / sqrt(eps_paddle) (at v = 0).
CLOSEST: dict[tuple[str, str], Closest] = {
    ("rmsprop", "eps"): Closest(
        "paddle RMSProp adds epsilon inside the square root (g / sqrt(v + epsilon)), torch RMSprop outside "
        "(g / (sqrt(v) + eps)): no value is equal; the closest is torch eps = sqrt(paddle epsilon), equal as "
        "v -> 0 and v >> epsilon, the denominators within a factor sqrt(2) (worst at v = epsilon) -- the same "
        "value in both is off by up to 1/sqrt(epsilon) where v -> 0",
        {"torch": lambda e: float(f"{math.sqrt(e):.12g}"), "paddle": lambda e: float(f"{e * e:.12g}")}),
}


def check_pattern(pattern: str, option: str = "") -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"{option or f'--no-decay {pattern!r}'}: not a regular expression ({exc})") from None


# The argument holding the clip's limit, by function or class; the first positional
# argument of paddle's classes, the second of torch's functions (after the parameters).
CLIP_LIMIT = {"clip_grad_norm_": "max_norm", "clip_grad_value_": "clip_value",
              "ClipGradByGlobalNorm": "clip_norm", "ClipGradByNorm": "clip_norm", "ClipGradByValue": "max"}


def parse_clip(framework: str, text: str, opt: str = "--clip") -> Clip:
    """A clip call of `framework` (torch clip_grad_norm_/clip_grad_value_, paddle
    ClipGradBy*), read as literals into a [clip] table's words; `opt` names its origin."""
    node = _call_node(opt, text)
    name = _dotted(node.func).rpartition(".")[2]
    # torch's clip_grad_norm_ names both global_norm and norm (per parameter): one call is global.
    kinds = {}
    for kind in CLIP_KINDS:
        kinds.setdefault(clip_class(kind, framework), kind)
    if name not in kinds:
        raise UsageError(f"{opt} {text!r}: unknown {framework} clip {name!r} (known: {', '.join(sorted(kinds))})")
    kwargs = _keywords(opt, text, node)
    positional = list(node.args[1:] if framework == "torch" else node.args)
    limit_arg = CLIP_LIMIT[name]
    if len(positional) > 1 or (positional and limit_arg in kwargs):
        raise UsageError(f"{opt} {text!r}: give {limit_arg} once, by name")
    if positional:
        kwargs[limit_arg] = positional[0]
    kwargs.pop("parameters", None)
    if limit_arg not in kwargs:
        raise UsageError(f"{opt} {text!r}: give {limit_arg}")
    limit = _number(opt, text, limit_arg, _literal(opt, text, limit_arg, kwargs.pop(limit_arg)), positive=True)
    for arg, node_ in kwargs.items():
        value = _literal(opt, text, arg, node_)
        if framework == "torch" and arg == "norm_type" and value in (2, 2.0, "2"):
            continue
        if framework == "torch" and arg in ("error_if_nonfinite", "foreach") and isinstance(value, bool | None):
            continue      # no effect on finite gradients
        if framework == "paddle" and arg == "min" and (value is None or value == -limit):
            continue
        raise UsageError(f"{opt} {text!r}: {name} argument {arg}={value!r} cannot be ported "
                         f"(the clips ported: {limit_arg}" + (", norm_type=2" if framework == "torch" else
                                                               ", min=-max") + ")")
    return _read_table(_case_clip, f"{opt} {text!r}", {"kind": kinds[name], "max": limit})


def parse_schedule(framework: str, text: str, opt: str = "--schedule") -> tuple[Schedule, float | None]:
    """An lr scheduler call of `framework` (torch.optim.lr_scheduler, paddle.optimizer.lr),
    or its warm-up chain nesting one, read as literals into a [schedule] table's words;
    and paddle's learning_rate."""
    node = _call_node(opt, text)
    if _dotted(node.func).rpartition(".")[2] == CHAINS[framework]:
        kind, words, lr = _chain_words(framework, text, opt, node)
    else:
        kind, words, lr = _kind_words(framework, text, opt, node)
    # The [schedule] table's own reading: its checks and defaults (case.py).
    return _read_table(_case_schedule, f"{opt} {text!r}", {"kind": kind, **words}), lr


# The warm-up chain (schedules.WARMUP) as each framework nests it.
CHAINS = {"torch": "SequentialLR", "paddle": "LinearWarmup"}


def _chain_words(framework: str, text: str, opt: str, node: ast.Call) -> tuple[str, dict[str, Any], float | None]:
    """torch SequentialLR(o, schedulers=[LinearLR(o, start_factor=f, total_iters=k), KIND(o, ...)],
    milestones=[k]) or paddle LinearWarmup(learning_rate=KIND(learning_rate=lr, ...),
    warmup_steps=k, start_lr=f*lr, end_lr=lr): KIND's words and the warm-up's."""
    if len(node.args) > (1 if framework == "torch" else 0):
        raise UsageError(f"{opt} {text!r}: give the arguments by name (only torch's optimizer may be positional)")
    kwargs = _keywords(opt, text, node)
    kwargs.pop("optimizer", None)
    _fresh(opt, text, kwargs)
    if framework == "torch":
        need = {"schedulers", "milestones"}
        if set(kwargs) != need:
            raise UsageError(f"{opt} {text!r}: SequentialLR takes schedulers=[LinearLR(...), ...] and "
                             f"milestones=[...] here (got {', '.join(sorted(kwargs)) or 'neither'})")
        nest = kwargs["schedulers"]
        if not (isinstance(nest, (ast.List, ast.Tuple)) and len(nest.elts) == 2
                and all(isinstance(x, ast.Call) for x in nest.elts)):
            raise UsageError(f"{opt} {text!r}: SequentialLR's schedulers must be two calls "
                             f"[LinearLR(...), SCHEDULER(...)] (the warm-up chain)")
        milestones = _literal(opt, text, "milestones", kwargs["milestones"])
        if not (isinstance(milestones, (list, tuple)) and len(milestones) == 1 and type(milestones[0]) is int):
            raise UsageError(f"{opt} {text!r}: milestones must be one step [k], got {milestones!r}")
        ramp_kind, ramp, _ = _kind_words(framework, text, opt, nest.elts[0])
        steps = milestones[0]
        if ramp_kind != "linear" or ramp.get("end_factor", 1.0) != 1.0 or ramp["total_steps"] != steps:
            # Any other first scheduler jumps at the milestone: paddle's LinearWarmup has no such ramp.
            raise UsageError(f"{opt} {text!r}: the warm-up must be LinearLR(o, start_factor=f, end_factor=1.0, "
                             f"total_iters={steps}) ending at milestones[0]={steps}")
        if ramp["start_factor"] >= 1:
            raise UsageError(f"{opt} {text!r}: a warm-up from start_factor={ramp['start_factor']!r} has no paddle "
                             f"LinearWarmup (it asserts end_lr > start_lr)")
        kind, words, lr = _kind_words(framework, text, opt, nest.elts[1])
        return kind, {**words, WARMUP[0]: steps, WARMUP[1]: ramp["start_factor"]}, lr
    need = {"learning_rate", "warmup_steps", "start_lr", "end_lr"}
    if set(kwargs) != need:
        raise UsageError(f"{opt} {text!r}: LinearWarmup needs {', '.join(sorted(need))} "
                         f"(got {', '.join(sorted(kwargs)) or 'none'})")
    if not isinstance(kwargs["learning_rate"], ast.Call):
        raise UsageError(f"{opt} {text!r}: LinearWarmup's learning_rate must be a scheduler call "
                         f"(a warm-up into a constant lr is not a chain xdecay ports)")
    kind, words, lr = _kind_words(framework, text, opt, kwargs["learning_rate"])
    steps = _literal(opt, text, "warmup_steps", kwargs["warmup_steps"])
    start, end = (_number(opt, text, arg, _literal(opt, text, arg, kwargs[arg])) for arg in ("start_lr", "end_lr"))
    if end != lr:
        # torch's chain ramps to the optimizer's lr and starts its scheduler there.
        raise UsageError(f"{opt} {text!r}: end_lr={end!r} must be the scheduler's learning_rate={lr!r} "
                         f"(torch's warm-up ends at the optimizer's lr)")
    if not 0 < start < end:
        # paddle asserts end_lr > start_lr; torch's LinearLR refuses start_factor 0.
        raise UsageError(f"{opt} {text!r}: start_lr={start!r} must be in (0, end_lr) "
                         f"(torch's LinearLR start_factor is > 0)")
    # start_lr/lr to 12 digits: 0.001/0.01 is 0.09999999999999999; a relative 1e-12 is far
    # below the lr check's LR_RTOL (the runs still verify the lr of every step).
    return kind, {**words, WARMUP[0]: steps, WARMUP[1]: float(f"{start / lr:.12g}")}, lr


def _fresh(opt: str, text: str, kwargs: dict[str, ast.expr]) -> None:
    """last_epoch / verbose: only a fresh schedule's values can be ported."""
    for arg in ("last_epoch", "verbose"):
        if arg in kwargs:
            value = _literal(opt, text, arg, kwargs.pop(arg))
            if (arg == "last_epoch" and value != -1) or (arg == "verbose" and value not in (False, "deprecated")):
                raise UsageError(f"{opt} {text!r}: {arg}={value!r} cannot be ported (a fresh schedule: "
                                 f"last_epoch=-1)")


def _kind_words(framework: str, text: str, opt: str, node: ast.Call) -> tuple[str, dict[str, Any], float | None]:
    """One scheduler call of a kind: the kind, its words and paddle's learning_rate."""
    name = _dotted(node.func).rpartition(".")[2]
    i = 0 if framework == "torch" else 1
    kinds = {native[i]: kind for kind, native in SCHEDULES.items()}
    if name not in kinds:
        raise UsageError(f"{opt} {text!r}: unknown {framework} lr scheduler {name!r} "
                         f"(known: {', '.join(sorted(kinds))})")
    kind = kinds[name]
    if len(node.args) > (1 if framework == "torch" else 0):
        raise UsageError(f"{opt} {text!r}: give the arguments by name (only torch's optimizer may be positional)")
    kwargs = _keywords(opt, text, node)
    kwargs.pop("optimizer", None)
    lr = None
    lr_arg = LR_ARG[framework].get(kind, "learning_rate" if framework == "paddle" else None)
    if lr_arg:     # paddle's learning_rate, OneCycle's peak (torch ignores the optimizer's lr)
        if lr_arg not in kwargs:
            raise UsageError(f"{opt} {text!r}: give {lr_arg} (the optimizer's lr)")
        lr = _number(opt, text, lr_arg, _literal(opt, text, lr_arg, kwargs.pop(lr_arg)), positive=True)
    if kind == "onecycle" and framework == "paddle":
        # paddle's OneCycleLR cycles no momentum; its end lr is torch's lr / div / final_div.
        end, div = (_number(opt, text, arg, _literal(opt, text, arg, kwargs[arg]), positive=True)
                    if arg in kwargs else default for arg, default in (("end_learning_rate", 1e-4),
                                                                       ("divide_factor", 25.0)))
        kwargs.pop("end_learning_rate", None)
        kwargs.update(cycle_momentum=ast.Constant(False), final_div_factor=ast.Constant(lr / div / end))
    _fresh(opt, text, kwargs)
    by_native = {names[i] or word: word for word, names in SCHEDULES[kind][2].items()}
    words = {}
    for arg, value in kwargs.items():
        if arg not in by_native:
            raise UsageError(f"{opt} {text!r}: {name} argument {arg!r} cannot be ported "
                             f"(known: {', '.join(sorted(by_native))})")
        got = _literal(opt, text, arg, value)
        words[by_native[arg]] = list(got) if isinstance(got, (tuple, list)) else got
    if kind == "linear":
        # Both LinearLRs start at 1/3 by default; torch's total_iters is 5, paddle's total_steps has no default.
        words.setdefault("start_factor", 1 / 3)
        if framework == "torch":
            words.setdefault("total_steps", 5)
    return kind, words, lr


def _read_table(read: Any, where: str, data: dict[str, Any]) -> Any:
    try:
        return read(_Table(where, "", data))
    except CaseError as exc:
        raise UsageError(str(exc)) from None


def loop_calls(framework: str, clip: str | None = None, schedule: str | None = None,
               factory: Factory | None = None, spec: str = "") -> LoopCalls | None:
    """--clip / --schedule of the source framework, or the clip and scheduler the
    --torch-file factory returned, read; None when there are none."""
    opts = {"clip": "--clip", "schedule": "--schedule"}
    if factory is not None:
        for word, given, got in (("clip", clip, factory.clip), ("schedule", schedule, factory.schedule)):
            if given is not None and got is not None:
                raise UsageError(f"--{word} {given!r}: --torch-file {spec} returns a {word} already")
            if got is not None:
                opts[word] = f"--torch-file {spec}: {'scheduler' if word == 'schedule' else word}"
        clip, schedule = clip or factory.clip, schedule or factory.schedule
    if clip is None and schedule is None:
        return None
    sched, lr = parse_schedule(framework, schedule, opts["schedule"]) if schedule is not None else (None, None)
    return LoopCalls(parse_clip(framework, clip, opts["clip"]) if clip is not None else None, clip or "",
                     sched, schedule or "", lr)


def _call_node(opt: str, text: str, callee: str = "Name") -> ast.Call:
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise UsageError(f"{opt} {text!r}: not a Python call expression ({exc.msg})") from None
    if not isinstance(node, ast.Call):
        raise UsageError(f"{opt} {text!r}: not a call (write it as {callee}(arg=value, ...))")
    return node


def _keywords(opt: str, text: str, node: ast.Call) -> dict[str, ast.expr]:
    kwargs: dict[str, ast.expr] = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise UsageError(f"{opt} {text!r}: **kwargs cannot be read without running code")
        if kw.arg in kwargs:
            raise UsageError(f"{opt} {text!r}: argument {kw.arg!r} given twice")
        kwargs[kw.arg] = kw.value
    return kwargs


def parse_lr_scales(texts: list[str] | tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    """--lr-scale PATTERN=FACTOR (repeatable): the parameters whose names match train at
    FACTOR times the optimizer's lr."""
    out = []
    for text in texts:
        pattern, sep, factor = text.rpartition("=")
        try:
            k = float(factor)
        except ValueError:
            k = math.nan
        if not sep or not pattern or not math.isfinite(k) or k <= 0:
            raise UsageError(f"--lr-scale {text!r}: expected PATTERN=FACTOR with a finite FACTOR > 0 "
                             f"(\"norm=0.1\": norm parameters train at 0.1 * lr)")
        check_pattern(pattern, f"--lr-scale {text!r}")
        out.append((pattern, k))
    return tuple(out)


def parse_call(framework: str, text: str, no_decay: str = "", loop: LoopCalls | None = None,
               lr_scales: tuple[tuple[str, float], ...] = ()) -> Setup:
    """The optimizer call `text` of `framework`, read as literals. UsageError naming the
    option for anything that is not a known class with literal arguments."""
    opt = f"--{framework}"
    check_pattern(no_decay)
    node = _call_node(opt, text, "Class")
    cls = _dotted(node.func).rpartition(".")[2]
    infos = [i for i in OPTIMIZERS.values() if i.native(framework) is not None and i.native(framework).cls == cls]
    if not infos:
        known = sorted({i.native(framework).cls for i in OPTIMIZERS.values() if i.native(framework)})
        raise UsageError(f"{opt} {text!r}: unknown {framework} optimizer {cls!r} (known: {', '.join(known)})")
    if len(node.args) > (1 if framework == "torch" else 0):
        raise UsageError(f"{opt} {text!r}: give the arguments by name (only torch's params may be positional)")
    kwargs = _keywords(opt, text, node)
    kwargs.pop(PARAMS_ARG[framework], None)
    # torch's SGD is the model's "sgd" or "momentum": the momentum argument decides.
    info = infos[0]
    if len(infos) > 1:
        momentum = _literal(opt, text, "momentum", kwargs["momentum"]) if "momentum" in kwargs else 0
        info = next(i for i in infos if (i.name == "momentum") == bool(momentum))
    return dataclasses.replace(_setup(opt, text, framework, info, kwargs, no_decay, loop), lr_scales=lr_scales)


def _setup(opt: str, text: str, framework: str, info: OptimizerInfo, kwargs: dict[str, ast.expr],
           no_decay: str, loop: LoopCalls | None = None) -> Setup:
    native = info.native(framework)
    if native.lr not in kwargs:
        raise UsageError(f"{opt} {text!r}: give {native.lr} (the verification runs at the value you train with)")
    sched_lr = loop.schedule_lr if loop else None
    if framework == "paddle" and "grad_clip" in kwargs:
        kwargs.pop("grad_clip")
        if not (loop and loop.clip):
            raise UsageError(f"{opt} {text!r}: grad_clip is ported with --clip \"ClipGradBy...(...)\"")
    lr_node = kwargs.pop(native.lr)
    if sched_lr is not None and (framework == "torch" or not isinstance(lr_node, ast.Constant)):
        # paddle: learning_rate=scheduler, the lr is the scheduler's; torch OneCycleLR
        # overwrites the optimizer's lr from its max_lr.
        lr = sched_lr
    else:
        lr = _number(opt, text, native.lr, _literal(opt, text, native.lr, lr_node), positive=True)
        if sched_lr is not None and lr != sched_lr:
            raise UsageError(f"--schedule {loop.schedule_call!r}: learning_rate={sched_lr!r} differs from the "
                             f"optimizer's {native.lr}={lr!r} (paddle takes the scheduler as its learning_rate)")
    decay, coeff = "omitted", native.default_decay or 0
    if native.decay_arg and native.decay_arg in kwargs:
        decay, coeff = _decay(opt, text, framework, native, kwargs.pop(native.decay_arg))
    if framework == "torch" and "decoupled_weight_decay" in kwargs:
        flag = _literal(opt, text, "decoupled_weight_decay", kwargs.pop("decoupled_weight_decay"))
        if not isinstance(flag, bool):
            raise UsageError(f"{opt} {text!r}: decoupled_weight_decay must be True or False, got {flag!r}")
        # The model's decoupled way of a class: "flag", or the class that decays decoupled.
        if flag and native.decoupled in (None, "explicit", native.cls):
            raise UsageError(f"{opt} {text!r}: decoupled_weight_decay=True: torch {native.cls} "
                             + ("decays decoupled already" if native.decoupled == native.cls else "has no such flag"))
        if flag:
            decay = "decoupled"
    if native.decay_filter and native.decay_filter in kwargs:
        # A function: what it excludes is read from --no-decay, never from its code.
        kwargs.pop(native.decay_filter)
        if not no_decay:
            raise UsageError(f"{opt} {text!r}: {native.decay_filter} is code xdecay does not run: say which "
                             f"parameters it leaves undecayed with --no-decay PATTERN")
    words: dict[str, Any] = {}
    for name, value in kwargs.items():
        matching = [w for w in info.words if (w.native_name(framework) or "").partition(".")[0] == name]
        if not matching:
            known = sorted({native.lr, *(x for x in (native.decay_arg, native.decay_filter) if x),
                            *((w.native_name(framework) or "").partition(".")[0] for w in info.words
                              if framework in w.native)})
            raise UsageError(f"{opt} {text!r}: {native.cls} argument {name!r} cannot be ported "
                             f"(known: {', '.join(known)})")
        got = _literal(opt, text, name, value)
        if len(matching) == 1 and "." not in matching[0].native_name(framework):
            words[matching[0].name] = got
            continue
        if not isinstance(got, (tuple, list)) or len(got) != len(matching):
            raise UsageError(f"{opt} {text!r}: {name} must be a tuple of {len(matching)} numbers, got {got!r}")
        for w in matching:
            words[w.name] = got[int(w.native_name(framework).partition(".")[2])]
    return Setup(framework, info, lr, words, decay, coeff, no_decay)


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _literal(opt: str, text: str, name: str, node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise UsageError(f"{opt} {text!r}: {name} must be a literal (a number, True/False, a tuple), "
                         f"got {ast.unparse(node)!r}") from None


def _number(opt: str, text: str, name: str, value: Any, positive: bool = False) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (positive and value == 0):
        raise UsageError(f"{opt} {text!r}: {name} must be a finite number {'> 0' if positive else '>= 0'}, "
                         f"got {value!r}")
    return value


def _decay(opt: str, text: str, framework: str, native: Native, node: ast.expr) -> tuple[str, float | int]:
    """The decay argument: a number, None, or (paddle) L2Decay(c) / L1Decay(c)."""
    if framework == "paddle" and isinstance(node, ast.Call):
        kind = REGULARIZERS.get(_dotted(node.func).rpartition(".")[2])
        args = [*node.args, *(k.value for k in node.keywords if k.arg == "coeff")]
        if kind is None or len(args) != 1 or len(node.args) + len(node.keywords) != 1:
            raise UsageError(f"{opt} {text!r}: {native.decay_arg} must be a number, None, L2Decay(c) or "
                             f"L1Decay(c), got {ast.unparse(node)!r}")
        return kind, _number(opt, text, native.decay_arg, _literal(opt, text, native.decay_arg, args[0]))
    value = _literal(opt, text, native.decay_arg, node)
    if value is None:
        return "float", 0
    return "float", _number(opt, text, native.decay_arg, value)


# ---------------------------------------------------------------- translation

def translate(src: Setup, call: str, loop: LoopCalls | None = None) -> Translation:
    """The other framework's setup for `src` (and its loop's clip and schedule), with the
    case that verifies it."""
    tgt_fw = OTHER[src.framework]
    int_lr = tgt_fw == "paddle" and isinstance(src.lr, int)
    if int_lr:
        # paddle refuses an int learning rate (TypeError); torch's int lr is the same float.
        src = dataclasses.replace(src, lr=float(src.lr))
    info = src.info
    tgt = info.native(tgt_fw)
    excluded = _excluded(src.no_decay)
    for pattern, k in src.lr_scales:
        if not any(re.search(pattern, p) for p in VERIFY_PARAMS):
            raise UsageError(f"--lr-scale {f'{pattern}={k!r}'!r}: matches none of the verification's parameters "
                             f"({', '.join(VERIFY_PARAMS)}), so it could not be verified")
    decays = src.decay != "omitted" or src.native.decays_by_default
    decays = decays and bool(src.coeff)
    # Words the target lacks run as the source's native arguments; a value other than
    # the source's default has no equivalent.
    one_sided = [w for w in info.words if w.name in src.words and tgt_fw not in w.native]
    only_source = {w.native_name(src.framework): src.words[w.name] for w in one_sided}
    lost = [f"{w.native_name(src.framework)}={src.words[w.name]!r}" for w in one_sided
            if not same_value(src.words[w.name], w.default(src.framework))]
    # Every word whose defaults differ is written out, at the source's value.
    given = {k: v for k, v in src.words.items() if info.word(k) and tgt_fw in info.word(k).native}
    words = dict(given)
    for d in default_differences(info, src.words, {}):
        words[d.word] = (d.torch if src.framework == "torch" else d.paddle)[1]
    if tgt is None:
        return Translation(src, call, tgt_fw, "", "", "", "", _pitfalls(src, excluded, words),
                           why_not=f"{tgt_fw} has no {info.name} optimizer "
                           f"({src.native.cls} exists in {src.framework} only)", loop=loop)
    src_way, tgt_way, why_not = _ways(src, tgt_fw, excluded, decays)
    closest = {w: c for (name, w), c in CLOSEST.items() if name == info.name and w in words}
    whys = [why_not] * bool(why_not) + [c.why for c in closest.values()]
    if lost:
        whys.append(f"{tgt_fw} {tgt.cls} has no {', '.join(lost)}: the closest leaves it out")
    t = Translation(src, call, tgt_fw, "", src_way, tgt_way, "", why_not="; ".join(whys), loop=loop)

    def case(words: dict[str, Any], title: str, closest: dict[str, Closest], loop: LoopCalls | None = loop) -> str:
        """The case of `words`, each closest word given natively: the source's value, the
        target's closest to it."""
        natives = {src.framework: dict(only_source), tgt_fw: {}}
        for w, c in closest.items():
            natives[src.framework][info.word(w).native_name(src.framework)] = words[w]
            natives[tgt_fw][info.word(w).native_name(tgt_fw)] = c.value[tgt_fw](words[w])
        shared = {k: v for k, v in words.items() if k not in closest}
        return _case_toml(src, shared, natives, excluded, src_way, tgt_way, title) + _loop_toml(loop)

    t.case_toml = case(words, call, closest)
    # (A required word left to the default changes the class: torch SGD without momentum.)
    if words != given and all(r in given for r in info.required):
        t.defaults_left_toml = case(given, call + " (differing defaults left out)",
                                    {w: c for w, c in closest.items() if w in given})
    if loop is not None:
        t.loop_left_toml = case(words, call + " (clip and schedule left out)", closest, None)
    if closest:
        t.copied_toml = case(words, call + " (" + ", ".join(closest) + " copied as is)", {})
    t.code = _code(src, tgt_fw, {**words, **{w: c.value[tgt_fw](words[w]) for w, c in closest.items()}},
                   excluded, tgt_way, loop)
    t.pitfalls = [f"lr={int(src.lr)}: paddle refuses an int learning_rate (TypeError): written as "
                  f"{src.lr!r}"] * int_lr + _pitfalls(src, excluded, words) + [
        f"{w.native_name(src.framework)}: {tgt_fw} {tgt.cls} has no such argument; it does what "
        f"{src.framework}'s default {w.default(src.framework)!r} does" for w in one_sided] + _loop_pitfalls(
        src, loop, tgt_way) + _group_pitfall(src, src_way if src.framework == "paddle" else tgt_way) + _lr_pitfalls(src)
    return t


def _lr_pitfalls(src: Setup) -> list[str]:
    """Per-parameter lr: what each framework's spelling means, and what the decay does
    with it (pinned by cases lr_scale_coupled, lr_scale_adamw, param_attr_lr*)."""
    if not src.lr_scales:
        return []
    native = src.native
    decay = ("AdamW's decoupled decay steps w -= k*lr*c*w" if native.decoupled == native.cls
             else "the coupled decay steps k*lr*(g + c*w)")
    own = ("torch's group 'lr' is the group's own lr; paddle's group 'learning_rate' (and "
           "ParamAttr(learning_rate=k)) is a factor of the optimizer's learning_rate: torch lr=k*lr is paddle "
           "learning_rate=k")
    scales = (f"the decay scales with the parameter's lr in both frameworks ({decay}; cases lr_scale_coupled, "
              "lr_scale_adamw, param_attr_lr): a group with a smaller lr also decays less")
    reset = ("paddle ParamAttr(learning_rate=k) scales the same way, but an optimizer built with parameter groups "
             "resets it to the group's learning_rate (1 without; case param_attr_lr): give the factor in the "
             "groups only")
    return [own, scales, reset]


def _loop_toml(loop: LoopCalls | None) -> str:
    """The [clip] / [schedule] tables of the case (after its last table, TOML's top level)."""
    if loop is None:
        return ""
    lines = []
    if loop.clip:
        lines += ["", "[clip]", f'kind = "{loop.clip.kind}"', f"max = {_toml(loop.clip.max)}"]
    if loop.schedule:
        lines += ["", "[schedule]", f'kind = "{loop.schedule.kind}"',
                  *(f"{k} = {_toml(v)}" for k, v in loop.schedule.words.items())]
    return "\n".join(lines) + "\n"


def _loop_pitfalls(src: Setup, loop: LoopCalls | None, tgt_way: str) -> list[str]:
    if loop is None:
        return []
    out = []
    if loop.clip and loop.clip.kind == "global_norm":
        out.append(f"torch clip_grad_norm_ scales by max / (norm + {NORM_EPS['torch']:g}), paddle "
                   f"ClipGradByGlobalNorm by max / norm: a relative difference of {NORM_EPS['torch']:g} / norm, "
                   f"visible only when the gradient norm is small")
    if loop.clip:
        out.append("torch clips .grad between backward() and step(); paddle's grad_clip runs inside step(), "
                   "before its weight_decay: neither clips the optimizer's decay")
        if tgt_way == "manual":
            out.append("an L1/L2 term added to the loss is clipped with the gradient (torch), "
                       "paddle's L1Decay/L2Decay regularizer is not: the clip changes the decay differently")
    if loop.clip and loop.clip.kind == "norm" and src.framework == "paddle":
        out.append("paddle ClipGradByNorm clips each parameter by its own norm: torch has no single call "
                   "for it, clip_grad_norm_ is called once per parameter")
    if loop.schedule:
        out.append("paddle takes the scheduler as the optimizer's learning_rate; the lr in use is "
                   "optimizer.get_lr() -- scheduler.get_lr() steps the schedule again")
        out.append("step the scheduler once after every optimizer.step() in both frameworks "
                   "(the verification does)")
        if loop.schedule.kind == "onecycle" and loop.schedule.words["cycle_momentum"]:
            out.append("torch OneCycleLR cycles the momentum / beta1 too (cycle_momentum=True, its default; on an "
                       "SGD without momentum it switches momentum on), paddle's OneCycleLR does not: "
                       "cycle_momentum=False in torch matches paddle (cases/schedule_onecycle.toml)")
        if loop.schedule.kind == "linear":
            out.append("torch LinearLR's total_iters defaults to 5, paddle LinearLR's total_steps has no "
                       "default: written out")
        if loop.schedule.warmup:
            out.append(_warmup_pitfall(src.framework, *loop.schedule.warmup, src.lr))
    return out


def _warmup_pitfall(source: str, steps: int, start: float, lr: float) -> str:
    """torch's warm-up is in factors of the lr, paddle's in lrs: what copying the source's
    numbers into the target's arguments trains at (measured in README "port": the
    frameworks' lr per step agree with it)."""
    ramp = [start + (1 - start) * t / steps for t in range(steps)]

    def shown(xs: list[float]) -> str:
        return ", ".join(f"{x:.3g}" for x in xs)
    if source == "torch":
        naive = (f"start_lr={start:g}, end_lr=1.0 (the factors) the {steps} warm-up steps train at {shown(ramp)} "
                 f"instead of {shown([lr * x for x in ramp])}"
                 + (f"; with end_lr=lr paddle refuses start_lr={start:g} > end_lr (AssertionError)"
                    if start > lr else ""))
    else:
        naive = (f"start_factor={start * lr:g}, end_factor={lr:g} (the lrs) the {steps} warm-up steps train at "
                 f"{shown([lr * (start * lr + (lr - start * lr) * t / steps) for t in range(steps)])} instead of "
                 f"{shown([lr * x for x in ramp])}")
    return (f"paddle LinearWarmup's start_lr/end_lr are lrs (start_lr={start:g}*lr, end_lr=lr, where torch's "
            f"scheduler then starts), torch LinearLR's start_factor/end_factor factors of the lr: copied as {naive}; "
            f"torch SequentialLR's milestone must be LinearLR's total_iters")


def _excluded(pattern: str) -> tuple[str, ...]:
    return tuple(p for p in VERIFY_PARAMS if pattern and re.search(pattern, p))


def _ways(src: Setup, tgt_fw: str, excluded: tuple[str, ...], decays: bool) -> tuple[str, str, str]:
    """(source way, target way, why no exact equivalent exists): the case's runs."""
    native_t = src.info.native(tgt_fw)
    if src.lr_scales:
        # A per-parameter lr is a parameter group in both frameworks (paddle's ParamAttr
        # learning_rate is the other spelling: a pitfall, since groups reset it).
        if src.decay in ("decoupled", "l1"):
            raise UsageError(f"--lr-scale with {'decoupled_weight_decay=True' if src.decay == 'decoupled' else 'L1Decay'}"
                             f" is not ported (" + ("write it as torch AdamW with parameter groups)"
                                                    if src.decay == "decoupled" else "an optimizer-level regularizer"
                                                    " has no per-group lr in torch)"))
        return "groups", "groups", ""
    if not decays:
        return "none", "none", ""
    by_fw = {src.framework: "", tgt_fw: ""}
    if src.decay == "decoupled":
        # The source runs as written (the flag is a native argument of its run); the
        # target is the class the model decays decoupled with (paddle Adam -> AdamW).
        if excluded:
            raise UsageError(f"--{src.framework}: decoupled_weight_decay=True with --no-decay is not ported "
                             f"(write it as torch AdamW with parameter groups)")
        if native_t.decoupled in (None, "explicit"):
            return ("weight_decay", "weight_decay",
                    f"{tgt_fw} {native_t.cls} has no decoupled decay: the closest is its coupled weight_decay")
        return "weight_decay", "decoupled", ""
    if src.decay == "l1":
        if excluded:
            raise UsageError(f"--{src.framework}: L1Decay with --no-decay is not ported (an optimizer-level "
                             f"regularizer decays every parameter)")
        # torch has no L1 argument: its equivalent is the L1 term in the loss.
        return "l1decay", "manual", ""
    for fw in (src.framework, tgt_fw):
        native = src.info.native(fw)
        if excluded:
            by_fw[fw] = "apply_decay_param_fun" if native.decay_filter == "apply_decay_param_fun" else "groups"
        elif fw == src.framework and src.decay == "omitted":
            by_fw[fw] = "default"
        elif fw == src.framework and src.decay == "l2":
            by_fw[fw] = "l2decay"
        else:
            by_fw[fw] = "weight_decay"
    return by_fw[src.framework], by_fw[tgt_fw], ""


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def _case_toml(src: Setup, words: dict[str, Any], natives: dict[str, dict[str, Any]], excluded: tuple[str, ...],
               src_way: str, tgt_way: str, call: str) -> str:
    """The verification case; `natives`: each framework's [optimizer.FRAMEWORK] arguments."""
    decayed = [p for p in VERIFY_PARAMS if p not in excluded]
    lines = [f"description = {_toml('port: ' + call)}", f"seed = {VERIFY_SEED}", f"steps = {VERIFY_STEPS}", "",
             "[layer]", "in_features = 4", "out_features = 3", "bias = true", "norm = true", "",
             "[data]", "batch = 4", 'loss = "mse"', "",
             "[optimizer]", f'name = "{src.info.name}"', f"lr = {_toml(src.lr)}"]
    lines += [f"{k} = {_toml(v)}" for k, v in words.items()]
    natives = {**natives, src.framework: {**natives.get(src.framework, {}),
                                          **({"decoupled_weight_decay": True} if src.decay == "decoupled" else {})}}
    for fw in (src.framework, OTHER[src.framework]):
        if natives.get(fw):
            lines += ["", f"[optimizer.{fw}]", *(f"{k} = {_toml(v)}" for k, v in natives[fw].items())]
    lines += ["", "[decay]", f"coeff = {_toml(src.coeff)}"]
    ways = (src_way, tgt_way)
    if "apply_decay_param_fun" in ways:
        lines.append(f"decay_params = [{', '.join(_toml(p) for p in decayed)}]")
    if "manual" in ways:
        lines += ["[decay.manual]"] + [f'{p} = "l1@{src.coeff!r}"' for p in decayed]
    if "groups" in ways:
        for members, c, k in _groups(src, excluded):
            lines += ["", "[[decay.groups]]", f"params = [{', '.join(_toml(p) for p in members)}]",
                      f"weight_decay = {_toml(c)}", *([f"lr_scale = {_toml(k)}"] if k != 1 else [])]
    runs = {src.framework: src_way, OTHER[src.framework]: tgt_way}
    lines += ["", "[runs]", f'torch = ["{runs["torch"]}"]', f'paddle = ["{runs["paddle"]}"]', "",
              "[[expect]]", f'equal = ["torch:{runs["torch"]}", "paddle:{runs["paddle"]}"]']
    return "\n".join(lines) + "\n"


def _groups(src: Setup, excluded: tuple[str, ...]) -> list[tuple[list[str], float | int, float | int]]:
    """The verification's parameter groups: (members, weight_decay, lr factor), one per
    distinct (decayed or not, lr factor), decayed first."""
    groups: dict[tuple[bool, float | int], list[str]] = {}
    for p in VERIFY_PARAMS:
        groups.setdefault((p not in excluded, src.lr_scale(p)), []).append(p)
    order = sorted(groups, key=lambda key: not key[0])
    # Floats: paddle takes a group's int weight_decay for a regularizer object (_pitfalls).
    return [(groups[key], float(src.coeff) if key[0] else 0.0, key[1]) for key in order]


def load_port_case(text: str, t: Translation, folder: Path, name: str) -> Case:
    """A translation's case, loaded like any case file (its checks apply: a value
    outside a word's range is the input's mistake, exit 2)."""
    path = folder / f"{name}.toml"
    path.write_text(text)
    try:
        return load_case(path)
    except CaseError as exc:
        problem = str(exc).partition(f"{path}: ")[2] or str(exc)
        if problem.startswith("decay.groups.lr_scale") and t.source.lr_scales:
            raise UsageError(f"--lr-scale {t.source.lr_scales[0][0]}={t.source.lr_scales[0][1]!r}: cannot be "
                             f"combined with --schedule (the verification case: {problem})") from None
        loop = t.loop or LoopCalls()
        for word, given in (("clip", loop.clip_call), ("schedule", loop.schedule_call)):
            if given and problem.startswith(f"{word}."):
                raise UsageError(f"--{word} {given!r}: {problem.partition('.')[2]}") from None
        raise UsageError(f"--{t.source.framework} {t.call!r}: {problem}") from None


# ---------------------------------------------------------------- the code to paste

def _code(src: Setup, fw: str, words: dict[str, Any], excluded: tuple[str, ...], way: str,
          loop: LoopCalls | None = None) -> str:
    """The target's code: every word written out (native names), the decay as `way` builds it."""
    info = src.info
    native = info.native(fw)
    kwargs = native_kwargs(info, fw, src.lr, words, {})
    lr = kwargs.pop(native.lr)
    module = "torch.optim" if fw == "torch" else "paddle.optimizer"
    params = PARAMS_ARG[fw]
    pre: list[str] = []
    head = [f"{native.lr}={number(lr)}"]
    c = number(float(src.coeff))     # a group's: paddle takes an int for a regularizer object
    if way in ("groups", "apply_decay_param_fun") and src.no_decay:
        pre = ["import re", "", f"NO_DECAY = re.compile({src.no_decay!r})   # matched on named_parameters() names"]
    if way == "groups" and src.lr_scales:
        pre = (pre or ["import re", ""]) + [
            f"LR_SCALE = {[(p, k) for p, k in src.lr_scales]!r}   # (pattern, factor of the lr): the first match wins",
            "groups = {}   # (decayed, lr factor) -> parameters",
            "for n, p in model.named_parameters():",
            "    k = next((k for pattern, k in LR_SCALE if re.search(pattern, n)), 1.0)",
            f"    groups.setdefault(({'not NO_DECAY.search(n)' if src.no_decay else 'True'}, k), []).append(p)"]
        # torch's group lr is absolute, paddle's group learning_rate a factor of the optimizer's.
        group_lr = f"'lr': k * {number(lr)}" if fw == "torch" else "'learning_rate': k"
        decay = f"{c} if decayed else 0.0" if src.coeff else "0.0"
        groups = (f"[{{'params': ps, '{native.decay_arg}': {decay}, {group_lr}}} "
                  f"for (decayed, k), ps in groups.items()]")
        head = [groups, *head] if fw == "torch" else [*head, f"{params}={groups}"]
    elif way == "groups":
        pre += ["decay = [p for n, p in model.named_parameters() if not NO_DECAY.search(n)]",
                "no_decay = [p for n, p in model.named_parameters() if NO_DECAY.search(n)]"]
        groups = f"[{{'params': decay, '{native.decay_arg}': {c}}}, {{'params': no_decay, '{native.decay_arg}': 0.0}}]"
        head = [groups, *head] if fw == "torch" else [*head, f"{params}={groups}"]
    else:
        head = ["model.parameters()", *head] if fw == "torch" else [*head, f"{params}=model.parameters()"]
    if way == "apply_decay_param_fun":
        pre += ["# paddle hands the function its unique parameter name (linear_0.w_0), not the attribute path",
                "decay = {p.name for n, p in model.named_parameters() if not NO_DECAY.search(n)}"]
        kwargs[native.decay_arg] = src.coeff
        kwargs["apply_decay_param_fun"] = Code("lambda name: name in decay")
    elif way == "weight_decay":
        kwargs[native.decay_arg] = src.coeff
    elif way == "decoupled":
        if native.decoupled == "flag":
            kwargs.update({native.decay_arg: src.coeff, "decoupled_weight_decay": True})
        elif native.decoupled not in (None, "explicit"):
            native = OPTIMIZERS[native.decoupled.lower()].native(fw)
            kwargs[native.decay_arg] = src.coeff
    elif way == "manual":
        pre += ["# L1: torch has no L1 argument; add it to the loss, before backward():",
                f"#   loss = loss + {c} * sum(p.abs().sum() for p in model.parameters())"]
    elif way == "none" and native.decays_by_default:
        kwargs[native.decay_arg] = 0.0
    clip, sched = (loop.clip, loop.schedule) if loop else (None, None)
    post: list[str] = []
    if sched is not None:
        built = f"scheduler = {scheduler(sched, fw, lr, 'optimizer')}"
        if fw == "paddle":
            pre.append(built)
            head[next(i for i, h in enumerate(head) if h.startswith(f"{native.lr}="))] = f"{native.lr}=scheduler"
        else:
            post.append(built)
    if clip is not None and fw == "paddle":
        kwargs["grad_clip"] = Code(grad_clip(clip))
    args = head + keywords(fw, kwargs)
    lines = [f"import {module.split('.')[0]}", *pre, f"optimizer = {module}.{native.cls}({', '.join(args)})", *post]
    if loop is not None:
        step = ["loss.backward()"]
        if clip is not None and fw == "torch":
            step += torch_clip(clip, "model.parameters()").splitlines()
        step += ["optimizer.step()", "optimizer.zero_grad()" if fw == "torch" else "optimizer.clear_grad()"]
        if sched is not None:
            step.append("scheduler.step()   # once per optimizer step")
        lines += ["# each training step:", *(f"#   {x}" for x in step)]
        if sched is not None and fw == "paddle":
            lines.append("# the lr in use: optimizer.get_lr() (scheduler.get_lr() steps the schedule again)")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- pitfalls

def _pitfalls(src: Setup, excluded: tuple[str, ...], words: dict[str, Any]) -> list[str]:
    """The pitfalls that apply to this setup, one line each, from the model."""
    info, out = src.info, []
    t_native, p_native = info.torch, info.paddle
    for d in default_differences(info, src.words, {}):
        out.append(f"{d}: written out explicitly, else the defaults change the update")
    if src.decay == "omitted" and src.native.decay_arg:
        values = {fw: info.native(fw).default_decay for fw in info.frameworks}
        shown = ", ".join(f"{fw} {info.native(fw).cls} {v!r}" for fw, v in values.items())
        out.append(f"{src.native.decay_arg} omitted means the class default ({shown}); "
                   f"a translation that writes another value changes the decay")
    if t_native and p_native and src.decay in ("float", "omitted") and src.coeff:
        # A class whose decoupled way is itself decays decoupled (the model's AdamW).
        kinds = {fw: "decoupled (w -= lr*c*w)" if info.native(fw).decoupled == info.native(fw).cls
                 else "coupled L2 (g += c*w)" for fw in info.frameworks}
        if len(set(kinds.values())) == 1:
            out.append(f"a float weight_decay is {kinds['torch']} in both frameworks"
                       + ("" if "decoupled" in kinds["torch"] else " (paddle makes it an L2Decay regularizer)"))
    if excluded:
        if p_native and p_native.decay_filter == "apply_decay_param_fun" and not src.lr_scales:
            out.append("paddle apply_decay_param_fun(name) gets the unique parameter name (linear_0.w_0), "
                       "so match the pattern on named_parameters() and pass the set of p.name")
        if t_native and t_native.decays_by_default:
            out.append(f"a torch {t_native.cls} group without '{t_native.decay_arg}' takes the constructor's "
                       f"({t_native.default_decay!r}, not 0): the no-decay group says 0.0")
        if p_native:
            out.append("a paddle ParamAttr(regularizer=...) overrides the optimizer's decay for that parameter "
                       "(AdamW applies both): leave ParamAttr regularizers off when excluding by optimizer")
    if src.decay == "l1":
        out.append("paddle L1Decay has no torch argument: the L1 term goes into the loss")
    return out


def _group_pitfall(src: Setup, paddle_way: str) -> list[str]:
    """Measured on every paddle class (paddle 3.3.1): Optimizer._add_param_group makes a
    float group weight_decay an L2Decay and keeps anything else as a regularizer object,
    so an int fails at step(); AdamW reads its groups itself."""
    native = src.info.paddle
    if paddle_way != "groups" or native.decoupled == native.cls:
        return []
    return [f"paddle {native.cls} reads a group's weight_decay as a coefficient only when it is a float: an int (0) "
            "is taken for a regularizer object and step() fails (TypeError: 'int' object is not callable; "
            "Optimizer._add_param_group): write 0.0"]


# ---------------------------------------------------------------- verification

@dataclass
class PortResult:
    translation: Translation
    versions: dict[str, str]
    result: CaseResult | None           # None: nothing to run (no class on the other side)
    # The translation with the differing defaults left out: the measured effect of that pitfall.
    defaults_left: CaseResult | None = None
    # The translation with the closest words copied as is (Translation.copied_toml).
    copied: CaseResult | None = None
    # The translation without its clip and schedule, and its target run against the
    # source run that has them: what leaving the loop out does.
    loop_left: CaseResult | None = None
    loop_left_effect: Comparison | None = None

    @property
    def ok(self) -> bool:
        """Verified equal; a closest setup never is, even where it agrees on this layer."""
        return self.result is not None and self.result.ok and not self.translation.why_not

    @property
    def exit_code(self) -> int:
        if self.result is None or (self.result.exit_code == 0 and not self.ok):
            return EXIT_MISMATCH
        return self.result.exit_code


# reports/port.md: one call per optimizer class both frameworks have, as a user
# porting a model writes it (decay excluded from biases and norms where the class takes
# decay), and the setups whose translation has a known pitfall. The learning rates are
# each class's usual scale (Adadelta's 1.0), so the decay is visible in 10 steps.
REPORT_CALLS: tuple[tuple[str, str, str], ...] = (
    ("torch", "SGD(params, lr=0.1, weight_decay=0.01)", "bias|norm"),
    ("torch", "SGD(params, lr=0.1, momentum=0.9, nesterov=True, dampening=0, weight_decay=0.01)", "bias|norm"),
    ("paddle", "Momentum(learning_rate=0.1, weight_decay=0.01)", ""),
    ("torch", "Adam(params, lr=0.01, weight_decay=0.1)", "bias|norm"),
    ("torch", "Adam(params, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)", ""),
    ("torch", "AdamW(params, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)", "bias|norm"),
    ("torch", "AdamW(params, lr=0.01)", ""),
    ("paddle", "AdamW(learning_rate=0.01, weight_decay=0.05, apply_decay_param_fun=decay)", "bias|norm"),
    ("torch", "Adamax(params, lr=0.01, weight_decay=0.1)", "bias|norm"),
    ("torch", "Adagrad(params, lr=0.1, weight_decay=0.1)", "bias|norm"),
    ("paddle", "Adagrad(learning_rate=0.1, weight_decay=0.1)", ""),
    ("torch", "Adadelta(params, lr=1.0, weight_decay=0.1)", "bias|norm"),
    ("torch", "RMSprop(params, lr=0.01, weight_decay=0.1)", "bias|norm"),
    ("paddle", "RMSProp(learning_rate=0.01, weight_decay=0.1)", ""),
    ("torch", "NAdam(params, lr=0.01, weight_decay=0.1)", "bias|norm"),
    ("torch", "NAdam(params, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)", ""),
    ("torch", "RAdam(params, lr=0.01, weight_decay=0.1)", "bias|norm"),
    ("torch", "RAdam(params, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)", ""),
    ("torch", "ASGD(params, lr=0.01, weight_decay=0.1)", ""),
    ("paddle", "ASGD(learning_rate=0.01, weight_decay=0.1)", ""),
    ("paddle", "SGD(learning_rate=0.1, weight_decay=paddle.regularizer.L2Decay(0.01))", ""),
    ("paddle", "SGD(learning_rate=0.1, weight_decay=paddle.regularizer.L1Decay(0.01))", ""),
    ("torch", "Adafactor(params, lr=0.01)", ""),
    ("paddle", "Lamb(learning_rate=0.01)", ""),
)


# reports/port.md's loop rows: each clip kind (clipping.KINDS) and each schedule kind
# (schedules.NATIVE) ported with AdamW, whose decoupled decay follows the lr schedule.
# Each clip's limit is below every step's gradient size on the verification layer (an
# idle clip is not verified); each schedule moves the lr within the 10 steps.
REPORT_LOOP_CALL = {"torch": "AdamW(params, lr=0.01, weight_decay=0.05)",
                    "paddle": "AdamW(learning_rate=0.01, weight_decay=0.05)"}
REPORT_CLIP_LIMITS = {"global_norm": 0.1, "norm": 0.05, "value": 0.05}
REPORT_SCHEDULES: dict[str, dict[str, Any]] = {
    "step": {"step_size": 3, "gamma": 0.5},
    "multistep": {"milestones": [3, 6], "gamma": 0.5},
    "cosine": {"t_max": 10, "eta_min": 0.001},
    "cosine_restarts": {"t_0": 4, "t_mult": 2, "eta_min": 0.001},
    "linear": {"start_factor": 0.5, "end_factor": 1.0, "total_steps": 4},
    # torch's defaults (cycle_momentum=True): the row shows what porting it to paddle loses.
    "onecycle": {"total_steps": 10},
}
REPORT_LOOP_LR = 0.01       # REPORT_LOOP_CALL's lr: OneCycleLR's max_lr
# The warm-up chain's row: (kind, (warmup_steps, warmup_start_factor)), from paddle (its
# LinearWarmup takes lrs where torch's LinearLR takes factors).
REPORT_WARMUP = ("step", (3, 0.1))


def report_loop_calls() -> list[tuple[str, str | None, str | None]]:
    """(framework, clip call, schedule call): one row per clip kind, from the framework
    that has a call of its own for it (torch has none for a per-parameter norm), and one
    per schedule kind, from torch; and the warm-up chain, from paddle."""
    out: list[tuple[str, str | None, str | None]] = []
    for kind, limit in REPORT_CLIP_LIMITS.items():
        fw = next(f for f in ("torch", "paddle")
                  if next(k for k in CLIP_KINDS if clip_class(k, f) == clip_class(kind, f)) == kind)
        name = clip_class(kind, fw)
        out.append((fw, f"{name}({'model.parameters(), ' * (fw == 'torch')}{CLIP_LIMIT[name]}={limit!r})", None))
    for kind, words in REPORT_SCHEDULES.items():
        call = Schedule(kind, words).native("torch", REPORT_LOOP_LR)
        out.append(("torch", None, call.code("torch", "optimizer", module=False)))
    kind, (steps, start) = REPORT_WARMUP
    chain = Schedule(kind, {**REPORT_SCHEDULES[kind], WARMUP[0]: steps, WARMUP[1]: start})
    out.append(("paddle", None, chain.native("paddle", REPORT_LOOP_LR).code("paddle", None, module=False)))
    return out


# reports/port.md's per-parameter lr rows (--lr-scale): a coupled and a decoupled decay,
# the LayerNorm at a tenth of the lr, the biases excluded from decay.
REPORT_LR_SCALES: tuple[tuple[str, str, str, str], ...] = (
    ("torch", "SGD(params, lr=0.1, momentum=0.9, weight_decay=0.01)", "bias", "norm=0.1"),
    ("paddle", "AdamW(learning_rate=0.01, weight_decay=0.05, apply_decay_param_fun=decay)", "bias", "norm=0.1"),
)


def report_translations() -> list[Translation]:
    """reports/port.md's rows: REPORT_CALLS, the per-parameter lr rows, then the loop rows."""
    out = [translate(parse_call(fw, call, no_decay), call) for fw, call, no_decay in REPORT_CALLS]
    out += [translate(parse_call(fw, call, no_decay, None, parse_lr_scales([scale])), call)
            for fw, call, no_decay, scale in REPORT_LR_SCALES]
    for fw, clip, schedule in report_loop_calls():
        loop = loop_calls(fw, clip, schedule)
        out.append(translate(parse_call(fw, REPORT_LOOP_CALL[fw], "", loop), REPORT_LOOP_CALL[fw], loop))
    return out


def port_cases(t: Translation, folder: Path, name: str = "port") -> list[Case]:
    """The cases to run for a translation: its own, then the one with the differing
    defaults left out and the one with the closest words copied (where they exist); none
    when the other framework lacks the class."""
    out = [load_port_case(t.case_toml, t, folder, name)] if t.case_toml else []
    for kind, text in _variants(t).items():
        out.append(load_port_case(text, t, folder, f"{name}_{kind}"))
    return out


def _variants(t: Translation) -> dict[str, str]:
    return {k: v for k, v in (("defaults_left", t.defaults_left_toml), ("copied", t.copied_toml),
                              ("loop_left", t.loop_left_toml)) if v}


def port_result(t: Translation, versions: dict[str, str], results: list[CaseResult]) -> PortResult:
    """`results`: the port_cases results, in their order."""
    if not results:
        return PortResult(t, versions, None)
    p = PortResult(t, versions, results[0], **dict(zip(_variants(t), results[1:])))
    if p.loop_left is not None:
        source = next(r for r in p.result.runs if r.framework == t.source.framework)
        target = next(r for r in p.loop_left.runs if r.framework == t.target_framework)
        if source.error is None and target.error is None:
            # Without the runs' sensitivities: the tolerance's rounding terms alone.
            p.loop_left_effect = compare_pair(source, target, "equal", p.result.tolerance)
    return p


def verify(t: Translation, *, pythons: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
           in_process: bool = False) -> PortResult:
    """Both setups run through the compare pipeline on the translation's case."""
    with tempfile.TemporaryDirectory(prefix="xdecay-port-") as folder:
        cases = port_cases(t, Path(folder))
    if not cases:
        return PortResult(t, {}, None)
    outcome = run_cases(cases, pythons=pythons, timeout=timeout, in_process=in_process)
    return port_result(t, outcome.versions, outcome.results)
