"""`xdecay audit`: the decay each parameter of a user's own model really gets.

Each framework's worker runs the user's factory and steps the user's optimizer on the
user's model (frameworks/audit_capture.py: the loss, the sample of elements). Here, per
parameter, the captured steps are replayed in float64 with the reference rule of the
optimizer's class (engine/reference.py), its hyper-parameters read from the optimizer
object, and every decay candidate -- inference (engine/infer.py) names the rule applied.

Tolerance: the gradient replayed is the framework's own (captured, exact), so unlike a
case's replay no forward or backward rounding enters: only the update's own rounding,
gamma_16 relative to the step (the rule's at most 16 operations), and the stored weight's
rounding, k-fold at step k, plus each rule's sensitivity to the rounding of its decay term
(infer._ratios) -- all at the parameter's dtype: a bfloat16 or float16 parameter (torch
model.to(dtype): its gradient and the optimizer's state are in that dtype too) gets that
dtype's eps and ULP, and the replay is rounded to it, so a decay below half its ULP rounds
away as in the run (engine/precision.py).
"""
from __future__ import annotations

import os
import re
import resource
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..case import MAX_STEPS
from ..errors import UsageError
from ..frameworks.audit_capture import STEPPED
from ..frameworks.records import AUDIT_STEPS, AuditJob, RunRecord
from ..frameworks.runner import DEFAULT_TIMEOUT, run
from .compare import Tolerance, ulp32
from .infer import Inferred, _ascent, _candidates, infer_param
from .name_map import Matching, load_name_map, match
from .port import check_pattern
from .power import ParamPower, visibility
from .reference import RULES
from .rules import rule_name

SEED = 0               # of the loss projection
LR_KEY = {"torch": "lr", "paddle": "learning_rate"}
# The rule's own operations: the term every layer's count ends with (layers.Layer.operation_count).
RULE_OPS = 16
TOLERANCE_TEXT = (f"|replay - run| <= k*(ulp(w) + {RULE_OPS}*eps*|delta|) + s at step k, ulp and eps of the "
                  f"parameter's dtype, the replay rounded to it (the stored weight's rounding + gamma_{RULE_OPS} of "
                  "the update; s the rule's replayed sensitivity to the rounding of its decay term); the gradient "
                  "replayed is the framework's own")


def tolerance(dtype: str) -> Tolerance:
    """A parameter's: the update stored and computed in its own dtype (module docstring)."""
    return Tolerance(ops=RULE_OPS, stored=dtype, computed=dtype)
LOSS = ("sum over the floating-point outputs y of sum(y * R) / y.size, R standard normal of y's shape "
        f"(numpy default_rng([{SEED}, output index]))")
# Absolute coefficients a `none` verdict is checked against: the smallest one it would see.
VISIBLE = tuple(m * 10.0 ** e for e in range(-7, 0) for m in (1, 2, 5)) + (1.0,)
NORM, BIAS = re.compile("norm", re.IGNORECASE), re.compile("bias", re.IGNORECASE)
# A parameter at 0 (a bias, a learned position) shows no decay in its first step: c*0 = 0.
MORE_STEPS = " (more --steps may tell: a parameter that starts at 0 shows no decay in its first step)"


@dataclass(frozen=True)
class Row:
    """One parameter of one framework's model."""
    framework: str
    name: str
    shape: tuple[int, ...]
    dtype: str
    status: str                 # audit_capture: "stepped", "frozen", "no gradient"
    group: int | None
    rule: str                   # the inferred rule (coefficient included), or the status
    decayed: bool | None        # None: the steps cannot tell (ambiguous with none, unexplained)
    lr: tuple[float, ...]       # the lr it stepped with, per step
    # Each decay term with the place the optimizer object sets its coefficient
    # ("decoupled_lr@0.05 <- group 0: AdamW weight_decay=0.05"); without decay, every
    # place the object sets (saying why there is none).
    sources: tuple[str, ...]
    residual: float | None      # the fitted rule's max |replay - run| / tolerance (<= 1)
    power: RowPower             # what the verdict would catch
    sample: int | None          # elements replayed (None: all)
    flag: str = ""              # why the row contradicts --no-decay / --decay


