"""Warm workers: one worker process per framework (and interpreter), kept between
requests, so that a test suite calling run_case many times imports each framework once.

A warm worker runs `python -m xdecay.frameworks.worker FRAMEWORK --serve`: one batch
of request/result files per line on its stdin, "done" on its stdout when the results
are written. A worker that dies, answers garbage or misses the deadline is killed with
its process group and forgotten: its requests become error rows (exit 3, as with the
command line's one-shot workers), and the next batch starts a fresh worker.
"""
from __future__ import annotations

import collections
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .protocol import write_request
from .runner import (FrameworkResult, OnDone, Request, cannot_start, collect, describe_failure, kill,
                     lifeline, worker_env)
from .worker import DONE, SERVE

STDERR_LINES = 20      # the tail of a worker's stderr kept to say why it failed
READER_GRACE = 2.0     # seconds to wait for a killed worker's pipes to close


class WarmWorker:
    """One serving worker process and the threads that drain its pipes."""

    def __init__(self, framework: str, python: str, tmp: Path):
        self.framework = framework
        env = worker_env(framework, tmp)
        # Busy when this process dies, the worker ends at once (not at the end of its request).
        read_end, self._lifeline = lifeline(env, tmp)
        try:
            self.proc = subprocess.Popen([python, "-m", "xdecay.frameworks.worker", framework, SERVE],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env, start_new_session=True,
                                         pass_fds=(read_end,))
        except OSError:
            os.close(self._lifeline)
            raise
        finally:
            os.close(read_end)
        self._replies: queue.Queue[bytes | None] = queue.Queue()
        self._stderr: collections.deque[bytes] = collections.deque(maxlen=STDERR_LINES)
        # Both pipes are read all the time: a worker blocked on a full stderr pipe would hang.
        self._readers = [threading.Thread(target=self._read_replies, daemon=True),
                         threading.Thread(target=self._stderr.extend, args=(self.proc.stderr,), daemon=True)]
        for t in self._readers:
            t.start()

    def _read_replies(self) -> None:
        for line in self.proc.stdout:
            self._replies.put(line)
        self._replies.put(None)       # the end of its stdout: the worker is gone

    def answer(self, files: list[tuple[Path, Path]], deadline: float, timeout: float) -> str | None:
        """Send one batch and wait for "done": None, or why the worker failed (it is then dead)."""
        try:
            self.proc.stdin.write((json.dumps([[str(a), str(b)] for a, b in files]) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            pass                        # it died: the reader sees the end of its stdout
        try:
            reply = self._replies.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self.close()
            return f"worker timed out after {timeout:g} s"
        if reply is None:
            self.close()
            return describe_failure(self.proc.returncode, b"".join(self._stderr))
        if reply.decode("utf-8", "replace").strip() != DONE:
            self.close()
            return "worker answered something other than its protocol"
        return None

    def close(self) -> None:
        """Kill the worker's process group. Between batches a worker holds nothing worth a
        clean exit, and torch's own takes about a second (measured), at every program's end."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        kill(self.proc)
        if self._lifeline is not None:     # closed once: a failing worker is closed, then forgotten
            os.close(self._lifeline)
            self._lifeline = None
        for t in self._readers:
            t.join(READER_GRACE)


class WarmWorkers:
    """The warm workers of one xdecay.Session, started on first use, one per
    (framework, interpreter). Batches run one at a time; frameworks in parallel."""

    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="xdecay-session-")
        self._workers: dict[tuple[str, str], WarmWorker] = {}
        self._lock = threading.Lock()

    def run_batch(self, requests: dict[str, list[Request]], pythons: dict[str, str], default_python: str,
                  timeout: float, on_done: OnDone) -> dict[str, list[FrameworkResult]]:
        """runner.run_batch's contract, in the warm workers."""
        with self._lock:
            if self._tmp is None:
                raise RuntimeError("this xdecay session is closed")
            batch = Path(tempfile.mkdtemp(dir=self._tmp.name, prefix="batch-"))
            busy: dict[str, WarmWorker] = {}
            try:
                return self._run(batch, busy, requests, pythons, default_python, timeout, on_done)
            finally:
                # Interrupted mid-batch, a worker's state is unknown: it goes.
                for worker in busy.values():
                    self._forget(worker)
                # The parent maps the result files it read; unlinking them keeps the mappings.
                shutil.rmtree(batch, ignore_errors=True)

    def _run(self, batch: Path, busy: dict[str, WarmWorker], requests: dict[str, list[Request]],
             pythons: dict[str, str], default_python: str, timeout: float,
             on_done: OnDone) -> dict[str, list[FrameworkResult]]:
        deadline = time.monotonic() + timeout
        finished: queue.Queue = queue.Queue()
        for fw, fw_requests in requests.items():
            files = [(batch / f"{fw}.{i}.request", batch / f"{fw}.{i}.result")
                     for i in range(len(fw_requests))]
            for request, (path, _) in zip(fw_requests, files):
                write_request(path, request)
            python = pythons.get(fw, default_python)
            try:
                worker = self._worker(fw, python)
            except OSError as exc:
                finished.put((fw, [FrameworkResult(fw, error=cannot_start(python, exc))] * len(fw_requests)))
                continue
            busy[fw] = worker
            threading.Thread(target=self._answer, daemon=True,
                             args=(finished, worker, files, fw_requests, deadline, timeout)).start()
        done: dict[str, list[FrameworkResult]] = {}
        for _ in requests:
            fw, results = finished.get()
            busy.pop(fw, None)
            done[fw] = results
            on_done(fw, results)
        return {fw: done[fw] for fw in requests}

    def _answer(self, finished: queue.Queue, worker: WarmWorker, files: list[tuple[Path, Path]],
                requests: list[Request], deadline: float, timeout: float) -> None:
        fw = worker.framework
        results = [FrameworkResult(fw, error="worker lost")] * len(requests)
        try:
            error = worker.answer(files, deadline, timeout)
            results = (collect(fw, [r for _, r in files], requests) if error is None
                       else [FrameworkResult(fw, error=error)] * len(requests))
            if any(r.error for r in results):
                self._forget(worker)      # a worker that answered wrongly is not trusted again
        except BaseException as exc:
            results = [FrameworkResult(fw, error=f"worker lost ({exc!r})")] * len(requests)
            self._forget(worker)
        finally:
            finished.put((fw, results))   # never leave the parent waiting for this worker

    def _worker(self, framework: str, python: str) -> WarmWorker:
        key = (framework, python)
        if key in self._workers and self._workers[key].proc.poll() is not None:
            # It died between batches (killed from outside): it had answered everything
            # asked of it, so a fresh one takes its place without an error row. (One still
            # dying cannot be waited for yet: it gets the batch and is reported as a crash.)
            self._forget(self._workers[key])
        if key not in self._workers:
            self._workers[key] = WarmWorker(framework, python, Path(self._tmp.name))
        return self._workers[key]

    def _forget(self, worker: WarmWorker) -> None:
        worker.close()
        for key, w in list(self._workers.items()):
            if w is worker:
                del self._workers[key]

    def pids(self) -> dict[str, int]:
        """The running workers' process ids, by framework (for tests and diagnostics)."""
        return {fw: w.proc.pid for (fw, _), w in self._workers.items()}

    def close(self) -> None:
        with self._lock:
            for worker in self._workers.values():
                worker.close()
            self._workers.clear()
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None
