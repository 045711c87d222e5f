"""`xdecay port` writers: the code to paste, the pitfalls, and the verification (the
compare writers' rows and JSON for the run itself)."""
from __future__ import annotations

import json
from typing import Any

from tabulate import tabulate

from .. import __version__
from ..engine.pipeline import CaseResult
from ..engine.port import REPORT_LOOP_CALL, PortResult
from .compare_report import COMPARISON_HEADERS, POWER_NOTE, _comparison_rows, case_json, finite_or_str, fmt
from .markdown import cell, prose


def _label(p: PortResult) -> str:
    r = p.result
    if r is None:
        return "NO EQUIVALENT"
    if r.framework_errors or r.failed_runs:
        return "ERROR"
    if any(c.inconclusive for c in r.comparisons):
        return "INCONCLUSIVE"
    if r.ok and not p.translation.why_not:
        return "VERIFIED EQUAL"
    if r.warnings and r.comparisons and all(c.ok for c in r.comparisons):
        return "NOT VERIFIED"
    return "CLOSEST, NOT EQUAL" if p.translation.why_not else "NOT EQUAL"


def _verdict(p: PortResult) -> str:
    t, r, label = p.translation, p.result, _label(p)
    if r is None:
        return f"{label}: {t.why_not}"
    if label == "ERROR":
        return f"{label}: could not run {', '.join(sorted(r.framework_errors) + [x.name for x in r.failed_runs])}"
    if label == "INCONCLUSIVE":
        blind = next(c for c in r.comparisons if c.inconclusive)
        return f"{label}: the verification cannot see the decay ({blind.power.words()})"
    if label == "VERIFIED EQUAL":
        return f"{label}: the two setups make the same updates within the tolerance"
    if label == "NOT VERIFIED":
        return (f"{label}: the setups agree ({fmt(_worst(r), '.3g')}x the tolerance), but "
                f"{'; '.join(r.warnings)}")
    why = f" ({t.why_not})" if t.why_not else ""
    if r.ok:        # a closest setup that agrees on this layer is still not an equivalent
        return f"{label}{why}: the setups agree here ({fmt(_worst(r), '.3g')}x the tolerance), not everywhere"
    return f"{label}{why}: the setups differ by up to {fmt(_worst(r), '.3g')}x the tolerance" + (
        f"; {'; '.join(r.warnings)}" if r.warnings else "")


def _worst(r: CaseResult) -> float:
    return max((c.excess for c in r.comparisons), default=float("nan"))


def _defaults_left(p: PortResult) -> list[str]:
    """The measured effect of the defaults pitfall: the translation without them."""
    d = p.defaults_left
    if d is None:
        return []
    if d.ok:
        return ["measured: with the differing defaults left out the setups still agree here "
                f"({fmt(_worst(d), '.3g')}x the tolerance); write them out anyway"]
    return [f"measured: with the differing defaults left out the setups differ by "
            f"{fmt(_worst(d), '.3g')}x the tolerance"
            # The cause of the pair's difference; the defaults themselves are listed above.
            + "".join(f" ({n.partition(' differ: ')[2]})" for n in d.notes if n.startswith(("torch:", "paddle:")))]


def _copied(p: PortResult) -> list[str]:
    """The measured difference of the closest setup beside the same values copied as is."""
    c, r = p.copied, p.result
    if c is None or r is None:
        return []
    closer = _worst(c) < _worst(r)
    return [f"measured: the closest setup differs by {fmt(_worst(r), '.3g')}x the tolerance; with the values "
            f"copied as is, by {fmt(_worst(c), '.3g')}x" + (" -- closer on this verification's gradients, but "
                                                            "without the closest's bound" if closer else "")]


def _loop_left(p: PortResult) -> list[str]:
    """The measured effect of the loop: the target without its clip and schedule."""
    c = p.loop_left_effect
    if c is None:
        return []
    left = " and ".join(w for w, given in (("clip", p.translation.loop.clip), ("schedule", p.translation.loop.schedule))
                        if given)
    return [(f"measured: with the {left} left out of the {p.translation.target_framework} code, its updates differ "
             f"from the source's by {fmt(c.excess, '.3g')}x the tolerance")]


def _measured(p: PortResult) -> list[str]:
    return _defaults_left(p) + _copied(p) + _loop_left(p)


def _rules_side_by_side(p: PortResult) -> tuple[list[str], list[list[str]]]:
    r = p.result
    runs = [x.name for x in r.runs]
    rules = {(run, param): rule for run, param, rule in r.rules}
    params = list(r.case.layer.params)
    return ["param", *runs], [[param, *(rules.get((run, param), "") for run in runs)] for param in params]


