"""PaddlePaddle adapter: runs one Job's ways in paddle. The only module that imports paddle.

Paddle's Linear stores its weight [in, out]; this adapter loads and reports it
transposed, so everything outside speaks the canonical [out, in].
"""
from __future__ import annotations

import inspect
import logging
import warnings
from typing import Any

import numpy as np

from .records import ExplainItem, ExplainJob, Job, RunRecord
from .spec import Spec

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


def _layer(spec: Spec, weight_attr=None):
    out_f, in_f = spec.weight.shape
    layer = paddle.nn.Linear(in_f, out_f, weight_attr=weight_attr,
                             bias_attr=None if spec.bias is not None else False)
    layer.weight.set_value(spec.weight.T.copy())
    if spec.bias is not None:
        layer.bias.set_value(spec.bias)
    return layer


def _train(layer, optimizer, spec: Spec, loss_kind: str, steps: int, manual_coeff: float = 0.0,
           decoupled_coeff: float = 0.0, lr: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
    """Run the steps; return float32 snapshots [steps + 1, ...], canonical layout."""
    params = layer.parameters()
    x = paddle.to_tensor(spec.x)
    target = None if spec.target is None else paddle.to_tensor(spec.target)
    weights, biases = [_weight(layer)], [_bias(layer)]
    for _ in range(steps):
        optimizer.clear_grad()
        out = layer(x)
        loss = paddle.mean(out) if loss_kind == "mean" else paddle.mean((out - target) ** 2)
        if manual_coeff:
            loss = loss + 0.5 * manual_coeff * paddle.add_n([(p ** 2).sum() for p in params])
        loss.backward()
        if decoupled_coeff:
            # No decoupled option in SGD/Momentum: decay as its own step, before
            # the update, from the old weights (as AdamW does).
            with paddle.no_grad():
                for p in params:
                    p.set_value(p * (1.0 - lr * decoupled_coeff))
        optimizer.step()
        weights.append(_weight(layer))
        biases.append(_bias(layer))
    return np.stack(weights), None if layer.bias is None else np.stack(biases)


def _run_way(job: Job, way: str) -> RunRecord:
    weight_attr = None
    if way in ("param_attr", "param_attr+weight_decay"):
        weight_attr = paddle.ParamAttr(regularizer=L2Decay(job.param_attr_coeff))
    # A fresh layer per way: a regularizer set on one layer must not reach another run.
    layer = _layer(job.spec, weight_attr)
    try:
        optimizer = _optimizer(job, way, layer.parameters())
    except Exception as exc:  # a framework refusing a way is a finding, not a crash
        return RunRecord(FRAMEWORK, way, error=f"{type(exc).__name__}: {exc}")
    explicit = way == "decoupled" and job.optimizer in ("sgd", "momentum")
    weights, biases = _train(layer, optimizer, job.spec, job.loss, job.steps,
                             manual_coeff=job.coeff if way == "manual" else 0.0,
                             decoupled_coeff=job.coeff if explicit else 0.0, lr=job.lr)
    return RunRecord(FRAMEWORK, way, weights, biases)


def _weight(layer) -> np.ndarray:
    return np.ascontiguousarray(layer.weight.numpy().T)


def _bias(layer) -> np.ndarray | None:
    return None if layer.bias is None else layer.bias.numpy().copy()


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


# ---------------------------------------------------------------- explain: any optimizer class

# What each explain way passes as the optimizer's weight_decay, and whether the weight
# carries ParamAttr(regularizer=L2Decay(param_attr_coeff)). "default" omits the argument.
NATIVE_WAYS = {
    "none": (lambda c: 0.0, False),
    "weight_decay": (lambda c: c, False),
    "l2decay": (lambda c: L2Decay(c), False),
    "l1decay": (lambda c: L1Decay(c), False),
    "param_attr": (lambda c: 0.0, True),
    "param_attr+weight_decay": (lambda c: c, True),
    "groups": (None, False),
    "default": (None, False),
}


# Lamb takes its decay as lamb_weight_decay (it has no weight_decay argument).
DECAY_ARG = {"Lamb": "lamb_weight_decay"}


def run_native(item: ExplainItem, job: ExplainJob) -> RunRecord:
    """One optimizer class with native keyword arguments, decay given one `way`
    (NATIVE_WAYS; "groups": weight group with weight_decay=coeff, bias group without it)."""
    spec, coeff, param_attr_coeff = job.spec, job.coeff, job.param_attr_coeff
    decay, with_attr = NATIVE_WAYS[item.way]
    layer = _layer(spec, paddle.ParamAttr(regularizer=L2Decay(param_attr_coeff)) if with_attr else None)
    cls = getattr(paddle.optimizer, item.optimizer)
    kwargs: dict[str, Any] = dict(item.options)
    decay_arg = DECAY_ARG.get(item.optimizer, "weight_decay")
    takes_decay = decay_arg in inspect.signature(cls.__init__).parameters
    # "param_attr" means the ParamAttr alone: a class without a decay argument gets none.
    if decay is not None and (takes_decay or item.way != "param_attr"):
        kwargs[decay_arg] = decay(coeff)
    params: Any = layer.parameters()
    if item.way == "groups":
        params = [{"params": [layer.weight], decay_arg: coeff}, {"params": [layer.bias]}]
    options = {k: _plain(v) for k, v in kwargs.items()}
    if kwargs.get("apply_decay_param_fun") == "weight":
        # Decay the weight only, by parameter name, as users exclude biases.
        kwargs["apply_decay_param_fun"] = lambda name, _w=layer.weight.name: name == _w
        options["apply_decay_param_fun"] = "lambda name: name == weight.name"
    if with_attr:
        options["weight_attr"] = f"ParamAttr(regularizer=L2Decay({param_attr_coeff}))"
    if item.way == "groups":
        options["param_groups"] = [{"params": "weight", decay_arg: coeff}, {"params": "bias"}]
    record = RunRecord(FRAMEWORK, item.way, optimizer=item.optimizer, variant=item.variant,
                       options=options, hyper=[_effective(cls, kwargs)])
    try:
        optimizer = cls(parameters=params, **kwargs)
        record.weights, record.biases = _train(layer, optimizer, spec, job.loss, job.steps)
    except Exception as exc:  # a way the framework rejects is a finding
        record.error = f"{type(exc).__name__}: {exc}"
    return record


def _plain(value: Any) -> Any:
    """A JSON-able picture of an argument: regularizers by name and coefficient."""
    if isinstance(value, (L1Decay, L2Decay)):
        return f"{type(value).__name__}({value._coeff})"
    return list(value) if isinstance(value, tuple) else value


def _effective(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The constructor's defaults overlaid with the arguments given."""
    out = {}
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name in ("self", "parameters", "name", "grad_clip"):
            continue
        value = kwargs.get(name, p.default)
        if isinstance(value, (int, float, bool, tuple, list, type(None))):
            out[name] = _plain(value)
    return out
