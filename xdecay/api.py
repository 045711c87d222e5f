"""The Python API, for pinning optimizer semantics in a project's own test suite.

    from xdecay import run_case
    result = run_case("precedence")        # a case name, or a path to a .toml
    assert result.ok, result.comparisons
    assert ("paddle:param_attr", "weight", "coupled_l2@0.5") in result.rules

    from xdecay import run_audit
    audit = run_audit(torch="mypkg.train:make", no_decay=("bias|norm",))
    assert audit.exit_code == 0, audit.flags   # each row: audit.audits["torch"].rows

    from xdecay import run_port
    port = run_port(torch="AdamW(params, lr=1e-3, weight_decay=0.05)", no_decay="bias|norm")
    assert port.ok, port.result.notes      # verified equal
    print(port.translation.code)           # the paddle code
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .case import FRAMEWORKS, MAX_STEPS, Case, load_case
from .case_files import find_case
from .engine import audit as _audit
from .engine.pipeline import CaseResult, run_cases, unchecked
from .engine.port import PortResult, check_pattern, loop_calls, parse_call, parse_lr_scales, translate, verify
from .errors import UsageError
from .frameworks.factory import read_factory, torch_call
from .frameworks.records import AUDIT_STEPS
from .session import shared_session


def run_case(case: str | Path, *, steps: int | None = None,
             frameworks: tuple[str, ...] = FRAMEWORKS, in_process: bool = False,
             cases: str | Path | None = None, min_power: float | None = None) -> CaseResult:
    """Run one case in every framework and compare: `.ok`, `.comparisons`, `.rules`
    (run, param, rule), `.rule_checks`, `.runs` (the deltas); each check's `.verdict`
    and `.power`. `case` is a name — looked up in the folder `cases` (default: the
    XDECAY_CASES folders) and the shipped cases — or a path to a .toml. In worker
    processes kept warm for the next call (the process-wide xdecay.Session, closed at
    exit) by default; `in_process=True` imports the frameworks into this process
    instead. `min_power` (else the case's): the relative coefficient error every check
    must catch."""
    if not in_process:
        return shared_session().run_case(case, steps=steps, frameworks=frameworks, cases=cases,
                                         min_power=min_power)
    outcome = run_cases([one_case(case, steps, frameworks, cases, min_power)], steps=steps,
                        frameworks=frameworks, in_process=True, min_power=min_power)
    return outcome.results[0]


def one_case(case: str | Path, steps: int | None, frameworks: tuple[str, ...],
             cases: str | Path | None, min_power: float | None) -> Case:
    """The case run_case was asked for, its arguments checked (UsageError naming the one wrong)."""
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
    return loaded


def run_port(*, torch: str | None = None, paddle: str | None = None, torch_optimizer: Any = None,
             no_decay: str = "", lr_scale: dict[str, float] | None = None, clip: str | None = None,
             schedule: str | None = None, in_process: bool = False) -> PortResult:
    """`xdecay port`: one optimizer call (torch's or paddle's, read as literals, never
    evaluated) -- or a torch optimizer object, read from its class, defaults and groups
    (or what a --torch-file factory returns: (optimizer, scheduler), or a dict with
    "optimizer", "scheduler", "clip") -- translated into the other framework and
    verified by running both.
    `.ok` only when verified equal; `.translation` has `.code`, `.pitfalls`, `.case_toml`;
    `.result` the compare result (None when the other framework has no such class).
    `lr_scale`: {pattern: factor}, the parameters that train at factor * lr (--lr-scale).
    `clip`, `schedule`: the same framework's gradient clip and lr scheduler calls
    (clip_grad_norm_(max_norm=1.0), CosineAnnealingLR(T_max=20)), ported and verified too."""
    if sum(x is not None for x in (torch, paddle, torch_optimizer)) != 1:
        raise UsageError("run_port: give exactly one of torch=CALL, paddle=CALL, torch_optimizer=OBJECT")
    check_pattern(no_decay)
    lr_scales = parse_lr_scales([f"{p}={k}" for p, k in (lr_scale or {}).items()])
    framework = "paddle" if paddle is not None else "torch"
    factory = None
    if torch_optimizer is not None:
        factory = read_factory(torch_optimizer, "torch_optimizer")
        torch = torch_call(factory.optimizer, "torch_optimizer", no_decay, lr_scales)
    loop = loop_calls(framework, clip, schedule, factory, "torch_optimizer")
    call = torch if torch is not None else paddle
    return verify(translate(parse_call(framework, call, no_decay, loop, lr_scales), call, loop),
                  in_process=in_process)


def run_audit(*, torch: str | None = None, paddle: str | None = None, steps: int = AUDIT_STEPS,
              no_decay: tuple[str, ...] = (), decay: tuple[str, ...] = (), name_map: str | None = None,
              in_process: bool = False) -> _audit.AuditResult:
    """`xdecay audit`: your factory MOD:FUNC (or FILE.py:FUNC) returning (model, optimizer,
    inputs), run in each framework's worker (in_process=True: in this process), the rule
    each parameter got inferred by float64 replay. `.exit_code` (0 fine, 1 flagged),
    `.flags`, `.audits[framework].rows` (name, rule, lr, sources, power, ...), `.pairs`.
    A problem with the factory or the arguments is a UsageError."""
    factories = {fw: spec for fw, spec in (("torch", torch), ("paddle", paddle)) if spec is not None}
    mapping = _audit.checked_arguments(factories, steps, tuple(no_decay), tuple(decay), name_map)
    return _audit.run_audit(factories, steps=steps, no_decay=tuple(no_decay), decay=tuple(decay),
                            name_map=mapping, name_map_path=name_map or "", in_process=in_process)
