"""PyTorch adapter: runs one Job's ways in torch. The only module that imports torch."""
from __future__ import annotations

import numpy as np
import torch

from .records import Job, RunRecord

FRAMEWORK = "torch"


def version() -> str:
    return torch.__version__.split("+")[0]   # "2.13.0+cpu" -> "2.13.0"


def run_job(job: Job) -> list[RunRecord]:
    return [_run_way(job, way) for way in job.ways]


def _run_way(job: Job, way: str) -> RunRecord:
    spec = job.spec
    out_f, in_f = spec.weight.shape
    layer = torch.nn.Linear(in_f, out_f, bias=spec.bias is not None)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(spec.weight))
        if spec.bias is not None:
            layer.bias.copy_(torch.from_numpy(spec.bias))
    params = list(layer.parameters())
    try:
        optimizer = _optimizer(job, way, params)
    except Exception as exc:  # a framework refusing a way is a finding, not a crash
        return RunRecord(FRAMEWORK, way, error=f"{type(exc).__name__}: {exc}")

    x = torch.from_numpy(spec.x)
    target = None if spec.target is None else torch.from_numpy(spec.target)
    weights, biases = [layer.weight.detach().numpy().copy()], [_bias(layer)]
    for _ in range(job.steps):
        optimizer.zero_grad()
        loss = _loss(job.loss, layer(x), target)
        if way == "manual":
            loss = loss + 0.5 * job.coeff * sum((p ** 2).sum() for p in params)
        loss.backward()
        if way == "decoupled" and job.optimizer in ("sgd", "momentum"):
            # SGD has no decoupled option: decay as its own step, from the old
            # weights, before the update (where AdamW puts it: p *= 1 - lr*c).
            with torch.no_grad():
                for p in params:
                    p.mul_(1.0 - job.lr * job.coeff)
        optimizer.step()
        weights.append(layer.weight.detach().numpy().copy())
        biases.append(_bias(layer))
    return RunRecord(FRAMEWORK, way, np.stack(weights),
                     None if spec.bias is None else np.stack(biases))


def _bias(layer: torch.nn.Linear) -> np.ndarray | None:
    return None if layer.bias is None else layer.bias.detach().numpy().copy()


def _loss(kind: str, out: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    if kind == "mean":
        return out.mean()
    return ((out - target) ** 2).mean()


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
