"""Beyond one step: seed 002's overfitting experiment and seed 000's cosine schedule.

Training cases live in cases/train/ (their own schema). Everything a run needs —
data, initial weights, the shuffled batch order — comes from numpy with the case
seed, so torch and paddle see identical steps; a float64 reference runs the same
steps. This module is numpy only; the adapters' run_train does the framework side.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .case import FLOAT32_MAX, _int_in, _number, read_toml
from .case_files import find_case, shipped_cases
from .engine.rules import coefficient_text, float32_problem
from .engine.reference import coupled_l2
from .frameworks.records import RunRecord

KINDS = ("overfit", "schedule")


@dataclass(frozen=True)
class TrainCase:
    name: str
    path: str
    description: str
    kind: str                    # "overfit" | "schedule"
    seed: int
    inputs: int                  # y = true_bias + sum(true_weight * x_i) + N(0, noise^2)
    train: int
    test: int
    true_weight: float
    true_bias: float
    noise: float
    lr: float
    batch: int
    epochs: int                  # overfit: passes over the training set
    weight_decays: tuple[float, ...] = ()   # overfit: SGD, on the weight only (groups)
    weight_decay: float = 0.0    # schedule: Adam(weight_decay) and AdamW(weight_decay)
    t_max: int = 0               # schedule: CosineAnnealingLR / CosineAnnealingDecay
    eta_min: float = 0.0


@dataclass(frozen=True)
class TrainJob:
    """What an adapter runs: the case's numbers and the numpy arrays."""
    kind: str
    config: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def load_train_case(path: Path) -> TrainCase:
    shown = str(path)
    top = read_toml(path)
    description = top.get("description", str, required=True)
    kind = top.get("kind", str, required=True)
    if kind not in KINDS:
        raise top.error("kind", f"unknown value {kind!r} (expected one of: {', '.join(KINDS)})")
    seed = _int_in(top, "seed", 0, 2**32 - 1)
    d = top.table("data")
    inputs = _int_in(d, "inputs", 1, 4096)
    train = _int_in(d, "train", 1, 100_000)
    test = _int_in(d, "test", 1 if kind == "overfit" else 0, 100_000)
    # The truth may be any sign (y = -0.05 + ... is a line like any other); the noise is a scale.
    truth = (_number(d, "true_weight", signed=True), _number(d, "true_bias", signed=True), _number(d, "noise"))
    d.finish()
    o = top.table("optimizer")
    lr = _number(o, "lr", positive=True)
    batch = _int_in(o, "batch", 1, train)
    epochs = _int_in(o, "epochs", 1, 10_000)
    extra: dict[str, Any] = {}
    if kind == "overfit":
        decays = o.get("weight_decays", list, required=True)
        for i, c in enumerate(decays):
            if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 <= c <= FLOAT32_MAX:
                raise o.error(f"weight_decays[{i}]", f"must be a finite number >= 0 that fits in "
                              f"float32, got {c!r}")
            problem = float32_problem(c)
            if problem:
                raise o.error(f"weight_decays[{i}]", problem)
            # Each decay is one run, named by its float32 value (decay_label): twice is a slip.
            same = [j for j in range(i) if np.float32(decays[j]) == np.float32(c)]
            if same:
                raise o.error(f"weight_decays[{i}]", f"repeats {coefficient_text(c)} "
                              f"(weight_decays[{same[0]}]): each decay is trained once")
        if len(set(decays)) < 2:
            raise o.error("weight_decays", f"needs at least two different values to compare, got {decays}")
        extra["weight_decays"] = tuple(float(c) for c in decays)
    else:
        extra.update(weight_decay=_number(o, "weight_decay"), t_max=_int_in(o, "t_max", 1, 100_000),
                     eta_min=_number(o, "eta_min", 0.0))
        if extra["eta_min"] >= lr:
            raise o.error("eta_min", f"must be below lr ({lr}), got {extra['eta_min']}")
    o.finish()
    top.finish()
    return TrainCase(path.stem, shown, description, kind, seed, inputs, train, test, *truth,
                     lr, batch, epochs, **extra)


