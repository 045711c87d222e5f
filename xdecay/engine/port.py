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
from typing import Any

from ..case import Case, load_case
from ..errors import CaseError, UsageError
from ..frameworks.runner import DEFAULT_TIMEOUT
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


def check_pattern(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--no-decay {pattern!r}: not a regular expression ({exc})") from None


def parse_call(framework: str, text: str, no_decay: str = "") -> Setup:
    """The optimizer call `text` of `framework`, read as literals. UsageError naming the
    option for anything that is not a known class with literal arguments."""
    opt = f"--{framework}"
    check_pattern(no_decay)
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise UsageError(f"{opt} {text!r}: not a Python call expression ({exc.msg})") from None
    if not isinstance(node, ast.Call):
        raise UsageError(f"{opt} {text!r}: not a call (write it as Class(arg=value, ...))")
    cls = _dotted(node.func).rpartition(".")[2]
    infos = [i for i in OPTIMIZERS.values() if i.native(framework) is not None and i.native(framework).cls == cls]
    if not infos:
        known = sorted({i.native(framework).cls for i in OPTIMIZERS.values() if i.native(framework)})
        raise UsageError(f"{opt} {text!r}: unknown {framework} optimizer {cls!r} (known: {', '.join(known)})")
    if len(node.args) > (1 if framework == "torch" else 0):
        raise UsageError(f"{opt} {text!r}: give the arguments by name (only torch's params may be positional)")
    kwargs: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise UsageError(f"{opt} {text!r}: **kwargs cannot be read without running code")
        if kw.arg in kwargs:
            raise UsageError(f"{opt} {text!r}: argument {kw.arg!r} given twice")
        kwargs[kw.arg] = kw.value
    kwargs.pop(PARAMS_ARG[framework], None)
    # torch's SGD is the model's "sgd" or "momentum": the momentum argument decides.
    info = infos[0]
    if len(infos) > 1:
        momentum = _literal(opt, text, "momentum", kwargs["momentum"]) if "momentum" in kwargs else 0
        info = next(i for i in infos if (i.name == "momentum") == bool(momentum))
    return _setup(opt, text, framework, info, kwargs, no_decay)


def _setup(opt: str, text: str, framework: str, info: OptimizerInfo, kwargs: dict[str, ast.expr],
           no_decay: str) -> Setup:
    native = info.native(framework)
    if native.lr not in kwargs:
        raise UsageError(f"{opt} {text!r}: give {native.lr} (the verification runs at the value you train with)")
    lr = _number(opt, text, native.lr, _literal(opt, text, native.lr, kwargs.pop(native.lr)), positive=True)
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

def translate(src: Setup, call: str) -> Translation:
    """The other framework's setup for `src`, with the case that verifies it."""
    tgt_fw = OTHER[src.framework]
    int_lr = tgt_fw == "paddle" and isinstance(src.lr, int)
    if int_lr:
        # paddle refuses an int learning rate (TypeError); torch's int lr is the same float.
        src = dataclasses.replace(src, lr=float(src.lr))
    info = src.info
    tgt = info.native(tgt_fw)
    excluded = _excluded(src.no_decay)
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
                           f"({src.native.cls} exists in {src.framework} only)")
    src_way, tgt_way, why_not = _ways(src, tgt_fw, excluded, decays)
    if lost:
        why_not = "; ".join([*([why_not] if why_not else []),
                             f"{tgt_fw} {tgt.cls} has no {', '.join(lost)}: the closest leaves it out"])
    t = Translation(src, call, tgt_fw, "", src_way, tgt_way, "", why_not=why_not)
    t.case_toml = _case_toml(src, words, only_source, excluded, src_way, tgt_way, call)
    # (A required word left to the default changes the class: torch SGD without momentum.)
    if words != given and all(r in given for r in info.required):
        t.defaults_left_toml = _case_toml(src, given, only_source, excluded, src_way, tgt_way,
                                          call + " (differing defaults left out)")
    t.code = _code(src, tgt_fw, words, excluded, tgt_way)
    t.pitfalls = [f"lr={int(src.lr)}: paddle refuses an int learning_rate (TypeError): written as "
                  f"{src.lr!r}"] * int_lr + _pitfalls(src, excluded, words) + [
        f"{w.native_name(src.framework)}: {tgt_fw} {tgt.cls} has no such argument; it does what "
        f"{src.framework}'s default {w.default(src.framework)!r} does" for w in one_sided]
    return t


