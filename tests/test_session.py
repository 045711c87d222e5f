"""Warm workers (xdecay.Session, the shared session behind run_case, the pytest plugin):
results equal cold runs whatever ran before, and a crashed or hung warm worker is
reported and replaced."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xdecay.case import load_case
from xdecay.case_files import find_cases
from xdecay.engine.pipeline import EXIT_FRAMEWORK, run_cases
from xdecay.frameworks import paddle_adapter, runner, torch_adapter, worker
from xdecay.frameworks.records import Job
from xdecay.session import Session
from xdecay.writers.compare_report import json_report

from .conftest import ROOT
from .test_cli import _all_dead, _fake

paddle, torch = paddle_adapter.paddle, torch_adapter.torch

# Cases whose paddle runs build many layers and optimizers (parameter names, groups
# writing decay onto parameters, precedence log lines) and a torch Adam: what a leak
# between requests would show first.
LEAKY = ("leak", "precedence_adamw", "groups_param_attr", "adam")


def test_torch_state_is_restored_after_a_request():
    before = torch.random.get_rng_state()
    expected = torch.rand(3)
    torch.random.set_rng_state(before)
    with torch_adapter.isolated():
        torch.manual_seed(7)
        torch.set_default_dtype(torch.float64)
        torch.set_grad_enabled(False)
    assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()
    assert torch.equal(torch.rand(3), expected)


def test_paddle_state_is_restored_and_names_restart_per_request():
    paddle.nn.Linear(2, 2)           # the process's own counter moves on
    names = []
    for _ in range(2):
        with paddle_adapter.isolated():
            names.append(paddle.nn.Linear(2, 2).weight.name)
    assert names == ["linear_0.w_0", "linear_0.w_0"]
    before = paddle.get_rng_state()
    expected = paddle.rand([3]).numpy()
    paddle.set_rng_state(before)
    with paddle_adapter.isolated():
        paddle.seed(7)
        paddle.rand([5])
        paddle.set_default_dtype("float64")
    assert paddle.get_default_dtype() == "float32"
    assert (paddle.rand([3]).numpy() == expected).all()


def test_a_session_gives_cold_results_in_either_order():
    cases = [load_case(p) for name in LEAKY for p in find_cases(name)]
    cold = {c.name: json_report(run_cases([c])) for c in cases}
    with Session() as s:
        pids = None
        for c in [*cases, *reversed(cases)]:
            assert json_report(run_cases([c], warm=s.workers)) == cold[c.name], c.name
            assert pids in (None, s.workers.pids())       # the same two workers throughout
            pids = s.workers.pids()
    assert set(pids) == {"torch", "paddle"} and _all_dead(*pids.values())


def _faulty_paddle(tmp_path: Path, name: str, fault: str) -> str:
    """The real paddle worker, but `fault` runs instead of the request for case `sgd`."""
    return _fake(tmp_path, name, f"""shift 2
exec {sys.executable} -c "import sys, os, time, \
xdecay.frameworks.worker as w; real = w.execute; \
w.execute = lambda a, r, *k: ({fault}) if isinstance(r, list) and r[0].case == 'sgd' else real(a, r, *k); \
sys.exit(w.main(sys.argv[1:]))" "$@" """)


@pytest.mark.parametrize("fault, words", [
    ("os.kill(os.getpid(), 11)", "killed by signal SIGSEGV"),
    ("time.sleep(300)", "timed out after 20 s"),
], ids=["crash", "hang"])
def test_a_failing_warm_worker_is_reported_and_replaced(tmp_path, fault, words):
    python = _faulty_paddle(tmp_path, "faulty", fault)
    with Session(pythons={"paddle": python}, timeout=20) as s:
        assert s.run_case("momentum", frameworks=("paddle",)).ok
        first = s.workers.pids()["paddle"]
        failed = s.run_case("sgd", frameworks=("paddle",))
        assert words in failed.framework_errors["paddle"] and failed.exit_code == EXIT_FRAMEWORK
        assert _all_dead(first) and "paddle" not in s.workers.pids()
        assert s.run_case("momentum", frameworks=("paddle",)).ok      # a fresh worker
        assert s.workers.pids()["paddle"] != first


def test_run_case_keeps_its_workers_until_exit():
    code = ("import xdecay; a = xdecay.run_case('sgd', frameworks=('paddle',)); "
            "from xdecay.session import shared_session; pid = shared_session().workers.pids()['paddle']; "
            "b = xdecay.run_case('momentum', frameworks=('paddle',)); "
            "assert a.ok and b.ok and shared_session().workers.pids()['paddle'] == pid; print(pid)")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert _all_dead(int(p.stdout))


def test_pytest_plugin_shares_one_session_and_ends_it(tmp_path):
    pids = tmp_path / "pids"
    (tmp_path / "test_user.py").write_text(f"""
import xdecay

def test_fixture(xdecay_session):
    assert xdecay_session.run_case("sgd", frameworks=("paddle",)).ok
    open({str(pids)!r}, "a").write(str(xdecay_session.workers.pids()["paddle"]) + "\\n")

def test_plain_run_case_uses_the_same_workers(xdecay_session):
    assert xdecay.run_case("momentum", frameworks=("paddle",)).ok
    open({str(pids)!r}, "a").write(str(xdecay_session.workers.pids()["paddle"]) + "\\n")
""")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "xdecay.pytest_plugin",
                        "-p", "no:cacheprovider", str(tmp_path / "test_user.py")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    first, second = pids.read_text().split()
    assert first == second and _all_dead(int(first))


def test_a_one_shot_worker_passes_on_each_result_as_it_is_written(tmp_path):
    # The second request (case sgd) takes 5 s longer: the first result must arrive meanwhile.
    python = _faulty_paddle(tmp_path, "slow", "time.sleep(5) or real(a, r, *k)")
    jobs = [[Job.from_case(load_case(p), "paddle")] for name in ("momentum", "sgd") for p in find_cases(name)]
    parts, done = [], []
    results = runner.run_batch({"paddle": jobs}, {"paddle": python},
                               on_part=lambda fw, i, r: parts.append((i, r, time.monotonic())),
                               on_done=lambda fw, rs: done.append(time.monotonic()))
    assert parts[0][0] == 0 and parts[0][1].error is None
    assert done[0] - parts[0][2] > 4
    # What is passed on early is what the call returns, not a second reading of the same files.
    assert results["paddle"][0] is parts[0][1]


def test_a_worker_killed_between_calls_is_replaced_silently():
    with Session() as s:
        assert s.run_case("sgd", frameworks=("paddle",)).ok
        first = s.workers.pids()["paddle"]
        os.kill(first, 9)
        # Until every thread of it is gone, a killed worker cannot be waited for (it is still
        # dying, and would be reported); WNOWAIT leaves it to be reaped by its Popen.
        deadline = time.monotonic() + 30
        while os.waitid(os.P_PID, first, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert s.run_case("sgd", frameworks=("paddle",)).ok
        assert s.workers.pids()["paddle"] != first


@pytest.mark.parametrize("framework", ["torch", "paddle"])
def test_a_worker_collects_garbage_again_after_its_first_request(framework):
    # The collector is off while the worker imports its framework and answers its first
    # request (worker.py): left off, a worker of many or large runs would keep every
    # reference cycle they make, parameters among them.
    frozen = gc.get_freeze_count()
    try:
        worker.loaded(framework)
        assert not gc.isenabled()
        worker.collecting()
        assert gc.isenabled()
        assert gc.get_freeze_count() > frozen      # the modules are out of later passes
        worker.collecting()                         # later requests: nothing changes
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()
