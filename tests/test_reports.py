"""The committed reports/ pages, and the committed baseline, still say what a fresh run
says — on any CPU. Regenerate the pages with `xdecay report` when this fails.

Another CPU takes other float32 paths (SIMD width, summation order), so a page's last
digits are not facts. A committed page must match a fresh one line by line:

* exactly, once every measured number is masked: verdicts, rules with their
  coefficients, run and check names, expectations, integers, versions, structure;
* every number within the bound derived for it (`Bounds`), plus one unit of the
  last printed digit (half from each page's rounding). A number that only measures
  rounding — a difference between runs claimed equal, its ratio to the tolerance, a
  replay residual — has no bound to keep: the verdict beside it is its fact.
"""
from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from xdecay.engine.baseline import find_drift, load_baseline
from xdecay.engine.compare import EPS32, Tolerance, ulp32
from xdecay.engine.explain import explain
from xdecay.engine.matrix import Matrix, load_releases
from xdecay.engine.pipeline import CaseResult, Outcome, compare_case
from xdecay.training import epoch_batches, find_train_cases, load_train_case
from xdecay.writers.case_page import reference_run
from xdecay.writers.pages import link_other_pages, pages
from xdecay.writers.questions import load_questions
from xdecay.writers.train_report import Training, loss_allowed, run_training

from .conftest import ROOT

EPS64 = float(np.finfo(np.float64).eps)

# A measured number (a ratio may end in "x"): not part of a name (l2, eps32), a rule
# coefficient (@0.1), an index ([0,3]) or a version (3.3.1).
NUMBER = re.compile(r"(?<![\w@.\[,])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![.\w](?<!x))")
CELL = re.compile(r"(?<!\\)\|")

# (section heading, table header, row cells, column) -> the bound for that cell's numbers,
# or None for a rounding-level measurement (its verdict is compared, as text).
Rule = Callable[[str, list[str], list[str], int], "float | None"]


def mask(text: str) -> str:
    return NUMBER.sub("#", re.sub(r"\s+", " ", text))


