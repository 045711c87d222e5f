"""Report writers: terminal table, markdown and JSON, all from the same CaseResult."""
from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
from tabulate import tabulate

from .. import __version__
from ..case_files import shown
from ..engine.baseline import Drift, recorded_sample
from ..engine.compare import Comparison
from ..engine.infer import SAMPLE_SIDE
from ..engine.layers import Layer
from ..engine.pipeline import CaseResult, Outcome
from ..engine.setups import describe
from ..frameworks.protocol import release
from ..frameworks.records import RunRecord
from .markdown import cell, prose

MAX_SHOWN = 8          # rows/columns of a matrix shown in text; JSON always has all
WIDTH = 120            # terminal width the side-by-side blocks wrap at
SHOWN_STEPS = 3        # text shows every step up to this many, else first and last


def fmt(x: float, spec: str) -> str:
    """`x` in format `spec`; NaN and infinities spelt so that no one reads them as numbers."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return format(x, spec)


def _num(x: float) -> str:
    return fmt(x, "+.6e")


def _shown_steps(steps: int) -> list[int]:
    return list(range(steps)) if steps <= SHOWN_STEPS else [0, steps - 1]


def _verdict(r: CaseResult) -> str:
    if r.framework_errors or r.failed_runs:
        names = sorted(r.framework_errors) + [x.name for x in r.failed_runs]
        return f"ERROR: could not run {', '.join(names)}"
    checks = len(r.checks)
    unseen = len(r.inconclusive)
    failed = sum(not c.ok for c in r.checks) - unseen
    skipped = f"; {len(r.skipped)} skipped" if r.skipped else ""
    inconclusive = [f"{unseen} of {checks} expectations inconclusive (the experiment cannot see "
                    "what they claim)"] if unseen else []
    if failed or r.warnings:
        parts = ([f"{failed} of {checks} expectations fail"] if failed else []) + inconclusive + r.warnings
        return "MISMATCH: " + "; ".join(parts) + skipped
    if unseen:
        return "INCONCLUSIVE: " + inconclusive[0] + skipped
    return f"OK: all {checks} expectations hold{skipped}"


def _header(r: CaseResult, versions: dict[str, str]) -> list[str]:
    c = r.case
    o = c.optimizer
    hyper = ", ".join(f"{k}={v}" for k, v in o.hyper.items())
    native = "".join(f"; {fw}: " + ", ".join(f"{k}={v!r}" for k, v in args.items())
                     for fw, args in o.native.items())
    layer = (f"Linear({c.layer.in_features}->{c.layer.out_features}{', bias' if c.layer.bias else ''})"
             if c.layer.kind == "linear" else c.layer.describe())
    frameworks = ", ".join(f"{fw} {v}" for fw, v in versions.items())
    return [f"{c.description}",
            f"{shown(c.path)} | {layer} | batch {c.batch}{' (a new one every step)' if c.fresh else ''} | "
            f"loss {c.loss} | {o.name}(lr={o.lr}"
            f"{', ' + hyper if hyper else ''}{native}) | coeff {c.decay.coeff}"
            + (f" | clip {c.clip.kind} {c.clip.max}" + (f" of {', '.join(c.clip.params)}" if c.clip.params else "")
               if c.clip else "")
            + (f" | schedule {c.schedule.kind}(" + ", ".join(f"{k}={v}" for k, v in c.schedule.words.items()) + ")"
               if c.schedule else "")
            + (f" | accumulate {c.accumulate.micro_batches} micro-batches"
               f"{', loss divided' if c.accumulate.divide_loss else ', loss not divided'}" if c.accumulate else "")
            + (f" | precision {precision_text(c.precision)}" if c.precision else "")
            + f" | steps {r.steps} | {frameworks}"]


def precision_text(p) -> str:
    """[precision] in a few words (the header lines of the reports)."""
    return (p.dtype + (" autocast" if p.autocast else " parameters")
            + (", master weights" if p.master_weights else "")
            + (f", GradScaler(init_scale={p.init_scale:g})" if p.init_scale is not None else ""))


# ---------------------------------------------------------------- terminal

def _layout(layer: Layer, param: str) -> str:
    """A parameter's canonical layout, as the delta tables title it."""
    if layer.kind == "linear":
        return (f"canonical layout [out={layer.out_features}, in={layer.in_features}] (paddle's [in, out] "
                f"transposed)" if param == "weight" else f"[{layer.out_features}]")
    d = next(d for d in layer.defs if d.name == param)
    moved = [f"{fw} {d.native(fw).name}" + (" transposed" if d.native(fw).transpose else "")
             + (f" rows {d.native(fw).part[0] + 1} of {d.native(fw).part[1]}" if d.native(fw).part else "")
             for fw in ("torch", "paddle")]
    return f"canonical layout {d.layout} = {list(layer.shapes()[param])} ({', '.join(moved)})"


