"""Training over many steps with real torch and paddle: identical data, trajectories
that agree within the stated tolerance, schedules that agree, the seed's claim."""
from __future__ import annotations

import dataclasses
import re
import sys
import warnings

import numpy as np
import pytest

from xdecay.training import build_job, cosine_lrs, epoch_batches, find_train_case, load_train_case
from xdecay.writers.train_report import _check_overfit, markdown, run_training, table, write_plot

from .conftest import ROOT
from .test_cli import xdecay


@pytest.fixture(scope="module")
def overfit():
    return run_training(load_train_case(find_train_case("overfit")), in_process=True)


@pytest.fixture(scope="module")
def schedule():
    return run_training(load_train_case(find_train_case("schedule")), in_process=True)


def test_data_and_batch_order_come_from_the_seed():
    case = load_train_case(find_train_case("overfit"))
    a, b = build_job(case), build_job(case)
    for name in a.arrays:
        np.testing.assert_array_equal(a.arrays[name], b.arrays[name])
    other = build_job(dataclasses.replace(case, seed=case.seed + 1))
    assert not np.array_equal(a.arrays["x"], other.arrays["x"])
    assert a.arrays["x"].shape == (120, 200) and a.arrays["weight"].shape == (1, 200)
    epochs = epoch_batches(a)
    assert len(epochs) == 100 and all(sorted(np.concatenate(e)) == list(range(20)) for e in epochs)


def test_both_frameworks_start_from_the_numpy_arrays(overfit):
    for fw in ("torch", "paddle"):
        for r in overfit.runs[fw]:
            np.testing.assert_array_equal(r.params["weight"][0], overfit.job.arrays["weight"])
            np.testing.assert_array_equal(r.params["bias"][0], overfit.job.arrays["bias"])


def test_overfit_trajectories_agree_and_decay_lowers_the_test_loss(overfit):
    assert overfit.ok, [c for c in overfit.checks if not c.ok]
    kinds = {c.what for c in overfit.checks}
    assert "torch vs paddle, wd=3, test_loss per epoch" in kinds
    assert "paddle vs float64, wd=0, train_loss per epoch" in kinds
    final = {(fw, r.way): r.series["test_loss"][-1] for fw in ("torch", "paddle") for r in overfit.runs[fw]}
    for fw in ("torch", "paddle"):
        assert final[(fw, "wd=3")] < final[(fw, "wd=0")] / 100      # seed 002: clearly below
    rows = overfit.tables["weights after training"]
    assert {r[0] for r in rows} == {"torch", "paddle"} and len(rows[0]) == 7


def test_a_final_loss_below_its_float32_resolution_is_printed_as_that_bound(overfit):
    """wd=0 drives the train loss to ~4e-11, far below what its float32 evaluation can
    resolve (the loss bound's 2*sqrt(L)*r + r^2 exceeds L): those digits are rounding
    noise another CPU rounds differently, so the table says "< resolution" instead."""
    from xdecay.writers.train_report import loss_resolution
    rows = {(r[0], r[1]): r for r in overfit.tables["weights after training"]}
    bounded = 0
    for fw in ("torch", "paddle"):
        for run in overfit.runs[fw]:
            floor = loss_resolution(overfit, run)
            assert floor > 0
            for col, series in ((2, "train_loss"), (3, "test_loss")):
                value, cell = run.series[series][-1], rows[(fw, run.way.removeprefix("wd="))][col]
                if value < floor:
                    bounded += 1
                    assert cell == f"< {floor:.2g}", cell
                else:
                    assert float(cell) == float(f"{value:.4g}"), cell
    assert bounded == 2      # the wd=0 train loss, in both frameworks


def test_a_diverging_trajectory_is_flagged(overfit):
    broken = dataclasses.replace(overfit, checks=[], tables={}, headers={},
                                 runs={fw: list(rs) for fw, rs in overfit.runs.items()})
    run = broken.runs["paddle"][1]
    series = dict(run.series, test_loss=run.series["test_loss"] * (1 + 1e-3))
    broken.runs["paddle"][1] = dataclasses.replace(run, series=series)
    _check_overfit(broken)
    failed = [c.what for c in broken.checks if not c.ok]
    assert failed == ["torch vs paddle, wd=3, test_loss per epoch", "paddle vs float64, wd=3, test_loss per epoch"]


def test_schedules_agree_and_decay_shares_follow_the_rules(schedule):
    assert schedule.ok, [c for c in schedule.checks if not c.ok]
    case = schedule.case
    closed = cosine_lrs(case.lr, case.eta_min, case.t_max, 40)
    for fw in ("torch", "paddle"):
        for r in schedule.runs[fw]:
            np.testing.assert_allclose(r.series["lr"], closed, rtol=0, atol=1e-15)
    rows = schedule.tables["decay share per step"]
    # AdamW: the decay is lr_t*c*w, a sizeable share of every step; Adam's normalisation
    # shrinks the coupled c*w to a small share after the first step.
    assert all(float(r[3]) > 0.05 for r in rows) and all(float(r[2]) < 0.02 for r in rows[1:])


