"""The Python API, for pinning optimizer semantics in a project's own test suite.

    from xdecay import run_case
    result = run_case("precedence")        # a name in cases/, or a path to a .toml
    assert result.ok, result.comparisons
    assert ("paddle:param_attr", "weight", "coupled_l2@0.5") in result.rules
"""
from __future__ import annotations

from pathlib import Path

from .case import FRAMEWORKS, find_cases, load_case
from .pipeline import CaseResult, run_cases


def run_case(case: str | Path, *, steps: int | None = None,
             frameworks: tuple[str, ...] = FRAMEWORKS, in_process: bool = False) -> CaseResult:
    """Run one case in every framework and compare: `.ok`, `.comparisons`, `.rules`
    (run, param, rule), `.rule_checks`, `.runs` (the deltas). Worker processes by
    default; `in_process=True` imports the frameworks into this process instead."""
    (path,) = find_cases(str(case)) if not Path(case).suffix else [Path(case)]
    outcome = run_cases([load_case(path)], steps=steps, frameworks=frameworks, in_process=in_process)
    return outcome.results[0]
