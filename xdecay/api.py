"""The Python API, for pinning optimizer semantics in a project's own test suite.

    from xdecay import run_case
    result = run_case("precedence")        # a name in cases/, or a path to a .toml
    assert result.ok, result.comparisons
    assert ("paddle:param_attr", "weight", "coupled_l2@0.5") in result.rules
"""
from __future__ import annotations

from pathlib import Path

from .case import FRAMEWORKS, MAX_STEPS, find_cases, load_case
from .engine.pipeline import CaseResult, run_cases
from .errors import UsageError


def run_case(case: str | Path, *, steps: int | None = None,
             frameworks: tuple[str, ...] = FRAMEWORKS, in_process: bool = False,
             min_power: float | None = None) -> CaseResult:
    """Run one case in every framework and compare: `.ok`, `.comparisons`, `.rules`
    (run, param, rule), `.rule_checks`, `.runs` (the deltas); each check's `.verdict`
    and `.power`. Worker processes by default; `in_process=True` imports the
    frameworks into this process instead. `min_power` (else the case's): the relative
    coefficient error every check must catch."""
    if str(case) == "all":
        raise UsageError("run_case runs one case; loop over xdecay.case.find_cases('all') for all")
    for fw in frameworks:
        if fw not in FRAMEWORKS:
            raise UsageError(f"frameworks: unknown framework {fw!r} (known: {', '.join(FRAMEWORKS)})")
    if steps is not None and not 1 <= steps <= MAX_STEPS:
        raise UsageError(f"steps: must be in [1, {MAX_STEPS}], got {steps}")
    if min_power is not None and not 0 < min_power <= 1:
        raise UsageError(f"min_power: must be a relative coefficient error in (0, 1], got {min_power}")
    (path,) = find_cases(str(case)) if not Path(case).suffix else [Path(case)]
    outcome = run_cases([load_case(path)], steps=steps, frameworks=frameworks, in_process=in_process,
                        min_power=min_power)
    return outcome.results[0]
