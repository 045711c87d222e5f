"""Large layers: rule inference on a sample, gradients at chosen elements, lazily
replayed sensitivity, chunked comparisons, snapshots through mapped files. Each shortcut
is checked against the whole computation it replaces, with real torch and paddle."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from xdecay.case import load_case
from xdecay.case_files import find_cases
from xdecay.engine import compare, infer, pipeline
from xdecay.engine.compare import Pair, PairSensitivity, Tolerance, compare_pairs, pairs, ulp32
from xdecay.engine.infer import RunSensitivity, infer_run, layer_sample
from xdecay.engine.pipeline import run_cases
from xdecay.engine.reference import gradient_bounds, grads_at, model_grads
from xdecay.frameworks.protocol import ResultFiles, read_result, release
from xdecay.frameworks import runner
from xdecay.frameworks.records import RunRecord
from xdecay.writers.compare_report import json_report

from .conftest import write_case

# 96 x 80 = 7680 weights > 64 x 64: inference samples, comparisons replay lazily.
LARGE = """\
description = "a layer above the inference sample"
seed = 5
steps = 3

[layer]
in_features = 80
out_features = 96

[data]
batch = 8
loss = "mse"

[optimizer]
name = "adam"
lr = 0.01

[decay]
coeff = 0.1

[runs]
torch = ["none", "weight_decay", "manual", "decoupled"]
paddle = ["none", "weight_decay", "manual", "decoupled"]

[[expect]]
equal = ["torch:weight_decay", "torch:manual", "paddle:weight_decay", "paddle:manual"]

[[expect]]
equal = ["torch:decoupled", "paddle:decoupled"]

[[expect]]
equal = ["torch:none", "paddle:none"]

[[expect]]
differ = ["torch:weight_decay", "torch:decoupled"]

[[expect]]
differ = ["torch:none", "paddle:weight_decay"]

[[expect]]
rule = "coupled_l2@0.1"
run = "paddle:manual"
param = "weight"

