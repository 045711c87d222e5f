"""Baselines: a saved run re-checks clean; a changed rule, delta, verdict or version is drift."""
from __future__ import annotations

import json

import pytest

from xdecay.engine.baseline import find_drift, load_baseline
from xdecay.errors import UsageError

from .test_cli import xdecay


def edit(path, change):
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_identical_results_have_no_drift(outcome, saved):
    assert find_drift(outcome, load_baseline(saved), every_case=True) == []


def test_a_changed_rule_delta_and_version_are_drift_with_old_and_new(outcome, saved):
    def change(doc):
        doc["frameworks"]["paddle"] = "9.9.9"
        rule = next(r for r in doc["rules"] if r["run"] == "paddle:param_attr" and r["param"] == "weight")
        rule["rule"] = "coupled_l2@0.1"
        doc["runs"][0]["steps"][1]["delta_weight"][0][0] += 1e-3
    edit(saved / "precedence.json", change)
    drift = {(d.case, d.kind): d for d in find_drift(outcome, load_baseline(saved), every_case=True)}
    assert (drift[("*", "version")].old, drift[("*", "version")].new) == ("9.9.9", "3.3.1")
    rule = drift[("precedence", "rule")]
    assert (rule.what, rule.old, rule.new) == ("paddle:param_attr weight", "coupled_l2@0.1", "coupled_l2@0.5")
    delta = drift[("precedence", "delta")]
    assert delta.what == "torch:none weight[1, 0, 0]" and delta.ratio > 1
    assert delta.old - delta.new == pytest.approx(1e-3, rel=1e-6)     # the edit, in float64


def test_a_vanished_run_and_case_and_a_flipped_verdict_are_drift(outcome, saved):
    edit(saved / "sgd.json", lambda d: d["runs"].append({"run": "torch:extra", "steps": []}))
    edit(saved / "adam.json", lambda d: d.update(ok=False))
    (saved / "gone.json").write_text((saved / "adam.json").read_text().replace('"case": "adam"', '"case": "gone"'))
    kinds = {(d.case, d.kind, d.what, d.old, d.new) for d in find_drift(outcome, load_baseline(saved), True)}
    assert ("sgd", "run", "torch:extra", "present", "absent") in kinds
    assert ("adam", "verdict", "case", "not ok", "ok") in kinds
    assert ("gone", "case", "gone", "present", "absent") in kinds


def test_a_broken_baseline_is_bad_input(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(UsageError, match="x.json: not an xdecay compare JSON"):
        load_baseline(tmp_path)


def test_cli_save_rerun_and_drift(tmp_path):
    assert xdecay("compare", "--case", "sgd", "--format", "json", "--out", str(tmp_path)).returncode == 0
    same = xdecay("compare", "--case", "sgd", "--baseline", str(tmp_path))
    assert same.returncode == 0 and "baseline: no drift; compared paddle 3.3.1 (baseline 3.3.1)" in same.stdout
    edit(tmp_path / "sgd.json", lambda d: d["frameworks"].update(torch="2.12.0"))
    moved = xdecay("compare", "--case", "sgd", "--baseline", str(tmp_path))
    assert moved.returncode == 1
    line = next(l for l in moved.stdout.splitlines() if l.startswith("*"))
    assert line.split()[:5] == ["*", "version", "torch", "2.12.0", "2.13.0"]


@pytest.mark.parametrize("change,words", [
    (lambda d: d.pop("runs"), "'runs'"),
    (lambda d: d["runs"][0]["steps"][0].update(delta_weight="abc"), r"steps\[0\]\.delta_weight: not a numeric array"),
    (lambda d: d["runs"][0].update(steps=5), "not iterable"),
    (lambda d: d["rules"][0].pop("param"), "'param'"),
    (lambda d: d["frameworks"].update(torch=None), "expected a string"),
    (lambda d: d.update(kind="overfit"), "xdecay train"),
])
def test_a_half_valid_baseline_is_bad_input_before_anything_runs(saved, change, words):
    edit(saved / "sgd.json", change)
    with pytest.raises(UsageError, match=words):
        load_baseline(saved)