@dataclass(frozen=True)
class FrameworkAudit:
    framework: str
    version: str
    factory: str
    optimizer: str
    rows: list[Row]
    seconds: dict[str, float]   # the user's make() and steps, in the worker
    peak_mib: float             # the worker's peak resident memory


@dataclass(frozen=True)
class Pair:
    """A torch parameter and its paddle counterpart: the rules must agree."""
    torch: Row
    paddle: Row
    how: str                    # "map" | "name" | "order"
    problem: str                # "" when the two agree


@dataclass
class AuditResult:
    audits: dict[str, FrameworkAudit]
    errors: dict[str, str]                       # framework -> why its worker failed (exit 3)
    steps: int
    no_decay: tuple[str, ...] = ()
    decay: tuple[str, ...] = ()
    pairs: list[Pair] = field(default_factory=list)
    torch_only: list[str] = field(default_factory=list)
    paddle_only: list[str] = field(default_factory=list)
    analysis_seconds: float = 0.0
    parent_peak_mib: float = 0.0

    @property
    def flags(self) -> list[str]:
        out = [f"{r.framework} {r.name}: {r.flag}" for a in self.audits.values() for r in a.rows if r.flag]
        out += [f"torch {p.torch.name} / paddle {p.paddle.name}: {p.problem}" for p in self.pairs if p.problem]
        if self.torch_only or self.paddle_only:
            out.append(f"unmatched parameters (torch: {', '.join(self.torch_only) or '-'}; paddle: "
                       f"{', '.join(self.paddle_only) or '-'}): pair them with --name-map FILE")
        return out

    @property
    def exit_code(self) -> int:
        if self.errors:
            return 3
        return 1 if self.flags else 0


def checked_arguments(factories: dict[str, str], steps: int, no_decay: tuple[str, ...], decay: tuple[str, ...],
                      name_map_path: str | None) -> dict[str, tuple[str, ...]] | None:
    """The arguments of an audit checked before any framework runs (UsageError naming the
    option), and the name map read."""
    if not factories:
        raise UsageError("audit: give --torch MOD:FUNC, --paddle MOD:FUNC or both")
    if name_map_path is not None and len(factories) < 2:
        raise UsageError(f"--name-map {name_map_path}: pairs parameters across frameworks: give both --torch "
                         "and --paddle")
    if not 1 <= steps <= MAX_STEPS:
        raise UsageError(f"--steps: must be in [1, {MAX_STEPS}], got {steps}")
    for option, patterns in (("--no-decay", no_decay), ("--decay", decay)):
        for pattern in patterns:
            check_pattern(pattern, f"{option} {pattern!r}")
    return None if name_map_path is None else load_name_map(name_map_path)


def audit_jobs(factories: dict[str, str], steps: int) -> dict[str, AuditJob]:
    """One job per framework; a MODULE is found from the current folder, as `python -m` finds it."""
    return {fw: AuditJob(spec, f"--{fw}", (os.getcwd(),), steps, SEED) for fw, spec in factories.items()}