def _source_line(p: PortResult) -> str:
    t = p.translation
    excl = f" --no-decay {t.source.no_decay!r}" if t.source.no_decay else ""
    excl += "".join(f" --lr-scale '{p}={k!r}'" for p, k in t.source.lr_scales)
    loop = t.loop
    if loop is not None:
        excl += f" --clip {loop.clip_call!r}" if loop.clip_call else ""
        excl += f" --schedule {loop.schedule_call!r}" if loop.schedule_call else ""
    return f"{t.source.framework}: {t.call}{excl}"


def table(p: PortResult) -> str:
    t, r = p.translation, p.result
    out = [f"port {_source_line(p)}  ->  {t.target_framework}", ""]
    if t.code:
        out += [f"{t.target_framework} code:", *("    " + line if line else "" for line in t.code.splitlines()), ""]
    out += ["pitfalls:", *(f"  - {x}" for x in t.pitfalls or ["none known for this setup"]),
            *(f"  - {x}" for x in _measured(p)), ""]
    if r is not None:
        out += [f"verification: {r.case.steps} steps of Linear(4->3, bias) + LayerNorm (gain, bias), "
                f"runs {', '.join(x.name for x in r.runs)}"]
        out += [f"{x.name}: ERROR {x.error}" for x in r.failed_runs]
        out += [f"{fw}: ERROR {msg}" for fw, msg in r.framework_errors.items()]
        if r.comparisons:
            out += [f"tolerance: {r.tolerance.describe()}", POWER_NOTE,
                    tabulate(_comparison_rows(r.comparisons), COMPARISON_HEADERS, disable_numparse=True), ""]
        if r.rules:
            out += ["rule per parameter (inferred from the runs):",
                    tabulate(_rules_side_by_side(p)[1], _rules_side_by_side(p)[0], disable_numparse=True), ""]
        out += [f"WARNING: {w}" for w in r.warnings]
        out += [f"measured: {n}" for n in r.notes]
    out.append(f"verdict: {_verdict(p)}")
    return "\n".join(out) + "\n"


def markdown(p: PortResult) -> str:
    t, r = p.translation, p.result
    out = [f"## port `{_source_line(p)}` → {t.target_framework}", ""]
    if t.code:
        out += ["```python", t.code.rstrip(), "```", ""]
    out += ["Pitfalls:", "", *(f"- {prose(x)}" for x in t.pitfalls or ["none known for this setup"]),
            *(f"- {prose(x)}" for x in _measured(p)), ""]
    if r is not None and r.comparisons:
        out += [f"Verification ({r.case.steps} steps; tolerance: `{r.tolerance.describe()}`; {POWER_NOTE}):", "",
                tabulate(_comparison_rows(r.comparisons), COMPARISON_HEADERS, tablefmt="github",
                         disable_numparse=True), ""]
    if r is not None and r.rules:
        headers, rows = _rules_side_by_side(p)
        out += [tabulate(rows, headers, tablefmt="github", disable_numparse=True), ""]
        out += [f"- measured: {prose(n)}" for n in r.notes] + [f"- WARNING: {prose(w)}" for w in r.warnings]
    out += [f"**{_verdict(p)}**", ""]
    return "\n".join(out)


def port_json(p: PortResult) -> dict[str, Any]:
    t, r = p.translation, p.result
    s = t.source
    return {"source": {"framework": s.framework, "call": t.call, "class": s.native.cls, "optimizer": s.info.name,
                       "no_decay": s.no_decay or None,
                       "lr_scale": [{"pattern": p, "factor": k} for p, k in s.lr_scales] or None,
                       "clip": t.loop.clip_call or None if t.loop else None,
                       "schedule": t.loop.schedule_call or None if t.loop else None},
            "target": {"framework": t.target_framework, "code": t.code or None,
                       "class": None if s.info.native(t.target_framework) is None
                       else s.info.native(t.target_framework).cls},
            "pitfalls": t.pitfalls, "no_exact_equivalent": t.why_not or None,
            "case_toml": t.case_toml or None,
            "verification": None if r is None else case_json(r, p.versions),
            "defaults_left_out": None if p.defaults_left is None else {
                "ok": p.defaults_left.ok, "tolerance_ratio": finite_or_str(_worst(p.defaults_left)),
                "notes": p.defaults_left.notes},
            "copied_as_is": None if p.copied is None else {
                "ok": p.copied.ok, "tolerance_ratio": finite_or_str(_worst(p.copied)), "notes": p.copied.notes},
            "loop_left_out": None if p.loop_left_effect is None else {
                "tolerance_ratio": finite_or_str(p.loop_left_effect.excess)},
            "verdict": _verdict(p), "ok": p.ok}


