"""The files a worker reads and writes: .npz archives, arrays in binary, metadata as JSON.

Deltas never travel as JSON lists: float32 snapshots go through as raw arrays,
which is exact and fast for large layers.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from .records import ExplainItem, ExplainJob, Job, RunRecord
from .spec import Spec


SPEC_ARRAYS = ("weight", "bias", "x", "target")


def _spec_arrays(prefix: str, spec: Spec) -> dict[str, np.ndarray]:
    return {f"{prefix}/{n}": getattr(spec, n) for n in SPEC_ARRAYS if getattr(spec, n) is not None}


def _read_spec(data, prefix: str) -> Spec:
    return Spec(**{n: data[f"{prefix}/{n}"] if f"{prefix}/{n}" in data else None for n in SPEC_ARRAYS})


def write_request(path: Path, request: list[Job] | ExplainJob) -> None:
    """A compare request (one Job per case) or an explain request."""
    if isinstance(request, ExplainJob):
        meta = {"kind": "explain", "loss": request.loss, "steps": request.steps,
                "coeff": request.coeff, "param_attr_coeff": request.param_attr_coeff,
                "items": [dataclasses.asdict(i) for i in request.items]}
        arrays = _spec_arrays("explain", request.spec)
    else:
        meta = {"kind": "compare", "jobs": [
            {"case": job.case, "optimizer": job.optimizer, "lr": job.lr, "hyper": job.hyper,
             "coeff": job.coeff, "param_attr_coeff": job.param_attr_coeff, "loss": job.loss,
             "steps": job.steps, "ways": list(job.ways)} for job in request]}
        arrays = {k: v for i, job in enumerate(request) for k, v in _spec_arrays(str(i), job.spec).items()}
    _save(path, {"meta": np.array(json.dumps(meta)), **arrays})


def read_request(path: Path) -> list[Job] | ExplainJob:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta["kind"] == "explain":
            return ExplainJob(spec=_read_spec(data, "explain"), loss=meta["loss"],
                              steps=meta["steps"], coeff=meta["coeff"],
                              param_attr_coeff=meta["param_attr_coeff"],
                              items=tuple(ExplainItem(**i) for i in meta["items"]))
        return [Job(case=m["case"], optimizer=m["optimizer"], lr=m["lr"], hyper=m["hyper"],
                    coeff=m["coeff"], param_attr_coeff=m["param_attr_coeff"], loss=m["loss"],
                    steps=m["steps"], ways=tuple(m["ways"]), spec=_read_spec(data, str(i)))
                for i, m in enumerate(meta["jobs"])]


def write_result(path: Path, framework: str, version: str,
                 records: list[list[RunRecord]]) -> None:
    meta = {"framework": framework, "version": version,
            "runs": [[{"way": r.way, "error": r.error, "optimizer": r.optimizer,
                       "variant": r.variant, "options": r.options, "hyper": r.hyper}
                      for r in job] for job in records]}
    arrays = {}
    for i, job in enumerate(records):
        for k, r in enumerate(job):
            if r.weights is not None:
                arrays[f"{i}/{k}/weights"] = r.weights
            if r.biases is not None:
                arrays[f"{i}/{k}/biases"] = r.biases
    _save(path, {"meta": np.array(json.dumps(meta)), **arrays})


def read_result(path: Path) -> tuple[str, str, list[list[RunRecord]]]:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        framework = meta["framework"]
        records = [[RunRecord(framework, r["way"], _get(data, f"{i}/{k}/weights"),
                              _get(data, f"{i}/{k}/biases"), r["error"], r["optimizer"],
                              r["variant"], r["options"], r["hyper"])
                    for k, r in enumerate(job)] for i, job in enumerate(meta["runs"])]
    return framework, meta["version"], records


def _get(data, key: str) -> np.ndarray | None:
    return data[key] if key in data else None


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # Written under a temporary name and renamed: a reader never sees half a file.
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
