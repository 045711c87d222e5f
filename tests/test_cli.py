"""End to end through `python -m xdecay`: few tests, each costs the framework imports."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import MINIMAL, ROOT, TEST_CASES, write_case


def xdecay(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xdecay", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_compare_momentum_shows_the_equal_ways_with_numbers():
    p = xdecay("compare", "--case", "momentum")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""            # no ccache warning, no paddle log lines
    out = p.stdout
    assert "canonical layout [out=4, in=3]" in out and "verdict: OK" in out
    for pair in ("torch:weight_decay   paddle:l2decay", "torch:manual         paddle:manual"):
        assert pair in out
    assert "max_ulp" in out and "e-0" in out


def test_compare_all_json_follows_the_contract(tmp_path):
    p = xdecay("compare", "--case", "all", "--format", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["ok"] is True and set(doc["frameworks"]) == {"torch", "paddle"}
    names = {c["case"] for c in doc["cases"]}
    assert {"momentum", "sgd", "adam", "adamw", "precedence"} <= names
    for c in doc["cases"]:
        checks = c["comparisons"] + c["rule_checks"] + c["reject_checks"]
        assert c["ok"] and checks and all(x["ok"] for x in checks)
        for r in c["runs"]:
            assert {"run", "framework", "way", "steps"} <= set(r)

    q = xdecay("compare", "--case", "momentum", "--format", "markdown", "--out", str(tmp_path))
    assert q.returncode == 0 and q.stdout == ""
    assert (tmp_path / "momentum.md").read_text().startswith("## momentum")
    assert [f.name for f in tmp_path.iterdir()] == ["momentum.md"]


def test_false_claim_exits_1_and_names_the_pair_with_numbers():
    p = xdecay("compare", "--case", str(TEST_CASES / "adam_equals_adamw.toml"))
    assert p.returncode == 1
    (line,) = [l for l in p.stdout.splitlines() if "FAIL" in l]
    assert line.split()[:4] == ["torch:weight_decay", "torch:decoupled", "all", "equal"]
    assert "e-0" in line
    assert "MISMATCH: 1 of 1 expectations fail" in p.stdout


@pytest.mark.parametrize("args,words", [
    (["compare", "--case", "no-such-case"], "--case no-such-case: no such case"),
    (["compare", "--case", "momentum", "--steps", "0"], "--steps: must be in [1, 10000]"),
    (["compare", "--case", "momentum", "--steps", "99999999"], "--steps: must be in [1, 10000]"),
    (["compare", "--case", "momentum", "--out", "/nonexistent/dir"], "--out /nonexistent/dir"),
    (["compare", "--case", "momentum", "--framework", "jax"], "unknown framework 'jax'"),
    (["compare", "--case", "momentum", "--python", "paddle=/no/python"], "not an executable"),
    (["compare", "--case", "momentum", "--atol", "nan"], "--atol: must be a finite number"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_usage_is_one_line_and_exit_2(args, words):
    p = xdecay(*args)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and words in p.stderr and "Traceback" not in p.stderr


def test_bad_case_file_names_file_and_key(tmp_path):
    bad = write_case(tmp_path, MINIMAL.replace("lr = 0.1", "lr = -1"))
    p = xdecay("compare", "--case", str(bad), "--out", str(tmp_path))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr == f"xdecay: error: {bad}: optimizer.lr: must be > 0, got -1.0\n"
    assert [f.name for f in tmp_path.iterdir()] == ["case.toml"]     # nothing half-written


def _fake(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def _torch_intact(stdout: str) -> None:
    doc = json.loads(stdout)
    torch_runs = [r for r in doc["runs"] if r["framework"] == "torch"]
    assert torch_runs and all(r["steps"] for r in torch_runs)
    assert any(c["a"].startswith("torch") and c["b"].startswith("torch") and c["ok"]
               for c in doc["comparisons"])


def test_crashing_worker_is_an_error_row_and_exit_3(tmp_path):
    crash = _fake(tmp_path, "crash", "kill -SEGV $$")
    p = xdecay("compare", "--case", "sgd", "--python", f"paddle={crash}", "--format", "json")
    assert p.returncode == 3
    doc = json.loads(p.stdout)
    assert "killed by signal SIGSEGV" in doc["errors"]["paddle"] and not doc["ok"]
    _torch_intact(p.stdout)


def test_missing_framework_is_an_error_row_and_exit_3(tmp_path):
    # A real interpreter on which `import paddle` fails, as on a machine without it.
    no_paddle = _fake(tmp_path, "no-paddle", f"""shift 2