def run_audit(factories: dict[str, str], *, steps: int = AUDIT_STEPS, no_decay: tuple[str, ...] = (),
              decay: tuple[str, ...] = (), name_map: dict[str, tuple[str, ...]] | None = None,
              name_map_path: str = "", pythons: dict[str, str] | None = None,
              timeout: float = DEFAULT_TIMEOUT, in_process: bool = False) -> AuditResult:
    """Run each framework's factory in its worker and audit what its optimizer did.
    A problem with the user's setup (factory, model, optimizer, name map) is a UsageError."""
    done = run(audit_jobs(factories, steps), pythons, timeout, in_process)
    began = time.perf_counter()
    result = AuditResult({}, {}, steps, no_decay, decay)
    for fw, fr in done.items():
        if fr.error is not None:
            result.errors[fw] = fr.error
            continue
        record = fr.records[0][0]
        if record.error is not None:
            raise UsageError(record.error)
        result.audits[fw] = FrameworkAudit(fw, fr.version or "", factories[fw], record.optimizer,
                                           [_row(record, i, no_decay, decay) for i in range(len(record.hyper))],
                                           record.options["seconds"], record.options["peak_mib"])
    if {"torch", "paddle"} <= set(result.audits):
        t, p = result.audits["torch"], result.audits["paddle"]
        matching = match({r.name: r.shape for r in t.rows}, {r.name: r.shape for r in p.rows},
                         name_map or {}, name_map_path)
        _pair(result, matching)
    result.analysis_seconds = time.perf_counter() - began
    result.parent_peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _row(record: RunRecord, i: int, no_decay: tuple[str, ...], decay: tuple[str, ...]) -> Row:
    info: dict[str, Any] = record.options["params"][i]
    name, fw = info["name"], record.framework
    base = {"framework": fw, "name": name, "shape": tuple(info["shape"]), "dtype": info["dtype"],
            "status": info["status"], "group": info["group"], "sample": info["sample"]}
    places = [(text, c) for text, c in info["sources"]]
    if info["status"] != STEPPED:
        row = Row(**base, sources=tuple(t for t, _ in places), rule=info["status"], decayed=False, lr=(),
                  residual=None, power=RowPower("-"))
    else:
        lrs = record.series["lr:" + name]
        hyper = {**record.hyper[i], LR_KEY[fw]: lrs}
        grads = _ascent(list(record.series["grad:" + name].astype(np.float64)), hyper)
        # Captured flat; a rule that mixes elements (infer.MIXING_RULES: always captured
        # whole) needs the parameter's own shape back: Adafactor factors a matrix's moments.
        shape = (-1,) if info["sample"] is not None else tuple(info["shape"])
        snaps = record.params[name].reshape(len(lrs) + 1, *shape)
        grads = [g.reshape(shape) for g in grads]
        tol = tolerance(info["dtype"])
        found = infer_param(fw, name, RULES[(fw, record.optimizer)], hyper, snaps, grads,
                            [np.zeros_like(g) for g in grads], tol,
                            _candidates(tuple(c for _, c in places if c), hyper))
        row = Row(**base, sources=_attributed(found, places), rule=found.rule, decayed=_decayed(found),
                  lr=tuple(float(x) for x in lrs),
                  residual=found.residual, power=_power(found, snaps, tol))
    return _flagged(row, no_decay, decay)


def _attributed(found: Inferred, places: list[tuple[str, float | None]]) -> tuple[str, ...]:
    """Each fitted decay term and the place setting its coefficient (the same float32
    value), or "set nowhere the audit reads"; with no decay fitted, or several rules
    (ambiguous), every place."""
    terms = dict.fromkeys((f, c) for family, cs in found.fits for f, c in zip(family, cs) if f != "none")
    if not terms or len(found.fits) > 1:
        return tuple(text for text, _ in places)
    out = []
    for f, c in terms:
        where = [text for text, sc in places if sc is not None and np.float32(sc) == np.float32(c)]
        out.append(f"{rule_name((f,), (c,))} <- {where[0] if where else 'set nowhere the audit reads'}")
    return tuple(out)


def _decayed(found: Inferred) -> bool | None:
    families = {f for f, _ in found.fits}
    if not families or (("none",) in families and len(families) > 1):
        return None
    return families != {("none",)}


@dataclass(frozen=True)
class RowPower:
    """What a row's verdict would catch, measured by replay (engine/power.py): for a decayed
    parameter the smallest relative error of its coefficient (`>=0.1 %`); for one without
    decay the smallest coupled or decoupled coefficient it would have shown (`sees >= 1e-05`).
    verdict: "conclusive", "inconclusive" (the steps cannot show it), "unknown" (no rule
    fits), "-" (not stepped)."""
    verdict: str
    coeff_error: float | None = None
    sees: float | None = None

    def text(self) -> str:
        if self.coeff_error is not None:
            return f">={self.coeff_error * 100:.3g} %"
        return f"sees >= {self.sees:g}" if self.sees is not None else self.verdict

    def json(self) -> dict:
        return {"verdict": self.verdict, "coeff_error": self.coeff_error, "sees": self.sees}