def layout_note(layer: Layer) -> str:
    """The markdown pages' words on the layouts of the deltas."""
    if layer.kind == "linear":
        return "weight in the canonical layout [out, in] (paddle's [in, out] weight is transposed)"
    return prose("canonical layouts: " + "; ".join(f"{p}: {_layout(layer, p)}" for p in layer.params))


def layer_json(layer: Layer) -> dict[str, Any]:
    """A non-Linear layer in the JSON: its keys, and per parameter the layout table's entry."""
    shapes = layer.shapes()
    return {"kind": layer.kind, **dict(layer.sizes),
            "params": {d.name: {"role": d.role, "layout": d.layout, "shape": list(shapes[d.name]),
                                **{fw: dataclasses.asdict(d.native(fw)) for fw in ("torch", "paddle")}}
                       for d in layer.defs}}


def _matrix_block(title: str, m: np.ndarray) -> list[str]:
    m = np.atleast_2d(m)
    m = m.reshape(len(m), -1)       # a kernel [out, in, kh, kw]: one row per output channel
    rows, cols = m.shape
    cells = [[_num(v) for v in row[:MAX_SHOWN]] + (["..."] if cols > MAX_SHOWN else [])
             for row in m[:MAX_SHOWN]]
    if rows > MAX_SHOWN:
        cells.append(["..."] * len(cells[0]))
    # Columns by hand, as tabulate's "plain" would lay them out: tabulate took 0.2 s of the
    # table of `compare --case all` (it guesses each cell's type), all of it after the runs.
    widths = [max(len(row[j]) for row in cells) for j in range(len(cells[0]))]
    body = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    width = max(len(title), *(len(l) for l in body))
    return [title.ljust(width), "-" * width] + [l.ljust(width) for l in body]


def _side_by_side(blocks: list[list[str]], gap: str = "   ") -> list[str]:
    lines, row = [], []
    for block in blocks:
        if row and sum(len(b[0]) + len(gap) for b in row) + len(block[0]) > WIDTH:
            lines += _join(row, gap) + [""]
            row = []
        row.append(block)
    if row:
        lines += _join(row, gap)
    return lines


def _join(blocks: list[list[str]], gap: str) -> list[str]:
    height = max(len(b) for b in blocks)
    padded = [b + [" " * len(b[0])] * (height - len(b)) for b in blocks]
    return [gap.join(parts).rstrip() for parts in zip(*padded)]


def _comparison_rows(comparisons: list[Comparison]) -> list[list[str]]:
    return [[c.a, c.b, c.param, c.expected, fmt(c.max_abs, ".3e"), fmt(c.max_rel, ".3e"),
             fmt(c.max_ulp, ".1f"), fmt(c.excess, ".3g"), _power(c.power), _check_verdict(c)]
            for c in comparisons]


def _power(power) -> str:
    return "" if power is None else power.short()


def _check_verdict(c) -> str:
    if c.ok:
        return "ok"
    return c.problem.replace("inconclusive: ", "INCONCLUSIVE (", 1) + ")" if c.inconclusive \
        else f"FAIL ({c.problem})"


def _rule_check_verdict(c) -> str:
    if c.ok:
        return "ok"
    if not c.inconclusive:
        return "FAIL"
    return f"INCONCLUSIVE ({c.problem or c.power.words()})"


def _params(r: CaseResult) -> list[str]:
    return list(r.case.layer.params)


