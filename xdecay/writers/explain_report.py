"""Writers for `xdecay explain`: terminal table, markdown docs page, JSON."""
from __future__ import annotations

import json
from typing import Any

from tabulate import tabulate

from .. import __version__
from ..engine.explain import COEFF, LOSS, PARAM_ATTR_COEFF, Explanation, Row, label
from .compare_report import finite_or_str
from .markdown import cell

RULE_NAMES = [
    ("none", "no decay: the optimizer's own update only"),
    ("coupled_l2@c", "grad += c·w before the update — the same as adding 0.5·c·Σw² to the loss"),
    ("decoupled_lr@c", "w ← w − lr·c·w next to the update (AdamW; lr the raw learning rate)"),
    ("l1@c", "grad += c·sign(w) — adding c·Σ|w| to the loss (Paddle L1Decay)"),
    ("lamb_trust@c", "Paddle Lamb: c·w added to the Adam direction inside the trust ratio"),
    ("clipped_l2@c", ("under a gradient clip: 0.5·c·Σw² in the loss, so c·w is clipped with the gradient, "
                      "clip(g + c·w) (the clip ways)")),
    ("a+b", "both at once, e.g. a ParamAttr L2 term and AdamW's own decay"),
    ("ambiguous(a|b)", "the data fit several rules: for plain SGD coupled and decoupled decay are one formula"),
    ("unexplained", "no rule fits within the tolerance (the residual says how far the best is)"),
    ("rejected", "the framework refused the construction or the step; its message is shown"),
]


def _setup(e: Explanation) -> str:
    versions = ", ".join(f"{fw} {v}" for fw, v in e.versions.items())
    return (f"Linear(5->3) with bias, batch 4, loss {LOSS}, {e.steps} steps from one numpy start; "
            f"decay c={COEFF}, ParamAttr(L2Decay({PARAM_ATTR_COEFF})) on the weight; {versions}")


def _options(row: Row) -> str:
    return ", ".join(f"{k}={v}" for k, v in row.options.items())


def _grouped(e: Explanation) -> list[list[str]]:
    """One line per run: weight and bias rules side by side."""
    lines: dict[tuple, list[str]] = {}
    for r in e.rows:
        key = (r.framework, r.optimizer, r.variant, r.way)
        line = lines.setdefault(key, [r.framework, label(r.optimizer, r.variant), r.way, "", "", ""])
        text = r.rule if r.error is None else f"rejected: {r.error}"
        line[3 if r.param == "weight" else 4] = text
        line[5] = _options(r)
    return list(lines.values())


HEADERS = ["framework", "optimizer", "way", "weight", "bias", "arguments"]
CROSS_HEADERS = ["torch", "paddle", "1 step", "all steps (max_abs)", "weight rule torch / paddle", "cause"]


def _cross_rows(e: Explanation) -> list[list[str]]:
    return [[c.torch, c.paddle, "equal" if c.one_step.ok else "differ",
             ("equal" if c.all_steps.ok else "differ") + f" ({c.all_steps.max_abs:.2e})",
             c.torch_rule if c.torch_rule == c.paddle_rule else f"{c.torch_rule} / {c.paddle_rule}",
             c.cause] for c in e.cross]


SEPARATE_NOTE = ("ambiguous rules: the steps (up to 100) or lr that would separate them, measured "
                 "by replaying the start freely under each rule and fitting the others")
SEPARATE_HEADERS = ["framework", "optimizer", "way", "param", "rule", "would separate"]


def _separate_rows(e: Explanation) -> list[list[str]]:
    # The clip ways' ambiguous rules are their plain ways' (plain SGD): said there once.
    return [[r.framework, label(r.optimizer, r.variant), r.way, r.param, r.rule,
             r.separate.removeprefix("would separate them (replayed): ")] for r in e.rows
            if r.separate and not _clipped(r.way)]


def _clipped(way: str) -> bool:
    return way.startswith("clip+")


def table(e: Explanation) -> str:
    out = [_setup(e), ""]
    out += [f"{fw}: ERROR {msg}" for fw, msg in e.errors.items()]
    out.append(tabulate(_grouped(e), HEADERS, disable_numparse=True, maxcolwidths=[None, None, None, 44, 44, 40]))
    if _separate_rows(e):
        out += ["", SEPARATE_NOTE + ":", tabulate(_separate_rows(e), SEPARATE_HEADERS, disable_numparse=True,
                                                  maxcolwidths=[None] * 5 + [60])]
    if e.cross:
        out += ["", "same user-level optimizer (lr, weight_decay=c) in both frameworks:",
                tabulate(_cross_rows(e), CROSS_HEADERS, disable_numparse=True,
                         maxcolwidths=[None] * 5 + [60])]
    return "\n".join(out) + "\n"


