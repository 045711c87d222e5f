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
    (["compare", "--case", "momentum", "--out", "/dev/null/dir"], "--out /dev/null/dir: /dev/null is not a directory"),
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
    """An interpreter whose worker misbehaves as `body` says; it answers xdecay's up-front
    check (`-c PROBE`) as the real interpreter does, so that the worker is reached."""
    path = tmp_path / name
    path.write_text(f'#!/bin/sh\nif [ "$1" = -c ]; then exec {sys.executable} "$@"; fi\n' + body + "\n")
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
runpy.run_module('xdecay.frameworks.worker', run_name='__main__', alter_sys=True)" "$@" """)
    p = xdecay("compare", "--case", "sgd", "--python", f"paddle={no_paddle}", "--format", "json")
    assert p.returncode == 3
    assert "cannot import paddle" in json.loads(p.stdout)["errors"]["paddle"]
    _torch_intact(p.stdout)


def test_hanging_worker_times_out_without_orphans(tmp_path):
    pidfile = tmp_path / "pid"
    hang = _fake(tmp_path, "hang", f"echo $$ > {pidfile}; exec sleep 120")
    start = time.monotonic()
    # The timeout covers the real torch worker too: 20 s leaves it room on a loaded
    # 2-core machine (8 s did not: torch alone took 7.9 s wall at load average 7).
    p = xdecay("compare", "--case", "sgd", "--python", f"paddle={hang}", "--timeout", "20",
               "--format", "json")
    assert p.returncode == 3 and time.monotonic() - start < 60
    assert "timed out after 20 s" in json.loads(p.stdout)["errors"]["paddle"]
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
            "import xdecay.frameworks.paddle_adapter; assert (list(root.handlers), root.level) == before, root.handlers")
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
    for kwargs, words in (({"frameworks": ("tf",)}, "unknown framework 'tf'"), ({"steps": -3}, "steps"),
                          ({"min_power": 0.0}, "min_power")):
        with pytest.raises(UsageError, match=words):
            run_case("momentum", **kwargs)
    with pytest.raises(UsageError, match="one case"):
        run_case("all")


def _dead(pid: int) -> bool:
    """No such process, or a zombie (killed, waiting for init to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _all_dead(*pids: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while not all(_dead(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# Garbage where the result goes: bytes in the result path, or a folder of garbage files
# there (a result is a folder with meta.json in the current protocol, a .npz before it).
GARBAGE_RESULTS = {
    "garbage-file": "printf 'PK\\003\\004\\377 not a result \\000' > \"$2\"",
    "garbage-folder": "mkdir -p \"$2\"; printf '\\377\\376{\"runs\": [' > \"$2/meta.json\"; "
                      "printf '\\223NUMPY garbage' > \"$2/0.npy\"",
}


@pytest.mark.parametrize("write", GARBAGE_RESULTS.values(), ids=GARBAGE_RESULTS.keys())
def test_worker_writing_garbage_and_exiting_0_is_an_error_row(tmp_path, write):
    # argv: -m xdecay.frameworks.worker paddle (REQUEST RESULT)...; garbage on both streams and in
    # every result, and a background child left behind in the worker's process group.
    pid, child = tmp_path / "pid", tmp_path / "child"
    garbage = _fake(tmp_path, "garbage", f"""echo $$ > {pid}
sleep 300 >/dev/null 2>&1 </dev/null &
echo $! > {child}
echo '{{"xdecay": "garbage", "ok": tru'
printf 'garbage \\377\\376 on stderr\\n' >&2
shift 3
while [ $# -gt 1 ]; do {write}; shift 2; done
exit 0""")
    try:
        p = xdecay("compare", "--case", "sgd", "--python", f"paddle={garbage}", "--format", "json")
        assert p.returncode == 3, p.stderr
        doc = json.loads(p.stdout)
        assert "wrote no readable result" in doc["errors"]["paddle"] and not doc["ok"]
        assert "garbage" not in p.stdout and "garbage" not in p.stderr
        _torch_intact(p.stdout)
        assert _all_dead(int(pid.read_text()), int(child.read_text()))
    finally:
        if child.exists() and not _dead(int(child.read_text())):
            os.kill(int(child.read_text()), 9)


def test_worker_exiting_0_without_writing_is_an_error_row(tmp_path):
    pid = tmp_path / "pid"
    silent = _fake(tmp_path, "silent", f"echo $$ > {pid}; exit 0")
    p = xdecay("compare", "--case", "sgd", "--python", f"paddle={silent}", "--format", "json")
    assert p.returncode == 3, p.stderr
    doc = json.loads(p.stdout)
    assert "wrote no readable result" in doc["errors"]["paddle"] and not doc["ok"]
    _torch_intact(p.stdout)
    assert _all_dead(int(pid.read_text()))


def test_worker_returning_a_step_short_is_an_error_row(tmp_path):
    # The real worker, but every run's snapshots come back without their last step.
    short = _fake(tmp_path, "short-steps", f"""shift 2
exec {sys.executable} -c "import sys, xdecay.frameworks.worker as w; real = w.execute; \
w.execute = lambda *a, **k: [[r.__class__(r.framework, r.way, {{n: v[:-1] for n, v in r.params.items()}}, \
r.error) for r in job] for job in real(*a, **k)]; sys.exit(w.main(sys.argv[1:]))" "$@" """)
    p = xdecay("compare", "--case", "sgd", "--python", f"paddle={short}", "--format", "json")
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 3
    assert "does not answer its request (paddle:none snapshots" in json.loads(p.stdout)["errors"]["paddle"]
    _torch_intact(p.stdout)


def test_worker_returning_a_run_short_is_an_error_row(tmp_path):
    # The real worker, but every compare job comes back without its last way.
    pid = tmp_path / "pid"
    short = _fake(tmp_path, "short", f"""echo $$ > {pid}
shift 2
exec {sys.executable} -c "import sys, xdecay.frameworks.worker as w; real = w.execute; \
w.execute = lambda *a, **k: [job[:-1] for job in real(*a, **k)]; sys.exit(w.main(sys.argv[1:]))" "$@" """)
    p = xdecay("compare", "--case", "sgd", "--python", f"paddle={short}", "--format", "json")
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 3
    assert "does not answer its request" in json.loads(p.stdout)["errors"]["paddle"]
    _torch_intact(p.stdout)
    assert _all_dead(int(pid.read_text()))


def test_every_command_offers_the_formats_its_writers_take():
    from xdecay.writers import (
        FORMATS,
        audit_report,
        compare_report,
        explain_report,
        matrix_report,
        port_report,
        train_report,
    )
    for module in (audit_report, compare_report, explain_report, matrix_report, port_report, train_report):
        assert sorted(module.WRITERS) == sorted(FORMATS), module.__name__


def test_compare_and_explain_start_without_the_other_commands_modules():
    # The workers start after the parent's imports: those of audit, port, matrix, train
    # and report wait for their commands.
    later = ["xdecay.engine.audit", "xdecay.engine.port", "xdecay.engine.matrix", "xdecay.frameworks.factory",
             "xdecay.writers.audit_report", "xdecay.writers.matrix_report", "xdecay.writers.pages",
             "xdecay.writers.port_report", "xdecay.writers.train_report"]
    p = subprocess.run([sys.executable, "-c", f"import sys, xdecay.cli; print([m for m in {later} if m in sys.modules])"],
                       cwd=ROOT, capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "[]"
