"""The files a worker reads and writes: arrays in binary, metadata as JSON.

A request is one file: its JSON, then its arrays back to back (no zip). A result is a
directory: one .npy file per large array, one file holding all small ones (arrays.bin,
back to back) and meta.json, written last (its presence means the result is complete).
Snapshots never travel as JSON lists: an adapter writes a large one straight into an .npy
file it maps (ResultFiles.allocate), and
the parent maps the same file, so a 4096x4096 layer's snapshots are copied once, out of
the framework, and read from the page cache. Small ones (a shipped case's) are kept in
memory and written together: a mapped file each (~1100 in `compare --case all`) cost
more than the arrays (the 83 cases' runs took 0.35 CPU s in torch and 0.49 s in paddle
with them, 0.22 s and 0.37 s without; the parent read the results in 0.057 s, now 0.018 s).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import mmap
import os
import sys
from pathlib import Path

import numpy as np

from ..case import Accumulate, Decay, Group, Regularizer
from ..engine.layers import Layer
from ..engine.spec import PARAMS, Spec
from ..files import atomic
from ..engine.clipping import Clip
from ..engine.precision import Precision
from ..engine.schedules import Schedule
from ..training import TrainJob
from .records import AuditJob, ExplainItem, ExplainJob, Job, RunRecord, in_memory


def _spec_arrays(prefix: str, spec: Spec) -> dict[str, np.ndarray]:
    arrays = {f"{prefix}/params/{n}": v for n, v in spec.params.items()}
    arrays[f"{prefix}/x"] = spec.x
    if spec.target is not None:
        arrays[f"{prefix}/target"] = spec.target
    if spec.fresh is not None:
        arrays[f"{prefix}/fresh"] = np.array(spec.fresh, np.int64)
    return arrays


def _read_spec(data: dict[str, np.ndarray], prefix: str, layer: dict | None = None) -> Spec:
    kind = None if layer is None else Layer(**{**layer, "sizes": tuple(tuple(kv) for kv in layer["sizes"])})
    names = PARAMS if kind is None else kind.params
    params = {n: data[f"{prefix}/params/{n}"] for n in names if f"{prefix}/params/{n}" in data}
    fresh = data.get(f"{prefix}/fresh")
    return Spec(params, data[f"{prefix}/x"], data.get(f"{prefix}/target"), kind,
                None if fresh is None else int(fresh))


def write_request(path: Path, request: list[Job] | ExplainJob | TrainJob | AuditJob) -> None:
    """A compare request (one Job per case), an explain, a training or an audit request."""
    if isinstance(request, AuditJob):
        meta, arrays = {"kind": "audit", "job": dataclasses.asdict(request)}, {}
    elif isinstance(request, TrainJob):
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
             "native": job.native,
             "decay": dataclasses.asdict(job.decay), "loss": job.loss,
             "steps": job.steps, "ways": list(job.ways),
             "clip": None if job.clip is None else dataclasses.asdict(job.clip),
             "schedule": None if job.schedule is None else dataclasses.asdict(job.schedule),
             "accumulate": None if job.accumulate is None else dataclasses.asdict(job.accumulate),
             "precision": None if job.precision is None else dataclasses.asdict(job.precision),
             **({} if job.spec.layer is None else {"layer": dataclasses.asdict(job.spec.layer)})}
            for job in request]}
        arrays = {k: v for i, job in enumerate(request) for k, v in _spec_arrays(str(i), job.spec).items()}
    index, packed = _pack(arrays)
    head = json.dumps({"meta": meta, "arrays": index}).encode()
    with atomic(path, "wb") as f:
        f.write(len(head).to_bytes(8, "little") + head)
        f.seek(_packed_start(len(head)))
        _write_packed(f, index, packed)


def read_request(path: Path) -> list[Job] | ExplainJob | TrainJob | AuditJob:
    buffer = _read(path)
    size = int.from_bytes(buffer[:8], "little")
    head = json.loads(buffer[8:8 + size].decode())
    meta, data = head["meta"], _unpack(buffer, _packed_start(size), head["arrays"])
    if meta["kind"] == "audit":
        return AuditJob(**{**meta["job"], "search": tuple(meta["job"]["search"])})
    if meta["kind"] == "train":
        return TrainJob(meta["config"]["kind"], meta["config"],
                        {k.split("/", 1)[1]: v for k, v in data.items() if k.startswith("train/")})
    if meta["kind"] == "explain":
        return ExplainJob(spec=_read_spec(data, "explain"), loss=meta["loss"],
                          steps=meta["steps"], coeff=meta["coeff"],
                          param_attr_coeff=meta["param_attr_coeff"],
                          items=tuple(ExplainItem(**i) for i in meta["items"]))
    return [Job(case=m["case"], optimizer=m["optimizer"], lr=m["lr"], hyper=m["hyper"], native=m["native"],
                decay=_decay(m["decay"]), loss=m["loss"],
                steps=m["steps"], ways=tuple(m["ways"]), spec=_read_spec(data, str(i), m.get("layer")),
                clip=None if m["clip"] is None else Clip(**m["clip"]),
                schedule=None if m["schedule"] is None else Schedule(**m["schedule"]),
                accumulate=None if m["accumulate"] is None else Accumulate(**m["accumulate"]),
                precision=None if m["precision"] is None else Precision(**m["precision"]))
            for i, m in enumerate(meta["jobs"])]


# Arrays smaller than this are kept in memory and read, not mapped: indexing a mapped
# array (np.memmap) costs more than copying a small one, and the analysis indexes
# snapshots step by step.
READ_BELOW = 1 << 20
PACKED = "arrays.bin"      # the small arrays of a result, each at an offset meta.json gives
ALIGN = 64                 # each packed array starts at a multiple of this (a cache line)


class ResultFiles:
    """A result directory being written: an allocator for the adapters (records.Allocate:
    a mapped .npy file for a large array, memory for a small one), then write() for
    everything and meta.json."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir()
        self._names = (f"{n}.npy" for n in itertools.count())
        self._allocated: dict[int, tuple[np.ndarray, str]] = {}     # id -> (array, file)
        self._small: list[np.ndarray] = []       # for arrays.bin

    def allocate(self, shape: tuple[int, ...]) -> np.ndarray:
        if np.prod(shape, dtype=np.int64) * np.dtype(np.float32).itemsize < READ_BELOW:
            return in_memory(shape)
        name = next(self._names)
        array = np.lib.format.open_memmap(self.path / name, "w+", np.float32, shape)
        _populate(array)
        self._allocated[id(array)] = array, name
        return array

    def _place(self, value: np.ndarray) -> str | dict:
        """Where an array goes: the file allocated for exactly this array (not a view of
        it), its place in arrays.bin if small, or a new .npy file."""
        allocated = self._allocated.get(id(value))
        if allocated is not None and allocated[0] is value:
            return allocated[1]
        value = np.asarray(value)
        if value.nbytes < READ_BELOW and not value.dtype.hasobject:
            self._small.append(value)
            return {"small": len(self._small) - 1}
        name = next(self._names)
        np.save(self.path / name, value)
        return name

    def write(self, framework: str, version: str, records: list[list[RunRecord]]) -> None:
        runs = [[{"way": r.way, "error": r.error, "logs": r.logs, "optimizer": r.optimizer,
                  "variant": r.variant, "options": r.options, "hyper": r.hyper,
                  "dtype": r.dtype, "forward": r.forward,
                  "params": {n: self._place(v) for n, v in r.params.items()},
                  "series": {n: self._place(v) for n, v in r.series.items()}}
                 for r in job] for job in records]
        index, packed = _pack(dict(enumerate(self._small)))
        for run in (run for job in runs for run in job):
            for places in (run["params"], run["series"]):
                places.update({n: index[p["small"]] for n, p in places.items() if isinstance(p, dict)})
        if packed:
            with open(self.path / PACKED, "wb") as f:
                _write_packed(f, index, packed)
        meta = {"framework": framework, "version": version, "runs": runs}
        with atomic(self.path / "meta.json") as f:
            # dumps, not dump: json.dump encodes in Python, dumps in C (same text).
            f.write(json.dumps(meta))


