"""PaddlePaddle adapter: runs one Job's ways in paddle. The only module that imports paddle.

Paddle's Linear stores its weight [in, out]; this adapter loads and reports it
transposed, so everything outside speaks the canonical [out, in].
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

from .records import Job, RunRecord

FRAMEWORK = "paddle"


def _import_paddle():
    """Import paddle without its side effects on the importing process.

    paddle 3.x warns "No ccache found" (a UserWarning meant for C++ extension
    builders) and installs a stderr handler on the root logger at INFO level;
    both would leak into xdecay's output and into a user's own program.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No ccache found")
        import paddle
    root.handlers[:] = handlers
    root.setLevel(level)
    paddle.set_device("cpu")
    return paddle


paddle = _import_paddle()
from paddle.regularizer import L1Decay, L2Decay  # noqa: E402  (after the quiet import)


def version() -> str:
    return paddle.__version__


def run_job(job: Job) -> list[RunRecord]:
    return [_run_way(job, way) for way in job.ways]


def _run_way(job: Job, way: str) -> RunRecord:
    spec = job.spec
    out_f, in_f = spec.weight.shape
    weight_attr = None
    if way in ("param_attr", "param_attr+weight_decay"):
        weight_attr = paddle.ParamAttr(regularizer=L2Decay(job.param_attr_coeff))
    # A fresh layer per way: a regularizer set on one layer must not reach another run.
    layer = paddle.nn.Linear(in_f, out_f, weight_attr=weight_attr,
                             bias_attr=None if spec.bias is not None else False)
    layer.weight.set_value(spec.weight.T.copy())
    if spec.bias is not None:
        layer.bias.set_value(spec.bias)
    params = layer.parameters()
    try:
        optimizer = _optimizer(job, way, params)
    except Exception as exc:  # a framework refusing a way is a finding, not a crash
        return RunRecord(FRAMEWORK, way, error=f"{type(exc).__name__}: {exc}")

    x = paddle.to_tensor(spec.x)
    target = None if spec.target is None else paddle.to_tensor(spec.target)
    weights, biases = [_weight(layer)], [_bias(layer)]
    for _ in range(job.steps):
        optimizer.clear_grad()
        loss = _loss(job.loss, layer(x), target)
        if way == "manual":
            loss = loss + 0.5 * job.coeff * paddle.add_n([(p ** 2).sum() for p in params])
        loss.backward()
        if way == "decoupled" and job.optimizer in ("sgd", "momentum"):
            # No decoupled option in SGD/Momentum: decay as its own step, before
            # the update, from the old weights (as AdamW does).
            with paddle.no_grad():
                for p in params:
                    p.set_value(p * (1.0 - job.lr * job.coeff))
        optimizer.step()
        weights.append(_weight(layer))
        biases.append(_bias(layer))
    return RunRecord(FRAMEWORK, way, np.stack(weights),
                     None if spec.bias is None else np.stack(biases))


def _weight(layer) -> np.ndarray:
    return np.ascontiguousarray(layer.weight.numpy().T)


def _bias(layer) -> np.ndarray | None:
    return None if layer.bias is None else layer.bias.numpy().copy()


def _loss(kind: str, out, target):
    if kind == "mean":
        return paddle.mean(out)
    return paddle.mean((out - target) ** 2)


def _decay_argument(job: Job, way: str):
    """The optimizer's weight_decay argument for a way."""
    if way in ("weight_decay", "param_attr+weight_decay"):
        return job.coeff
    if way == "l2decay":
        return L2Decay(job.coeff)
    if way == "l1decay":
        return L1Decay(job.coeff)
    # AdamW's default weight_decay is 0.01, so "no decay" must be said explicitly.
    return 0.0 if job.optimizer == "adamw" else None


def _optimizer(job: Job, way: str, params):
    h, lr = job.hyper, job.lr
    wd = _decay_argument(job, way)
    if job.optimizer == "sgd":
        return paddle.optimizer.SGD(learning_rate=lr, parameters=params, weight_decay=wd)
    if job.optimizer == "momentum":
        return paddle.optimizer.Momentum(learning_rate=lr, momentum=h["momentum"],
                                         use_nesterov=h["nesterov"], parameters=params,
                                         weight_decay=wd)
    adam_args = dict(learning_rate=lr, beta1=h["beta1"], beta2=h["beta2"], epsilon=h["eps"],
                     parameters=params)
    if way == "decoupled":
        return paddle.optimizer.AdamW(weight_decay=job.coeff, **adam_args)
    if job.optimizer == "adam":
        return paddle.optimizer.Adam(weight_decay=wd, **adam_args)
    return paddle.optimizer.AdamW(weight_decay=wd, **adam_args)
