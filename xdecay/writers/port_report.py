"""`xdecay port` writers: the code to paste, the pitfalls, and the verification (the
compare writers' rows and JSON for the run itself)."""
from __future__ import annotations

import json
from typing import Any

from tabulate import tabulate

from .. import __version__
from ..engine.port import PortResult
from .compare_report import COMPARISON_HEADERS, POWER_NOTE, _comparison_rows, case_json, fmt


def _verdict(p: PortResult) -> str:
    t, r = p.translation, p.result
    if r is None:
        return f"NO EQUIVALENT: {t.why_not}"
    if r.framework_errors or r.failed_runs:
        names = sorted(r.framework_errors) + [x.name for x in r.failed_runs]
        return f"ERROR: could not run {', '.join(names)}"
    blind = [c for c in r.comparisons if c.inconclusive]
    if blind:
        return f"INCONCLUSIVE: the verification cannot see the decay ({blind[0].power.words()})"
    if r.ok:
        return "VERIFIED EQUAL: the two setups make the same updates within the tolerance"
    worst = max((c.excess for c in r.comparisons), default=float("nan"))
    head = f"CLOSEST, NOT EQUAL ({t.why_not})" if t.why_not else "NOT EQUAL"
    return f"{head}: the setups differ by up to {fmt(worst, '.3g')}x the tolerance" + (
        f"; {'; '.join(r.warnings)}" if r.warnings else "")


def _rules_side_by_side(p: PortResult) -> tuple[list[str], list[list[str]]]:
    r = p.result
    runs = [x.name for x in r.runs]
    rules = {(run, param): rule for run, param, rule in r.rules}
    params = list(r.case.layer.params)
    return ["param", *runs], [[param, *(rules.get((run, param), "") for run in runs)] for param in params]


def _source_line(p: PortResult) -> str:
    t = p.translation
    excl = f" --no-decay {t.source.no_decay!r}" if t.source.no_decay else ""
    return f"{t.source.framework}: {t.call}{excl}"


def table(p: PortResult) -> str:
    t, r = p.translation, p.result
    out = [f"port {_source_line(p)}  ->  {t.target_framework}", ""]
    if t.code:
        out += [f"{t.target_framework} code:", *("    " + line if line else "" for line in t.code.splitlines()), ""]
    out += ["pitfalls:", *(f"  - {x}" for x in t.pitfalls or ["none known for this setup"]), ""]
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
    out += ["Pitfalls:", "", *(f"- {x}" for x in t.pitfalls or ["none known for this setup"]), ""]
    if r is not None and r.comparisons:
        out += [f"Verification ({r.case.steps} steps; tolerance: {r.tolerance.describe()}; {POWER_NOTE}):", "",
                tabulate(_comparison_rows(r.comparisons), COMPARISON_HEADERS, tablefmt="github",
                         disable_numparse=True), ""]
    if r is not None and r.rules:
        headers, rows = _rules_side_by_side(p)
        out += [tabulate(rows, headers, tablefmt="github", disable_numparse=True), ""]
        out += [f"- measured: {n}" for n in r.notes] + [f"- WARNING: {w}" for w in r.warnings]
    out += [f"**{_verdict(p)}**", ""]
    return "\n".join(out)


def port_json(p: PortResult) -> dict[str, Any]:
    t, r = p.translation, p.result
    s = t.source
    return {"source": {"framework": s.framework, "call": t.call, "class": s.native.cls, "optimizer": s.info.name,
                       "no_decay": s.no_decay or None},
            "target": {"framework": t.target_framework, "code": t.code or None,
                       "class": None if s.info.native(t.target_framework) is None
                       else s.info.native(t.target_framework).cls},
            "pitfalls": t.pitfalls, "no_exact_equivalent": t.why_not or None,
            "case_toml": t.case_toml or None,
            "verification": None if r is None else case_json(r, p.versions),
            "verdict": _verdict(p), "ok": p.ok}


def json_report(p: PortResult) -> str:
    doc = {"xdecay": __version__, "frameworks": dict(sorted(p.versions.items())), **port_json(p)}
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"


WRITERS = {"table": table, "markdown": markdown, "json": json_report}
