"""The regression-check workflow's traps (issue 11, part C), through `cli.main` in-process.

--out folders are created (parents too) and probed before any run; an output never
replaces a baseline file; a narrowed run is compared with the baseline's selected
frameworks only; written files honour the umask; the verdict reaches stderr with --out;
a run that checks nothing says so and does not exit 0; every output path is checked
before a run; a ragged baseline is bad input; NaN/Inf and drift rows print plainly.
"""
from __future__ import annotations

import functools
import json
import os
import re
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from xdecay import cli
from xdecay.case import load_case
from xdecay.engine import pipeline
from xdecay.engine.baseline import Drift, find_drift, load_baseline
from xdecay.engine.compare import Tolerance
from xdecay.engine.explain import Explanation
from xdecay.engine.pipeline import Outcome, compare_case, compare_jobs
from xdecay.errors import UsageError
from xdecay.files import atomic
from xdecay.writers import compare_report, explain_report, train_report
from xdecay.writers.compare_report import case_outcome, json_report

from .conftest import MINIMAL, ROOT, TEST_CASES, write_case
from .test_bad_inputs import no_workers, snapshot, the_line  # noqa: F401  (no_workers: a fixture)


class Started(Exception):
    """Raised by a stand-in for a run: the command got past every check."""


@pytest.fixture
def in_process(monkeypatch):
    """compare runs its frameworks in this process (real torch and paddle, no worker imports)."""
    monkeypatch.setattr(cli, "run_cases", functools.partial(pipeline.run_cases, in_process=True))


def saved_doc(case: str, frameworks: dict[str, str] | None = None, runs: list | None = None) -> str:
    """The smallest document load_baseline takes for one case."""
    return json.dumps({"xdecay": "0.1", "frameworks": frameworks or {"torch": "2.13.0"},
                       "case": case, "runs": runs or []}) + "\n"


# ------------------------------------------------------------------ 2: --out folders are created

@pytest.mark.parametrize("argv,owner,runner", [
    (["compare", "--case", "sgd", "--format", "json"], cli, "run_cases"),
    (["train", "--case", "overfit"], train_report, "run_training"),     # imported by `train` when it runs
    (["report"], cli, "run_batch"),
], ids=["compare", "train", "report"])
def test_out_folder_and_parents_are_created_and_probed_before_the_run(argv, owner, runner, tmp_path, monkeypatch,
                                                                      capfd):
    out = tmp_path / "a" / "b" / "baseline"

    def started(*args, **kwargs):
        assert out.is_dir() and list(out.iterdir()) == []       # made, probe file gone
        raise Started

    monkeypatch.setattr(owner, runner, started)
    with pytest.raises(Started):
        cli.main([*argv, "--out", str(out) + "/"])


@pytest.mark.parametrize("command", [["compare", "--case", "sgd"], ["train", "--case", "overfit"], ["report"]],
                         ids=["compare", "train", "report"])
def test_out_under_a_file_is_refused_before_anything_is_made(command, tmp_path, capfd, no_workers):
    (tmp_path / "file").write_text("x\n")
    before = snapshot(tmp_path)
    code = cli.main([*command, "--out", str(tmp_path / "file" / "sub" / "dir")])
    line = the_line(*capfd.readouterr())
    assert code == 2
    assert line == f"xdecay: error: --out {tmp_path}/file/sub/dir: {tmp_path}/file is not a directory", line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", [["compare", "--case", "sgd"], ["train", "--case", "overfit"], ["report"]],
                         ids=["compare", "train", "report"])
def test_an_empty_out_is_refused(command, capfd, no_workers):
    code = cli.main([*command, "--out", ""])
    assert code == 2 and the_line(*capfd.readouterr()) == "xdecay: error: --out: empty path"


def test_a_bad_case_after_a_missing_out_folder_creates_nothing(tmp_path, capfd, no_workers):
    bad = write_case(tmp_path, MINIMAL.replace("lr = 0.1", "lr = -1"))
    code = cli.main(["compare", "--case", str(bad), "--out", str(tmp_path / "new")])
    assert code == 2 and "optimizer.lr" in the_line(*capfd.readouterr())
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------ 11: an output never replaces a baseline

def _baseline_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "baseline"
    folder.mkdir()
    (folder / "sgd.json").write_text(saved_doc("sgd"))
    return folder


