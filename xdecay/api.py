"""The Python API, for pinning optimizer semantics in a project's own test suite.

    from xdecay import run_case
    result = run_case("precedence")        # a case name, or a path to a .toml
    assert result.ok, result.comparisons
    assert ("paddle:param_attr", "weight", "coupled_l2@0.5") in result.rules
"""
from __future__ import annotations

from pathlib import Path

from .case import FRAMEWORKS, MAX_STEPS, load_case
from .case_files import find_case
from .engine.pipeline import CaseResult, run_cases, unchecked
from .errors import UsageError


def run_case(case: str | Path, *, steps: int | None = None,
             frameworks: tuple[str, ...] = FRAMEWORKS, in_process: bool = False,
             cases: str | Path | None = None, min_power: float | None = None) -> CaseResult:
    """Run one case in every framework and compare: `.ok`, `.comparisons`, `.rules`
    (run, param, rule), `.rule_checks`, `.runs` (the deltas); each check's `.verdict`
    and `.power`. `case` is a name — looked up in the folder `cases` (default: the
    XDECAY_CASES folders) and the shipped cases — or a path to a .toml. Worker
    processes by default; `in_process=True` imports the frameworks into this process
    instead. `min_power` (else the case's): the relative coefficient error every check
    must catch."""
    if str(case) == "all":
        raise UsageError("run_case runs one case; loop over xdecay.case_files.catalogue() for all")
    for fw in frameworks:
        if fw not in FRAMEWORKS:
            raise UsageError(f"frameworks: unknown framework {fw!r} (known: {', '.join(FRAMEWORKS)})")
    if steps is not None and not 1 <= steps <= MAX_STEPS:
        raise UsageError(f"steps: must be in [1, {MAX_STEPS}], got {steps}")
    if min_power is not None and not 0 < min_power <= 1:
        raise UsageError(f"min_power: must be a relative coefficient error in (0, 1], got {min_power}")
    path = case if isinstance(case, Path) else find_case(case, cases, option="case", cases_option="cases")
    loaded = load_case(path)
    if steps is not None:
        loaded.check_size(steps, option="steps")
    why = unchecked(loaded, frameworks)
    if why:
        raise UsageError(f"{loaded.path}: nothing to check with frameworks {frameworks} ({why})")
    outcome = run_cases([loaded], steps=steps, frameworks=frameworks, in_process=in_process,
                        min_power=min_power)
    return outcome.results[0]