def _setup_rows(r: CaseResult) -> list[list[str]]:
    """run, its setup in words, each parameter's rule, and the runs it equals."""
    rules = {(run, p): rule for run, p, rule in r.rules}
    equals: dict[str, set[str]] = {}
    for c in r.comparisons:
        if c.expected == "equal" and c.ok and c.param == "all":
            equals.setdefault(c.a, set()).add(c.b)
            equals.setdefault(c.b, set()).add(c.a)
    return [[x.name, describe(r.case, x.framework, x.way), *(rules.get((x.name, p), "") for p in _params(r)),
             ", ".join(sorted(equals.get(x.name, ())))] for x in r.runs if x.error is None]


def _rule_rows(r: CaseResult) -> list[list[str]]:
    by_run: dict[str, dict[str, str]] = {}
    for run, param, rule in r.rules:
        by_run.setdefault(run, {})[param] = rule
    return [[run, *(rules.get(p, "") for p in _params(r))] for run, rules in by_run.items()]


COMPARISON_HEADERS = ["a", "b", "param", "expected", "max_abs", "max_rel", "max_ulp", "x tol", "power",
                      "verdict"]
POWER_NOTE = ("power: the smallest relative error of the decay coefficient the check would catch "
              "(replayed with the float64 reference), and the nearest other rules it would miss")


def table(outcome: Outcome) -> str:
    out: list[str] = []
    for r in outcome.results:
        out += [f"== {r.case.name} " + "=" * max(0, 76 - len(r.case.name))] + _header(r, outcome.versions)
        out += [f"{fw}: ERROR {msg}" for fw, msg in r.framework_errors.items()]
        out += [f"{x.name}: ERROR {x.error}" for x in r.failed_runs]
        out += [f"{c.run}: rejected as expected ({c.words!r}): {c.error}" if c.ok else
                f"{c.run}: FAIL expected a rejection saying {c.words!r}, got "
                f"{c.error or 'no error'}" for c in r.reject_checks]
        good = [x for x in r.runs if x.error is None]
        for k in _shown_steps(r.steps) if good else []:
            for param in r.case.layer.params:
                shape = _layout(r.case.layer, param)
                out += ["", f"delta_{param} = after - before, step {k + 1} of {r.steps}, {shape}"]
                # One element more than shown: the block's shape tells whether to print "...".
                out += _side_by_side([_matrix_block(x.name, x.step_delta(param, k, MAX_SHOWN + 1))
                                      for x in good])
        if r.steps > SHOWN_STEPS and good:
            out.append(f"(steps 2..{r.steps - 1} omitted here; --format json has every step)")
        if r.rules:
            out += ["", "rule each run follows (inferred by replaying its steps with the float64 reference)"]
            out.append(tabulate(_rule_rows(r), ["run", *_params(r)], disable_numparse=True))
        out += [f"{c.run} {c.param}: rule {c.got}, expected {c.expected}: {_rule_check_verdict(c)}"
                f"{'; power ' + _power(c.power) if c.ok and c.power else ''}" for c in r.rule_checks]
        out += [f"{x.name} logged: {line}" for x in good for line in x.logs]
        out += ["", f"comparisons over every step (param: the parameters compared); tolerance: {r.tolerance.describe()}",
                POWER_NOTE]
        if r.comparisons:
            out.append(tabulate(_comparison_rows(r.comparisons), COMPARISON_HEADERS,
                                disable_numparse=True))
        out += [f"skipped {a} vs {b}: {why}" for a, b, why in r.skipped]
        out += [f"WARNING: {w}" for w in r.warnings]
        out += [f"note: {n}" for n in r.notes]
        out += [f"verdict: {_verdict(r)}", ""]
    out += [f"== {name}: nothing checked ({why})" for name, why in outcome.unchecked]
    if len(outcome.results) + len(outcome.unchecked) > 1:
        out.append(_cases_line(outcome))
    if outcome.drift is not None:
        out += ["", _baseline_line(outcome)]
        if outcome.drift:
            out.append(tabulate(_drift_rows(outcome.drift), DRIFT_HEADERS, disable_numparse=True))
    return "\n".join(out).rstrip() + "\n"


DRIFT_HEADERS = ["case", "drift", "what", "baseline", "now", "x tol"]


