"""PaddlePaddle adapter: runs one Job's ways in paddle. The only module that imports paddle.

Paddle's Linear stores its weight [in, out]; this adapter loads and reports it
transposed, so everything outside speaks the canonical [out, in].
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..case import Accumulate, Decay, Regularizer
from ..engine.clipping import Clip
from ..engine.precision import Precision
from ..engine.schedules import Schedule
from ..engine.optimizers import (
    CONSTANT_FUNCTIONS,
    EXPLAIN_ATTRS,
    EXPLAIN_CLIP,
    OPTIMIZERS,
    Construction,
    TensorValue,
    construction,
    explain_construction,
    explain_manual,
)
from ..engine.layers import LAYER_NORM_EPS, Layer, Native, to_native
from ..engine.reference import parameters
from ..engine.spec import Spec
from ..training import TrainJob, decay_label, epoch_batches
from . import audit_capture, step_loss
from .records import Allocate, AuditJob, ExplainItem, ExplainJob, Job, RunRecord, in_memory

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


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """Leave paddle's process-wide state as it was found: a warm worker's next request
    (xdecay.Session) must see the default dtype and random state of a fresh one, and
    parameter names counted from linear_0 again (a fresh name generator meanwhile)."""
    dtype, rng = paddle.get_default_dtype(), paddle.get_rng_state()
    try:
        with paddle.utils.unique_name.guard():
            yield
    finally:
        paddle.set_default_dtype(dtype)
        paddle.set_rng_state(rng)


class Model(paddle.nn.Layer):
    """The case's layer (engine/layers.py), loaded from the spec's canonical values;
    parameters by canonical name, ParamAttr per name (the Linear's ways)."""

    def __init__(self, spec: Spec, attrs: dict[str, Any] | None = None):
        super().__init__()
        self.layer = spec.model
        for name, module in _modules(self.layer, attrs or {}).items():
            setattr(self, name, module)
        own = dict(self.named_parameters())
        for name, value in to_native(self.layer, FRAMEWORK, spec.params).items():
            own[name].set_value(value)

    def named(self) -> dict[str, Any]:
        own = dict(self.named_parameters())
        return {d.name: own[d.paddle.name] for d in self.layer.defs}

    def forward(self, x):
        for module in self.children():
            x = module(x)     # MultiHeadAttention(query): key and value default to the query
        return x


def _modules(layer: Layer, attrs: dict[str, Any]) -> dict[str, Any]:
    """The paddle layers of a layer kind, in forward order, named as layers.KINDS says,
    each parameter with its ParamAttr by canonical name (None: paddle's default). Not
    MultiHeadAttention (layers.Kind.param_attr: one attr for all four projections)."""
    g, nn, a = layer.get, paddle.nn, attrs.get
    if layer.kind == "linear":
        out = {"linear": nn.Linear(layer.in_features, layer.out_features, weight_attr=attrs.get("weight"),
                                   bias_attr=attrs.get("bias") if layer.bias else False)}
        if layer.norm:
            out["norm"] = nn.LayerNorm(layer.out_features, epsilon=LAYER_NORM_EPS,
                                       weight_attr=attrs.get("norm_gain"), bias_attr=attrs.get("norm_bias"))
        return out
    if layer.kind == "conv2d":
        return {"conv": nn.Conv2D(g("in_channels"), g("out_channels"), g("kernel_size"), weight_attr=a("weight"),
                                  bias_attr=a("bias") if g("bias") else False)}
    if layer.kind == "embedding":
        return {"embedding": nn.Embedding(g("num_embeddings"), g("embedding_dim"), sparse=g("sparse"),
                                          weight_attr=a("weight"))}
    if layer.kind == "block":
        return {"fc1": nn.Linear(g("in_features"), g("hidden"), weight_attr=a("fc1_weight"), bias_attr=a("fc1_bias")),
                "norm": nn.LayerNorm(g("hidden"), epsilon=LAYER_NORM_EPS, weight_attr=a("norm_gain"),
                                     bias_attr=a("norm_bias")),
                "fc2": nn.Linear(g("hidden"), g("out_features"), weight_attr=a("fc2_weight"), bias_attr=a("fc2_bias"))}
    return {"attention": nn.MultiHeadAttention(g("embed_dim"), g("num_heads"))}


def _store(native: Native, p, out: np.ndarray) -> None:
    """The parameter's value in the canonical layout, written into `out`."""
    if p.dtype != paddle.float32:     # a low-precision parameter: float32 holds it exactly
        p = p.astype("float32")
    if native.transpose:
        _transpose_into(p.numpy(), out)
    else:
        out[...] = p.numpy()


ROWS = 16


def _transpose_into(a: np.ndarray, out: np.ndarray) -> None:
    """out = a.T, ROWS rows of a (ROWS columns of out) at a time: each block's rows stay
    in the cache while numpy writes them out column-wise (4096x4096 float32: 13 ms,
    against 97 ms for out[...] = a.T, 28 ms in 64x64 tiles, 113 ms through
    paddle.transpose's strided view)."""
    for i in range(0, a.shape[0], ROWS):
        out[:, i:i + ROWS] = a[i:i + ROWS].T


@contextlib.contextmanager
def _captured_logs(warned: bool = False):
    """Collect what paddle logs (its precedence notes go to the root logger at INFO) and,
    if `warned`, the warnings it gives, once each (under [precision]: its AMP says every
    step that it "makes no effect" on a CPU place)."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(f"{record.levelname}: {record.getMessage()}")

    root, handler = logging.getLogger(), Collect(logging.INFO)
    saved = (list(root.handlers), root.level)
    root.handlers[:] = [handler]      # paddle's own stderr handler stays silent meanwhile
    root.setLevel(logging.INFO)
    try:
        with warnings.catch_warnings(record=True) if warned else contextlib.nullcontext([]) as caught:
            if warned:
                warnings.simplefilter("always")
            yield messages
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    for w in caught:
        line = f"{w.category.__name__}: {w.message}"
        if line not in messages:
            messages.append(line)


class Amp:
    """[precision] in paddle, as its AMP guide writes it (engine/precision.py): O2 =
    paddle.amp.decorate (parameters cast, master_weight) and the forward under
    auto_cast(level="O2"); autocast = auto_cast(level="O1"); a GradScaler scales the
    loss, and its step() unscales before the optimizer's (grad_clip, then decay).
    On a CPU build paddle leaves all of it without effect (warning "makes no effect"):
    the run records the dtypes it really got."""

    def __init__(self, precision: Precision | None = None):
        self.precision = precision
        self.scaler = (paddle.amp.GradScaler(init_loss_scaling=precision.init_scale)
                       if precision is not None and precision.init_scale is not None else None)
        self.forward = "float32"          # the dtype of the model's output, as seen

    def decorate(self, model: Model, optimizer) -> tuple[Model, Any]:
        p = self.precision
        if p is None or p.autocast:
            return model, optimizer
        return paddle.amp.decorate(models=model, optimizers=optimizer, level="O2", dtype=p.dtype,
                                   master_weight=p.master_weights)

    def autocast(self) -> Any:
        p = self.precision
        if p is None:
            return contextlib.nullcontext()
        return paddle.amp.auto_cast(level="O1" if p.autocast else "O2", dtype=p.dtype)

    def backward(self, loss) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()


def _dtype(tensor) -> str:
    return str(tensor.dtype).removeprefix("paddle.")


def _train(model: Model, optimizer, spec: Spec, loss_kind: str, steps: int,
           decay: Decay | None = None, manual: bool = False, decoupled: bool = False,
           allocate: Allocate = in_memory, scheduler: Any = None,
           lrs: list[float] | None = None, accumulate: Accumulate | None = None,
           amp: Amp | None = None) -> dict[str, np.ndarray]:
    """Run the steps; return float32 snapshots [steps + 1, ...], canonical names and layout.
    With an lr scheduler (the optimizer's learning_rate), it steps after every optimizer
    step and `lrs` gets each step's lr."""
    amp = amp or Amp()
    params = model.named()
    natives = {d.name: d.paddle for d in model.layer.defs}
    x = paddle.to_tensor(spec.x)
    target = None if spec.target is None else paddle.to_tensor(spec.target)
    snaps = {n: allocate((steps + 1, *spec.params[n].shape)) for n in params}
    for n, p in params.items():
        _store(natives[n], p, snaps[n][0])
    for k in range(1, steps + 1):
        if spec.fresh is not None and k > 1:      # [data] fresh: a new batch every step
            data = spec.step(k - 1)
            x = paddle.to_tensor(data.x)
            target = None if data.target is None else paddle.to_tensor(data.target)
        optimizer.clear_grad()
        for part in step_loss.micro_batches(len(spec.x), accumulate):
            with amp.autocast():
                out = model(x[part])
                amp.forward = _dtype(out)
                loss = step_loss.loss(out, None if target is None else target[part], loss_kind,
                                      decay.manual if manual else {}, params)
            if accumulate is not None and accumulate.divide_loss:
                loss = loss / accumulate.micro_batches
            amp.backward(loss)       # gradients add up over the micro-batches
        # The lr in use: optimizer.get_lr() (the scheduler's get_lr() computes the next one).
        lr = optimizer.get_lr()
        if lrs is not None:
            lrs.append(lr)
        if decoupled:
            # No decoupled option in SGD/Momentum: decay as its own step, before
            # the update, from the old weights (as AdamW does).
            with paddle.no_grad():
                for p in params.values():
                    p.set_value(p * (1.0 - lr * decay.coeff))
        amp.step(optimizer)
        if scheduler is not None:
            scheduler.step()
        for n, p in params.items():
            _store(natives[n], p, snaps[n][k])
    return snaps


def run_job(job: Job, allocate: Allocate = in_memory) -> list[RunRecord]:
    return [_run_way(job, way, allocate) for way in job.ways]


def _regularizer(reg: Regularizer):
    return (L2Decay if reg.kind == "l2" else L1Decay)(reg.coeff)


def _run_way(job: Job, way: str, allocate: Allocate) -> RunRecord:
    words: dict[str, dict[str, Any]] = {}
    if way.startswith("param_attr"):
        # ParamAttr's regularizer and its learning_rate (a multiplier on the optimizer's lr).
        for n, reg in job.decay.param_attr.items():
            words.setdefault(n, {})["regularizer"] = _regularizer(reg)
        for n, k in job.decay.param_attr_lr.items():
            words.setdefault(n, {})["learning_rate"] = k
    if job.clip is not None:
        # A parameter the clip leaves out: exempt from grad_clip, in every way.
        for n in job.spec.params:
            if not job.clip.clips(n):
                words.setdefault(n, {})["need_clip"] = False
    attrs = {n: paddle.ParamAttr(**w) for n, w in words.items()}
    # A fresh model per way: state set on one layer's parameters must not reach another run.
    model = Model(job.spec, attrs)
    named = model.named()
    record = RunRecord(FRAMEWORK, way)
    with _captured_logs(warned=job.precision is not None) as record.logs:
        try:
            amp = Amp(job.precision)
            if way == "after_groups":
                # Does building an optimizer change the parameters for a later one?
                _build(_construction(job, "groups"), _groups(job.decay, named))
            built = _construction(job, way)
            if way == "apply_decay_param_fun":
                decayed = {named[n].name for n in job.decay.decay_params}
                if OPTIMIZERS[job.optimizer].paddle.decay_filter == "exclude_from_weight_decay_fn":
                    built.kwargs["exclude_from_weight_decay_fn"] = lambda p: p.name not in decayed
                else:
                    built.kwargs["apply_decay_param_fun"] = lambda name: name in decayed
            given, scheduler = dict(built.kwargs), None
            if job.schedule is not None:
                scheduler = built.kwargs["learning_rate"] = _scheduler(job.schedule, built.kwargs["learning_rate"])
            optimizer, cls = _build(built, _groups(job.decay, named) if "groups" in way
                                    else list(named.values()), job.clip)
            model, optimizer = amp.decorate(model, optimizer)
            record.dtype = _dtype(next(iter(named.values())))
            # The base lr as given (a scheduler's lr of each step is its series["lr"]).
            record.optimizer, record.hyper = built.cls, [_effective(cls, given)]
            lrs: list[float] = []
            record.params = _train(model, optimizer, job.spec, job.loss, job.steps, job.decay,
                                   manual=way.startswith("manual"), decoupled=built.explicit_decoupled,
                                   allocate=allocate, scheduler=scheduler, lrs=lrs,
                                   accumulate=job.accumulate, amp=amp)
            record.forward = amp.forward
            if job.schedule is not None:
                record.series["lr"] = np.array(lrs)
        except Exception as exc:  # a framework refusing a way is a finding, not a crash
            record.error = f"{type(exc).__name__}: {exc}"
            record.params = {}
    return record


def _scheduler(schedule: Schedule, lr: float):
    """The schedule as paddle's LRScheduler, given to the optimizer as its learning_rate."""
    return schedule.native(FRAMEWORK, lr).build(paddle.optimizer.lr)


def _construction(job: Job, way: str) -> Construction:
    return construction(OPTIMIZERS[job.optimizer], FRAMEWORK, job.lr, job.hyper, job.native, way, job.coeff)


def _groups(decay: Decay, named: dict[str, Any]) -> list[dict[str, Any]]:
    """Groups as users write them: a group without the key gets the optimizer's setting.
    A group's lr_scale is paddle's group learning_rate, a multiplier on the optimizer's."""
    return [{"params": [named[n] for n in g.params],
             **({"weight_decay": g.weight_decay} if g.has_decay else {}),
             **({"learning_rate": g.lr_scale} if g.lr_scale is not None else {})} for g in decay.groups]


def _build(built: Construction, params: Any, clip: Clip | None = None) -> tuple[Any, type]:
    """The optimizer of a construction (and its class): the one place paddle optimizers
    are made. A Regularizer argument becomes paddle's L2Decay / L1Decay; a clip becomes
    grad_clip, which paddle applies inside step, before its regularization."""
    cls = getattr(paddle.optimizer, built.cls, None)
    if cls is None:        # an older or newer paddle without this class
        raise AttributeError(f"paddle {version()} has no paddle.optimizer.{built.cls}")
    kwargs = {k: _regularizer(v) if isinstance(v, Regularizer)
              else paddle.to_tensor(v.value, dtype="float32") if isinstance(v, TensorValue) else v
              for k, v in built.kwargs.items()}
    for name in CONSTANT_FUNCTIONS[FRAMEWORK]:
        if isinstance(kwargs.get(name), (int, float)) and not isinstance(kwargs[name], bool):
            kwargs[name] = lambda param, _value=kwargs[name]: _value
    if clip is not None:
        kwargs["grad_clip"] = _grad_clip(clip)
    return cls(parameters=params, **kwargs), cls


def _grad_clip(clip: Clip):
    if clip.kind == "global_norm":
        return paddle.nn.ClipGradByGlobalNorm(clip.max)
    if clip.kind == "norm":
        return paddle.nn.ClipGradByNorm(clip.max)
    return paddle.nn.ClipGradByValue(clip.max)


# ---------------------------------------------------------------- explain: any optimizer class

def run_native(item: ExplainItem, job: ExplainJob) -> RunRecord:
    """One optimizer class with native keyword arguments, decay given one explain way
    (optimizers.explain_construction; the param_attr ways put ParamAttr(L2Decay(
    param_attr_coeff)) on the weight; "groups": the weight in a group with the decay
    argument = c, the rest in a group without it)."""
    spec, coeff, param_attr_coeff = job.spec, job.coeff, job.param_attr_coeff
    attr = EXPLAIN_ATTRS.get(item.way)           # (parameter, regularizer kind) or None
    regularizer = None if attr is None else _regularizer(Regularizer(attr[1], param_attr_coeff))
    model = Model(spec, None if attr is None else {attr[0]: paddle.ParamAttr(regularizer=regularizer)})
    named = model.named()
    cls = getattr(paddle.optimizer, item.optimizer, None)
    built, arg = explain_construction(FRAMEWORK, item.optimizer, item.options, item.way, coeff)
    kwargs = built.kwargs
    params: Any = list(named.values())
    if item.way == "groups":
        params = [{"params": [named["weight"]], arg: coeff},
                  {"params": [p for n, p in named.items() if n != "weight"]}]
    options = {k: _plain(v) for k, v in kwargs.items()}
    if kwargs.get("apply_decay_param_fun") == "weight":
        # Decay the weight only, by parameter name, as users exclude biases.
        kwargs["apply_decay_param_fun"] = lambda name, _w=named["weight"].name: name == _w
        options["apply_decay_param_fun"] = "lambda name: name == weight.name"
    if attr is not None:
        options[f"{attr[0]}_attr"] = f"ParamAttr(regularizer={_plain(Regularizer(attr[1], param_attr_coeff))})"
    manual = item.way in ("manual", "clip+manual")
    if manual:
        options["loss_term"] = f"0.5*{coeff}*sum(p^2) over weight, bias"
    clip = EXPLAIN_CLIP if item.way.startswith("clip+") else None
    if clip is not None:
        options["grad_clip"] = clip.native(FRAMEWORK).removeprefix("grad_clip=")
    if item.way == "groups":
        options["param_groups"] = [{"params": "weight", arg: coeff}, {"params": "bias"}]
    record = RunRecord(FRAMEWORK, item.way, optimizer=item.optimizer, variant=item.variant,
                       options=options, hyper=[_effective(cls, kwargs)] if cls else [])
    try:
        optimizer, _ = _build(built, params, clip)
        record.params = _train(model, optimizer, spec, job.loss, job.steps,
                               Decay(coeff, {}, explain_manual(coeff), (), ()), manual=manual)
    except Exception as exc:  # a way the framework rejects is a finding
        record.error = f"{type(exc).__name__}: {exc}"
    return record


def _plain(value: Any) -> Any:
    """A JSON-able picture of an argument: regularizers by name and coefficient."""
    if isinstance(value, Regularizer):
        return f"{value.kind.upper()}Decay({value.coeff})"
    return list(value) if isinstance(value, tuple) else value


def _effective(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The constructor's defaults overlaid with the arguments given."""
    out = {}
    for name, p in parameters(cls.__init__).items():
        if name in ("self", "parameters", "name", "grad_clip"):
            continue
        value = kwargs.get(name, p.default)
        if isinstance(value, (int, float, bool, tuple, list, type(None))):
            out[name] = _plain(value)
    return out


# ---------------------------------------------------------------- training (seed 002, seed 000)

def run_train(job: TrainJob) -> list[RunRecord]:
    if job.kind == "overfit":
        return [_overfit(job, wd) for wd in job.config["weight_decays"]]
    return [_schedule(job, decoupled) for decoupled in (False, True)]


def _linear(job: TrainJob):
    weight = job.arrays["weight"]
    layer = paddle.nn.Linear(weight.shape[1], 1)
    layer.weight.set_value(weight.T.copy())          # paddle's weight is [in, out]
    layer.bias.set_value(job.arrays["bias"])
    return layer


def _snapshot(layer) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(layer.weight.numpy().T), layer.bias.numpy().copy()


def _overfit(job: TrainJob, wd: float) -> RunRecord:
    """Seed 002: SGD, the weight in a group with weight_decay, the bias in one without."""
    layer = _linear(job)
    x, y, train = paddle.to_tensor(job.arrays["x"]), paddle.to_tensor(job.arrays["y"]), job.config["train"]
    optimizer = paddle.optimizer.SGD(learning_rate=job.config["lr"], parameters=[
        {"params": [layer.weight], "weight_decay": wd}, {"params": [layer.bias]}])
    start, losses = _snapshot(layer), {"train_loss": [], "test_loss": []}
    for epoch in epoch_batches(job):
        for idx in epoch:
            i = paddle.to_tensor(idx)
            optimizer.clear_grad()
            paddle.mean((layer(x[i]) - y[i]) ** 2).backward()
            optimizer.step()
        with paddle.no_grad():
            losses["train_loss"].append(float(paddle.mean((layer(x[:train]) - y[:train]) ** 2)))
            losses["test_loss"].append(float(paddle.mean((layer(x[train:]) - y[train:]) ** 2)))
    end = _snapshot(layer)
    return RunRecord(FRAMEWORK, decay_label(wd), {"weight": np.stack([start[0], end[0]]),
                                                  "bias": np.stack([start[1], end[1]])},
                     series={k: np.array(v) for k, v in losses.items()})


def _schedule(job: TrainJob, decoupled: bool) -> RunRecord:
    """Seed 000: Adam(weight_decay) or AdamW under CosineAnnealingDecay, one batch per step."""
    layer = _linear(job)
    x, y, c = paddle.to_tensor(job.arrays["x"]), paddle.to_tensor(job.arrays["y"]), job.config["weight_decay"]
    scheduler = paddle.optimizer.lr.CosineAnnealingDecay(learning_rate=job.config["lr"],
                                                         T_max=job.config["t_max"],
                                                         eta_min=job.config["eta_min"])
    cls = paddle.optimizer.AdamW if decoupled else paddle.optimizer.Adam
    optimizer = cls(learning_rate=scheduler, parameters=layer.parameters(), weight_decay=c)
    snaps, lrs = [_snapshot(layer)], []
    for idx in (i for epoch in epoch_batches(job) for i in epoch):
        i = paddle.to_tensor(idx)
        # The lr this step uses. (scheduler.get_lr() is no getter: it applies the
        # recursive cosine formula once more to the current value.)
        lrs.append(float(optimizer.get_lr()))
        optimizer.clear_grad()
        paddle.mean((layer(x[i]) - y[i]) ** 2).backward()
        optimizer.step()
        scheduler.step()
        snaps.append(_snapshot(layer))
    return RunRecord(FRAMEWORK, "adamw" if decoupled else "adam",
                     {"weight": np.stack([s[0] for s in snaps]), "bias": np.stack([s[1] for s in snaps])},
                     series={"lr": np.array(lrs)})


# ---------------------------------------------------------------- xdecay audit (the user's own model)

def run_audit(job: AuditJob) -> RunRecord:
    return audit_capture.run_audit(job, AUDIT_HOOKS)


def _take(t, idx: np.ndarray | None) -> np.ndarray:
    with paddle.no_grad():
        flat = t.reshape([-1])
        if idx is not None:
            flat = paddle.gather(flat, paddle.to_tensor(idx))
        return np.array(flat.astype("float32").numpy(), np.float32)


def _optimizer_params(optimizer: Any) -> list[tuple[Any, int]] | None:
    if not isinstance(optimizer, paddle.optimizer.Optimizer):
        return None
    groups = optimizer._param_groups or []
    if groups and isinstance(groups[0], dict):
        return [(p, g) for g, group in enumerate(groups) for p in group["params"]]
    return [(p, 0) for p in optimizer._parameter_list or []]


def _refusal(optimizer: Any, params: list) -> str | None:
    # grad_clip runs inside step(), before the decay: the gradient the decay joins is not
    # the one captured after backward().
    if optimizer._grad_clip is not None:
        return "the optimizer clips gradients inside step() (grad_clip): audit it without grad_clip"
    if optimizer._accumulators:
        return "the optimizer has already stepped (its accumulators exist): return a fresh one"
    if getattr(optimizer, "_multi_precision", False) and any(p.dtype != paddle.float32 for p in params):
        # The optimizer steps a float32 master copy the audit does not see; the parameter
        # is that copy rounded, so replaying from it would not be the step taken.
        return "multi_precision keeps float32 master weights of the low-precision parameters: audit it without"
    return None


def _regularizer_text(reg: Any) -> str:
    return f"{type(reg).__name__}({reg._coeff!r})"


def _describe(optimizer: Any, p: Any, g: int, groups: int) -> tuple[dict[str, Any], list[tuple[str, float | None]]]:
    """Paddle's places for decay: the optimizer's argument, the parameter's group, the
    parameter's own regularizer (ParamAttr, or left there by an optimizer built earlier
    with groups), AdamW's apply_decay_param_fun and Lamb's exclude_from_weight_decay_fn."""
    cls = type(optimizer)
    listed = optimizer._param_groups or []
    group = listed[g] if listed and isinstance(listed[0], dict) else {}
    hyper = {}
    for name in parameters(cls.__init__):
        value = group.get(name, getattr(optimizer, f"_{name}", None))
        if name not in ("self", "parameters", "learning_rate") and isinstance(value, (int, float, bool, tuple, list)):
            hyper[name] = _plain(value)
    sources: list[tuple[str, float | None]] = []
    where = f"group {g}" if groups > 1 else "optimizer"
    own = getattr(optimizer, "_weight_decay", None)
    if isinstance(own, (int, float)) and not isinstance(own, bool) or hasattr(optimizer, "_lamb_weight_decay"):
        # AdamW (decoupled) and Lamb (inside its trust ratio) keep a float of their own.
        arg = "lamb_weight_decay" if hasattr(optimizer, "_lamb_weight_decay") else "weight_decay"
        value = group.get(arg, getattr(optimizer, f"_{arg}"))
        exclude = getattr(optimizer, "_apply_decay_param_fun", None)
        skipped = exclude is not None and not exclude(p.name)
        if getattr(optimizer, "_exclude_from_weight_decay_fn", None) is not None:
            skipped = bool(optimizer._exclude_from_weight_decay_fn(p))
        fun = "apply_decay_param_fun" if arg == "weight_decay" else "exclude_from_weight_decay_fn"
        sources.append((f"{where}: {cls.__name__} {arg}={value!r}" + (f", off by {fun}({p.name})" if skipped else ""),
                        None if skipped else float(value)))
    elif group.get("regularization_method", getattr(optimizer, "_regularization_method", "")) == "l2_decay":
        # Momentum takes an L2 weight_decay into its own kernel (per group) instead of `regularization`.
        coeff = group.get("regularization_coeff", getattr(optimizer, "_regularization_coeff", 0.0))
        sources.append((f"{where}: {cls.__name__} weight_decay=L2Decay({coeff!r}), in its kernel", float(coeff)))
    elif group.get("weight_decay") is not None:
        decay = group["weight_decay"]
        sources.append((f"group {g}: weight_decay={_describe_decay(decay)}", float(getattr(decay, "_coeff", decay))))
    elif optimizer.regularization is not None:
        sources.append((f"optimizer: weight_decay={_regularizer_text(optimizer.regularization)}",
                        float(optimizer.regularization._coeff)))
    if p.regularizer is not None and group.get("weight_decay") is None:
        text = f"param.regularizer {_regularizer_text(p.regularizer)} (ParamAttr, or an earlier optimizer's group)"
        sources.append((text, float(p.regularizer._coeff)))
    return hyper, sources


def _describe_decay(value: Any) -> str:
    return _regularizer_text(value) if hasattr(value, "_coeff") else repr(value)


def _lr(optimizer: Any, p: Any, g: int) -> float:
    """The lr the parameter steps with: the optimizer's (float32) times the parameter's
    multiplier (ParamAttr learning_rate, or its group's), multiplied in float32."""
    return float(np.float32(optimizer.get_lr()) * np.float32(p.optimize_attr.get("learning_rate", 1.0)))


AUDIT_HOOKS = audit_capture.Hooks(
    framework=FRAMEWORK,
    is_model=lambda m: isinstance(m, paddle.nn.Layer),
    is_tensor=lambda t: isinstance(t, paddle.Tensor),
    is_float=lambda t: paddle.is_floating_point(t),
    dtype=lambda t: str(t.dtype).removeprefix("paddle."),
    trainable=lambda p: not p.stop_gradient,
    take=_take,
    constant=lambda a, like: paddle.to_tensor(a, dtype=like.dtype),
    optimizer_params=_optimizer_params,
    refusal=_refusal,
    zero_grad=lambda o: o.clear_grad(),
    lr=_lr,
    describe=_describe,
)