def decay_label(wd: float) -> str:
    """The name of an overfit run: its weight decay, every float32 digit."""
    return f"wd={coefficient_text(wd)}"


def find_train_case(spec: str, cases: str | Path | None = None, option: str = "--case") -> Path:
    """A training case NAME (in the train/ folder of the user's case folders or the
    shipped ones: case_files) or PATH."""
    return find_case(spec, cases, sub="train", option=option, kind="training case")


def find_train_cases() -> list[Path]:
    """The shipped training cases (`xdecay report` documents those)."""
    return shipped_cases("train")


def build_job(case: TrainCase) -> TrainJob:
    """Data, initial weights and batch order from numpy: identical for every framework."""
    rng = np.random.default_rng(case.seed)
    n = case.train + case.test
    x = rng.standard_normal((n, case.inputs))
    y = x.sum(axis=1, keepdims=True) * case.true_weight + case.true_bias + rng.normal(0, case.noise, (n, 1))
    weight = rng.standard_normal((1, case.inputs))          # seed 002: nn.init.normal_
    order = np.stack([rng.permutation(case.train) for _ in range(case.epochs)])
    arrays = {"x": x.astype(np.float32), "y": y.astype(np.float32),
              "weight": weight.astype(np.float32), "bias": np.zeros(1, np.float32), "order": order}
    config = {"kind": case.kind, "lr": case.lr, "batch": case.batch, "train": case.train,
              "weight_decays": list(case.weight_decays), "weight_decay": case.weight_decay,
              "t_max": case.t_max, "eta_min": case.eta_min}
    return TrainJob(case.kind, config, arrays)


def epoch_batches(job: TrainJob) -> list[list[np.ndarray]]:
    """Per epoch, the sample indices of each batch, in the order every framework uses."""
    b = job.config["batch"]
    return [[perm[s:s + b] for s in range(0, len(perm), b)] for perm in job.arrays["order"]]


# ---------------------------------------------------------------- float64 reference

def reference_overfit(job: TrainJob, wd: float) -> RunRecord:
    """SGD on mean((y_hat - y)^2) per batch, weight decay on the weight only:
        w <- w - lr*(g_w + wd*w),  b <- b - lr*g_b      (float64)"""
    a = {k: v.astype(np.float64) for k, v in job.arrays.items() if k != "order"}
    w, b = a["weight"].copy(), a["bias"].copy()
    x, y, train, lr = a["x"], a["y"], job.config["train"], job.config["lr"]
    losses: dict[str, list[float]] = {"train_loss": [], "test_loss": []}
    start = (w.copy(), b.copy())
    # A diverging run overflows to inf and NaN like the frameworks' do: the report says at
    # which epoch (train_report.diverged_at), not numpy.
    with np.errstate(all="ignore"):
        for epoch in epoch_batches(job):
            for idx in epoch:
                r = x[idx] @ w.T + b - y[idx]
                gw, gb = 2 * r.T @ x[idx] / len(idx), 2 * r.sum(axis=0) / len(idx)
                w, b = w - lr * coupled_l2(w, gw, wd), b - lr * gb
            losses["train_loss"].append(float(np.mean((x[:train] @ w.T + b - y[:train]) ** 2)))
            losses["test_loss"].append(float(np.mean((x[train:] @ w.T + b - y[train:]) ** 2)))
    return RunRecord("float64", decay_label(wd), {"weight": np.stack([start[0], w]), "bias": np.stack([start[1], b])},
                     series={k: np.array(v) for k, v in losses.items()})


def cosine_lrs(lr: float, eta_min: float, t_max: int, steps: int) -> np.ndarray:
    """Closed form: eta_t = eta_min + (lr - eta_min) * (1 + cos(pi*t/T_max)) / 2."""
    t = np.arange(steps)
    return eta_min + (lr - eta_min) * (1 + np.cos(np.pi * t / t_max)) / 2