def _drift_rows(drift: list[Drift]) -> list[list[str]]:
    def value(v: str | float) -> str:
        return v if isinstance(v, str) else fmt(v, "")   # "": the shortest round-trip digits

    return [[d.case, d.kind, d.what, value(d.old), value(d.new),
             "" if d.ratio is None else fmt(d.ratio, ".3g")] for d in drift]


def _cases_line(outcome: Outcome) -> str:
    bad = [r.case.name for r in outcome.results if not r.ok]
    unchecked = [name for name, _ in outcome.unchecked]
    return (f"{len(outcome.results) - len(bad)} of {len(outcome.results)} cases ok"
            + (f"; not ok: {', '.join(bad)}" if bad else "")
            + (f"; nothing checked: {', '.join(unchecked)}" if unchecked else ""))


def summary(outcome: Outcome) -> list[str]:
    """The verdict in a line or few: what --out prints on stderr, where the reports are not shown."""
    lines = [f"verdict: {r.case.name}: {_verdict(r)}" for r in outcome.results]
    lines += [f"verdict: {name}: nothing checked ({why})" for name, why in outcome.unchecked]
    if len(outcome.results) + len(outcome.unchecked) > 1:
        lines.append(_cases_line(outcome))
    if outcome.drift is not None:
        lines.append(_baseline_line(outcome))
    return lines


def _baseline_line(outcome: Outcome) -> str:
    pairs = ", ".join(f"{fw} {outcome.versions.get(fw, 'absent')} (baseline "
                      f"{outcome.baseline_versions.get(fw, 'absent')})"
                      for fw in sorted(set(outcome.versions) | set(outcome.baseline_versions)))
    skipped = "".join(f"; skipped {fw} (not selected)" for fw in outcome.baseline_skipped)
    if not outcome.drift:
        return f"baseline: no drift; compared {pairs}{skipped}"
    return f"baseline: DRIFT, {len(outcome.drift)} rows; compared {pairs}{skipped}"


# ---------------------------------------------------------------- markdown

def markdown(outcome: Outcome) -> str:
    out: list[str] = []
    for r in outcome.results:
        head = _header(r, outcome.versions)
        out += [f"## {r.case.name}", "", prose(head[0]), "",
                f"`{head[1]}`", ""]
        out += [f"- **{fw}**: error: {msg}" for fw, msg in r.framework_errors.items()]
        out += [f"- **{x.name}**: error: {x.error}" for x in r.failed_runs]
        out += [f"- **{c.run}**: {'rejected, as expected' if c.ok else 'FAIL: expected a rejection'}: "
                f"{c.error or 'no error'}" for c in r.reject_checks]
        good = [x for x in r.runs if x.error is None]
        for k in _shown_steps(r.steps) if good else []:
            large = r.case.layer.largest_side() > MAX_SHOWN
            out += [f"### Deltas, step {k + 1} of {r.steps}", "",
                    f"after − before per element, one column per run; {layout_note(r.case.layer)}." +
                    (f" The leading {MAX_SHOWN}x{MAX_SHOWN} block; --format json has {json_elements(r.case, good)}."
                     if large else ""), ""]
            out.append(_element_table(good, k))
            out.append("")
        if r.rules:
            out += ["### What each parameter got", "",
                    "Each run's setup, the rule each parameter followed (inferred by replaying the "
                    "run's steps with the float64 reference), and the runs it equals within "
                    "tolerance in another framework or as a manual loss term.", "",
                    tabulate([[cell(c) for c in row] for row in _setup_rows(r)],
                             ["run", "setup", *_params(r), "equals"], tablefmt="github",
                             disable_numparse=True), ""]
        if r.rule_checks:
            out += [rule_check_table(r), ""]
        logs = [(x.name, line) for x in good for line in x.logs]
        if logs:
            out += ["What the framework logged meanwhile:", ""]
            out += [f"- `{name}`: {line}" for name, line in logs] + [""]
        out += ["### Comparisons", "", f"Tolerance: `{r.tolerance.describe()}`", "", POWER_NOTE + ".", ""]
        if r.comparisons:
            out += [tabulate([[cell(c) for c in row] for row in _comparison_rows(r.comparisons)],
                             COMPARISON_HEADERS, tablefmt="github", disable_numparse=True), ""]
        out += [f"- skipped {a} vs {b}: {why}" for a, b, why in r.skipped]
        out += [f"- **warning**: {w}" for w in r.warnings]
        out += [f"- note: {n}" for n in r.notes]
        out += ["", f"**Verdict:** {_verdict(r)}", ""]
    for name, why in outcome.unchecked:
        out += [f"## {name}", "", f"**Verdict:** nothing checked ({why})", ""]
    if outcome.drift is not None:
        out += ["## Baseline", "", _baseline_line(outcome), ""]
        if outcome.drift:
            out.append(tabulate([[cell(x) for x in row] for row in _drift_rows(outcome.drift)],
                                DRIFT_HEADERS, tablefmt="github", disable_numparse=True))
    return "\n".join(out).rstrip() + "\n"