def _excluded(pattern: str) -> tuple[str, ...]:
    return tuple(p for p in VERIFY_PARAMS if pattern and re.search(pattern, p))


def _ways(src: Setup, tgt_fw: str, excluded: tuple[str, ...], decays: bool) -> tuple[str, str, str]:
    """(source way, target way, why no exact equivalent exists): the case's runs."""
    native_t = src.info.native(tgt_fw)
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


def _case_toml(src: Setup, words: dict[str, Any], only_source: dict[str, Any], excluded: tuple[str, ...],
               src_way: str, tgt_way: str, call: str) -> str:
    decayed = [p for p in VERIFY_PARAMS if p not in excluded]
    lines = [f"description = {_toml('port: ' + call)}", f"seed = {VERIFY_SEED}", f"steps = {VERIFY_STEPS}", "",
             "[layer]", "in_features = 4", "out_features = 3", "bias = true", "norm = true", "",
             "[data]", "batch = 4", 'loss = "mse"', "",
             "[optimizer]", f'name = "{src.info.name}"', f"lr = {_toml(src.lr)}"]
    lines += [f"{k} = {_toml(v)}" for k, v in words.items()]
    native = {**only_source, **({"decoupled_weight_decay": True} if src.decay == "decoupled" else {})}
    if native:
        lines += ["", f"[optimizer.{src.framework}]", *(f"{k} = {_toml(v)}" for k, v in native.items())]
    lines += ["", "[decay]", f"coeff = {_toml(src.coeff)}"]
    ways = (src_way, tgt_way)
    if "apply_decay_param_fun" in ways:
        lines.append(f"decay_params = [{', '.join(_toml(p) for p in decayed)}]")
    if "manual" in ways:
        lines += ["[decay.manual]"] + [f'{p} = "l1@{src.coeff!r}"' for p in decayed]
    if "groups" in ways:
        for members, c in ((decayed, src.coeff), (excluded, 0.0)):
            if members:
                lines += ["", "[[decay.groups]]", f"params = [{', '.join(_toml(p) for p in members)}]",
                          f"weight_decay = {_toml(c)}"]
    runs = {src.framework: src_way, OTHER[src.framework]: tgt_way}
    lines += ["", "[runs]", f'torch = ["{runs["torch"]}"]', f'paddle = ["{runs["paddle"]}"]', "",
              "[[expect]]", f'equal = ["torch:{runs["torch"]}", "paddle:{runs["paddle"]}"]']
    return "\n".join(lines) + "\n"


def load_port_case(text: str, t: Translation, folder: Path, name: str) -> Case:
    """A translation's case, loaded like any case file (its checks apply: a value
    outside a word's range is the input's mistake, exit 2)."""
    path = folder / f"{name}.toml"
    path.write_text(text)
    try:
        return load_case(path)
    except CaseError as exc:
        problem = str(exc).partition(f"{path}: ")[2] or str(exc)
        raise UsageError(f"--{t.source.framework} {t.call!r}: {problem}") from None


# ---------------------------------------------------------------- the code to paste

def _pyval(value: Any) -> str:
    return repr(tuple(value)) if isinstance(value, list) else repr(value)