exec {sys.executable} -c "import sys, runpy; sys.modules['paddle'] = None; \
runpy.run_module('xdecay.worker', run_name='__main__', alter_sys=True)" "$@" """)
    p = xdecay("compare", "--case", "sgd", "--python", f"paddle={no_paddle}", "--format", "json")
    assert p.returncode == 3
    assert "cannot import paddle" in json.loads(p.stdout)["errors"]["paddle"]
    _torch_intact(p.stdout)


def test_hanging_worker_times_out_without_orphans(tmp_path):
    pidfile = tmp_path / "pid"
    hang = _fake(tmp_path, "hang", f"echo $$ > {pidfile}; exec sleep 120")
    start = time.monotonic()
    p = xdecay("compare", "--case", "sgd", "--python", f"paddle={hang}", "--timeout", "8",
               "--format", "json")
    assert p.returncode == 3 and time.monotonic() - start < 60
    assert "timed out after 8 s" in json.loads(p.stdout)["errors"]["paddle"]
    _torch_intact(p.stdout)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)


def test_list_prints_one_line_per_case():
    p = xdecay("list")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert len(lines) == len(list((ROOT / "cases").glob("*.toml")))
    assert any(l.startswith("momentum ") and "Seed 003" in l for l in lines)


def test_importing_the_paddle_adapter_leaves_the_process_alone():
    code = ("import logging; root = logging.getLogger(); before = (list(root.handlers), root.level); "
            "import xdecay.paddle_adapter; assert (list(root.handlers), root.level) == before, root.handlers")
    p = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0 and p.stderr == "", p.stderr


def test_explain_json_and_bad_optimizer():
    p = xdecay("explain", "--optimizer", "adamw", "--format", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert {r["optimizer"] for r in doc["rows"]} == {"AdamW"}
    assert any(r["rule"] == "coupled_l2@0.5+decoupled_lr@0.1" for r in doc["rows"])
    q = xdecay("explain", "--optimizer", "sgdw")
    assert q.returncode == 2 and "--optimizer sgdw: unknown" in q.stderr


def test_a_flipped_precedence_claim_exits_1(tmp_path):
    text = (ROOT / "cases" / "precedence.toml").read_text()
    flipped = text.replace('rule = "coupled_l2@0.5"', 'rule = "coupled_l2@0.1"', 1)
    assert flipped != text
    p = xdecay("compare", "--case", str(write_case(tmp_path, flipped, "precedence.toml")))
    assert p.returncode == 1
    assert "rule coupled_l2@0.5, expected coupled_l2@0.1: FAIL" in p.stdout
    assert xdecay("compare", "--case", "precedence").returncode == 0


def test_python_api_runs_a_case_in_workers():
    code = ("import sys; from xdecay import run_case; r = run_case('precedence'); "
            "assert r.ok and ('paddle:param_attr', 'weight', 'coupled_l2@0.5') in r.rules; "
            "assert 'torch' not in sys.modules and 'paddle' not in sys.modules")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr


def test_python_api_rejects_bad_arguments():
    from xdecay import run_case
    from xdecay.errors import UsageError
    for kwargs, words in (({"frameworks": ("tf",)}, "unknown framework 'tf'"), ({"steps": -3}, "steps")):
        with pytest.raises(UsageError, match=words):
            run_case("momentum", **kwargs)
    with pytest.raises(UsageError, match="one case"):
        run_case("all")
