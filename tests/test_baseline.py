"""Baselines: a saved run re-checks clean; a changed rule, delta, verdict or version is drift."""
from __future__ import annotations

import json

import numpy as np
import pytest

from xdecay import __version__
from xdecay.case import load_case
from xdecay.engine.baseline import find_drift, load_baseline
from xdecay.engine.infer import SAMPLE_SIDE, layer_sample
from xdecay.engine.pipeline import run_cases
from xdecay.errors import UsageError
from xdecay.writers.compare_report import WRITERS, case_json, json_chunks, json_report

from .conftest import write_case
from .test_cli import xdecay
from .test_large import LARGE


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


# A layer above inference's sample (96 x 80 = 7680 > 64 x 64 weights): its JSON records
# the weight's deltas on that sample, the 96 biases whole.
@pytest.fixture(scope="module")
def large(tmp_path_factory):
    text = LARGE.replace("out_features = 96\n", "out_features = 96\nbias = true\n")
    case = load_case(write_case(tmp_path_factory.mktemp("large"), text))
    outcome = run_cases([case], in_process=True)
    return outcome, json.loads(json_report(outcome))


def test_a_large_layer_is_recorded_on_the_inference_sample_with_exact_summaries(large):
    outcome, doc = large
    for record, run in zip(outcome.results[0].runs, doc["runs"], strict=True):
        sample = run["sampled"]["weight"]
        idx = layer_sample({p: v[0] for p, v in record.params.items()})["weight"]
        assert (sample["of"], sample["shape"], sample["indices"]) == (96 * 80, [96, 80], idx.tolist())
        assert set(run["sampled"]) == {"weight"}          # 96 biases: below the limit, recorded whole
        delta = record.delta("weight")
        for k, step in enumerate(run["steps"]):
            # Bounded: SAMPLE_SIDE**2 numbers a step, whatever the layer's size; exact values.
            assert step["delta_weight"] == delta[k].ravel()[idx].tolist() and len(idx) == SAMPLE_SIDE ** 2
            assert step["delta_bias"] == record.delta("bias")[k].tolist()
        assert sample["max_abs"] == np.abs(delta).max(axis=(1, 2)).tolist()
        assert sample["norm"] == [float(np.linalg.norm(d.ravel())) for d in delta]


def test_a_sampled_baseline_round_trips_and_a_moved_sampled_delta_is_drift(large, tmp_path):
    outcome, doc = large
    path = tmp_path / "large.json"
    path.write_text(json.dumps(doc))
    assert find_drift(outcome, load_baseline(path), every_case=False) == []
    j = 777
    doc["runs"][0]["steps"][2]["delta_weight"][j] += 1e-3
    path.write_text(json.dumps(doc))
    (drift,) = find_drift(outcome, load_baseline(path), every_case=False)
    row, col = divmod(doc["runs"][0]["sampled"]["weight"]["indices"][j], 80)
    assert (drift.kind, drift.what) == ("delta", f"{doc['runs'][0]['run']} weight[2, {row}, {col}]")
    assert drift.ratio > 1 and drift.old - drift.new == pytest.approx(1e-3, rel=1e-6)


@pytest.mark.parametrize("change,words", [
    (lambda s: s.update(indices=[0, 7680]), r"sampled\.weight: `indices` must be element indices below 7680"),
    (lambda s: s.update(of=7681), r"sampled\.weight: `of` must be the element count of `shape`"),
    (lambda s: s.update(indices=s["indices"][:-1]),
     r"steps\[0\]\.delta_weight: shape \(4096,\), not one value per sampled index"),
])
def test_a_broken_sample_in_a_baseline_is_bad_input(large, tmp_path, change, words):
    doc = json.loads(json.dumps(large[1]))
    change(doc["runs"][1]["sampled"]["weight"])
    (tmp_path / "large.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError, match=r"large\.json: not an xdecay compare JSON document \(.*" + words):
        load_baseline(tmp_path)


def test_text_reports_of_a_large_layer_say_what_the_json_holds(large):
    outcome, _ = large
    text = WRITERS["markdown"](outcome)
    assert "--format json has every element of a parameter up to 64x64, of a larger one an evenly spaced " \
           "sample of 4096" in text
    assert "every element." not in text


def test_json_written_in_pieces_is_the_whole_document_encoded_at_once(outcome, large):
    # Every shipped case in one document (runs nested deepest), and a large case alone.
    for o in (outcome, large[0]):
        body = ({"cases": [case_json(r, o.versions) for r in o.results], "ok": all(r.ok for r in o.results)}
                if len(o.results) > 1 else case_json(o.results[0], o.versions))
        whole = {"xdecay": __version__, "frameworks": dict(sorted(o.versions.items())), **body}
        pieces = list(json_chunks(o))
        assert "".join(pieces) == json.dumps(whole, indent=1, allow_nan=False) + "\n"
        assert len(pieces) > 2 * sum(len(r.runs) for r in o.results)    # a piece per step at least
