"""The files a worker reads and writes: .npz archives, arrays in binary, metadata as JSON.

Deltas never travel as JSON lists: float32 snapshots go through as raw arrays,
which is exact and fast for large layers.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .records import Job, RunRecord
from .spec import Spec


def write_request(path: Path, jobs: list[Job]) -> None:
    meta, arrays = [], {}
    for i, job in enumerate(jobs):
        meta.append({"case": job.case, "optimizer": job.optimizer, "lr": job.lr,
                     "hyper": job.hyper, "coeff": job.coeff,
                     "param_attr_coeff": job.param_attr_coeff, "loss": job.loss,
                     "steps": job.steps, "ways": list(job.ways)})
        for name in ("weight", "bias", "x", "target"):
            value = getattr(job.spec, name)
            if value is not None:
                arrays[f"{i}/{name}"] = value
    _save(path, {"meta": np.array(json.dumps(meta)), **arrays})


def read_request(path: Path) -> list[Job]:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        jobs = []
        for i, m in enumerate(meta):
            arrays = {n: data[f"{i}/{n}"] if f"{i}/{n}" in data else None
                      for n in ("weight", "bias", "x", "target")}
            jobs.append(Job(case=m["case"], optimizer=m["optimizer"], lr=m["lr"],
                            hyper=m["hyper"], coeff=m["coeff"],
                            param_attr_coeff=m["param_attr_coeff"], loss=m["loss"],
                            steps=m["steps"], ways=tuple(m["ways"]), spec=Spec(**arrays)))
    return jobs


def write_result(path: Path, framework: str, version: str,
                 records: list[list[RunRecord]]) -> None:
    meta = {"framework": framework, "version": version,
            "runs": [[{"way": r.way, "error": r.error} for r in job] for job in records]}
    arrays = {}
    for i, job in enumerate(records):
        for r in job:
            if r.weights is not None:
                arrays[f"{i}/{r.way}/weights"] = r.weights
            if r.biases is not None:
                arrays[f"{i}/{r.way}/biases"] = r.biases
    _save(path, {"meta": np.array(json.dumps(meta)), **arrays})


def read_result(path: Path) -> tuple[str, str, list[list[RunRecord]]]:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        framework = meta["framework"]
        records = [[RunRecord(framework, r["way"],
                              _get(data, f"{i}/{r['way']}/weights"),
                              _get(data, f"{i}/{r['way']}/biases"), r["error"])
                    for r in job] for i, job in enumerate(meta["runs"])]
    return framework, meta["version"], records


def _get(data, key: str) -> np.ndarray | None:
    return data[key] if key in data else None


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # Written under a temporary name and renamed: a reader never sees half a file.
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