def test_plot_is_written_and_linked(overfit, tmp_path):
    assert write_plot(overfit, tmp_path / "overfit.png") is None
    assert (tmp_path / "overfit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    linked = dataclasses.replace(overfit, plot="overfit.png")
    assert "![train and test loss per epoch](overfit.png)" in markdown(linked)


def test_without_matplotlib_the_plot_is_skipped(overfit, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert "plot skipped" in write_plot(overfit, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_cli_train_writes_report_and_plot_quietly(tmp_path):
    p = xdecay("train", "--case", "overfit", "--out", str(tmp_path), "--format", "markdown", "--quiet")
    assert p.returncode == 0 and p.stderr == "" and p.stdout == ""
    assert sorted(f.name for f in tmp_path.iterdir()) == ["overfit.md", "overfit.png"]
    assert "(overfit.png)" in (tmp_path / "overfit.md").read_text()
    q = xdecay("train", "--case", "schedule", "--format", "json")
    assert q.returncode == 0 and q.stdout.startswith("{") and "running torch and paddle" in q.stderr


@pytest.mark.parametrize("old,new,words", [
    ("test = 100", "test = 0", "data.test: must be in [1, 100000]"),
    ("weight_decays = [0, 3]", "weight_decays = [3]", "needs at least two different values"),
    ("lr = 0.003", "lr = -1", "optimizer.lr: must be > 0"),
    ("weight_decays = [0, 3]", "weight_decays = [0, 3, 3.0]", "optimizer.weight_decays[2]: repeats 3"),
    ("weight_decays = [0, 3]", "weight_decays = [0, 3, 1e-50]", "optimizer.weight_decays[2]: rounds to 0 in float32"),
    ("true_weight = 0.01", "true_weight = 1e39", "data.true_weight: must fit in float32"),
])
def test_bad_training_case(tmp_path, old, new, words):
    from xdecay.errors import CaseError
    text = (ROOT / "cases" / "train" / "overfit.toml").read_text()
    path = tmp_path / "t.toml"
    path.write_text(text.replace(old, new))
    with pytest.raises(CaseError, match=re.escape(words)):
        load_train_case(path)


def test_a_negative_true_weight_and_bias_are_legitimate(tmp_path):
    text = (ROOT / "cases" / "train" / "overfit.toml").read_text()
    path = tmp_path / "t.toml"
    path.write_text(text.replace("true_bias = 0.05", "true_bias = -0.05").replace("true_weight = 0.01",
                                                                                "true_weight = -0.01"))
    case = load_train_case(path)
    assert (case.true_weight, case.true_bias) == (-0.01, -0.05)


DIVERGING = """\
description = "lr far too large: every run diverges"
kind = "overfit"
seed = 2

[data]
inputs = 20
train = 20
test = 10
true_weight = 0.01
true_bias = 0.05
noise = 0.01

[optimizer]
lr = 0.5
batch = 5
epochs = 60
weight_decays = [0, 0.1]
"""


def test_a_diverging_training_says_so_once_per_run_without_numpy_warnings(tmp_path):
    path = tmp_path / "diverging.toml"
    path.write_text(DIVERGING)
    with warnings.catch_warnings():
        warnings.simplefilter("error")         # an overflow or invalid-value warning fails the test
        t = run_training(load_train_case(path), in_process=True)
        pages = [markdown(t), table(t)]
    assert not t.ok and t.exit_code == 1
    said = {c.what: c for c in t.checks if "diverged" in c.measured}
    for fw in ("torch", "paddle", "float64"):
        for r in t.runs[fw]:
            finite = np.isfinite(r.series["train_loss"]) & np.isfinite(r.series["test_loss"])
            if fw != "float64":
                assert not finite.all()       # float32 overflows within the 60 epochs
            if finite.all():
                assert f"{fw} {r.way}: training" not in said
            else:
                c = said.pop(f"{fw} {r.way}: training")
                assert c.measured == f"diverged at epoch {int(np.argmin(finite)) + 1}" and not c.ok
    assert said == {}
    # Nothing else is said about a diverged run: no comparison of NaN losses.
    assert all("nan" not in c.measured for c in t.checks)
    assert all("diverged at epoch" in p for p in pages)


def test_check_names_say_what_is_checked_not_which_seed(overfit):
    names = [c.what for c in overfit.checks]
    assert "torch: final test loss, wd=3 below wd=0" in names
    assert not [n for n in names if "seed" in n]


def test_a_diverging_schedule_says_where_without_numpy_warnings(tmp_path):
    path = tmp_path / "schedule.toml"
    path.write_text((ROOT / "cases" / "train" / "schedule.toml").read_text().replace("lr = 0.01", "lr = 1e37"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = run_training(load_train_case(path), in_process=True)
        table(t)
    said = [c for c in t.checks if "diverged" in c.measured]
    assert said and not t.ok
    for c in said:
        fw, way = c.what.split(" ")[0], c.what.split(" ")[1].rstrip(":")
        (r,) = [r for r in t.runs[fw] if r.way == way]
        finite = np.isfinite(r.params["weight"][1:]).all(axis=(1, 2))
        assert c.measured == f"diverged at step {int(np.argmin(finite)) + 1}"
