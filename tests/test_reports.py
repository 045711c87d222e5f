"""The committed reports/ pages still say what a fresh run says (verdicts and rules,
not every printed digit): regenerate them with `xdecay report` when this fails."""
from __future__ import annotations

import re

import pytest

from xdecay.engine.compare import Tolerance
from xdecay.engine.explain import explain
from xdecay.engine.pipeline import Outcome, compare_case
from xdecay.training import find_train_cases, load_train_case
from xdecay.writers.pages import pages
from xdecay.writers.train_report import run_training

from .conftest import ROOT

MEASURED = re.compile(r"\(\d\.\d+e[-+]\d+\)")     # a printed number in parentheses
# A check's power (">=0.05 %"): a grid value another CPU's rounding can move by one notch.
POWER = re.compile(r">=\d[\d.e+-]* %")


def facts(page: str) -> list[str]:
    """The lines that state verdicts and rules: verdicts, the what-each-parameter-got
    and rule-check tables, the explain tables (measured numbers blanked)."""
    keep, table = [], False
    for line in page.splitlines():
        if line.startswith("**Verdict:**") or line.startswith("| [") or line.startswith("!["):
            keep.append(line)
        elif line.startswith("| run ") or line.startswith("| optimizer ") or line.startswith("| torch "):
            table = True
        elif not line.startswith("|"):
            table = False
        if table and line.startswith("|"):
            keep.append(POWER.sub(">=", MEASURED.sub("", re.sub(r"\s+", " ", line))))
    return keep


@pytest.fixture(scope="module")
def fresh(shipped):
    cases, done = shipped
    results = [compare_case(c, i, done, c.steps, Tolerance.for_case(c)) for i, c in enumerate(cases)]
    outcome = Outcome({fw: r.version for fw, r in done.items()}, results)
    trainings = [run_training(load_train_case(p), in_process=True) for p in find_train_cases()]
    for t in trainings:
        if t.case.kind == "overfit":
            t.plot = f"{t.case.name}.png"
    return pages(outcome, explain(in_process=True), trainings)


def test_every_page_is_committed(fresh):
    committed = {str(p.relative_to(ROOT / "reports")) for p in (ROOT / "reports").rglob("*.md")}
    assert set(fresh) <= committed


def test_committed_pages_state_the_fresh_verdicts_and_rules(fresh):
    for rel, text in fresh.items():
        committed = (ROOT / "reports" / rel).read_text(encoding="utf-8")
        assert facts(committed) == facts(text), f"reports/{rel} is stale: run `xdecay report`"
        assert facts(text), rel


def test_pages_are_github_tables_without_python_reprs(fresh):
    for rel, text in fresh.items():
        assert "np.float" not in text and "array(" not in text and "<xdecay" not in text, rel
        for block in re.split(r"\n(?!\|)", text):
            rows = [l for l in block.splitlines() if l.startswith("|")]
            if rows:
                cells = {len(re.split(r"(?<!\\)\|", r)) for r in rows}
                assert len(cells) == 1, f"{rel}: ragged table {rows[:2]}"