# Linux >= 5.14: fault a mapping's pages in with one call, writable. Filling a fresh
# 4096x4096 float32 snapshot page by page cost 27 ms of faults; after this, 3 ms (+ 6 ms
# for the call): the adapters write every step's snapshot into these files.
MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)


def _populate(array: np.memmap) -> None:
    """The file's pages faulted in at once (elsewhere, or on an older kernel, nothing:
    they are faulted in one by one as the adapter writes them)."""
    if sys.platform == "linux":
        try:
            array._mmap.madvise(MADV_POPULATE_WRITE)
        except (OSError, AttributeError, ValueError):
            pass


def read_result(path: Path) -> tuple[str, str, list[list[RunRecord]]]:
    """A worker's result; large snapshots are mapped read-only, not read into memory,
    small ones are views of arrays.bin, which is read once."""
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    framework = meta["framework"]
    packed = _read(path / PACKED) if (path / PACKED).is_file() else bytearray()

    def load(place: str | dict) -> np.ndarray:
        if isinstance(place, dict):
            return _array(packed, 0, place)
        return np.load(path / place, mmap_mode="r", allow_pickle=False)

    records = [[RunRecord(framework, r["way"], {n: load(f) for n, f in r["params"].items()},
                          error=r["error"], logs=r["logs"], optimizer=r["optimizer"],
                          variant=r["variant"], options=r["options"], hyper=r["hyper"],
                          dtype=r["dtype"], forward=r["forward"],
                          series={n: np.array(load(f)) for n, f in r["series"].items()})
                for r in job] for job in meta["runs"]]
    return framework, meta["version"], records


