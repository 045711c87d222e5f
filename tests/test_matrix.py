"""`xdecay matrix`: cells, saved results, merging, the table, exit codes; and the committed
history page (reports/paddle-history.md) against its saved results and a fresh run."""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xdecay import cli
from xdecay.case import load_case
from xdecay.engine.explain import explain, explain_jobs
from xdecay.engine.matrix import (Matrix, Release, load_releases, refusal, release_cells,
                                  same_cell, save_releases, stale_rows, version_key)
from xdecay.engine.compare import Tolerance
from xdecay.engine.pipeline import CaseResult, Outcome, outcome_from
from xdecay.frameworks import paddle_adapter, runner
from xdecay.frameworks.records import ExplainItem, RunRecord
from xdecay.writers.matrix_report import markdown, table

from .conftest import ROOT, SHIPPED, release_python, run

HISTORY = ROOT / "reports" / "paddle-history"


def _release(version: str, cells: dict[str, str], error: str | None = None) -> Release:
    return Release("paddle", version, "3.11", {"torch": "2.13.0"}, cells, error)


OLD = _release("2.6.2", {"case a": "ok", "case a · paddle:l2decay · weight": "coupled_l2@0.1",
                         "explain NAdam · default · weight": "absent"})
MID = _release("3.0.0", {"case a": "ok", "case a · paddle:l2decay · weight": "coupled_l2@0.1",
                         "explain NAdam · default · weight": "none"})
NEW = _release("3.10.0", {**MID.cells, "case a · paddle:l2decay · weight": "refused: TypeError: no"})


def _saved(tmp_path: Path, name: str, *releases: Release) -> str:
    save_releases(tmp_path / name, list(releases))
    return str(tmp_path / name)


def test_saved_releases_load_as_they_were(tmp_path):
    save_releases(tmp_path, [OLD, NEW])
    assert sorted(p.name for p in (tmp_path / "releases").iterdir()) == ["paddle-2.6.2.json", "paddle-3.10.0.json"]
    assert load_releases(tmp_path) == [OLD, NEW]


def test_releases_are_ordered_by_version_and_the_last_given_wins():
    assert version_key("3.10.0") > version_key("3.9.1") > version_key("3.9.1rc1") > version_key("2.6.2")
    again = _release("3.0.0", {"case a": "MISMATCH (1/2 held)"})
    m = Matrix.of([NEW, MID, OLD, again])
    assert [r.version for r in m.releases] == ["2.6.2", "3.0.0", "3.10.0"]
    assert m.releases[1] is again


def test_changes_are_between_consecutive_releases_and_name_their_row():
    m = Matrix.of([OLD, MID, NEW])
    changes = [(c.before, c.after, c.row, c.old, c.new) for c in m.changes()]
    assert changes == [
        ("paddle 2.6.2", "paddle 3.0.0", "explain NAdam · default · weight", "absent", "none"),
        ("paddle 3.0.0", "paddle 3.10.0", "case a · paddle:l2decay · weight", "coupled_l2@0.1",
         "refused: TypeError: no")]
    assert m.changed_rows() == ["case a · paddle:l2decay · weight", "explain NAdam · default · weight"]
    assert [c.after for c in m.newest_changes()] == ["paddle 3.10.0"]
    assert m.exit_code == 1
    assert Matrix.of([OLD, MID]).exit_code == 1 and Matrix.of([MID, _release("3.1.0", MID.cells)]).exit_code == 0
    assert "verdict: 1 releases, 3 rows, 0 change; one release per framework: nothing to compare it with" in \
        table(Matrix.of([OLD]))
    assert "the newest release matches the previous one" in table(Matrix.of([MID, _release("3.1.0", MID.cells)]))


def test_a_release_that_could_not_run_is_left_out_of_the_chain_and_exits_3():
    broken = _release("3.1.0", {}, error="worker exited with code 1: ImportError")
    m = Matrix.of([MID, broken, NEW])
    assert {(c.before, c.after) for c in m.changes()} == {("paddle 3.0.0", "paddle 3.10.0")}
    assert m.exit_code == 3
    assert "paddle 3.1.0** could not run: worker exited with code 1" in markdown(m)