def _code(src: Setup, fw: str, words: dict[str, Any], excluded: tuple[str, ...], way: str) -> str:
    """The target's code: every word written out (native names), the decay as `way` builds it."""
    info = src.info
    native = info.native(fw)
    kwargs = native_kwargs(info, fw, src.lr, words, {})
    lr = kwargs.pop(native.lr)
    module = "torch.optim" if fw == "torch" else "paddle.optimizer"
    params = PARAMS_ARG[fw]
    pre: list[str] = []
    head = [f"{native.lr}={lr!r}"]
    c = src.coeff
    if way in ("groups", "apply_decay_param_fun"):
        pre = ["import re", "", f"NO_DECAY = re.compile({src.no_decay!r})   # matched on named_parameters() names"]
    if way == "groups":
        pre += ["decay = [p for n, p in model.named_parameters() if not NO_DECAY.search(n)]",
                "no_decay = [p for n, p in model.named_parameters() if NO_DECAY.search(n)]"]
        groups = f"[{{'params': decay, '{native.decay_arg}': {c!r}}}, {{'params': no_decay, '{native.decay_arg}': 0.0}}]"
        head = [groups, *head] if fw == "torch" else [*head, f"{params}={groups}"]
    else:
        head = ["model.parameters()", *head] if fw == "torch" else [*head, f"{params}=model.parameters()"]
    if way == "apply_decay_param_fun":
        pre += ["# paddle hands the function its unique parameter name (linear_0.w_0), not the attribute path",
                "decay = {p.name for n, p in model.named_parameters() if not NO_DECAY.search(n)}"]
        kwargs[native.decay_arg] = c
        kwargs["apply_decay_param_fun"] = _Code("lambda name: name in decay")
    elif way == "weight_decay":
        kwargs[native.decay_arg] = c
    elif way == "decoupled":
        if native.decoupled == "flag":
            kwargs.update({native.decay_arg: c, "decoupled_weight_decay": True})
        elif native.decoupled not in (None, "explicit"):
            native = OPTIMIZERS[native.decoupled.lower()].native(fw)
            kwargs[native.decay_arg] = c
    elif way == "manual":
        pre += ["# L1: torch has no L1 argument; add it to the loss, before backward():",
                f"#   loss = loss + {c!r} * sum(p.abs().sum() for p in model.parameters())"]
    elif way == "none" and native.decays_by_default:
        kwargs[native.decay_arg] = 0.0
    args = head + [f"{k}={_pyval(v)}" for k, v in kwargs.items()]
    return "\n".join([f"import {module.split('.')[0]}", *pre,
                      f"optimizer = {module}.{native.cls}({', '.join(args)})"]) + "\n"


class _Code(str):
    """Code written as is (a lambda), not as a literal."""

    def __repr__(self) -> str:
        return str(self)


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
        if p_native and p_native.decay_filter == "apply_decay_param_fun":
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


# ---------------------------------------------------------------- verification

@dataclass
class PortResult:
    translation: Translation
    versions: dict[str, str]
    result: CaseResult | None           # None: nothing to run (no class on the other side)
    # The translation with the differing defaults left out: the measured effect of that pitfall.
    defaults_left: CaseResult | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok

    @property
    def exit_code(self) -> int:
        return EXIT_MISMATCH if self.result is None else self.result.exit_code


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


def report_translations() -> list[Translation]:
    return [translate(parse_call(fw, call, no_decay), call) for fw, call, no_decay in REPORT_CALLS]


def port_cases(t: Translation, folder: Path, name: str = "port") -> list[Case]:
    """The cases to run for a translation: its own, then the one with the differing
    defaults left out (if any); none when the other framework lacks the class."""
    out = [load_port_case(t.case_toml, t, folder, name)] if t.case_toml else []
    if t.defaults_left_toml:
        out.append(load_port_case(t.defaults_left_toml, t, folder, f"{name}_defaults_left"))
    return out


def port_result(t: Translation, versions: dict[str, str], results: list[CaseResult]) -> PortResult:
    """`results`: the port_cases results, in their order."""
    return PortResult(t, versions, results[0] if results else None, results[1] if len(results) > 1 else None)


def verify(t: Translation, *, pythons: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
           in_process: bool = False) -> PortResult:
    """Both setups run through the compare pipeline on the translation's case."""
    with tempfile.TemporaryDirectory(prefix="xdecay-port-") as folder:
        cases = port_cases(t, Path(folder))
    if not cases:
        return PortResult(t, {}, None)
    outcome = run_cases(cases, pythons=pythons, timeout=timeout, in_process=in_process)
    return port_result(t, outcome.versions, outcome.results)