# ---------------------------------------------------------------- arrays back to back in one file

def _pack(arrays: dict) -> tuple[dict, list[np.ndarray]]:
    """Each array's place (offset from the packed start, dtype, shape) and the arrays to
    write there (_write_packed), in that order."""
    index, packed, end = {}, [], 0
    for key, value in arrays.items():
        value = np.ascontiguousarray(value)
        at = _aligned(end)
        index[key] = {"at": at, "dtype": value.dtype.str, "shape": list(np.shape(arrays[key]))}
        packed.append(value)
        end = at + value.nbytes
    return index, packed


def _write_packed(f, index: dict, packed: list[np.ndarray]) -> None:
    """The arrays at the places _pack gave them, from the file's position."""
    start = f.tell()
    for place, value in zip(index.values(), packed):
        f.seek(start + place["at"])
        f.write(value.data)
    f.truncate(f.tell())        # an empty array last still starts within the file


def _aligned(offset: int) -> int:
    """The first multiple of ALIGN at or after `offset`."""
    return -offset % ALIGN + offset


def _packed_start(head: int) -> int:
    """Where a request's arrays start: after its size (8 bytes) and JSON, aligned."""
    return _aligned(8 + head)


def _read(path: Path) -> bytearray:
    """A whole file, writable: the arrays unpacked from it are views, as writable as np.load's."""
    with open(path, "rb") as f:
        buffer = bytearray(os.fstat(f.fileno()).st_size)
        f.readinto(buffer)
    return buffer


def _array(buffer: bytearray, start: int, place: dict) -> np.ndarray:
    dtype = np.dtype(place["dtype"])
    count = int(np.prod(place["shape"], dtype=np.int64))
    return np.frombuffer(buffer, dtype, count, start + place["at"]).reshape(place["shape"])


def _unpack(buffer: bytearray, start: int, index: dict) -> dict[str, np.ndarray]:
    return {key: _array(buffer, start, place) for key, place in index.items()}


def release(array: np.ndarray) -> None:
    """Drop this process's pages of a mapped snapshot file (read_result): they stop
    counting in its memory, the page cache keeps them, and the next read maps them
    again. A large case's runs are read pair by pair: without this the parent holds
    every page it ever read, all runs' snapshots at once. Nothing for an array in memory."""
    mapping = getattr(array, "_mmap", None)      # numpy.memmap's file mapping
    if mapping is not None and not mapping.closed:
        mapping.madvise(mmap.MADV_DONTNEED)


def _decay(d: dict) -> Decay:
    return Decay(d["coeff"], {n: Regularizer(**r) for n, r in d["param_attr"].items()},
                 {n: Regularizer(**r) for n, r in d["manual"].items()},
                 tuple(Group(tuple(g["params"]), g["has_decay"], g["weight_decay"], g.get("lr_scale")) for g in d["groups"]),
                 tuple(d["decay_params"]), dict(d.get("param_attr_lr", {})))

