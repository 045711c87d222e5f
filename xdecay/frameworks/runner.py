"""Starts one worker process per framework, all at once, and collects their runs.

A worker takes several requests (compare jobs, an explain job, training jobs),
so `xdecay report` imports each framework once.

A framework that is missing, crashes, times out or writes no result becomes a
FrameworkError; the other frameworks' results are unaffected.
"""
from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..training import TrainJob
from .adapters import execute, load_adapter
from .lifeline import LIFELINE_ENV, SCRATCH_ENV
from .protocol import read_result, write_request
from .records import AuditJob, ExplainJob, Job, RunRecord

if TYPE_CHECKING:
    from .warm import WarmWorkers

PACKAGE_ROOT = Path(__file__).resolve().parents[2]   # the folder holding xdecay/
DEFAULT_TIMEOUT = 600.0


@dataclass
class FrameworkResult:
    framework: str
    version: str | None = None
    records: list[list[RunRecord]] = field(default_factory=list)   # per job, per way
    error: str | None = None


Request = list[Job] | ExplainJob | TrainJob | AuditJob


# Called with a framework's results as soon as its worker is done (the parent can
# work on them while the other frameworks still run).
OnDone = Callable[[str, list[FrameworkResult]], None]
# Called with one request's result (framework, request index, result) as soon as the
# worker has written it, while the worker goes on with the next request. A worker that
# fails later still fails as a whole: its on_done results carry the error.
OnPart = Callable[[str, int, FrameworkResult], None]
POLL_EVERY = 0.01      # seconds between looks for a worker's next result