def test_merge_of_saved_folders_shows_only_the_rows_that_change(tmp_path, capsys):
    a, b = _saved(tmp_path, "job1", OLD), _saved(tmp_path, "job2", MID, NEW)
    code = cli.main(["matrix", "--merge", a, b, "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["newest_differs"]
    assert [r["version"] for r in doc["releases"]] == ["2.6.2", "3.0.0", "3.10.0"]
    assert [r["row"] for r in doc["rows"]] == ["case a · paddle:l2decay · weight",
                                               "explain NAdam · default · weight"]
    assert doc["rows"][1]["cells"] == {"paddle 2.6.2": "absent", "paddle 3.0.0": "none", "paddle 3.10.0": "none"}
    assert doc["frameworks"] == {"paddle": "2.6.2, 3.0.0, 3.10.0", "torch": "2.13.0"}
    cli.main(["matrix", "--merge", a, b, "--format", "json", "--all"])
    assert len(json.loads(capsys.readouterr().out)["rows"]) == 3
    cli.main(["matrix", "--merge", a, a])
    assert "paddle 2.6.2 given 2 times: the last one is shown" in capsys.readouterr().err


def test_merge_with_out_writes_the_table_and_every_release(tmp_path, capsys):
    a = _saved(tmp_path, "job1", OLD, MID)
    out = tmp_path / "new" / "merged"
    assert cli.main(["matrix", "--merge", a, "--format", "markdown", "--out", str(out)]) == 1
    out_, err = capsys.readouterr()
    assert out_ == "" and err.splitlines()[-1].startswith("verdict: 2 releases, 3 rows, 1 change; CHANGED: ")
    assert load_releases(out) == [OLD, MID]
    page = (out / "matrix.md").read_text(encoding="utf-8")
    assert "### paddle 2.6.2 → paddle 3.0.0" in page
    assert "New optimizer classes in paddle 3.0.0 (`absent` in paddle 2.6.2, their rules in the table below): NAdam." in page
    assert "| explain NAdam · default · weight | absent | none |" in page.replace("  ", "")


@pytest.mark.parametrize("args, words", [
    ([], "matrix: give --paddle V1,V2,..., --python FRAMEWORK=PATH or --merge DIR"),
    (["--paddle", "3.3.1,latest"], "--paddle 3.3.1,latest: 'latest' is not a release number"),
    (["--paddle", "3.3.1,3.3.1"], "--paddle 3.3.1,3.3.1: 3.3.1 given twice"),
    (["--paddle", "3.3.1;rm -rf ~"], "is not a release number"),
    (["--merge", "{tmp}"], "--merge {tmp}: no saved releases"),
    (["--merge", "{bad}"], "not a readable JSON file"),
    (["--merge", "{alien}"], 'not a saved release (no "kind": "xdecay-matrix-release")'),
    (["--merge", "{tmp}", "--jobs", "0"], "--jobs: must be >= 1, got 0"),
    (["--merge", "{good}", "--out", "{tmp}/file/new"], "--out {tmp}/file/new: {tmp}/file is not a directory"),
    (["--merge", "{good}", "--out", ""], "--out: empty path"),
    (["--merge", "{good}", "--case", "nosuchcase", "--out", "{tmp}/new"], "nosuchcase"),
    (["--merge", "{good}", "--optimizer", "adamx", "--out", "{tmp}/new"], "--optimizer adamx: unknown"),
])
def test_bad_matrix_input_is_one_line_and_exit_2(tmp_path, capsys, args, words):
    for name, text in (("bad", "{"), ("alien", '{"xdecay": "0.1.0"}')):
        (tmp_path / name / "releases").mkdir(parents=True)
        (tmp_path / name / "releases" / "x.json").write_text(text)
    save_releases(tmp_path / "good", [OLD])
    (tmp_path / "file").write_text("")
    args = [a.format(tmp=tmp_path, bad=tmp_path / "bad", alien=tmp_path / "alien", good=tmp_path / "good")
            for a in args]
    assert cli.main(["matrix", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and words.format(tmp=tmp_path) in err
    assert not (tmp_path / "new").exists()          # nothing half-written


def test_a_missing_optimizer_class_is_absent_not_an_error():
    # The adapter's own answer for a class this paddle lacks, as 2.6.2 lacks NAdam.
    item = ExplainItem("NoSuchOptimizer", "", {"learning_rate": 0.1}, "default")
    record = paddle_adapter.run_native(item, explain_jobs(("paddle",), {"sgd"})["paddle"])
    assert record.error and refusal(record.error) == "absent"
    assert refusal("TypeError: weight_decay should be float or Tensor.") == (
        "refused: TypeError: weight_decay should be float or Tensor.")
    # paddle's C++ source line moves between releases without the message changing
    assert refusal("ValueError: must be double, but got L2Decay (at /paddle/x/op.cc:236)") == \
        refusal("ValueError: must be double, but got L2Decay (at /paddle/x/op.cc:428)")


def test_cells_of_a_real_run_hold_verdicts_rules_and_refusals():
    case = load_case(ROOT / "cases" / "precedence_lamb.toml")
    done = run(case)
    outcome = outcome_from([case], done)
    explanation = explain(("paddle",), {"lamb"}, in_process=True)
    cells = release_cells("paddle", outcome, explanation)
    assert cells["case precedence_lamb"] == "ok"
    assert cells["case precedence_lamb · paddle:l2decay · weight"].startswith("refused: TypeError: ")
    assert cells["case precedence_lamb · paddle:weight_decay · weight"] == "lamb_trust@0.1"
    assert cells["explain Lamb · weight_decay · weight"] == "lamb_trust@0.1"
    assert not any(row.startswith("case precedence_lamb · torch:") for row in cells)


def test_a_case_whose_optimizer_class_the_release_lacks_is_absent_not_an_error():
    # What a release without the class returns for a case's runs (Python's own message).
    case = load_case(ROOT / "cases" / "adam.toml")
    missing = "AttributeError: module 'paddle.optimizer' has no attribute 'Adam'"
    runs = [RunRecord("paddle", way, error=missing) for way in case.runs["paddle"]]
    result = CaseResult(case, case.steps, Tolerance.for_case(case), runs, [])
    cells = release_cells("paddle", Outcome({"paddle": "2.0.0"}, [result]), None)
    assert cells["case adam"] == "absent"
    assert {cells[f"case adam · {r.name} · weight"] for r in runs} == {"absent"}
    runs[0] = RunRecord("paddle", runs[0].way, error="RuntimeError: boom")
    result = CaseResult(case, case.steps, Tolerance.for_case(case), runs, [])
    assert release_cells("paddle", Outcome({}, [result]), None)["case adam"] == "error"


def test_cells_compare_numbers_within_a_tolerance_and_words_exactly():
    assert same_cell("coupled_l2@0.5+decoupled_lr@0.1", "coupled_l2@0.5+decoupled_lr@0.1000000001")
    assert not same_cell("coupled_l2@0.5", "coupled_l2@0.5004")
    assert not same_cell("l1@0.1", "coupled_l2@0.1") and not same_cell("ok", None)


# ---- the committed history page ----------------------------------------------------------

def test_the_committed_history_page_is_what_its_saved_results_render():
    saved = Matrix.of(load_releases(HISTORY))
    committed = (ROOT / "reports" / "paddle-history.md").read_text(encoding="utf-8")
    assert committed == markdown(saved), "run `xdecay report` to regenerate reports/paddle-history.md"
    assert [r.version for r in saved.releases] == [
        "2.6.2", "3.0.0", "3.1.0", "3.1.1", "3.2.0", "3.2.1", "3.2.2", "3.3.0", "3.3.1"]
    assert not any(r.error for r in saved.releases)


def test_the_saved_results_of_the_installed_paddle_match_a_fresh_run(shipped):
    """The committed column of the paddle installed here, within tolerances (rule coefficients
    numerically, verdicts and messages exactly): proof the saved results are real and current."""
    cases, done = shipped
    version = done["paddle"].version
    saved = {r.version: r for r in load_releases(HISTORY) if r.framework == "paddle"}
    if version not in saved:
        pytest.skip(f"no saved results for the installed paddle {version}")
    fresh = release_cells("paddle", outcome_from(cases, done), explain(("paddle",), in_process=True))
    assert stale_rows(saved[version], fresh) == []
    assert len(fresh) > 100


def test_report_renders_the_history_page_from_saved_results_and_flags_a_stale_column(
        tmp_path, capsys, monkeypatch):
    # The real `xdecay report`, its frameworks in this process (no worker start-up).
    monkeypatch.setattr(cli, "run_batch", functools.partial(runner.run_batch, in_process=True))
    version = runner.run({"paddle": []}, in_process=True)["paddle"].version
    saved = load_releases(HISTORY)
    if version not in [r.version for r in saved]:
        pytest.skip(f"no saved results for the installed paddle {version}")
    altered = [Release(r.framework, r.version, r.python, r.others,
                       {**r.cells, "case momentum": "MISMATCH (0/1 held)"}) if r.version == version else r
               for r in saved]
    save_releases(tmp_path / "paddle-history", altered)
    assert cli.main(["report", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert (f"paddle-history.md: the saved paddle {version} results differ from this run "
            "(rows: 1, first: case momentum)") in err
    page = (tmp_path / "paddle-history.md").read_text(encoding="utf-8")
    assert page == markdown(Matrix.of(altered))
    index = (tmp_path / "index.md").read_text(encoding="utf-8")
    assert "releases (paddle 2.6.2 to paddle 3.3.1)](paddle-history.md)" in index


def test_report_without_saved_results_says_why_there_is_no_history_page(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "run_batch", functools.partial(runner.run_batch, in_process=True))
    monkeypatch.setattr(cli, "shipped_cases", lambda sub="": [ROOT / "cases" / "sgd.toml"])
    cli.main(["report", "--out", str(tmp_path)])
    assert "paddle-history.md not regenerated: no saved release results in" in capsys.readouterr().err
    assert not (tmp_path / "paddle-history.md").exists()


def test_shipped_cases_are_all_in_the_saved_results():
    # A torch-only case (adam_capturable, momentum_maximize) has no paddle run to save.
    names = {f"case {p.stem}" for p in SHIPPED if load_case(p).runs.get("paddle")}
    for release in load_releases(HISTORY):
        assert names <= set(release.cells), release.label


# ---- end to end, with a real second paddle ------------------------------------------------

@pytest.mark.release_venv
def test_matrix_with_a_real_paddle_2_6_2_then_merged(tmp_path):
    """The oldest release that installs (and the fastest), against the paddle running here:
    NAdam is absent in 2.6.2, and Lamb's refusal of a regularizer changed its error type."""
    release_python("paddle", "2.6.2")          # cached, or built when XDECAY_BUILD_VENVS=1
    out = tmp_path / "job"
    done = subprocess.run([sys.executable, "-m", "xdecay", "matrix", "--paddle", "2.6.2",
                           "--python", f"paddle={sys.executable}", "--case", "precedence_lamb",
                           "--optimizer", "nadam", "--format", "json", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "XDECAY_BUILD_VENVS": "0"})
    assert done.returncode == 1, done.stderr
    doc = json.loads((out / "matrix.json").read_text(encoding="utf-8"))
    old, new = [r["version"] for r in doc["releases"]]
    assert old == "2.6.2" and new != "2.6.2"
    rows = {r["row"]: r["cells"] for r in doc["rows"]}
    assert rows["explain NAdam · default · weight"] == {"paddle 2.6.2": "absent", f"paddle {new}": "none"}
    lamb = rows["case precedence_lamb · paddle:l2decay · weight"]
    assert lamb["paddle 2.6.2"].startswith("refused: ValueError") and lamb[f"paddle {new}"].startswith("refused: TypeError")
    assert "case precedence_lamb" not in rows          # ok in both: not a changing row
    merged = subprocess.run([sys.executable, "-m", "xdecay", "matrix", "--merge", str(out), "--format", "json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert merged.returncode == 1 and json.loads(merged.stdout)["rows"] == doc["rows"]


@pytest.mark.release_venv
@pytest.mark.skipif(os.environ.get("XDECAY_BUILD_VENVS") != "1",
                    reason="asks pip for a release (~15 s); XDECAY_BUILD_VENVS=1 runs it")
def test_a_release_pip_cannot_install_is_exit_2_and_leaves_no_venv(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDECAY_CACHE", str(tmp_path))
    assert cli.main(["matrix", "--paddle", "2.5.2"]) == 2      # no wheel of 2.5.2 for Python 3.11
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1].startswith("xdecay: error: --paddle 2.5.2: paddle 2.5.2 does not install here (")
    assert list((tmp_path / "venvs").iterdir()) == []