RULE_CHECK_HEADERS = ["run", "param", "expected rule", "inferred", "power", "verdict"]


def rule_check_table(r: CaseResult) -> str:
    """The case's rule claims against the inferred rules, as a markdown table."""
    return tabulate([[c.run, c.param, cell(c.expected), cell(c.got), cell(_power(c.power)),
                      cell(_rule_check_verdict(c))] for c in r.rule_checks],
                    RULE_CHECK_HEADERS, tablefmt="github", disable_numparse=True)


def _element_table(runs: list[RunRecord], k: int) -> str:
    """Every element of a small layer; of a large one, the leading MAX_SHOWN x MAX_SHOWN
    block (--format json has every element)."""
    rows = []
    for param in runs[0].params:
        deltas = [x.step_delta(param, k, MAX_SHOWN) for x in runs]
        for index in np.ndindex(deltas[0].shape):
            label = f"{param}[{','.join(map(str, index))}]"
            rows.append([label] + [_num(d[index]) for d in deltas])
    return tabulate(rows, ["element"] + [x.name for x in runs], tablefmt="github",
                    disable_numparse=True)


# ---------------------------------------------------------------- JSON

def finite_or_str(x: float) -> float | str:
    # JSON has no NaN/Inf; strings keep the document valid and the value visible.
    return x if math.isfinite(x) else ("NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity"))


def _array(a: np.ndarray | None) -> Any:
    if a is None:
        return None
    if np.isfinite(a).all():
        return a.tolist()
    return np.vectorize(finite_or_str, otypes=[object])(a).tolist()


def json_elements(case, runs: list[RunRecord]) -> str:
    """What --format json holds of the deltas of these (successful) runs."""
    if not recorded_sample(case.layer.kind, runs[0].params):
        return "every element"
    return (f"every element of a parameter up to {SAMPLE_SIDE}x{SAMPLE_SIDE}, of a larger one an evenly "
            f"spaced sample of {SAMPLE_SIDE ** 2} and each step's exact max |delta| and norm")


def _recorded_deltas(x: RunRecord, param: str, idx: np.ndarray | None) -> np.ndarray:
    """[steps, ...] the deltas the JSON records: every element, or [steps, len(idx)] on
    a large parameter's sample (taken before the float64 copy: it never holds the layer)."""
    if idx is None:
        return x.delta(param)
    return np.diff(x.params[param].reshape(x.steps + 1, -1)[:, idx].astype(np.float64), axis=0)


def _sample_json(x: RunRecord, param: str, idx: np.ndarray) -> dict[str, Any]:
    """Which elements a sampled parameter's deltas are, and per step the exact max |delta|
    and L2 norm over all of its elements (one step's float64 delta in memory at a time)."""
    shape = list(x.params[param].shape[1:])
    max_abs, norm = [], []
    for k in range(x.steps):
        d = x.step_delta(param, k)
        max_abs.append(finite_or_str(float(np.max(np.abs(d)))))
        norm.append(finite_or_str(float(np.linalg.norm(d.ravel()))))
    # As the pipeline does after comparing: the pages read stop counting in this
    # process's memory (else a document holds every run's snapshots at once).
    release(x.params[param])
    return {"of": int(np.prod(shape, dtype=np.int64)), "shape": shape, "indices": idx.tolist(),
            "max_abs": max_abs, "norm": norm}


