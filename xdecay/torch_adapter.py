"""PyTorch adapter: runs jobs in torch. The only module that imports torch."""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch

from .records import ExplainItem, ExplainJob, Job, RunRecord
from .spec import Spec

FRAMEWORK = "torch"


def version() -> str:
    return torch.__version__.split("+")[0]   # "2.13.0+cpu" -> "2.13.0"


def run_job(job: Job) -> list[RunRecord]:
    return [_run_way(job, way) for way in job.ways]


def _layer(spec: Spec) -> torch.nn.Linear:
    out_f, in_f = spec.weight.shape
    layer = torch.nn.Linear(in_f, out_f, bias=spec.bias is not None)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(spec.weight))
        if spec.bias is not None:
            layer.bias.copy_(torch.from_numpy(spec.bias))
    return layer


def _train(layer: torch.nn.Linear, optimizer: torch.optim.Optimizer, spec: Spec, loss_kind: str,
           steps: int, manual_coeff: float = 0.0, decoupled_coeff: float = 0.0,
           lr: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
    """Run the steps; return float32 snapshots [steps + 1, ...] of weight and bias."""
    params = list(layer.parameters())
    x = torch.from_numpy(spec.x)
    target = None if spec.target is None else torch.from_numpy(spec.target)
    weights, biases = [_weight(layer)], [_bias(layer)]
    for _ in range(steps):
        optimizer.zero_grad()
        out = layer(x)
        loss = out.mean() if loss_kind == "mean" else ((out - target) ** 2).mean()
        if manual_coeff:
            loss = loss + 0.5 * manual_coeff * sum((p ** 2).sum() for p in params)
        loss.backward()
        if decoupled_coeff:
            # SGD has no decoupled option: decay as its own step, from the old
            # weights, before the update (where AdamW puts it: p *= 1 - lr*c).
            with torch.no_grad():
                for p in params:
                    p.mul_(1.0 - lr * decoupled_coeff)
        optimizer.step()
        weights.append(_weight(layer))
        biases.append(_bias(layer))
    return np.stack(weights), None if layer.bias is None else np.stack(biases)


def _weight(layer: torch.nn.Linear) -> np.ndarray:
    return layer.weight.detach().numpy().copy()


def _bias(layer: torch.nn.Linear) -> np.ndarray | None:
    return None if layer.bias is None else layer.bias.detach().numpy().copy()


def _run_way(job: Job, way: str) -> RunRecord:
    layer = _layer(job.spec)
    try:
        optimizer = _optimizer(job, way, list(layer.parameters()))
    except Exception as exc:  # a framework refusing a way is a finding, not a crash
        return RunRecord(FRAMEWORK, way, error=f"{type(exc).__name__}: {exc}")
    explicit = way == "decoupled" and job.optimizer in ("sgd", "momentum")
    weights, biases = _train(layer, optimizer, job.spec, job.loss, job.steps,
                             manual_coeff=job.coeff if way == "manual" else 0.0,
                             decoupled_coeff=job.coeff if explicit else 0.0, lr=job.lr)
    return RunRecord(FRAMEWORK, way, weights, biases)


def _optimizer(job: Job, way: str, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    h, lr = job.hyper, job.lr
    wd = job.coeff if way == "weight_decay" else 0.0
    if job.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if job.optimizer == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=h["momentum"], nesterov=h["nesterov"],
                               weight_decay=wd)
    betas = (h["beta1"], h["beta2"])
    if job.optimizer == "adam" and way != "decoupled":
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=h["eps"], weight_decay=wd)
    # AdamW's default weight_decay is 0.01, so "none" and "manual" pass 0 explicitly.
    decayed = way in ("weight_decay", "decoupled")
    return torch.optim.AdamW(params, lr=lr, betas=betas, eps=h["eps"],
                             weight_decay=job.coeff if decayed else 0.0)


# ---------------------------------------------------------------- explain: any optimizer class

def run_native(item: ExplainItem, job: ExplainJob) -> RunRecord:
    """One optimizer class with native keyword arguments, decay applied one `way`:
    default (argument omitted), none (0.0), weight_decay (float), decoupled
    (decoupled_weight_decay=True), groups (weight decayed, bias group without the key)."""
    spec, coeff = job.spec, job.coeff
    layer = _layer(spec)
    cls = getattr(torch.optim, item.optimizer)
    kwargs: dict[str, Any] = dict(item.options)
    if item.way == "none":
        kwargs["weight_decay"] = 0.0
    elif item.way == "weight_decay":
        kwargs["weight_decay"] = coeff
    elif item.way == "decoupled":
        kwargs.update(weight_decay=coeff, decoupled_weight_decay=True)
    params: Any = list(layer.parameters())
    if item.way == "groups":
        params = [{"params": [layer.weight], "weight_decay": coeff}, {"params": [layer.bias]}]
    record = RunRecord(FRAMEWORK, item.way, optimizer=item.optimizer, variant=item.variant,
                       options=_shown(kwargs, item.way, coeff))
    try:
        optimizer = cls(params, **kwargs)
    except Exception as exc:
        record.error = f"{type(exc).__name__}: {exc}"
        return record
    record.hyper = _effective(cls, optimizer)
    try:
        record.weights, record.biases = _train(layer, optimizer, spec, job.loss, job.steps)
    except Exception as exc:
        record.error = f"{type(exc).__name__}: {exc}"
    return record


def _shown(kwargs: dict[str, Any], way: str, coeff: float) -> dict[str, Any]:
    shown = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    if way == "groups":
        shown["param_groups"] = [{"params": "weight", "weight_decay": coeff}, {"params": "bias"}]
    return shown


def _effective(cls: type, optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Every group's hyper-parameters as the optimizer holds them (defaults filled in)."""
    names = set(inspect.signature(cls.__init__).parameters) - {"self", "params"}
    return [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()
             if k in names and isinstance(v, (int, float, bool, tuple, type(None)))}
            for g in optimizer.param_groups]