@pytest.mark.parametrize("spelling", ["same", "dotdot", "symlink"])
def test_out_onto_the_baseline_is_refused(spelling, tmp_path, capfd, no_workers):
    folder = _baseline_folder(tmp_path)
    (tmp_path / "link").symlink_to(folder)
    out = {"same": folder, "dotdot": folder / ".." / "baseline", "symlink": tmp_path / "link"}[spelling]
    before = snapshot(tmp_path)
    code = cli.main(["compare", "--case", "sgd", "--format", "json", "--out", str(out),
                     "--baseline", str(folder)])
    line = the_line(*capfd.readouterr())
    assert code == 2
    assert line.startswith(f"xdecay: error: --out {out}: ") and f"{folder}/sgd.json" in line, line
    assert "would overwrite the baseline" in line, line
    assert snapshot(tmp_path) == before


def test_a_baseline_file_behind_a_symlink_is_protected(tmp_path, capfd, no_workers):
    folder = _baseline_folder(tmp_path)
    (tmp_path / "saved.json").symlink_to(folder / "sgd.json")
    code = cli.main(["compare", "--case", "sgd", "--format", "json", "--out", str(folder),
                     "--baseline", str(tmp_path / "saved.json")])
    assert code == 2 and "would overwrite the baseline" in the_line(*capfd.readouterr())


def test_other_formats_beside_the_baseline_are_allowed(tmp_path, monkeypatch):
    folder = _baseline_folder(tmp_path)
    monkeypatch.setattr(cli, "run_cases", lambda *a, **k: (_ for _ in ()).throw(Started()))
    with pytest.raises(Started):      # markdown goes to sgd.md: no baseline file is touched
        cli.main(["compare", "--case", "sgd", "--format", "markdown", "--out", str(folder),
                  "--baseline", str(folder)])


# ------------------------------------------------------------------ 12: a narrowed run against a full baseline

def test_a_torch_only_run_against_a_baseline_of_both_has_no_drift(shipped, saved):
    cases, done = shipped
    torch_only = {"torch": done["torch"]}
    every = [compare_case(c, i, torch_only, c.steps, Tolerance.for_case(c)) for i, c in enumerate(cases)]
    # unchecked() says, before a run, exactly which cases a torch-only run checks nothing in.
    assert [r.case.name for r in every if not r.checks] == [
        c.name for c in cases if pipeline.unchecked(c, ("torch",))]
    narrowed = Outcome({"torch": done["torch"].version}, [r for r in every if r.checks],
                       unchecked=[(c.name, why) for c in cases if (why := pipeline.unchecked(c, ("torch",)))])
    assert ("precedence_lamb", "no expectation torch alone can check") in narrowed.unchecked
    drift = find_drift(narrowed, load_baseline(saved), every_case=True, frameworks=("torch",))
    assert drift == []
    narrowed.drift, narrowed.baseline_versions = drift, {"torch": "2.13.0"}
    narrowed.baseline_skipped = ["paddle"]
    assert "skipped paddle (not selected)" in compare_report.table(narrowed)


def test_a_narrowed_baseline_check_names_only_the_selected_versions(tmp_path, capfd, monkeypatch):
    folder = _baseline_folder(tmp_path)
    (folder / "sgd.json").write_text(saved_doc("sgd", {"torch": "2.13.0", "paddle": "3.3.1"}))
    monkeypatch.setattr(cli, "run_cases", lambda cases, **kw: Outcome({"torch": "2.13.0"}, []))
    monkeypatch.setattr(cli, "find_drift", lambda *a, **kw: [])
    assert cli.main(["compare", "--case", "sgd", "--framework", "torch", "--baseline", str(folder)]) == 0
    line = capfd.readouterr().out.splitlines()[-1]
    assert line == "baseline: no drift; compared torch 2.13.0 (baseline 2.13.0); skipped paddle (not selected)"


def test_a_narrowed_run_still_sees_its_own_frameworks_drift(shipped, saved):
    cases, done = shipped
    i = next(i for i, c in enumerate(cases) if c.name == "sgd")
    r = compare_case(cases[i], i, {"torch": done["torch"]}, cases[i].steps, Tolerance.for_case(cases[i]))
    doc = json.loads((saved / "sgd.json").read_text())
    doc["runs"][0]["steps"][0]["delta_weight"][0][0] += 1e-3          # torch:none moved
    doc["runs"].append({"run": "paddle:gone", "steps": []})           # not selected: not drift
    (saved / "sgd.json").write_text(json.dumps(doc))
    drift = find_drift(Outcome({"torch": done["torch"].version}, [r]), load_baseline(saved),
                       every_case=False, frameworks=("torch",))
    assert [(d.kind, d.what.split()[0]) for d in drift] == [("delta", "torch:none")]


# ------------------------------------------------------------------ 13: files honour the umask