def _power(found: Inferred, snaps: np.ndarray, tol: Tolerance) -> RowPower:
    seen, _ = visibility(found)
    if seen is None or found.replay is None or found.sensitivity is None:
        return RowPower("unknown")
    if not seen:
        return RowPower("inconclusive")
    a = snaps.reshape(len(snaps), -1).astype(np.float64)
    d = np.diff(a, axis=0)
    k = np.arange(1, len(d) + 1).reshape(-1, 1)
    margin = tol.allowed_from(tol.ulp(np.maximum(np.abs(a[:-1]), np.abs(a[1:]))), np.abs(d), k) \
        + found.sensitivity[0].reshape(len(d), -1)
    power = ParamPower(found.replay)
    decays = [(f, cs) for f, cs in found.fits if f != ("none",)]
    if not decays:
        none = (("none",), ())
        caught = [c for c in VISIBLE if power.caught(none, (("coupled_l2",), (c,)), margin)
                  and power.caught(none, (("decoupled_lr",), (c,)), margin)]
        return RowPower("conclusive", sees=caught[0]) if caught else RowPower("inconclusive")
    errors = [power.coeff_error(f, margin) for f in decays]
    return RowPower("inconclusive") if None in errors else RowPower("conclusive", coeff_error=max(errors))


def _flagged(row: Row, no_decay: tuple[str, ...], decay: tuple[str, ...]) -> Row:
    for pattern in no_decay:
        if re.search(pattern, row.name):
            if row.decayed:
                return _with_flag(row, f"decayed ({row.rule}), but matches --no-decay {pattern!r}")
            if row.decayed is None:
                return _with_flag(row, f"cannot tell whether it is decayed ({row.rule}){MORE_STEPS}; it matches "
                                       f"--no-decay {pattern!r}")
    for pattern in decay:
        if re.search(pattern, row.name):
            if row.decayed is False:
                return _with_flag(row, f"not decayed ({row.rule}), but matches --decay {pattern!r}")
            if row.decayed is None:
                return _with_flag(row, f"cannot tell whether it is decayed ({row.rule}){MORE_STEPS}; it matches "
                                       f"--decay {pattern!r}")
    return row


def _with_flag(row: Row, flag: str) -> Row:
    return replace(row, flag=flag)


def _pair(result: AuditResult, matching: Matching) -> None:
    rows_t = {r.name: r for r in result.audits["torch"].rows}
    rows_p = {r.name: r for r in result.audits["paddle"].rows}
    for t, p, how in matching.pairs:
        a, b = rows_t[t], rows_p[p]
        result.pairs.append(Pair(a, b, how, _difference(a, b)))
    result.torch_only, result.paddle_only = matching.torch_only, matching.paddle_only


def _difference(a: Row, b: Row) -> str:
    """Why a torch parameter and its paddle counterpart are not stepped alike, or "".
    Rules are compared by their canonical names: coefficients written as the shortest
    decimal of their float32 value (rules.coefficient_text), which is what paddle applies.
    The lrs may differ by paddle's float32 rounding: its lr, and its product with a
    per-parameter multiplier, each within half a float32 ULP, so at most ulp32(lr)."""
    if a.rule != b.rule:
        return f"rules differ: torch {a.rule}, paddle {b.rule}"
    if len(a.lr) == len(b.lr) and any(abs(x - y) > ulp32(np.float64(x)) for x, y in zip(a.lr, b.lr)):
        return f"lrs differ: torch {_series(a.lr)}, paddle {_series(b.lr)}"
    return ""


def _series(values: tuple[float, ...]) -> str:
    shown = dict.fromkeys(f"{v:.6g}" for v in values)
    return "..".join(shown) if len(shown) <= 2 else f"{min(values):.6g}..{max(values):.6g}"


def summary(audit: FrameworkAudit) -> str:
    """'48 decayed, 26 not; norm weights decayed: ...' for one framework."""
    rows = audit.rows
    decayed = [r for r in rows if r.decayed]
    parts = [f"{len(decayed)} decayed, {sum(r.decayed is False for r in rows)} not"]
    unknown = [r.name for r in rows if r.decayed is None]
    if unknown:
        parts[0] += f", {len(unknown)} cannot tell ({', '.join(unknown)})"
    for label, pattern in (("norm parameters decayed", NORM), ("biases decayed", BIAS)):
        names = [r.name for r in decayed if pattern.search(r.name)]
        if names:
            parts.append(f"{label}: {', '.join(names)}")
    return "; ".join(parts)