def markdown(e: Explanation) -> str:
    out = ["# Which weight decay each optimizer really applies", "",
           "Measured, not transcribed from documentation: every run below was made with the real "
           "framework, and its rule was inferred by replaying the run's steps with xdecay's float64 "
           "reference of the optimizer and each candidate decay.", "", f"Setup: {_setup(e)}.", "",
           "## Rule names", "", "| rule | meaning |", "|---|---|"]
    out += [f"| `{cell(name)}` | {cell(meaning)} |" for name, meaning in RULE_NAMES]
    out += ["", "Ways: `default` omits the decay argument; `none` passes 0.0; `weight_decay` a float; "
            "`decoupled` torch's `decoupled_weight_decay=True`; `l2decay`/`l1decay` a "
            "`paddle.regularizer` object; `param_attr` a `ParamAttr` regularizer on the weight "
            "(optimizer given 0.0); `param_attr+weight_decay` both; `param_attr_l1` an `L1Decay` "
            "ParamAttr on the weight, `param_attr_bias` an `L2Decay` ParamAttr on the bias (optimizer "
            "given 0.0); `manual` 0.5·c·Σp² of weight and bias in the loss (optimizer given 0.0); "
            "`groups` a weight group with `weight_decay=c` and a bias group without the key; "
            "`clip+manual` and `clip+weight_decay` those ways under a gradient clip (below).", ""]
    out += [f"**{fw}: error** {' '.join(msg.splitlines())}" for fw, msg in e.errors.items()]
    for fw in e.versions:
        rows = [r for r in _grouped(e) if r[0] == fw and not _clipped(r[2])]
        out += [f"## {fw} {e.versions[fw]}", "",
                tabulate([[cell(c) for c in r[1:]] for r in rows], HEADERS[1:], tablefmt="github",
                         disable_numparse=True), ""]
    clipped = [r for r in _grouped(e) if _clipped(r[2])]
    if clipped:
        out += ["## Under a gradient clip", "",
                "Every plain optimizer's `manual` and `weight_decay` ways again, with a clip of the "
                "global gradient norm to 0.1 (torch `clip_grad_norm_` before `step()`, paddle "
                "`grad_clip=ClipGradByGlobalNorm`): the loss term is clipped with the gradient "
                "(`clipped_l2`), the optimizer's decay is added after the clip and keeps its rule.", "",
                tabulate([[cell(c) for c in r] for r in clipped], HEADERS, tablefmt="github",
                         disable_numparse=True), ""]
    if _separate_rows(e):
        out += ["## What would separate the ambiguous rules", "", SEPARATE_NOTE[0].upper() + SEPARATE_NOTE[1:] + ".",
                "", tabulate([[cell(c) for c in r] for r in _separate_rows(e)], SEPARATE_HEADERS,
                             tablefmt="github", disable_numparse=True), ""]
    if e.cross:
        out += ["## Same optimizer, both frameworks", "",
                "Constructed with the same user-level arguments (lr and weight_decay=c, everything "
                "else default) and compared after one step and after all steps; a difference is "
                "traced to its cause with the reference.", "",
                tabulate([[cell(c) for c in r] for r in _cross_rows(e)], CROSS_HEADERS,
                         tablefmt="github", disable_numparse=True), ""]
    return "\n".join(out).rstrip() + "\n"


def json_report(e: Explanation) -> str:
    rows: list[dict[str, Any]] = []
    for r in e.rows:
        row = {"framework": r.framework, "optimizer": r.optimizer, "variant": r.variant,
               "way": r.way, "options": r.options, "param": r.param, "rule": r.rule,
               "residual": None if r.residual is None else finite_or_str(r.residual)}
        if r.error is not None:
            row["error"] = r.error
        if r.residuals is not None:
            row["residuals"] = {k: finite_or_str(v) for k, v in r.residuals.items()}
        if r.separate:
            row["separate"] = r.separate
        rows.append(row)
    cross = [{"torch": c.torch, "paddle": c.paddle, "one_step_equal": c.one_step.ok,
              "all_steps_equal": c.all_steps.ok, "max_abs": finite_or_str(c.all_steps.max_abs),
              "max_ulp": finite_or_str(c.all_steps.max_ulp), "torch_rule": c.torch_rule,
              "paddle_rule": c.paddle_rule, "cause": c.cause} for c in e.cross]
    doc = {"xdecay": __version__, "frameworks": dict(sorted(e.versions.items())),
           "setup": _setup(e), "steps": e.steps, "rows": rows, "cross": cross, "errors": e.errors}
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"


WRITERS = {"table": table, "markdown": markdown, "json": json_report}
