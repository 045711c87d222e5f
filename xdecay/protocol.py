"""The files a worker reads and writes: .npz archives, arrays in binary, metadata as JSON.

Deltas never travel as JSON lists: float32 snapshots go through as raw arrays,
which is exact and fast for large layers.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from .case import Decay, Group, Regularizer
from .files import atomic
from .records import ExplainItem, ExplainJob, Job, RunRecord
from .spec import PARAMS, Spec
from .training import TrainJob


def _spec_arrays(prefix: str, spec: Spec) -> dict[str, np.ndarray]:
    arrays = {f"{prefix}/params/{n}": v for n, v in spec.params.items()}
    arrays[f"{prefix}/x"] = spec.x
    if spec.target is not None:
        arrays[f"{prefix}/target"] = spec.target
    return arrays


def _read_spec(data, prefix: str) -> Spec:
    params = {n: data[f"{prefix}/params/{n}"] for n in PARAMS if f"{prefix}/params/{n}" in data}
    return Spec(params, data[f"{prefix}/x"], _get(data, f"{prefix}/target"))


def write_request(path: Path, request: list[Job] | ExplainJob | TrainJob) -> None:
    """A compare request (one Job per case), an explain request or a training request."""
    if isinstance(request, TrainJob):
        meta = {"kind": "train", "config": request.config}
        arrays = {f"train/{k}": v for k, v in request.arrays.items()}
    elif isinstance(request, ExplainJob):
        meta = {"kind": "explain", "loss": request.loss, "steps": request.steps,
                "coeff": request.coeff, "param_attr_coeff": request.param_attr_coeff,
                "items": [dataclasses.asdict(i) for i in request.items]}
        arrays = _spec_arrays("explain", request.spec)
    else:
        meta = {"kind": "compare", "jobs": [
            {"case": job.case, "optimizer": job.optimizer, "lr": job.lr, "hyper": job.hyper,
             "decay": dataclasses.asdict(job.decay), "loss": job.loss,
             "steps": job.steps, "ways": list(job.ways)} for job in request]}
        arrays = {k: v for i, job in enumerate(request) for k, v in _spec_arrays(str(i), job.spec).items()}
    _save(path, {"meta": np.array(json.dumps(meta)), **arrays})


def read_request(path: Path) -> list[Job] | ExplainJob | TrainJob:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta["kind"] == "train":
            return TrainJob(meta["config"]["kind"], meta["config"],
                            {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("train/")})
        if meta["kind"] == "explain":
            return ExplainJob(spec=_read_spec(data, "explain"), loss=meta["loss"],
                              steps=meta["steps"], coeff=meta["coeff"],
                              param_attr_coeff=meta["param_attr_coeff"],
                              items=tuple(ExplainItem(**i) for i in meta["items"]))
        return [Job(case=m["case"], optimizer=m["optimizer"], lr=m["lr"], hyper=m["hyper"],
                    decay=_decay(m["decay"]), loss=m["loss"],
                    steps=m["steps"], ways=tuple(m["ways"]), spec=_read_spec(data, str(i)))
                for i, m in enumerate(meta["jobs"])]


def write_result(path: Path, framework: str, version: str,
                 records: list[list[RunRecord]]) -> None:
    meta = {"framework": framework, "version": version,
            "runs": [[{"way": r.way, "error": r.error, "logs": r.logs, "series": sorted(r.series),
                       "optimizer": r.optimizer,
                       "variant": r.variant, "options": r.options, "hyper": r.hyper}
                      for r in job] for job in records]}
    arrays = {}
    for i, job in enumerate(records):
        for k, r in enumerate(job):
            for name, value in r.params.items():
                arrays[f"{i}/{k}/{name}"] = value
            for name, value in r.series.items():
                arrays[f"{i}/{k}/series/{name}"] = np.asarray(value)
    _save(path, {"meta": np.array(json.dumps(meta)), **arrays})


def read_result(path: Path) -> tuple[str, str, list[list[RunRecord]]]:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        framework = meta["framework"]
        records = [[RunRecord(framework, r["way"],
                              {n: data[f"{i}/{k}/{n}"] for n in PARAMS if f"{i}/{k}/{n}" in data},
                              error=r["error"], logs=r["logs"], optimizer=r["optimizer"],
                              variant=r["variant"], options=r["options"], hyper=r["hyper"],
                              series={n: data[f"{i}/{k}/series/{n}"] for n in r["series"]})
                    for k, r in enumerate(job)] for i, job in enumerate(meta["runs"])]
    return framework, meta["version"], records


def _decay(d: dict) -> Decay:
    return Decay(d["coeff"], {n: Regularizer(**r) for n, r in d["param_attr"].items()},
                 {n: Regularizer(**r) for n, r in d["manual"].items()},
                 tuple(Group(tuple(g["params"]), g["has_decay"], g["weight_decay"]) for g in d["groups"]),
                 tuple(d["decay_params"]))


def _get(data, key: str) -> np.ndarray | None:
    return data[key] if key in data else None


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic(path, "wb") as f:
        np.savez(f, **arrays)