[[expect]]
rule = "decoupled_lr@0.1"
run = "torch:decoupled"
param = "weight"
"""


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    case = load_case(write_case(tmp_path_factory.mktemp("large"), LARGE))
    return case, run_cases([case], in_process=True).results[0]


def test_a_large_case_holds_its_expectations(large):
    case, result = large
    assert layer_sample(result.runs[0].params) is not None          # the sampled path
    assert result.ok, [c for c in result.checks if not c.ok]
    rules = {(run, param): rule for run, param, rule in result.rules}
    assert rules[("torch:none", "weight")] == "none"
    assert rules[("paddle:weight_decay", "weight")] == "coupled_l2@0.1"
    assert rules[("paddle:decoupled", "weight")] == "decoupled_lr@0.1"


def test_the_sample_infers_what_every_element_does(large, monkeypatch):
    case, result = large
    spec = case.spec()
    sampled = {r.name: infer_run(r, spec, case.loss, case.decay.coefficients())
               for r in result.runs}
    monkeypatch.setattr(infer, "layer_sample", lambda params: None)
    for r in result.runs:
        whole = infer_run(r, spec, case.loss, case.decay.coefficients())
        assert [i.rule for i in whole] == [i.rule for i in sampled[r.name]], r.name


def test_replayed_sensitivity_equals_the_whole_replay(large, monkeypatch):
    case, result = large
    spec = case.spec()
    runs = [r for r in result.runs if r.way in ("weight_decay", "decoupled")]
    lazy = {r.name: result.sensitivity[r.name] for r in runs}
    monkeypatch.setattr(infer, "layer_sample", lambda params: None)
    for r in runs:
        whole = RunSensitivity(r, spec, case.loss, infer_run(r, spec, case.loss, case.decay.coefficients()))
        for param in r.params:
            size = r.params[param][0].size
            idx = np.unique(np.random.default_rng(0).integers(0, size, 200))
            expected = whole.full(param).reshape(r.steps, -1)[:, idx]
            # Both are float64 differences of nearly equal replays (gradients summed in
            # another order): they must agree to a thousandth of a float32 ULP of the
            # weight, the unit the tolerance they feed is made of.
            unit = ulp32(r.params[param][1:].reshape(r.steps, -1)[:, idx])
            assert np.all(np.abs(lazy[r.name].at(param, idx) - expected) <= 1e-3 * unit)


@pytest.mark.parametrize("kept,batch", [(compare.MAX_REPLAYED, compare.REPLAY_BATCH), (8, 2)])
def test_lazy_comparisons_give_the_verdicts_of_whole_ones(large, monkeypatch, kept, batch):
    # (8, 2): far more elements beyond the plain bound than are kept for the replay, so
    # the farthest come back within tolerance and the rest must be replayed too.
    case, result = large
    spec = case.spec()
    tol = Tolerance.for_case(case)
    by_name = {r.name: r for r in result.runs}
    lazy_pairs = [Pair(by_name[a], by_name[b], e.kind, e.param,
                       PairSensitivity(result.sensitivity[a], result.sensitivity[b]))
                  for e in case.expectations if e.kind in ("equal", "differ") for a, b in pairs(e)]
    monkeypatch.setattr(compare, "MAX_REPLAYED", kept)
    monkeypatch.setattr(compare, "REPLAY_BATCH", batch)
    lazy_comparisons = compare_pairs(lazy_pairs, tol)
    monkeypatch.setattr(infer, "layer_sample", lambda params: None)
    whole = {}
    for r in result.runs:
        whole[r.name] = RunSensitivity(r, spec, case.loss,
                                       infer_run(r, spec, case.loss, case.decay.coefficients()))
    expected = [Pair(by_name[a], by_name[b], e.kind, e.param, PairSensitivity(whole[a], whole[b]))
                for e in case.expectations if e.kind in ("equal", "differ") for a, b in pairs(e)]
    exact = compare_pairs(expected, tol)
    for lazy, full in zip(lazy_comparisons, exact):
        assert (lazy.a, lazy.b, lazy.ok) == (full.a, full.b, full.ok)
        assert (lazy.max_abs, lazy.max_rel, lazy.max_ulp) == (full.max_abs, full.max_rel, full.max_ulp)
        # Elements not replayed count with the plain bound: an upper bound of the ratio.
        assert lazy.excess >= full.excess * (1 - 1e-12)
        if full.excess <= 1:
            assert lazy.excess <= 1


def test_comparisons_do_not_depend_on_the_chunk_size(large, monkeypatch):
    case, result = large
    pairs_ = [Pair(a, b, "equal", "all", PairSensitivity(result.sensitivity[a.name], result.sensitivity[b.name]))
              for a, b in zip(result.runs[:-1], result.runs[1:])]
    tol = Tolerance.for_case(case)
    once = compare_pairs(pairs_, tol)
    monkeypatch.setattr(compare, "CHUNK", 97)           # many chunks, ragged last one
    monkeypatch.setattr(compare, "MAX_REPLAYED", 64)     # and few replays kept
    again = compare_pairs(pairs_, tol)
    for x, y in zip(once, again):
        assert (x.max_abs, x.max_rel, x.max_ulp, x.ok) == (y.max_abs, y.max_rel, y.max_ulp, y.ok)
        assert y.excess >= x.excess * (1 - 1e-12)


def test_gradients_at_chosen_elements_equal_the_whole_gradient():
    rng = np.random.default_rng(3)
    params = {"weight": rng.standard_normal((70, 90)).astype(np.float32),
              "bias": rng.standard_normal(70).astype(np.float32)}
    x = rng.random((6, 90)).astype(np.float32)
    target = rng.random((6, 70)).astype(np.float32)
    for loss in ("mse", "mean"):
        select = {"weight": rng.choice(70 * 90, 300, replace=False), "bias": rng.choice(70, 9, replace=False)}
        g, b = grads_at(params, x, target, loss, select)
        whole_g, whole_b = model_grads(params, x, target, loss), gradient_bounds(params, x, target, loss)
        for name, idx in select.items():
            np.testing.assert_allclose(g[name], whole_g[name].reshape(-1)[idx], rtol=1e-12, atol=1e-18)
            np.testing.assert_allclose(b[name], whole_b[name].reshape(-1)[idx], rtol=1e-12, atol=1e-18)


def test_result_files_round_trip_large_arrays_mapped_and_small_ones_packed(tmp_path):
    files = ResultFiles(tmp_path / "result")
    large = files.allocate((3, 300, 400))             # 1.44 MB: its own file, mapped
    small = files.allocate((3, 4, 5))                 # in memory, written with the others
    assert isinstance(large, np.memmap) and not isinstance(small, np.memmap)
    large[:] = np.random.default_rng(0).standard_normal(large.shape).astype(np.float32)
    small[:] = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    records = [[RunRecord("torch", "none", {"weight": large, "bias": np.ones((3, 4), np.float32),
                                            "gain": small, "scalar": np.float32(2.5)},
                          logs=["a line"], series={"loss": [1.0, 0.5], "none": np.zeros(0)})],
               [RunRecord("torch", "l2decay", error="TypeError: no")]]
    assert not (tmp_path / "result" / "meta.json").exists()     # written last
    files.write("torch", "2.13.0", records)
    assert sorted(p.name for p in (tmp_path / "result").iterdir()) == ["0.npy", "arrays.bin", "meta.json"]
    framework, version, read = read_result(tmp_path / "result")
    assert (framework, version) == ("torch", "2.13.0")
    (run,), (failed,) = read
    assert isinstance(run.params["weight"], np.memmap) and np.array_equal(run.params["weight"], large)
    for name, want in (("bias", np.ones((3, 4), np.float32)), ("gain", small), ("scalar", np.float32(2.5))):
        got = run.params[name]
        assert got.dtype == np.float32 and got.shape == np.shape(want) and np.array_equal(got, want)
        assert got.flags.writeable and got.flags.aligned           # as np.load gave them
    assert run.logs == ["a line"] and list(run.series["loss"]) == [1.0, 0.5]
    assert run.series["loss"].dtype == np.float64 and run.series["none"].shape == (0,)
    assert failed.error == "TypeError: no" and failed.params == {}


def test_a_view_of_a_mapped_snapshot_is_written_as_itself(tmp_path):
    files = ResultFiles(tmp_path / "result")
    snaps = files.allocate((4, 300, 400))
    assert isinstance(snaps, np.memmap)
    snaps[:] = np.arange(snaps.size, dtype=np.float32).reshape(snaps.shape)
    files.write("torch", "2.13.0", [[RunRecord("torch", "none", {"weight": snaps[:2]})]])
    (((run,),)) = read_result(tmp_path / "result")[2]
    assert np.array_equal(run.params["weight"], snaps[:2])


def _figures(outcome):
    r = outcome.results[0]
    return ([(c.a, c.b, c.max_abs, c.max_rel, c.max_ulp, c.excess, c.verdict, c.power and c.power.json())
             for c in r.comparisons], r.rules, [c.verdict for c in r.rule_checks], r.notes)


def test_runs_requested_one_way_at_a_time_give_the_case_run_at_once(large, monkeypatch):
    # A large layer's ways go to the worker one request each (isolated from each other,
    # as a new worker would run them), and each pair is compared as its runs arrive:
    # every figure must be the one of the whole case in one request, compared at the end.
    case, _ = large
    requests, owners = pipeline._requests([case], ("torch", "paddle"), None)
    assert [len(r) for r in requests.values()] == [len(case.runs[fw]) for fw in requests]
    assert all(owner == [0] * len(case.runs[fw]) for fw, owner in owners.items())
    arrived = []
    real = pipeline.Analyses._compare_arrived
    monkeypatch.setattr(pipeline.Analyses, "_compare_arrived",
                        lambda self, index: arrived.append(len(self.arrived[index])) or real(self, index))
    split = run_cases([case])
    assert arrived == sorted(arrived) and arrived[0] < len(case.run_names())   # compared as they came
    monkeypatch.setattr(pipeline, "_large", lambda case: False)
    whole = run_cases([case])
    assert _figures(split) == _figures(whole)
    assert split.exit_code == whole.exit_code == 0


def test_a_released_snapshot_reads_the_same(tmp_path):
    files = ResultFiles(tmp_path / "result")
    snaps = files.allocate((3, 300, 400))
    snaps[:] = np.random.default_rng(0).standard_normal((3, 300, 400)).astype(np.float32)
    files.write("torch", "2.13.0", [[RunRecord("torch", "none", {"weight": snaps})]])
    (((run,),)) = read_result(tmp_path / "result")[2]
    before = np.array(run.params["weight"])
    release(run.params["weight"])
    assert np.array_equal(run.params["weight"], before)
    release(before)                              # an array in memory: nothing to do


def test_cases_compared_as_they_arrive_give_the_cases_compared_at_the_end(monkeypatch):
    # Each case is compared (power, causes, notes) as soon as both workers delivered it,
    # while they run the next: the report must be the one of comparing them all at the end.
    cases = [load_case(p) for name in ("sgd", "adamw", "adadelta", "clip_global_norm") for p in find_cases(name)]
    late = []
    real = pipeline._compare_now
    monkeypatch.setattr(pipeline, "_compare_now", lambda *a: late.append(a[0].name) or real(*a))
    early = run_cases(cases)
    assert late == []                                       # every case was compared on arrival
    monkeypatch.setattr(pipeline.Analyses, "result", lambda *a: None)
    at_the_end = run_cases(cases)
    assert late == [c.name for c in cases]
    assert json_report(early) == json_report(at_the_end)


def test_a_case_compared_early_is_dropped_when_a_framework_failed_after():
    case = load_case(find_cases("sgd")[0])
    owners = {"torch": [0], "paddle": [0]}
    analyses = pipeline.Analyses([case], owners, pipeline.Settings())
    done = run_cases([case], in_process=True)       # the runs, to deliver by hand
    runs = {fw: [r for r in done.results[0].runs if r.framework == fw] for fw in owners}
    for fw in owners:
        analyses.add_part(fw, 0, runner.FrameworkResult(fw, "v", [runs[fw]]))
    ok = {fw: runner.FrameworkResult(fw, "v", [runs[fw]]) for fw in owners}
    assert analyses.result(0, ok, pipeline.Settings()) is not None
    assert analyses.result(0, ok, pipeline.Settings(atol=1e-3)) is None            # other settings
    failed = {**ok, "paddle": runner.FrameworkResult("paddle", error="worker killed by signal SIGSEGV")}
    assert analyses.result(0, failed, pipeline.Settings()) is None
    rerun = {**ok, "torch": runner.FrameworkResult("torch", "v", [[dataclasses.replace(r) for r in runs["torch"]]])}
    assert analyses.result(0, rerun, pipeline.Settings()) is None                  # not the runs compared


def test_runs_with_identical_parameters_share_their_forward_passes(large):
    case, result = large
    shared = infer.SharedForwards()
    a = next(r for r in result.runs if r.name == "torch:weight_decay")
    twin = dataclasses.replace(a, way="twin", params={n: v.copy() for n, v in a.params.items()})
    other = next(r for r in result.runs if r.name == "torch:decoupled")
    found = {r.name: infer_run(r, case.spec(), case.loss, case.decay.coefficients()) for r in (a, twin, other)}
    fwd = {r.name: RunSensitivity(r, case.spec(), case.loss, found[r.name], forwards=shared)._forward()
           for r in (a, twin, other)}
    alone = RunSensitivity(other, case.spec(), case.loss, found[other.name])._forward()
    assert all(x is y for x, y in zip(fwd["torch:weight_decay"], fwd["torch:twin"]))       # computed once
    assert fwd["torch:decoupled"][0] is fwd["torch:weight_decay"][0]                        # the same start
    assert all(x is not y for x, y in zip(fwd["torch:decoupled"][1:], fwd["torch:weight_decay"][1:]))
    for x, y in zip(fwd["torch:decoupled"], alone):
        assert all(np.array_equal(u, v) for u, v in zip(x, y))


@pytest.mark.parametrize("shape", [(1, 1), (70, 130), (129, 64), (4, 3)])
def test_paddle_snapshots_are_transposed_tile_by_tile_exactly(shape):
    from xdecay.frameworks.paddle_adapter import _transpose_into
    a = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    out = np.empty(shape[::-1], np.float32)
    _transpose_into(a, out)
    assert np.array_equal(out, a.T)


def test_results_go_to_dev_shm_only_when_it_holds_them_and_tmpdir_is_not_set(monkeypatch):
    case = load_case(find_cases("momentum")[0])
    requests = pipeline.compare_jobs([case])
    monkeypatch.delenv("TMPDIR", raising=False)
    free = runner.shutil.disk_usage(runner.SHM).free if runner.SHM.is_dir() else 0
    assert runner.scratch_parent({fw: [jobs] for fw, jobs in requests.items()}) == \
        (str(runner.SHM) if free and os.access(runner.SHM, os.W_OK) else None)
    # Snapshots more than half of what /dev/shm has free: the default temporary folder.
    huge = {fw: [[dataclasses.replace(job, steps=10**9) for job in jobs]] for fw, jobs in requests.items()}
    assert runner.scratch_parent(huge) is None
    monkeypatch.setenv("TMPDIR", "/tmp")
    assert runner.scratch_parent({fw: [jobs] for fw, jobs in requests.items()}) is None