def unit(token: str) -> float:
    """One unit in the last printed digit (0 for an integer: integers are exact)."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    if not decimals and not exponent:
        return 0.0
    return 10.0 ** (int(exponent or 0) - decimals)


def within(committed: str, fresh: str, bound: float) -> str | None:
    """Why the numbers of two cells (whose masked texts agree) disagree, or None."""
    for x, y in zip(NUMBER.findall(committed), NUMBER.findall(fresh)):
        allowed = bound + (unit(x) + unit(y)) / 2
        if not abs(float(x) - float(y)) <= allowed:
            return f"{x} vs fresh {y}: differ by {abs(float(x) - float(y)):.3g} > {allowed:.3g}"
    return None


def cells(line: str) -> list[str]:
    return [c.strip() for c in CELL.split(line)[1:-1]]


def page_problems(committed: str, fresh: str, rule: Rule) -> list[str]:
    a, b = committed.splitlines(), fresh.splitlines()
    if len(a) != len(b):
        return [f"{len(a)} lines, a fresh page has {len(b)}"]
    problems, section, header = [], "", None
    for i, (x, y) in enumerate(zip(a, b), 1):
        if mask(x) != mask(y):
            problems.append(f"line {i}: {x.strip()!r}, fresh: {y.strip()!r}")
            continue
        if y.startswith("#"):
            section = y
        if not y.startswith("|"):
            header = None
            why = within(x, y, 0.0)
        elif header is None:
            header, why = cells(y), within(x, y, 0.0)
        elif set(y) <= set("|-: "):
            why = None
        else:
            row = cells(y)
            reasons = []
            for col, (cx, cy) in enumerate(zip(cells(x), row)):
                bound = rule(section, header, row, col)
                if bound is not None:
                    reasons.append(within(cx, cy, bound))
            why = next((r for r in reasons if r), None)
        if why:
            problems.append(f"line {i}: {why}")
    return problems


# ---------------------------------------------------------------- derived bounds


def delta_bound(result: CaseResult) -> float:
    """The most one printed delta may move between two correct float32 executions of
    its run: the case's tolerance (k*(ulp32(w) + n*eps32*|delta|), or its fixed one) with
    the run's replayed sensitivity counted for both executions, at its largest over every
    run, parameter, step and element."""
    worst = 0.0
    for run in result.runs:
        if run.error is not None or run.name not in result.sensitivity:
            continue
        for param, snaps in run.params.items():
            w = np.asarray(snaps, np.float64)
            delta = np.diff(w, axis=0)
            k = np.arange(1, len(delta) + 1).reshape((-1,) + (1,) * (delta.ndim - 1))
            allowed = result.tolerance.allowed_from(ulp32(np.maximum(np.abs(w[:-1]), np.abs(w[1:]))),
                                                    np.abs(delta), k)
            s = result.sensitivity[run.name].full(param)
            worst = max(worst, float(np.max(allowed + 2 * (0 if s is None else s))))
    return worst


def case_rule(result: CaseResult) -> Rule:
    """Deltas move by at most delta_bound; a `differ` pair's max_abs by twice that (each
    run's share, triangle inequality). An `equal` pair's numbers, and every max_rel,
    max_ulp and ratio to the tolerance, measure rounding: their verdict is the fact. So
    does a check's power figure (">=0.05 %": the grid value where a replayed coefficient
    error first exceeds what the check tolerates, which rounding can move by a notch);
    its text (what it misses, inconclusive) is compared."""
    bound = delta_bound(result)
    # A run's delta as its difference from the reference run's, in float32 ULPs of the
    # reference's weight: each of the two deltas moves by at most `bound`, so the cell
    # by 2*bound over that ULP, at most over the smallest such ULP of the reference run.
    # A case whose every run is refused (adam_capturable) has no deltas to bound.
    good = [x for x in result.runs if x.error is None]
    ulp_bound = float("inf")
    if good:
        ref = reference_run(good)
        smallest = min(float(np.min(ulp32(np.maximum(np.abs(w[:-1]), np.abs(w[1:])))))
                       for w in (np.asarray(s, np.float64) for s in ref.params.values()))
        ulp_bound = 2 * bound / smallest

    def rule(section: str, header: list[str], row: list[str], col: int) -> float | None:
        if header[col] == "power":
            return None
        if header[0] == "element":
            return bound if col == 1 else ulp_bound
        if "max_abs" in header:
            if header[col] == "max_abs":
                return 2 * bound if row[header.index("expected")] == "differ" else None
            if header[col] in ("max_rel", "max_ulp", "x tol"):
                return None
        return 0.0
    return rule


def explain_rule(section: str, header: list[str], row: list[str], col: int) -> float | None:
    """A parenthesised number is the replay residual or max_abs behind the verdict word
    before it (`equal (1.49e-08)`, `unexplained (0.3)`): rounding-level, not a fact."""
    return None if re.search(r"\([-+]?\d[\d.e+-]*\)$", row[col]) else 0.0


def overfit_rule(t: Training) -> Rule:
    """Losses move by at most the stated per-epoch loss bound at the final epoch
    (S*n*eps32*L + 2*sqrt(L)*r + r^2); the weight norms, max and int8 scale by its
    trajectory term, S*n*eps32 relative; a "< resolution" cell by that term too (r is
    a function of the weights). torch-vs-paddle and float64 check rows measure rounding."""
    steps = len(epoch_batches(t.job)[0]) * t.case.epochs
    n = t.case.inputs + t.case.batch + 16
    runs = [r for fw in ("torch", "paddle") for r in t.runs.get(fw, []) if r.error is None]

    def loss_bound(values: list[float]) -> float:
        top = max(abs(v) for v in values)
        return max(float(loss_allowed(t, r, np.array([steps]), np.array([top]))[0]) for r in runs)

    def rule(section: str, header: list[str], row: list[str], col: int) -> float | None:
        values = [float(v) for v in NUMBER.findall(row[col])]
        if not values:
            return 0.0
        if header[col] in ("final train loss", "final test loss") and not row[col].startswith("<"):
            return loss_bound(values)
        if header[0] == "framework" and col >= 2:
            return steps * n * EPS32 * max(abs(v) for v in values)
        if header[0] == "check" and header[col] in ("measured", "allowed"):
            if re.match(r"(torch|paddle) vs ", row[0]) or header[col] == "allowed":
                return None
            return loss_bound(values)
        return 0.0
    return rule


def schedule_rule(t: Training) -> Rule:
    """lr: the float64 recursions' stated bound, steps*8*eps64*lr; a decay share by the
    trajectory term of its run's weights, S*n*eps32 relative. The checks' measured
    columns (residuals, ratios to the tolerance) measure rounding."""
    steps = sum(len(e) for e in epoch_batches(t.job))
    n = t.job.arrays["x"].shape[1] + t.job.config["batch"] + 16

    def rule(section: str, header: list[str], row: list[str], col: int) -> float | None:
        if header[0] == "step" and col == 1:
            return steps * 8 * EPS64 * t.case.lr
        if header[0] == "step" and col >= 2:
            return steps * n * EPS32 * float(row[col])
        if header[0] == "check" and header[col] == "measured":
            return None
        return 0.0
    return rule


# ---------------------------------------------------------------- the pages


@pytest.fixture(scope="module")
def fresh(shipped):
    """(pages, the rule for each page's numbers, the fresh outcome)."""
    cases, done = shipped
    results = [compare_case(c, i, done, c.steps, Tolerance.for_case(c)) for i, c in enumerate(cases)]
    outcome = Outcome({fw: r.version for fw, r in done.items()}, results)
    trainings = [run_training(load_train_case(p), in_process=True) for p in find_train_cases()]
    for t in trainings:
        if t.case.kind == "overfit":
            t.plot = f"{t.case.name}.png"
    questions = load_questions()
    history = Matrix.of(load_releases(ROOT / "reports" / "paddle-history"))
    texts = pages(outcome, explain(in_process=True), trainings, questions,
                  # write_case_plot skips a case with fewer than two runs (all refused: adam_capturable)
                  {r.case.name: f"{r.case.name}.png" if sum(x.error is None for x in r.runs) >= 2
                   else "plot skipped: fewer than two runs ran" for r in results}, history)
    link_other_pages(texts, ROOT / "reports")
    # The index carries explain's cross-framework table: its parenthesised max_abs too. The
    # history page is rendered from saved text (test_matrix checks those against a fresh run).
    rules: dict[str, Rule] = {"index.md": explain_rule, "explain.md": explain_rule,
                              "paddle-history.md": lambda *_: 0.0}
    rules |= {f"cases/{r.case.name}.md": case_rule(r) for r in results}
    rules |= {f"train/{t.case.name}.md": (overfit_rule if t.case.kind == "overfit" else schedule_rule)(t)
              for t in trainings}
    assert set(rules) == set(texts)
    return texts, rules, outcome


def test_every_page_is_committed(fresh):
    texts, _, _ = fresh
    committed = {str(p.relative_to(ROOT / "reports")) for p in (ROOT / "reports").rglob("*.md")}
    assert set(texts) <= committed


def test_committed_pages_state_the_fresh_verdicts_rules_and_numbers(fresh):
    texts, rules, _ = fresh
    for rel, text in texts.items():
        committed = (ROOT / "reports" / rel).read_text(encoding="utf-8")
        problems = page_problems(committed, text, rules[rel])
        assert not problems, f"reports/{rel} is stale (run `xdecay report`): " + "; ".join(problems[:5])


def test_the_page_check_flags_what_a_fresh_run_would_change(fresh):
    """Noise within the derived bounds passes; a verdict, a rule, a delta beyond its
    bound, or a finding of the training page does not."""
    texts, rules, outcome = fresh
    rel, text = "cases/adam.md", texts["cases/adam.md"]
    result = next(r for r in outcome.results if r.case.name == "adam")
    bound = delta_bound(result)
    assert 0 < bound < 1e-6
    row = next(line for line in text.splitlines() if line.startswith("| weight[0,0]"))
    value = NUMBER.findall(cells(row)[1])[0]

    def moved(by: float) -> str:
        return text.replace(row, row.replace(value, f"{float(value) + by:+.6e}", 1), 1)

    equal_row = next(line for line in text.splitlines() if "| equal " in line)
    noisy = text.replace(equal_row, re.sub(r"\d\.\d{3}e-0\d", "0.000e+00", equal_row), 1)
    assert page_problems(noisy, text, rules[rel]) == []
    assert page_problems(moved(bound / 2), text, rules[rel]) == []
    assert page_problems(moved(10 * bound + 1e-6), text, rules[rel])
    assert page_problems(text.replace("| ok ", "| FAIL ", 1), text, rules[rel])
    assert page_problems(text.replace("coupled_l2@0.1", "coupled_l2@0.2", 1), text, rules[rel])
    overfit = texts["train/overfit.md"]
    assert page_problems(overfit.replace("174.6", "178.6", 1), overfit, rules["train/overfit.md"])
    assert page_problems(overfit.replace("13.52", "13.12", 1), overfit, rules["train/overfit.md"])


def test_committed_baseline_shows_no_drift(fresh):
    """reports/baseline-paddle-3.3.1 (README: the upgrade check) against fresh runs of
    the same versions: drift compares deltas within the comparison tolerance, so
    another CPU must find none."""
    _, _, outcome = fresh
    baseline = load_baseline(ROOT / "reports" / "baseline-paddle-3.3.1")
    assert find_drift(outcome, baseline, every_case=True) == []


def test_pages_are_github_tables_without_python_reprs(fresh):
    texts, _, _ = fresh
    for rel, text in texts.items():
        assert "np.float" not in text and "array(" not in text and "<xdecay" not in text, rel
        for block in re.split(r"\n(?!\|)", text):
            rows = [l for l in block.splitlines() if l.startswith("|")]
            if rows:
                cells_ = {len(re.split(r"(?<!\\)\|", r)) for r in rows}
                assert len(cells_) == 1, f"{rel}: ragged table {rows[:2]}"