@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_umask_mode(umask, mode, tmp_path):
    old = os.umask(umask)
    try:
        with atomic(tmp_path / "x.json") as f:
            f.write("{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == mode


def test_a_rewritten_file_keeps_its_mode(tmp_path):
    target = tmp_path / "x.md"
    target.write_text("old\n")
    target.chmod(0o644)
    old = os.umask(0o077)
    try:
        with atomic(target, "wb") as f:
            f.write(b"new\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644 and target.read_text() == "new\n"


# ------------------------------------------------------------------ 14: the verdict reaches stderr with --out

def test_out_still_says_the_verdict_on_stderr(tmp_path, capfd, in_process):
    code = cli.main(["compare", "--case", str(TEST_CASES / "adam_equals_adamw.toml"), "--out", str(tmp_path)])
    out, err = capfd.readouterr()
    assert code == 1 and out == ""
    assert "verdict: adam_equals_adamw: MISMATCH: 1 of 1 expectations fail" in err.splitlines(), err


# ------------------------------------------------------------------ 15: nothing checked is not success

def test_a_case_nothing_can_be_checked_in_is_refused_before_any_run(capfd, no_workers):
    code = cli.main(["compare", "--case", "precedence_lamb", "--framework", "torch"])
    line = the_line(*capfd.readouterr())
    assert code == 2
    assert line == ("xdecay: error: --framework torch: nothing to check in case precedence_lamb "
                    "(no expectation torch alone can check)"), line


def test_a_case_without_expectations_is_refused(tmp_path, capfd, no_workers):
    path = write_case(tmp_path, MINIMAL)
    code = cli.main(["compare", "--case", str(path)])
    assert code == 2
    assert the_line(*capfd.readouterr()) == f"xdecay: error: {path}: expect: nothing to check (no expectations)"


def test_no_worker_for_a_framework_no_case_runs():
    case = load_case(ROOT / "cases" / "precedence_lamb.toml")
    assert set(compare_jobs([case])) == {"paddle"}
    assert set(compare_jobs([case, load_case(ROOT / "cases" / "sgd.toml")])) == {"torch", "paddle"}


# ------------------------------------------------------------------ 16: every output path before the run

@pytest.mark.parametrize("clash", ["train/overfit.png", "index.md", "cases/sgd.md", "train/schedule.md",
                                   "explain.md"])
def test_report_checks_every_output_path_before_running(clash, tmp_path, capfd, no_workers):
    (tmp_path / clash).mkdir(parents=True)
    before = snapshot(tmp_path)
    code = cli.main(["report", "--out", str(tmp_path)])
    line = the_line(*capfd.readouterr())
    assert code == 2 and line == f"xdecay: error: --out {tmp_path}: {tmp_path / clash} is a directory, not a file"
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------ 17: a ragged baseline is bad input

def test_a_baseline_with_steps_of_different_shapes_is_bad_input(tmp_path, capfd, no_workers):
    runs = [{"run": "torch:none", "steps": [{"delta_weight": [[1.0, 2.0]]}, {"delta_weight": [[1.0]]}]}]
    path = tmp_path / "sgd.json"
    path.write_text(saved_doc("sgd", runs=runs))
    with pytest.raises(UsageError, match=r"sgd.json: .*torch:none steps\[1\]\.delta_weight: shape \(1, 1\), "
                                         r"step 0 has \(1, 2\)"):
        load_baseline(path)
    code = cli.main(["compare", "--case", "sgd", "--baseline", str(path)])
    assert code == 2 and "steps[1].delta_weight" in the_line(*capfd.readouterr())


def test_a_baseline_with_a_ragged_delta_is_bad_input(tmp_path):
    runs = [{"run": "torch:none", "steps": [{"delta_weight": [[1.0, 2.0], [1.0]]}]}]
    (tmp_path / "sgd.json").write_text(saved_doc("sgd", runs=runs))
    with pytest.raises(UsageError, match=r"torch:none steps\[0\]\.delta_weight: not a numeric array"):
        load_baseline(tmp_path)


# ------------------------------------------------------------------ smaller ones

@pytest.mark.parametrize("argv,words", [
    (["compare", "--case", "sgd", "--case", "momentum"], "--case: given twice (sgd, momentum)"),
    (["compare", "--case", "sgd", "--format", "json", "--format", "table"], "--format: given twice (json, table)"),
    (["compare", "--case", "sgd", "--steps", "1", "--steps", "2"], "--steps: given twice (1, 2)"),
    (["train", "--case", "overfit", "--case", "schedule"], "--case: given twice (overfit, schedule)"),
    (["compare", "--case", "sgd", "--python", "paddle={py}", "--python", "paddle={py}"],
     "--python paddle={py}: paddle given twice"),
    (["explain", "--optimizer", "lamb", "--framework", "torch"], "--optimizer lamb: torch has no Lamb"),
])
def test_small_usage_traps_are_one_line_and_exit_2(argv, words, capfd, no_workers):
    argv = [a.replace("{py}", sys.executable) for a in argv]
    code = cli.main(argv)
    line = the_line(*capfd.readouterr())
    assert code == 2 and words.replace("{py}", sys.executable) in line, line


def test_drift_rows_in_json_keep_value_and_ratio_apart(outcome):
    r = outcome.results[0]
    drifted = Outcome(outcome.versions, [r], {"torch": "2.13.0"}, [
        Drift(r.case.name, "delta", "torch:none weight[0, 0, 0]", 0.25, float("nan"), float("nan")),
        Drift(r.case.name, "delta", "torch:none bias[0, 1]", 0.5, 0.625, 12.5),
        Drift("*", "version", "paddle", "3.3.0", "3.3.1")])
    rows = json.loads(json_report(drifted))["baseline"]["drift"]
    assert rows[0] == {"case": r.case.name, "kind": "delta", "what": "torch:none weight[0, 0, 0]",
                       "old": 0.25, "new": "NaN", "ratio": "NaN"}
    assert rows[1]["old"] == 0.5 and rows[1]["new"] == 0.625 and rows[1]["ratio"] == 12.5
    assert "ratio" not in rows[2] and rows[2]["old"] == "3.3.0"
    for text in (compare_report.table(drifted), compare_report.markdown(drifted)):
        nan_row = next(l for l in text.splitlines() if "weight[0, 0, 0]" in l)
        assert re.split(r"[\s|]+", nan_row.strip(" |"))[-3:] == ["0.25", "NaN", "NaN"], nan_row
        assert "nan" not in nan_row and "0.25" in nan_row
        bias_row = next(l for l in text.splitlines() if "bias[0, 1]" in l)
        assert "0.625" in bias_row and "12.5" in bias_row


def test_nan_and_inf_print_plainly():
    assert compare_report._num(float("nan")) == "NaN"
    assert compare_report._num(float("inf")) == "+Inf" and compare_report._num(-float("inf")) == "-Inf"
    assert compare_report._num(0.5) == "+5.000000e-01"
    assert compare_report.fmt(float("nan"), ".3g") == "NaN"
    assert compare_report.fmt(np.float64(2.0), ".3g") == "2"


def test_markdown_escapes_pipes_only_inside_tables(outcome):
    r = next(r for r in outcome.results if r.case.name == "momentum")
    text = compare_report.markdown(case_outcome(outcome, r))
    header = next(l for l in text.splitlines() if l.startswith("`") and "momentum.toml" in l)
    assert "\\|" not in header and " | Linear(3->4) | " in header
    table_rows = [l for l in text.splitlines() if l.startswith("|")]
    assert table_rows and all(l.count("|") == table_rows[0].count("|") for l in table_rows[:2])


def test_explain_markdown_escapes_pipes_only_inside_tables():
    text = explain_report.markdown(Explanation({}, 3, [], [], {"paddle": "worker exited: a | b\nnext"}))
    assert "**paddle: error** worker exited: a | b next" in text.splitlines()


def test_a_framework_a_case_has_no_runs_for_is_no_version_drift(shipped, saved):
    # precedence_lamb is paddle-only: run alone, no torch worker starts (no torch version),
    # while its saved document names both versions.
    cases, done = shipped
    i = next(i for i, c in enumerate(cases) if c.name == "precedence_lamb")
    r = compare_case(cases[i], i, {"paddle": done["paddle"]}, cases[i].steps, Tolerance.for_case(cases[i]))
    assert "torch" in json.loads((saved / "precedence_lamb.json").read_text())["frameworks"]
    fresh = Outcome({"paddle": done["paddle"].version}, [r])
    assert find_drift(fresh, load_baseline(saved), every_case=False) == []


def test_all_cases_narrowed_runs_the_checkable_ones_and_lists_the_rest(capfd, in_process):
    code = cli.main(["compare", "--case", "all", "--framework", "torch", "--format", "json"])
    doc = json.loads(capfd.readouterr().out)
    ran = {c["case"] for c in doc["cases"]}
    unchecked = {u["case"]: u["why"] for u in doc["unchecked"]}
    assert unchecked["precedence_lamb"] == "no expectation torch alone can check"
    assert ran and not ran & set(unchecked)
    assert set(doc["frameworks"]) == {"torch"}
    # Every case run checked something, and held: nothing counted as success unchecked.
    assert code == 0 and all(c["ok"] and (c["comparisons"] or c["rule_checks"] or c["reject_checks"])
                             for c in doc["cases"])
