"""`xdecay audit` output: per framework a per-parameter table and a summary; with both
frameworks the pairs whose rules differ; the flags; the verdict."""
from __future__ import annotations

import json

from tabulate import tabulate

from .. import __version__
from ..engine.audit import LOSS, TOLERANCE_TEXT, AuditResult, FrameworkAudit, Row, summary
from .compare_report import finite_or_str
from .markdown import cell, prose

HEADERS = ["parameter", "shape", "group", "rule", "lr", "power", "source"]


def _lr(row: Row) -> str:
    shown = dict.fromkeys(f"{v:.6g}" for v in row.lr)
    return "..".join(shown) if shown else "-"


def _cells(row: Row) -> list[str]:
    rule = row.rule + ("  (flagged)" if row.flag else "")
    return [row.name, "x".join(map(str, row.shape)), "-" if row.group is None else str(row.group), rule,
            _lr(row), row.power.text(), "; ".join(row.sources) or "-"]


def verdict(result: AuditResult) -> str:
    if result.errors:
        return "FRAMEWORK ERROR: " + "; ".join(f"{fw}: {e}" for fw, e in result.errors.items())
    flags = result.flags
    if flags:
        return f"FLAGGED: {len(flags)} finding(s) against the stated intent or across the frameworks"
    checked = []
    if result.no_decay or result.decay:
        checked.append("every parameter matches the stated intent")
    if result.pairs:
        checked.append(f"all {len(result.pairs)} torch/paddle pairs step alike")
    return "OK: " + ("; ".join(checked) if checked else "audited (no intent stated: --no-decay / --decay)")


def _head(result: AuditResult) -> list[str]:
    return [f"loss: {LOSS}; {result.steps} step{'s' if result.steps != 1 else ''} of the user's optimizer",
            f"tolerance: {TOLERANCE_TEXT}",
            ("power: for a decayed parameter the smallest relative coefficient error the rule would catch; "
             "for one without decay the smallest coupled or decoupled coefficient it would show")]


def _cost(result: AuditResult) -> str:
    parts = [f"{fw}: make {a.seconds['make']:.2f} s, steps {a.seconds['steps']:.2f} s, worker peak "
             f"{a.peak_mib:.0f} MiB" for fw, a in result.audits.items()]
    return (f"cost: {'; '.join(parts)}; analysis {result.analysis_seconds:.2f} s, parent peak "
            f"{result.parent_peak_mib:.0f} MiB")


def _framework_title(a: FrameworkAudit) -> str:
    return f"{a.framework} {a.version}: {a.factory} -> {a.optimizer}"


def _pair_rows(result: AuditResult) -> list[list[str]]:
    return [[p.torch.name, p.paddle.name, p.how, p.torch.rule, p.paddle.rule, p.problem or "same"]
            for p in result.pairs if p.problem]


PAIR_HEADERS = ["torch", "paddle", "paired by", "torch rule", "paddle rule", "verdict"]


def table(result: AuditResult) -> str:
    lines = ["xdecay audit", *_head(result), ""]
    for a in result.audits.values():
        lines += [_framework_title(a), tabulate([_cells(r) for r in a.rows], HEADERS), "",
                  f"summary: {summary(a)}", ""]
    if result.pairs:
        lines.append(f"torch vs paddle: {len(result.pairs)} pairs, {sum(bool(p.problem) for p in result.pairs)} differ")
        rows = _pair_rows(result)
        if rows:
            lines += [tabulate(rows, PAIR_HEADERS)]
        lines.append("")
    lines += [f"flag: {f}" for f in result.flags]
    lines += [_cost(result), f"verdict: {verdict(result)}", ""]
    return "\n".join(lines)


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers),
            *("| " + " | ".join(cell(c) for c in row) + " |" for row in rows)]


def markdown(result: AuditResult) -> str:
    lines = ["# xdecay audit", "", *(f"- {prose(h)}" for h in _head(result)), ""]
    for a in result.audits.values():
        lines += [f"## {prose(_framework_title(a))}", "", *_md_table(HEADERS, [_cells(r) for r in a.rows]), "",
                  f"Summary: {prose(summary(a))}", ""]
    if result.pairs:
        lines += ["## torch vs paddle", "",
                  f"{len(result.pairs)} pairs, {sum(bool(p.problem) for p in result.pairs)} differ.", ""]
        rows = _pair_rows(result)
        if rows:
            lines += [*_md_table(PAIR_HEADERS, rows), ""]
    lines += [f"- flag: {prose(f)}" for f in result.flags]
    lines += ["", prose(_cost(result)), "", f"**verdict**: {prose(verdict(result))}", ""]
    return "\n".join(lines)


def _row_json(r: Row) -> dict:
    return {"name": r.name, "shape": list(r.shape), "dtype": r.dtype, "status": r.status, "group": r.group,
            "rule": r.rule, "decayed": r.decayed, "lr": list(r.lr), "sources": list(r.sources),
            "residual": None if r.residual is None else finite_or_str(r.residual), "power": r.power.json(),
            "sample": r.sample, "flag": r.flag or None}


def as_json(result: AuditResult) -> str:
    """Deterministic: the measured cost (seconds, memory) is in the table and markdown only."""
    doc = {"xdecay": __version__,
           "frameworks": {fw: a.version for fw, a in result.audits.items()},
           "steps": result.steps, "loss": LOSS, "tolerance": TOLERANCE_TEXT,
           "no_decay": list(result.no_decay), "decay": list(result.decay),
           "audits": {fw: {"factory": a.factory, "optimizer": a.optimizer, "summary": summary(a),
                           "params": [_row_json(r) for r in a.rows]} for fw, a in result.audits.items()},
           "pairs": [{"torch": p.torch.name, "paddle": p.paddle.name, "paired_by": p.how,
                      "torch_rule": p.torch.rule, "paddle_rule": p.paddle.rule, "ok": not p.problem,
                      "problem": p.problem or None} for p in result.pairs],
           "torch_only": result.torch_only, "paddle_only": result.paddle_only,
           "framework_errors": result.errors, "flags": result.flags, "verdict": verdict(result),
           "ok": result.exit_code == 0}
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"


WRITERS = {"table": table, "markdown": markdown, "json": as_json}