def json_report(p: PortResult) -> str:
    doc = {"xdecay": __version__, "frameworks": dict(sorted(p.versions.items())), **port_json(p)}
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"


PORT_PAGE = "port.md"


def _optimizer_line(code: str) -> str:
    return next(x for x in code.splitlines() if x.startswith("optimizer = ")).partition(" = ")[2]


def _checked(p: PortResult) -> list[str]:
    """verdict, x tol, power of the translation's own check."""
    r = p.result
    c = r.comparisons[0] if r is not None and r.comparisons else None
    return [_label(p), "—" if c is None else fmt(c.excess, ".3g"),
            "—" if c is None or c.power is None else c.power.short()]


def port_page(results: list[PortResult], versions: dict[str, str]) -> str:
    """reports/port.md: the verified translation of every optimizer class both
    frameworks have, and the pitfalls with their measured effect."""
    shown = ", ".join(f"{fw} {v}" for fw, v in sorted(versions.items()))
    calls = [p for p in results if p.translation.loop is None]
    loops = [p for p in results if p.translation.loop is not None]
    rows = []
    for p in calls:
        t = p.translation
        rows.append([f"{t.source.framework} `{t.call}`" + (f" · no decay `{t.source.no_decay}`"
                                                         if t.source.no_decay else "")
                     + "".join(f" · lr x{k!r} `{pattern}`" for pattern, k in t.source.lr_scales),
                     f"{t.target_framework} " + (f"`{_optimizer_line(t.code)}`" if t.code else "—"),
                     *_checked(p), "—" if p.defaults_left is None else fmt(_worst(p.defaults_left), ".3g")])
    loop_rows = []
    for p in loops:
        t, loop = p.translation, p.translation.loop
        pieces = [x for x in (loop.clip_call, loop.schedule_call) if x]
        target = [x.native(t.target_framework) for x in (loop.clip,) if x] + \
                 [x.shown(t.target_framework) for x in (loop.schedule,) if x]
        loop_rows.append([f"{t.source.framework} `{'`, `'.join(pieces)}`", f"{t.target_framework} `{'`, `'.join(target)}`",
                          *_checked(p), "—" if p.loop_left_effect is None else fmt(p.loop_left_effect.excess, ".3g")])
    out = ["# Porting an optimizer between PyTorch and Paddle", "",
           f"Generated by `xdecay report` from real runs of {shown}. Each row is `xdecay port` on "
           "that call: the other framework's code, verified by running both setups for "
           "10 steps on a Linear with a bias and a LayerNorm (so `--no-decay \"bias|norm\"` is "
           "exercised). x tol: the largest difference over the tolerance (<= 1 is equal); power: the "
           "smallest relative error of the decay coefficient the check catches; x tol, defaults left out: "
           "the same translation without the arguments whose defaults differ (what a table that only "
           "renames arguments emits); `· lr xK `P``: `--lr-scale P=K`. `xdecay port --torch "
           "\"CALL\"` (or `--paddle`) reproduces a row with its pitfalls.", "",
           tabulate([[cell(x) for x in row] for row in rows],
                    ["source", "translation", "verdict", "x tol", "power", "x tol, defaults left out"],
                    tablefmt="github",
                    disable_numparse=True), ""]
    if loop_rows:
        out += ["## The training loop: gradient clipping and lr schedules", "",
                (f"Each clip kind and each lr schedule kind, ported with `{REPORT_LOOP_CALL['torch']}` "
                 "(`--clip`, `--schedule`), and the warm-up chain (a scheduler nested in paddle's LinearWarmup, "
                 "torch's SequentialLR), verified the same way; x tol, left out: the target's run without "
                 "the clip or schedule (a converter porting only the optimizer call) against the source's run "
                 "with it, over the tolerance's rounding terms."), "",
                tabulate([[cell(x) for x in row] for row in loop_rows],
                         ["source", "translation", "verdict", "x tol", "power", "x tol, left out"],
                         tablefmt="github", disable_numparse=True), ""]
    for p in results:
        out += [markdown(p).replace("## port ", "## ", 1)]
    return "\n".join(out).rstrip() + "\n"


WRITERS = {"table": table, "markdown": markdown, "json": json_report}
