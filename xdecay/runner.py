"""Starts one worker process per framework, all at once, and collects their runs.

A framework that is missing, crashes, times out or writes no result becomes a
FrameworkError; the other frameworks' results are unaffected.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .adapters import execute, load_adapter
from .protocol import read_result, write_request
from .records import ExplainJob, Job, RunRecord

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT = 600.0


@dataclass
class FrameworkResult:
    framework: str
    version: str | None = None
    records: list[list[RunRecord]] = field(default_factory=list)   # per job, per way
    error: str | None = None


def run_workers(jobs: dict[str, list[Job] | ExplainJob], pythons: dict[str, str] | None = None,
                timeout: float = DEFAULT_TIMEOUT) -> dict[str, FrameworkResult]:
    """Run each framework's jobs in its own worker process; the workers overlap."""
    pythons = pythons or {}
    started: dict[str, tuple] = {}
    with tempfile.TemporaryDirectory(prefix="xdecay-") as tmp:
        try:
            for fw, fw_jobs in jobs.items():
                started[fw] = _start(fw, fw_jobs, pythons.get(fw, sys.executable), Path(tmp))
            deadline = time.monotonic() + timeout
            return {fw: _finish(fw, proc, result, deadline, timeout)
                    if proc is not None else FrameworkResult(fw, error=result)
                    for fw, (proc, result) in started.items()}
        finally:
            # Interrupted or not, no worker outlives this call.
            for proc, _ in started.values():
                if proc is not None:
                    _kill(proc)


def run_in_process(jobs: dict[str, list[Job] | ExplainJob]) -> dict[str, FrameworkResult]:
    """The same runs in this process: for tests and the Python API (imports the frameworks here)."""
    done = {}
    for fw, request in jobs.items():
        adapter = load_adapter(fw)
        done[fw] = FrameworkResult(fw, adapter.version(), execute(adapter, request))
    return done


def _start(framework: str, jobs: list[Job] | ExplainJob, python: str, tmp: Path):
    request, result = tmp / f"{framework}.request.npz", tmp / f"{framework}.result.npz"
    write_request(request, jobs)
    env = dict(os.environ)
    # The worker may run under another interpreter (--python): it finds xdecay here.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    # paddle creates ~/.cache/paddle/dataset on import: keep it in our temporary dir.
    home = tmp / f"{framework}.home"
    home.mkdir()
    env["HOME"] = str(home)
    try:
        proc = subprocess.Popen([python, "-m", "xdecay.worker", framework, str(request), str(result)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=env, start_new_session=True)
    except OSError as exc:
        return None, f"cannot start {python}: {exc.strerror or exc}"
    return proc, result


def _finish(framework: str, proc: subprocess.Popen, result: Path, deadline: float,
            timeout: float) -> FrameworkResult:
    try:
        _, stderr = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return FrameworkResult(framework, error=f"worker timed out after {timeout:g} s")
    finally:
        _kill(proc)   # no orphans: the worker's whole process group goes
    if proc.returncode != 0:
        return FrameworkResult(framework, error=_describe_failure(proc.returncode, stderr))
    try:
        fw, version, records = read_result(result)
    except Exception as exc:  # a missing or corrupt result file is the worker's failure
        return FrameworkResult(framework, error=f"worker wrote no readable result ({exc})")
    return FrameworkResult(fw, version, records)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _describe_failure(code: int, stderr: bytes) -> str:
    lines = [l for l in stderr.decode("utf-8", "replace").splitlines() if l.strip()]
    last = lines[-1].strip() if lines else "no message"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else -code
        return f"worker killed by signal {name} ({last})"
    return f"worker exited with code {code}: {last}"