def run(requests: dict[str, Request], pythons: dict[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT, in_process: bool = False,
        on_done: OnDone | None = None, warm: WarmWorkers | None = None) -> dict[str, FrameworkResult]:
    """One request per framework; see run_batch."""
    each = None if on_done is None else (lambda fw, results: on_done(fw, results[0]))
    done = run_batch({fw: [r] for fw, r in requests.items()}, pythons, timeout, in_process, each, warm)
    return {fw: results[0] for fw, results in done.items()}


def framework_of(key: str) -> str:
    """A worker's key is a framework name, or FRAMEWORK@LABEL when one framework runs
    under several interpreters at once (xdecay matrix: one worker per release)."""
    return key.partition("@")[0]


def run_batch(requests: dict[str, list[Request]], pythons: dict[str, str] | None = None,
              timeout: float = DEFAULT_TIMEOUT, in_process: bool = False,
              on_done: OnDone | None = None, warm: WarmWorkers | None = None,
              on_part: OnPart | None = None) -> dict[str, list[FrameworkResult]]:
    """Each key's requests in one worker process (one import), the workers at once;
    or, in_process, in this process (tests and the Python API: imports the frameworks here);
    or in `warm` workers kept from earlier calls (xdecay.Session).
    Keys are frameworks, or FRAMEWORK@LABEL (framework_of); pythons are by key.
    on_done(key, results) is called in this thread as each worker finishes; on_part,
    in this thread too, as each request's result arrives from a one-shot worker."""
    on_done = on_done or (lambda fw, results: None)
    if warm is not None and not in_process:
        return warm.run_batch(requests, pythons or {}, sys.executable, timeout, on_done)
    done: dict[str, list[FrameworkResult]] = {}
    if in_process:
        for fw, fw_requests in requests.items():
            adapter = load_adapter(framework_of(fw))
            done[fw] = [FrameworkResult(framework_of(fw), adapter.version(), execute(adapter, r))
                        for r in fw_requests]
            on_done(fw, done[fw])
        return done
    pythons = pythons or {}
    started: dict[str, tuple] = {}
    lifelines: list[int] = []
    with tempfile.TemporaryDirectory(prefix="xdecay-", dir=scratch_parent(requests)) as tmp:
        try:
            for fw, fw_requests in requests.items():
                started[fw] = _start(fw, fw_requests, pythons.get(fw, sys.executable), Path(tmp), lifelines)
            deadline = time.monotonic() + timeout
            finished: queue.Queue = queue.Queue()
            # Per worker, the results _watch has read and passed on, by request index.
            delivered: dict[str, dict[int, FrameworkResult]] = {fw: {} for fw in started}
            for fw, (proc, results) in started.items():
                if proc is None:
                    finished.put((fw, [FrameworkResult(framework_of(fw), error=results)] * len(requests[fw])))
                else:
                    # A thread per worker waits for it; results are taken here in the order
                    # the workers finish. What _watch has read already, _finish does not read again.
                    threading.Thread(target=_wait, daemon=True, args=(
                        finished, fw, proc, results, requests[fw], deadline, timeout, delivered[fw])).start()
                    if on_part is not None:
                        threading.Thread(target=_watch, daemon=True, args=(
                            finished, fw, proc, results, requests[fw], delivered[fw])).start()
            while len(done) < len(started):
                fw, *message = finished.get()
                if len(message) == 2:                 # a part: (request index, its result)
                    if fw not in done:
                        on_part(fw, *message)
                    continue
                results = message[0]
                if not any(r.error for r in results):
                    # The very results passed on before (the same files): a second mapping of
                    # a large layer's snapshots would count in this process's memory twice.
                    results = [delivered[fw].get(i, r) for i, r in enumerate(results)]
                done[fw] = results
                on_done(fw, results)
            return {fw: done[fw] for fw in requests}
        finally:
            # Interrupted or not, no worker outlives this call.
            for proc, _ in started.values():
                if proc is not None:
                    kill(proc)
            for fd in lifelines:
                os.close(fd)


def _start(framework: str, requests: list[Request], python: str, tmp: Path, lifelines: list[int]):
    """Start a worker; its lifeline is a pipe only this process can write to (the worker
    watches it: see worker.watch_parent). The write end goes into `lifelines`."""
    files = [(tmp / f"{framework}.{i}.request", tmp / f"{framework}.{i}.result")
             for i in range(len(requests))]
    for request, (path, _) in zip(requests, files):
        write_request(path, request)
    env = worker_env(framework, tmp)
    read_end, write_end = lifeline(env, tmp)
    lifelines.append(write_end)
    try:
        proc = subprocess.Popen([python, "-m", "xdecay.frameworks.worker", framework_of(framework),
                                 *(str(p) for pair in files for p in pair)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=env, start_new_session=True,
                                pass_fds=(read_end,))
    except OSError as exc:
        return None, cannot_start(python, exc)
    finally:
        os.close(read_end)       # the worker has its copy; ours would keep the pipe open
    return proc, [result for _, result in files]


# Worker results live for seconds. In a disk-backed temporary folder, gigabytes of them
# are past the kernel's dirty_background_ratio and it starts writing them back to disk
# while the workers still run: benchmarks/large_adam.toml (4.2 GB of snapshots) took
# 18.6 s with /tmp on disk, 17.0 s in /dev/shm. So results go to RAM-backed /dev/shm
# when it can hold twice theirs; a temporary folder the user set (TMPDIR, TEMP or TMP,
# as tempfile reads them) always stands.
SHM = Path("/dev/shm")


def scratch_parent(requests: dict[str, list[Request]]) -> str | None:
    """The folder for the call's result folder: /dev/shm if it holds twice the snapshots
    the requests' compare jobs will write, else None (tempfile's choice)."""
    if any(v in os.environ for v in ("TMPDIR", "TEMP", "TMP")) or not (SHM.is_dir() and os.access(SHM, os.W_OK)):
        return None
    needed = sum(job.snapshot_bytes for fw_requests in requests.values() for request in fw_requests
                 if isinstance(request, list) for job in request)
    try:
        free = shutil.disk_usage(SHM).free
    except OSError:
        return None
    return str(SHM) if 2 * needed <= free else None


def worker_env(framework: str, tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The worker may run under another interpreter (--python): it finds xdecay here.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    # paddle creates ~/.cache/paddle/dataset on import: keep it in our temporary dir.
    home = tmp / f"{framework}.home"
    home.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    return env


def lifeline(env: dict[str, str], tmp: Path) -> tuple[int, int]:
    """A pipe only this process can write to, announced in the worker's env (the worker
    watches it: see worker.watch_parent): (read end for pass_fds, write end to keep)."""
    read_end, write_end = os.pipe()
    env[LIFELINE_ENV], env[SCRATCH_ENV] = str(read_end), str(tmp)
    return read_end, write_end


def cannot_start(python: str, exc: OSError) -> str:
    return f"cannot start {python}: {exc.strerror or exc}"


def _wait(finished: queue.Queue, key: str, *args) -> None:
    try:
        finished.put((key, _finish(framework_of(key), *args)))
    except BaseException as exc:     # never leave the parent waiting for this worker
        finished.put((key, [FrameworkResult(framework_of(key), error=f"worker lost ({exc!r})")] * len(args[1])))


def _watch(finished: queue.Queue, key: str, proc: subprocess.Popen, results: list[Path],
           requests: list[Request], delivered: dict[int, FrameworkResult]) -> None:
    """Pass on each result as soon as its meta.json (written last) is there, and keep it
    in `delivered` (by request index)."""
    try:
        for i, (path, request) in enumerate(zip(results, requests)):
            while not (path / "meta.json").is_file():
                if proc.poll() is not None:
                    return                     # _wait reports what became of the rest
                time.sleep(POLL_EVERY)
            (result,) = collect(framework_of(key), [path], [request])
            if result.error is not None:
                return
            delivered[i] = result
            finished.put((key, i, result))
    except Exception:       # e.g. the folder removed after the call ended: nothing more to pass on
        return


def _finish(framework: str, proc: subprocess.Popen, results: list[Path], requests: list[Request],
            deadline: float, timeout: float, delivered: dict[int, FrameworkResult]) -> list[FrameworkResult]:
    def failed(error: str) -> list[FrameworkResult]:
        return [FrameworkResult(framework, error=error)] * len(results)

    try:
        _, stderr = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return failed(f"worker timed out after {timeout:g} s")
    finally:
        kill(proc)   # no orphans: the worker's whole process group goes
    if proc.returncode != 0:
        return failed(describe_failure(proc.returncode, stderr))
    return collect(framework, results, requests, delivered)


def collect(framework: str, results: list[Path], requests: list[Request],
            known: dict[int, FrameworkResult] | None = None) -> list[FrameworkResult]:
    """A worker's results, checked against its requests: readable, and answering them
    (`known`: results already read, by index)."""
    def failed(error: str) -> list[FrameworkResult]:
        return [FrameworkResult(framework, error=error)] * len(results)

    known = known or {}
    try:
        read = [known.get(i) or FrameworkResult(*read_result(path)) for i, path in enumerate(results)]
    except Exception as exc:  # a missing or corrupt result file is the worker's failure
        return failed(f"worker wrote no readable result ({exc})")
    problem = next((p for r, q in zip(read, requests) if (p := _mismatch(framework, r, q))), None)
    return failed(f"worker result does not answer its request ({problem})") if problem else read


def _mismatch(framework: str, result: FrameworkResult, request: Request) -> str | None:
    """What is wrong with a well-formed result that is not the one asked for, if anything."""
    if result.framework != framework:
        return f"framework {result.framework!r}"
    if isinstance(request, list):
        asked = [list(job.ways) for job in request]
        got = [[r.way for r in job] for job in result.records]
        if got != asked:
            return f"ways {got}, asked for {asked}"
        for job, runs in zip(request, result.records):
            shapes = {n: (job.steps + 1, *v.shape) for n, v in job.spec.params.items()}
            for r in runs:
                if r.error is None and {n: (v.shape, v.dtype) for n, v in r.params.items()} != {
                        n: (shape, np.dtype(np.float32)) for n, shape in shapes.items()}:
                    return f"{r.name} snapshots {[(n, v.shape, str(v.dtype)) for n, v in r.params.items()]}"
        return None
    return None if len(result.records) == 1 else f"{len(result.records)} run lists, asked for 1"


def kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def describe_failure(code: int, stderr: bytes) -> str:
    lines = [l for l in stderr.decode("utf-8", "replace").splitlines() if l.strip()]
    last = lines[-1].strip() if lines else "no message"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else -code
        return f"worker killed by signal {name} ({last})"
    return f"worker exited with code {code}: {last}"
