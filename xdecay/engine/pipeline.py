"""case -> runs per framework -> comparison: the one-way flow behind `xdecay compare`."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..case import FRAMEWORKS, Case
from ..frameworks.protocol import release
from ..frameworks.records import Job, RunRecord
from ..frameworks.runner import DEFAULT_TIMEOUT, FrameworkResult, run_batch
from ..frameworks.warm import WarmWorkers
from .blas import one_thread as one_blas_thread
from .causes import cause
from .clipping import report as clip_report
from .compare import Comparison, Pair, PairSensitivity, Tolerance, compare_pairs, on_cores, pairs
from .infer import SAMPLE_SIDE, Inferred, RunSensitivity, SharedForwards, infer_run, rule_holds
from .optimizers import default_differences
from .power import CasePower, Power, min_power_problem
from .precision import as_stored
from .precision import report as precision_report
from .schedules import report as schedule_report
from .separate import SEARCH_STEPS

# Exit codes of the CLI contract.
EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_FRAMEWORK = 0, 1, 2, 3


@dataclass(frozen=True)
class RuleCheck:
    """A rule expectation: the rule inferred for a run's parameter against the claimed one,
    compared as numbers within the inference tolerance (infer.rule_holds)."""
    run: str
    param: str
    expected: str
    got: str
    holds: bool                     # infer.rule_holds: the claim is the inferred rule
    power: Power | None = None
    problem: str = ""               # why an inconclusive check is not ok

    @property
    def inconclusive(self) -> bool:
        return self.power is not None and self.power.verdict == "inconclusive" or bool(self.problem)

    @property
    def ok(self) -> bool:
        return self.holds and not self.inconclusive

    @property
    def verdict(self) -> str:
        return "ok" if self.ok else ("inconclusive" if self.inconclusive else "mismatch")


@dataclass(frozen=True)
class RejectCheck:
    """A "rejects" expectation: the framework must refuse the run, saying these words."""
    run: str
    words: str
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is not None and self.words in self.error

    @property
    def verdict(self) -> str:
        return "ok" if self.ok else "mismatch"


@dataclass
class CaseResult:
    case: Case
    steps: int
    tolerance: Tolerance
    runs: list[RunRecord]                        # in the case's order, selected frameworks only
    comparisons: list[Comparison]
    skipped: list[tuple[str, str, str]] = field(default_factory=list)   # (a, b, why)
    framework_errors: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    rules: list[tuple[str, str, str]] = field(default_factory=list)     # (run, param, rule)
    rule_checks: list[RuleCheck] = field(default_factory=list)
    reject_checks: list[RejectCheck] = field(default_factory=list)
    # run -> its measured sensitivity to gradient rounding, per parameter, step and element
    sensitivity: dict[str, RunSensitivity] = field(default_factory=dict)
    # What a reader needs next to the verdict: the defaults the two frameworks differ in
    # that the case left unset, and why each differing cross-framework pair differs.
    notes: list[str] = field(default_factory=list)
    min_power: float | None = None   # every check must catch this relative coefficient error

    @property
    def inconclusive(self) -> list:
        """Checks that are not ok only because the experiment cannot see what they claim."""
        return [c for c in self.checks if c.verdict == "inconclusive"]

    @property
    def failed_runs(self) -> list[RunRecord]:
        """Runs that failed without the case expecting the framework to refuse them."""
        expected = {c.run for c in self.reject_checks}
        return [r for r in self.runs if r.error is not None and r.name not in expected]

    @property
    def checks(self) -> list:
        return [*self.comparisons, *self.rule_checks, *self.reject_checks]

    @property
    def ok(self) -> bool:
        return (not self.framework_errors and not self.failed_runs and not self.warnings
                and all(c.ok for c in self.checks))

    @property
    def exit_code(self) -> int:
        if self.framework_errors or self.failed_runs:
            return EXIT_FRAMEWORK
        return EXIT_OK if self.ok else EXIT_MISMATCH


@dataclass
class Outcome:
    versions: dict[str, str]
    results: list[CaseResult]
    # With --baseline: the saved versions, and every drift from the saved results
    # (baseline.Drift rows); None without a baseline.
    baseline_versions: dict[str, str] | None = None
    drift: list | None = None
    # Cases not run: nothing in them could be checked with the selected frameworks (name, why).
    unchecked: list[tuple[str, str]] = field(default_factory=list)
    # With --baseline: the frameworks it was saved with that this run did not select.
    baseline_skipped: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        codes = {r.exit_code for r in self.results}
        if self.drift:
            codes.add(EXIT_MISMATCH)
        for code in (EXIT_FRAMEWORK, EXIT_MISMATCH):
            if code in codes:
                return code
        return EXIT_OK


def run_cases(cases: list[Case], *, steps: int | None = None,
              frameworks: tuple[str, ...] = FRAMEWORKS, pythons: dict[str, str] | None = None,
              atol: float | None = None, rtol: float | None = None,
              timeout: float = DEFAULT_TIMEOUT, in_process: bool = False,
              min_power: float | None = None, warm: WarmWorkers | None = None) -> Outcome:
    """Run every case in one worker per framework (in `warm` workers if given, or in
    this process), then compare; `min_power` (else each case's own) is the relative
    coefficient error every check must catch."""
    requests, owners = _requests(cases, frameworks, steps)
    analyses = Analyses(cases, owners, Settings(steps, atol, rtol, min_power))
    with one_blas_thread():      # next to the workers (blas.py)
        done = run_batch(requests, pythons, timeout, in_process, warm=warm,
                         on_done=lambda fw, results: analyses.add(fw, _joined(fw, results, owners[fw])),
                         on_part=analyses.add_part)
        return outcome_from(cases, {fw: _joined(fw, results, owners[fw]) for fw, results in done.items()},
                            steps, atol, rtol, analyses, min_power)


def _large(case: Case) -> bool:
    """A layer that rule inference samples (infer.layer_sample): its snapshots are large."""
    return case.layer.in_features * case.layer.out_features > SAMPLE_SIDE ** 2


def _requests(cases: list[Case], frameworks: tuple[str, ...],
              steps: int | None) -> tuple[dict[str, list[list[Job]]], dict[str, list[int]]]:
    """Each framework's requests and the index of each request's case: one request per
    case, so the parent analyses a case's runs while the worker runs the next; one per
    way for a large layer, so its runs are analysed and compared as they arrive."""
    requests: dict[str, list[list[Job]]] = {}
    owners: dict[str, list[int]] = {}
    for fw, jobs in compare_jobs(cases, frameworks, steps).items():
        requests[fw], owners[fw] = [], []
        for index, (case, job) in enumerate(zip(cases, jobs)):
            parts = [dataclasses.replace(job, ways=(w,)) for w in job.ways] \
                if _large(case) and len(job.ways) > 1 else [job]
            requests[fw] += [[part] for part in parts]
            owners[fw] += [index] * len(parts)
    return requests, owners


def _joined(framework: str, results: list[FrameworkResult], owner: list[int]) -> FrameworkResult:
    """A worker's results as one result with each case's runs (its requests' runs, in
    order; `owner`: each request's case), or its first error."""
    error = next((r.error for r in results if r.error), None)
    if error is not None:
        return FrameworkResult(framework, error=error)
    records: list[list[RunRecord]] = [[] for _ in range(max(owner, default=-1) + 1)]
    for index, r in zip(owner, results):
        records[index] += r.records[0]
    return FrameworkResult(framework, results[0].version, records)


def compare_jobs(cases: list[Case], frameworks: tuple[str, ...] = FRAMEWORKS,
                 steps: int | None = None) -> dict[str, list[Job]]:
    """Each framework's request: one job per case; no worker (an import of seconds) for a
    framework none of the cases has runs for."""
    return {fw: [Job.from_case(c, fw, steps) for c in cases] for fw in frameworks
            if any(c.runs.get(fw) for c in cases)}


def unchecked(case: Case, frameworks: tuple[str, ...]) -> str | None:
    """Why nothing in `case` can be checked with `frameworks` alone, or None if something can."""
    if not case.expectations:
        return "no expectations"
    def ours(runs: tuple[str, ...]) -> bool:
        return all(run.split(":", 1)[0] in frameworks for run in runs)

    # An equal/differ expectation is checked pairwise: one pair within the selection will do.
    if any(ours(e.runs) if e.kind in ("rule", "rejects") else any(ours(p) for p in pairs(e))
           for e in case.expectations):
        return None
    return f"no expectation {' and '.join(frameworks)} alone can check"


@dataclass(frozen=True)
class Settings:
    """How outcome_from compares each case (run_cases' arguments)."""
    steps: int | None = None
    atol: float | None = None
    rtol: float | None = None
    min_power: float | None = None

    def of(self, case: Case) -> tuple[int, Tolerance, float | None]:
        """compare_case's steps, tolerance and min_power for this case."""
        return (self.steps or case.steps, Tolerance.for_case(case, self.atol, self.rtol),
                self.min_power if self.min_power is not None else case.min_power)


class Analyses:
    """The parent's work on the runs as they arrive, overlapping the frameworks still
    running: each successful run's inferred rules and sensitivity to gradient rounding
    (add() takes a framework's results when its worker is done, add_part() a request's
    as soon as it is written; get() computes whatever was not added). With `settings`
    (run_cases): a large case's pairs are compared as soon as both runs are in
    (compare() hands them out), and each case is compared whole (compare_case) as soon
    as every framework has delivered it (result() hands it out)."""

    def __init__(self, cases: list[Case], owners: dict[str, list[int]] | None = None,
                 settings: Settings | None = None):
        self.cases = cases
        self.owners = owners or {}            # framework -> each request's case index
        self.settings = settings
        self.found: dict[tuple[int, str], tuple[list[Inferred], RunSensitivity]] = {}
        self.forwards: dict[tuple[int, str], SharedForwards] = {}     # (case, dtype) -> its runs' forwards
        self.arrived: dict[int, dict[str, RunRecord]] = {}
        self.compared: dict[tuple, Comparison] = {}
        # case -> framework -> request -> its runs; then the case's runs per framework
        self.parts: dict[int, dict[str, dict[int, list[RunRecord]]]] = {}
        self.delivered: dict[int, dict[str, list[RunRecord]]] = {}
        self.results: dict[int, CaseResult] = {}
        # Per case, the power of its checks under one tolerance and number of steps, kept
        # from the checks decided early to the rest (the what-if replays of its runs).
        self.powers: dict[tuple[int, Tolerance, int], CasePower] = {}
        # The checks with their power, by expectation and the very runs they were made of.
        self.checked: dict[tuple, tuple[RunRecord, RunRecord, Comparison]] = {}
        self.ruled: dict[tuple, tuple[RunRecord, RuleCheck]] = {}

    def add(self, framework: str, result: FrameworkResult) -> None:
        if result.error is None:
            for index, runs in enumerate(result.records):
                self._add_runs(index, runs)
                self._deliver(index, framework, runs)

    def add_part(self, framework: str, request: int, result: FrameworkResult) -> None:
        """One request's runs (a request of one job), as soon as they arrive."""
        owner = self.owners.get(framework)
        index = request if owner is None else owner[request]
        runs = result.records[0]
        self._add_runs(index, runs)
        if owner is not None:
            parts = self.parts.setdefault(index, {}).setdefault(framework, {})
            parts[request] = runs
            if len(parts) == owner.count(index):
                self._deliver(index, framework, [r for _, got in sorted(parts.items()) for r in got])

    def _add_runs(self, index: int, runs: list[RunRecord]) -> None:
        """The runs' analyses, and what their replays will need (prepare); then a large
        case's pairs whose runs are both in."""
        good = [r for r in runs if r.error is None]
        large = _large(self.cases[index])
        for _ in on_cores(lambda r: self.get(self.cases[index], index, r)[1].prepare(), good, small=not large):
            pass
        if self.settings is not None and large and good:
            arrived = self.arrived.setdefault(index, {})
            arrived.update((r.name, r) for r in good)
            self._compare_arrived(index)
            # What was compared is read again only where a later pair needs it.
            for r in arrived.values():
                for snaps in r.params.values():
                    release(snaps)

    def _deliver(self, index: int, framework: str, runs: list[RunRecord]) -> None:
        """A framework's runs of a case are all in: compare the case once every framework's are."""
        delivered = self.delivered.setdefault(index, {})
        delivered.setdefault(framework, runs)
        if self.settings is None or index in self.results:
            return
        steps, tol, min_power = self.settings.of(self.cases[index])
        if set(delivered) != set(self.owners):
            self._check_early(index, steps, tol, min_power)
            return
        done = {fw: FrameworkResult(fw, records=[[]] * index + [delivered[fw]]) for fw in self.owners}
        self.results[index] = compare_case(self.cases[index], index, done, steps, tol, self, min_power)

    def _check_early(self, index: int, steps: int, tol: Tolerance, min_power: float | None) -> None:
        """The checks of case `index` that the runs delivered so far decide alone (a
        framework's own pairs and rules), made while the other frameworks still run: the
        parent would otherwise wait for the slowest worker and then do all of them.
        compare_case takes them as they are (checked, rule_check)."""
        case = self.cases[index]
        runs = {r.name: r for got in self.delivered[index].values() for r in got if r.error is None}
        sensitivity = {name: self.get(case, index, r)[1] for name, r in runs.items()}
        power = self.case_power(index, case, tol, steps, sensitivity)
        todo = [Pair(runs[a], runs[b], e.kind, e.param, PairSensitivity(sensitivity[a], sensitivity[b]))
                for e in case.expectations if e.kind not in ("rule", "rejects")
                for a, b in pairs(e) if a in runs and b in runs]
        self.checked_pairs(index, todo, tol, power, min_power)
        for e in case.expectations:
            if e.kind == "rule" and e.runs[0] in runs:
                self.rule_check(case, index, runs[e.runs[0]], e.param, e.rule, power, min_power)
            elif e.kind == "equal":
                # A pair waiting for its other run: this run's what-if replays now.
                for run in {run for a, b in pairs(e) for run in (a, b) if (a in runs) != (b in runs)} & set(runs):
                    power.prepare(runs[run], list(runs[run].params) if e.param == "all" else [e.param])

    def case_power(self, index: int, case: Case, tol: Tolerance, steps: int,
                   sensitivity: dict[str, RunSensitivity]) -> CasePower:
        """The case's CasePower under this tolerance and number of steps, knowing these runs."""
        key = (index, tol, steps)
        if key not in self.powers:
            self.powers[key] = CasePower(case, tol, {}, steps)
        self.powers[key].sensitivity.update(sensitivity)
        return self.powers[key]

    def checked_pairs(self, index: int, to_compare: list[Pair], tol: Tolerance, power: CasePower,
                      min_power: float | None) -> list[Comparison]:
        """Each pair compared, with its power (_with_power): those checked already taken
        as they are, the rest compared at once."""
        keys = [(index, p.a.name, p.b.name, p.expected, p.param, tol, min_power) for p in to_compare]
        known = [k in self.checked and self.checked[k][0] is p.a and self.checked[k][1] is p.b
                 for k, p in zip(keys, to_compare)]
        fresh = [p for p, seen in zip(to_compare, known) if not seen]
        for p, k, c in zip(fresh, [k for k, seen in zip(keys, known) if not seen],
                           self.compare(index, fresh, tol)):
            self.checked[k] = p.a, p.b, _with_power(c, p, power, min_power)
        return [self.checked[k][2] for k in keys]

    def rule_check(self, case: Case, index: int, run: RunRecord, param: str, expected: str,
                   power: CasePower, min_power: float | None) -> RuleCheck:
        """The rule expectation on a run's parameter, with its power (kept for the run)."""
        key = (index, run.name, param, expected, power.tol, power.steps, min_power)
        if key not in self.ruled or self.ruled[key][0] is not run:
            found, sensitivity = self.get(case, index, run)
            got = next(i.rule for i in found if i.param == param)
            check = RuleCheck(run.name, param, expected, got, rule_holds(sensitivity, param, expected))
            measured = power.rule(run, param, check.expected, check.got, check.holds)
            self.ruled[key] = run, dataclasses.replace(
                check, power=measured, problem=min_power_problem(measured, min_power) if check.holds else "")
        return self.ruled[key][1]

    def result(self, index: int, done: dict[str, FrameworkResult], settings: Settings) -> CaseResult | None:
        """Case `index` compared as it arrived, if that is what `done` holds: every
        framework succeeded, with the very runs compared, under the same settings (else
        None: compare it now)."""
        early = self.results.get(index)
        if (early is None or settings != self.settings or list(done) != list(self.owners)
                or any(r.error for r in done.values())):
            return None
        same = all(len(done[fw].records[index]) == len(self.delivered[index][fw]) and
                   all(a is b for a, b in zip(done[fw].records[index], self.delivered[index][fw]))
                   for fw in done)
        return early if same else None

    def _compare_arrived(self, index: int) -> None:
        case, arrived = self.cases[index], self.arrived[index]
        tol = self.settings.of(case)[1]
        todo: dict[tuple, Pair] = {}
        for e in case.expectations:
            if e.kind in ("rule", "rejects"):
                continue
            for a, b in pairs(e):
                key = (index, a, b, e.kind, e.param, tol)
                if a in arrived and b in arrived and key not in self.compared:
                    todo[key] = Pair(arrived[a], arrived[b], e.kind, e.param, PairSensitivity(
                        self.found[(index, a)][1], self.found[(index, b)][1]))
        self.compared.update(zip(todo, compare_pairs(list(todo.values()), tol)))

    def compare(self, index: int, to_compare: list[Pair], tol: Tolerance) -> list[Comparison]:
        """compare_pairs(to_compare, tol) for case `index`, taking those compared already."""
        keys = [(index, p.a.name, p.b.name, p.expected, p.param, tol) for p in to_compare]
        fresh = iter(compare_pairs([p for p, k in zip(to_compare, keys) if k not in self.compared], tol))
        return [self.compared[k] if k in self.compared else next(fresh) for k in keys]

    def get(self, case: Case, index: int, r: RunRecord) -> tuple[list[Inferred], RunSensitivity]:
        key = (index, r.name)
        if key not in self.found:
            # The run carries its class and hyper-parameters: its rule's replay needs nothing else.
            spec = as_stored(case.spec(), r.dtype)
            # A schedule's lrs for as many steps as power.py's replays may take (SEARCH_STEPS).
            loop = case.loop(max(r.steps, SEARCH_STEPS))
            found = infer_run(r, spec, case.loss, _coefficients(case, r), loop=loop)
            forwards = self.forwards.setdefault((index, r.dtype), SharedForwards())
            self.found[key] = found, RunSensitivity(r, spec, case.loss, found, loop, forwards)
        return self.found[key]


def outcome_from(cases: list[Case], done: dict[str, FrameworkResult], steps: int | None = None,
                 atol: float | None = None, rtol: float | None = None,
                 analyses: Analyses | None = None, min_power: float | None = None) -> Outcome:
    """Compare what the frameworks did with compare_jobs' request."""
    versions = {fw: r.version for fw, r in done.items() if r.version}
    analyses = analyses or Analyses(cases)
    settings = Settings(steps, atol, rtol, min_power)
    results = [analyses.result(i, done, settings) or _compare_now(case, i, done, settings, analyses)
               for i, case in enumerate(cases)]
    return Outcome(versions, results)


def _compare_now(case: Case, index: int, done: dict[str, FrameworkResult], settings: Settings,
                 analyses: Analyses) -> CaseResult:
    steps, tol, min_power = settings.of(case)
    return compare_case(case, index, done, steps, tol, analyses, min_power)


def compare_case(case: Case, index: int, done: dict[str, FrameworkResult], steps: int,
                 tol: Tolerance, analyses: Analyses | None = None,
                 min_power: float | None = None) -> CaseResult:
    runs = [r for fw, res in done.items() if res.error is None for r in res.records[index]]
    result = CaseResult(case, steps, tol, _in_case_order(case, runs), [],
                        framework_errors={fw: r.error for fw, r in done.items()
                                          if r.error and case.runs.get(fw)}, min_power=min_power)
    by_name = {r.name: r for r in runs}
    analyses = analyses or Analyses([])
    sensitivity = result.sensitivity
    to_compare: list[Pair] = []
    for r in result.runs:
        if r.error is None:
            found, sensitivity[r.name] = analyses.get(case, index, r)
            result.rules += [(r.name, i.param, i.rule) for i in found]
    for e in case.expectations:
        if e.kind == "rejects":
            (run,) = e.runs
            if run in by_name:
                result.reject_checks.append(RejectCheck(run, e.rule, by_name[run].error))
            else:
                result.skipped.append((run, "", _unavailable(run, by_name, done)))
        if e.kind in ("rule", "rejects"):
            continue
        for a, b in pairs(e):
            why = _unavailable(a, by_name, done) or _unavailable(b, by_name, done)
            if why:
                result.skipped.append((a, b, why))
            else:
                to_compare.append(Pair(by_name[a], by_name[b], e.kind, e.param,
                                       PairSensitivity(sensitivity[a], sensitivity[b])))
    # The pairs not checked as their runs arrived, at once: each run's float64
    # quantities are computed once per chunk.
    power = analyses.case_power(index, case, tol, steps, sensitivity)
    result.comparisons = analyses.checked_pairs(index, to_compare, tol, power, min_power)
    for e in case.expectations:
        if e.kind == "rule":
            (run,) = e.runs
            why = _unavailable(run, by_name, done)
            if why:
                result.skipped.append((run, e.param, why))
            else:
                result.rule_checks.append(analyses.rule_check(case, index, by_name[run], e.param, e.rule,
                                                              power, min_power))
    result.notes = _notes(case, result, by_name)
    good = [r for r in result.runs if r.error is None]
    if case.clip is not None and good:
        # The sizes the clip saw, along the run without decay (else the first run): the
        # decay runs' own loss gradients differ only where the weights moved apart.
        baseline = next((r for r in good if r.way == "none"), good[0])
        at = [{n: v[k] for n, v in baseline.params.items()} for k in range(baseline.steps)]
        spec = case.spec()
        loop = dataclasses.replace(case.loop(baseline.steps), clip=None)
        note, idle = clip_report(case.clip, [loop.loss_grads(p, spec.step(k), case.loss, baseline.framework)[0]
                                             for k, p in enumerate(at)])
        result.notes.insert(0, note)
        if idle:
            result.warnings.append(idle)
    if case.schedule is not None and good:
        note, wrong = schedule_report(case.schedule, float(case.optimizer.lr), good)
        result.notes.insert(0, note)
        result.warnings += wrong
    if case.precision is not None and good:
        result.notes.insert(0, precision_report(case.precision, good))
    return result


def _with_power(c: Comparison, pair: Pair, power: CasePower, min_power: float | None) -> Comparison:
    """The comparison with its power; a check that cannot see what it claims is
    inconclusive (never ok), and so is one weaker than min_power."""
    if c.problem == "NaN/Inf in a run":
        return c
    if c.expected == "equal":
        found = power.equal(pair)
        if not c.ok:
            return dataclasses.replace(c, power=found)
    else:
        found = power.differ(pair, within=not c.ok)
        if not c.ok and found.verdict == "conclusive":
            problem = c.problem + (f" ({found.reason})" if found.reason else "")
            return dataclasses.replace(c, power=found, problem=problem)
    if found.verdict == "inconclusive":
        return dataclasses.replace(c, power=found, ok=False, inconclusive=True,
                                   problem=f"inconclusive: {found.words()}")
    weak = min_power_problem(found, min_power)
    if weak:
        return dataclasses.replace(c, power=found, ok=False, inconclusive=True, problem=f"inconclusive: {weak}")
    return dataclasses.replace(c, power=found)


def _coefficients(case: Case, r: RunRecord) -> tuple[float, ...]:
    """The coefficients inference tries first: the case's, and for a manual term added to
    every micro-batch's undivided loss, each of them times the micro-batches."""
    coeffs = case.decay.coefficients()
    a = case.accumulate
    if a is not None and not a.divide_loss and r.way.startswith("manual"):
        coeffs = tuple(sorted(set(coeffs) | {c * a.micro_batches for c in coeffs}))
    return coeffs


def _notes(case: Case, result: CaseResult, by_name: dict[str, RunRecord]) -> list[str]:
    o = case.optimizer
    notes = []
    if len(case.runs) > 1:
        notes += [f"defaults differ: {d}" for d in default_differences(o.info, o.hyper, o.native)]
    rules = {(run, param): rule for run, param, rule in result.rules}
    # What the case sets, in torch's names (a tuple by its base name): the words, and
    # both frameworks' native arguments (paddle's through the words they translate).
    given = {w.native_name("torch").partition(".")[0] for w in o.info.words if "torch" in w.native
             and (w.name in o.hyper or (w.native_name("paddle") or "").partition(".")[0]
                  in o.native.get("paddle", {}))} | set(o.native.get("torch", {}))
    seen = set()
    for c in result.comparisons:
        a, b = by_name[c.a], by_name[c.b]
        if a.framework == b.framework or c.excess <= 1 or (c.a, c.b) in seen:
            continue
        seen.add((c.a, c.b))
        t, p = (a, b) if a.framework == "torch" else (b, a)
        why = cause(t, p, {n: rules[(t.name, n)] for n in t.params},
                    {n: rules[(p.name, n)] for n in p.params}, case.spec(), case.loss,
                    case.decay.coefficients(), frozenset(given), case.loop(t.steps))
        notes.append(f"{c.a} vs {c.b} differ: {why}")
    return notes


def _in_case_order(case: Case, runs: list[RunRecord]) -> list[RunRecord]:
    order = {name: i for i, name in enumerate(case.run_names())}
    return sorted(runs, key=lambda r: order[r.name])


def _unavailable(name: str, by_name: dict[str, RunRecord], done: dict[str, FrameworkResult]) -> str:
    framework = name.split(":", 1)[0]
    if framework not in done:
        return f"{framework} not selected"
    if done[framework].error:
        return f"{framework} failed"
    if by_name[name].error:
        return f"{name} failed"
    return ""