def _steps_json(deltas: dict[str, np.ndarray], steps: int) -> Iterator[dict[str, Any]]:
    """Each step's recorded deltas, one step's lists at a time."""
    for k in range(steps):
        yield {"delta_weight": _array(deltas["weight"][k]) if "weight" in deltas else None,
               "delta_bias": _array(deltas["bias"][k]) if "bias" in deltas else None,
               **{f"delta_{p}": _array(d[k]) for p, d in deltas.items() if p not in ("weight", "bias")}}


def case_json(r: CaseResult, versions: dict[str, str],
              streamed: list[Iterator[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The case's JSON document. With `streamed`, each run's "steps" is left as a
    placeholder (its index in `streamed` in a _STEPS string) and its steps appended to
    `streamed`: json_chunks encodes them one at a time."""
    runs = []
    for x in r.runs:
        run: dict[str, Any] = {"run": x.name, "framework": x.framework, "way": x.way}
        if x.error is not None:
            run.update(steps=[], error=x.error)
        else:
            sampled = recorded_sample(r.case.layer.kind, x.params)
            steps = _steps_json({p: _recorded_deltas(x, p, sampled.get(p)) for p in x.params}, x.steps)
            if streamed is None:
                run["steps"] = list(steps)
            else:
                run["steps"] = _STEPS.format(len(streamed))
                streamed.append(steps)
            if sampled:
                run["sampled"] = {p: _sample_json(x, p, idx) for p, idx in sampled.items()}
        if x.logs:
            run["logs"] = x.logs
        if r.case.precision is not None and x.error is None:
            run.update(dtype=x.dtype, forward=x.forward)
        runs.append(run)
    comparisons = [{"a": c.a, "b": c.b, "param": c.param, "max_abs": finite_or_str(c.max_abs),
                    "max_rel": finite_or_str(c.max_rel), "max_ulp": finite_or_str(c.max_ulp),
                    "expected": c.expected, "ok": c.ok, "tolerance_ratio": finite_or_str(c.excess),
                    "verdict": c.verdict, "power": _power_json(c.power),
                    **({"problem": c.problem} if c.problem else {})} for c in r.comparisons]
    return {"case": r.case.name, "description": r.case.description, "steps_run": r.steps,
            "layout": "delta_weight is [out, in]" if r.case.layer.kind == "linear" else
            "each delta_PARAM in its canonical layout (layer.params)", "tolerance": r.tolerance.describe(),
            **({} if r.case.layer.kind == "linear" else {"layer": layer_json(r.case.layer)}),
            "runs": runs, "comparisons": comparisons,
            "rules": [{"run": run, "param": param, "rule": rule} for run, param, rule in r.rules],
            "rule_checks": [{"run": c.run, "param": c.param, "expected": c.expected, "rule": c.got,
                             "ok": c.ok, "verdict": c.verdict, "power": _power_json(c.power),
                             **({"problem": c.problem} if c.problem else {})} for c in r.rule_checks],
            "reject_checks": [{"run": c.run, "message": c.words, "error": c.error, "ok": c.ok}
                              for c in r.reject_checks],
            "skipped": [{"a": a, "b": b, "why": why} for a, b, why in r.skipped],
            "errors": {**r.framework_errors, **{x.name: x.error for x in r.failed_runs}},
            **({"clip": {"kind": r.case.clip.kind, "max": r.case.clip.max,
                         **({"params": list(r.case.clip.params)} if r.case.clip.params else {}),
                         **{fw: r.case.clip.native(fw) for fw in ("torch", "paddle")}}} if r.case.clip else {}),
            **({"schedule": {"kind": r.case.schedule.kind, **r.case.schedule.words,
                             **{fw: r.case.schedule.shown(fw) for fw in ("torch", "paddle")}}}
               if r.case.schedule else {}),
            **({"accumulate": dataclasses.asdict(r.case.accumulate)} if r.case.accumulate else {}),
            # [data] beyond the usual: a zero loss gradient, a new batch every step.
            **({"data": {"loss": r.case.loss, "fresh": r.case.fresh}}
               if r.case.fresh or r.case.loss == "zero" else {}),
            **({"lr_scale": _lr_scale_json(r.case)} if r.case.decay.lr_scales() else {}),
            **({"param_attr_lr": dict(r.case.decay.param_attr_lr)} if r.case.decay.param_attr_lr else {}),
            **({"precision": r.case.precision.json()} if r.case.precision else {}),
            "warnings": r.warnings, "notes": r.notes, "ok": r.ok}


def _lr_scale_json(case) -> dict[str, Any]:
    """The groups' lr_scale per parameter, and as each framework is given it: torch's
    absolute group lr, paddle's group learning_rate (a multiplier on the optimizer's)."""
    scales = case.decay.lr_scales()
    return {"scale": scales, "torch_lr": {p: float(case.optimizer.lr) * s for p, s in scales.items()},
            "paddle_learning_rate": scales}


def _power_json(power) -> dict | None:
    if power is None:
        return None
    doc = power.json()
    return {**doc, "visibility": None if doc["visibility"] is None else finite_or_str(doc["visibility"])}


def json_report(outcome: Outcome) -> str:
    return "".join(json_chunks(outcome))


# A run's steps, left out of the encoded document and encoded one by one in its place.
# The NUL bytes are escaped by json ("\\u0000"): no other string encodes to the same text.
_STEPS = "\0steps {}\0"
_STEPS_TEXT = re.compile(r'"\\u0000steps (\d+)\\u0000"')


def json_chunks(outcome: Outcome) -> Iterator[str]:
    """The JSON report in pieces, the text json.dumps(indent=1) gives for the whole
    document: every run's steps are encoded one step at a time, so neither the text nor
    the deltas as Python floats are ever held whole (a long run's ~32 bytes a float)."""
    streamed: list[Iterator[dict[str, Any]]] = []
    if len(outcome.results) == 1:
        body = case_json(outcome.results[0], outcome.versions, streamed)
    else:
        body = {"cases": [case_json(r, outcome.versions, streamed) for r in outcome.results],
                "ok": all(r.ok for r in outcome.results)}
    if outcome.unchecked:
        body["unchecked"] = [{"case": name, "why": why} for name, why in outcome.unchecked]
    if outcome.drift is not None:
        body["baseline"] = {"frameworks": dict(sorted(outcome.baseline_versions.items())),
                            "drift": [_drift_json(d) for d in outcome.drift]}
        if outcome.baseline_skipped:
            body["baseline"]["skipped"] = outcome.baseline_skipped
    doc = {"xdecay": __version__, "frameworks": dict(sorted(outcome.versions.items())), **body}
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    done = 0
    for m in _STEPS_TEXT.finditer(text):
        yield text[done:m.start()]
        line = text[text.rfind("\n", 0, m.start()) + 1:m.start()]
        yield from _list_chunks(streamed[int(m.group(1))], len(line) - len(line.lstrip(" ")))
        done = m.end()
    yield text[done:]


def _list_chunks(items: Iterator[dict[str, Any]], depth: int) -> Iterator[str]:
    """A list as json.dumps(indent=1) writes it as the value of a key indented `depth`
    spaces: its items one line deeper (a JSON string holds no raw newline to shift)."""
    inner = "\n" + " " * (depth + 1)
    sep = "["
    for item in items:
        yield sep + inner + json.dumps(item, indent=1, allow_nan=False).replace("\n", inner)
        sep = ","
    yield "[]" if sep == "[" else "\n" + " " * depth + "]"


def _drift_json(d: Drift) -> dict[str, Any]:
    """old and new as they are (a delta row's are numbers), the ratio apart, where there is one."""
    def value(v: str | float) -> str | float:
        return v if isinstance(v, str) else finite_or_str(v)

    row = {"case": d.case, "kind": d.kind, "what": d.what, "old": value(d.old), "new": value(d.new)}
    return row if d.ratio is None else {**row, "ratio": finite_or_str(d.ratio)}


def case_outcome(outcome: Outcome, r: CaseResult) -> Outcome:
    """The outcome of one case, for writing one file per case (with its own drift)."""
    drift = None if outcome.drift is None else [d for d in outcome.drift if d.case in (r.case.name, "*")]
    return Outcome(outcome.versions, [r], outcome.baseline_versions, drift,
                   baseline_skipped=outcome.baseline_skipped)


WRITERS = {"table": table, "markdown": markdown, "json": json_report}
