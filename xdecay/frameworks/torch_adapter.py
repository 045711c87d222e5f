"""PyTorch adapter: runs jobs in torch. The only module that imports torch."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ..case import Accumulate, Decay
from ..engine.clipping import Clip
from ..engine.precision import Precision
from ..engine.schedules import Schedule
from ..engine.optimizers import (
    EXPLAIN_CLIP,
    OPTIMIZERS,
    Construction,
    TensorValue,
    construction,
    explain_construction,
    explain_manual,
)
from ..engine.layers import LAYER_NORM_EPS, Layer, canonical_view, to_native
from ..engine.reference import parameters
from ..engine.spec import Spec
from ..training import TrainJob, decay_label, epoch_batches
from . import audit_capture, step_loss
from .records import Allocate, AuditJob, ExplainItem, ExplainJob, Job, RunRecord, in_memory

FRAMEWORK = "torch"


def version() -> str:
    return torch.__version__.split("+")[0]   # "2.13.0+cpu" -> "2.13.0"


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """Leave torch's process-wide state as it was found: a warm worker's next request
    (xdecay.Session) must see the default dtype, random state and grad mode of a fresh one."""
    dtype, rng, grad = torch.get_default_dtype(), torch.random.get_rng_state(), torch.is_grad_enabled()
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        torch.random.set_rng_state(rng)
        torch.set_grad_enabled(grad)


class Model(torch.nn.Module):
    """The case's layer (engine/layers.py), loaded from the spec's canonical values;
    parameters by canonical name (named: views of packed ones) and as torch holds them
    (native: what optimizers, groups and clips get)."""

    def __init__(self, spec: Spec):
        super().__init__()
        self.layer = spec.model
        for name, module in _modules(self.layer).items():
            setattr(self, name, module)
        own = dict(self.named_parameters())
        with torch.no_grad():
            for name, value in to_native(self.layer, FRAMEWORK, spec.params).items():
                own[name].copy_(torch.from_numpy(value))

    def named(self) -> dict[str, torch.Tensor]:
        own = dict(self.named_parameters())
        return {d.name: canonical_view(d.torch, own[d.torch.name]) for d in self.layer.defs}

    def native(self, names: tuple[str, ...] | None = None) -> list[torch.nn.Parameter]:
        """The native parameters holding these canonical ones (all: every one), once each."""
        own = dict(self.named_parameters())
        wanted = [d.torch.name for d in self.layer.defs if names is None or d.name in names]
        return [own[n] for n in dict.fromkeys(wanted)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layer.kind == "mha":
            return self.attention(x, x, x, need_weights=False)[0]
        for module in self.children():
            x = module(x)
        return x


def _modules(layer: Layer) -> dict[str, torch.nn.Module]:
    """The torch modules of a layer kind, in forward order, named as layers.KINDS says."""
    g = layer.get
    if layer.kind == "linear":
        out = {"linear": torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)}
        return out | ({"norm": torch.nn.LayerNorm(layer.out_features, eps=LAYER_NORM_EPS)} if layer.norm else {})
    if layer.kind == "conv2d":
        return {"conv": torch.nn.Conv2d(g("in_channels"), g("out_channels"), g("kernel_size"), bias=g("bias"))}
    if layer.kind == "embedding":
        return {"embedding": torch.nn.Embedding(g("num_embeddings"), g("embedding_dim"), sparse=g("sparse"))}
    if layer.kind == "block":
        return {"fc1": torch.nn.Linear(g("in_features"), g("hidden")),
                "norm": torch.nn.LayerNorm(g("hidden"), eps=LAYER_NORM_EPS),
                "fc2": torch.nn.Linear(g("hidden"), g("out_features"))}
    return {"attention": torch.nn.MultiheadAttention(g("embed_dim"), g("num_heads"), batch_first=True)}


class Amp:
    """[precision] in torch, as users write it (engine/precision.py): parameters and
    inputs cast with .to(dtype), or the forward under torch.autocast; a GradScaler
    scales the loss for backward and unscales the gradients before clipping and step."""

    def __init__(self, precision: Precision | None = None):
        self.precision = precision
        self.scaler = (torch.amp.GradScaler("cpu", init_scale=precision.init_scale)
                       if precision is not None and precision.init_scale is not None else None)
        self.forward = "float32"          # the dtype of the model's output, as seen

    @property
    def _stored(self) -> torch.dtype | None:
        p = self.precision
        return None if p is None or p.autocast else getattr(torch, p.dtype)

    def cast(self, value: torch.Tensor | torch.nn.Module) -> Any:
        return value if self._stored is None else value.to(self._stored)

    def autocast(self) -> Any:
        p = self.precision
        return (torch.autocast("cpu", dtype=getattr(torch, p.dtype)) if p is not None and p.autocast
                else contextlib.nullcontext())

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()


def _train(model: Model, optimizer: torch.optim.Optimizer, spec: Spec, loss_kind: str, steps: int,
           decay: Decay | None = None, manual: bool = False, decoupled: bool = False,
           allocate: Allocate = in_memory, clip: Clip | None = None, scheduler: Any = None,
           lrs: list[float] | None = None, accumulate: Accumulate | None = None,
           lr_scale: float = 1.0, amp: Amp | None = None) -> dict[str, np.ndarray]:
    """Run the steps; return float32 snapshots [steps + 1, ...] per parameter. With a
    scheduler, it steps after every optimizer step and `lrs` gets each step's lr (the
    first group's, divided by its `lr_scale`: the schedule's own lr)."""
    amp = amp or Amp()
    params = model.named()
    snaps = {n: allocate((steps + 1, *p.shape)) for n, p in params.items()}
    for n, p in params.items():
        snaps[n][0] = p.detach().float().numpy()     # float32 holds bfloat16 / float16 exactly
    for k in range(1, steps + 1):
        data = spec.step(k - 1)       # the same batch every step, or [data] fresh's new one
        x = amp.cast(torch.from_numpy(data.x))
        target = None if data.target is None else amp.cast(torch.from_numpy(data.target))
        optimizer.zero_grad()
        for part in step_loss.micro_batches(len(spec.x), accumulate):
            with amp.autocast():
                out = model(x[part])
                amp.forward = str(out.dtype).removeprefix("torch.")
                loss = step_loss.loss(out, None if target is None else target[part], loss_kind,
                                      decay.manual if manual else {}, params)
            if accumulate is not None and accumulate.divide_loss:
                loss = loss / accumulate.micro_batches
            amp.backward(loss)       # gradients add up over the micro-batches
        amp.unscale(optimizer)       # clipping (and the optimizer's decay) see unscaled gradients
        if clip is not None:
            _clip(clip, model.native(clip.params))
        lr = optimizer.param_groups[0]["lr"]      # this step's (a scheduler sets it)
        if lrs is not None:
            lrs.append(lr / lr_scale)
        if decoupled:
            # SGD has no decoupled option: decay as its own step, from the old
            # weights, before the update (where AdamW puts it: p *= 1 - lr*c).
            with torch.no_grad():
                for p in params.values():
                    p.mul_(1.0 - lr * decay.coeff)
        amp.step(optimizer)
        if scheduler is not None:
            scheduler.step()
        for n, p in params.items():
            snaps[n][k] = p.detach().float().numpy()
    return snaps


def _clip(clip: Clip, params: list[torch.nn.Parameter]) -> None:
    """Clip .grad as users do, between backward and step: whatever backward left there
    (a manual decay term included) is clipped; the optimizer's weight_decay is not."""
    if clip.kind == "global_norm":
        torch.nn.utils.clip_grad_norm_(params, clip.max)
    elif clip.kind == "norm":
        for p in params:
            torch.nn.utils.clip_grad_norm_(p, clip.max)
    else:
        torch.nn.utils.clip_grad_value_(params, clip.max)


def _scheduler(schedule: Schedule | None, optimizer: torch.optim.Optimizer, lr: float) -> Any:
    if schedule is None:
        return None
    return schedule.native(FRAMEWORK, lr).build(torch.optim.lr_scheduler, optimizer)


def run_job(job: Job, allocate: Allocate = in_memory) -> list[RunRecord]:
    return [_run_way(job, way, allocate) for way in job.ways]


def _run_way(job: Job, way: str, allocate: Allocate) -> RunRecord:
    amp = Amp(job.precision)
    model = amp.cast(Model(job.spec))     # before the optimizer is built, as users do
    first = next(iter(model.named().values()))
    record = RunRecord(FRAMEWORK, way, dtype=str(first.dtype).removeprefix("torch."))
    try:
        if way == "after_groups":
            # Building an optimizer must not change the parameters for a later one.
            _build(_construction(job, "groups"), _groups(job.decay, model, job.lr))
        built = _construction(job, way)
        optimizer = _build(built, _groups(job.decay, model, job.lr) if way.startswith("groups")
                           else model.native())
        record.optimizer, record.hyper = built.cls, _effective(optimizer)
        scheduler, lrs = _scheduler(job.schedule, optimizer, job.lr), []
        first = job.decay.groups[0].lr_scale if way.startswith("groups") else None
        record.params = _train(model, optimizer, job.spec, job.loss, job.steps, job.decay,
                               manual=way.startswith("manual"), decoupled=built.explicit_decoupled,
                               allocate=allocate, clip=job.clip, scheduler=scheduler, lrs=lrs,
                               accumulate=job.accumulate, lr_scale=float(first or 1.0), amp=amp)
        record.forward = amp.forward
        if scheduler is not None:
            record.series["lr"] = np.array(lrs)
    except Exception as exc:  # a framework refusing a way is a finding, not a crash
        record.error = f"{type(exc).__name__}: {exc}"
    return record


def _construction(job: Job, way: str) -> Construction:
    return construction(OPTIMIZERS[job.optimizer], FRAMEWORK, job.lr, job.hyper, job.native, way, job.coeff)


def _groups(decay: Decay, model: Model, lr: float) -> list[dict[str, Any]]:
    """Groups as users write them: a group without the key gets the optimizer's default.
    A group's lr_scale becomes torch's absolute group lr = lr_scale * lr."""
    return [{"params": model.native(g.params),
             **({"weight_decay": g.weight_decay} if g.has_decay else {}),
             **({"lr": float(lr) * g.lr_scale} if g.lr_scale is not None else {})} for g in decay.groups]


def _build(built: Construction, params: Any) -> torch.optim.Optimizer:
    """The optimizer of a construction: the one place torch optimizers are made."""
    cls = getattr(torch.optim, built.cls, None)
    if cls is None:        # an older or newer torch without this class
        raise AttributeError(f"torch {version()} has no torch.optim.{built.cls}")
    kwargs = {k: torch.tensor(v.value, dtype=torch.float32) if isinstance(v, TensorValue) else v
              for k, v in built.kwargs.items()}
    return cls(params, **kwargs)


# ---------------------------------------------------------------- explain: any optimizer class

def run_native(item: ExplainItem, job: ExplainJob) -> RunRecord:
    """One optimizer class with native keyword arguments, decay given one explain way
    (optimizers.explain_construction; "groups": the weight in a group with weight_decay=c,
    the rest in a group without the key)."""
    model = Model(job.spec)
    named = model.named()
    built, arg = explain_construction(FRAMEWORK, item.optimizer, item.options, item.way, job.coeff)
    params: Any = list(named.values())
    if item.way == "groups":
        params = [{"params": [named["weight"]], arg: job.coeff},
                  {"params": [p for n, p in named.items() if n != "weight"]}]
    record = RunRecord(FRAMEWORK, item.way, optimizer=item.optimizer, variant=item.variant,
                       options=_shown(built.kwargs, item.way, job.coeff))
    manual = item.way in ("manual", "clip+manual")
    if manual:
        record.options["loss_term"] = f"0.5*{job.coeff}*sum(p^2) over weight, bias"
    clip = EXPLAIN_CLIP if item.way.startswith("clip+") else None
    if clip is not None:
        record.options["clip"] = clip.native(FRAMEWORK)
    try:
        optimizer = _build(built, params)
        record.hyper = _effective(optimizer)
        record.params = _train(model, optimizer, job.spec, job.loss, job.steps,
                               Decay(job.coeff, {}, explain_manual(job.coeff), (), ()), manual=manual, clip=clip)
    except Exception as exc:  # a way the framework rejects is a finding
        record.error = f"{type(exc).__name__}: {exc}"
    return record


def _shown(kwargs: dict[str, Any], way: str, coeff: float) -> dict[str, Any]:
    shown = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    if way == "groups":
        shown["param_groups"] = [{"params": "weight", "weight_decay": coeff}, {"params": "bias"}]
    return shown


def _effective(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Every group's hyper-parameters as the optimizer holds them (defaults filled in)."""
    names = set(parameters(type(optimizer).__init__)) - {"self", "params"}
    return [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()
             if k in names and isinstance(v, (int, float, bool, tuple, type(None)))}
            for g in optimizer.param_groups]


# ---------------------------------------------------------------- training (seed 002, seed 000)

def run_train(job: TrainJob) -> list[RunRecord]:
    if job.kind == "overfit":
        return [_overfit(job, wd) for wd in job.config["weight_decays"]]
    return [_schedule(job, decoupled) for decoupled in (False, True)]


def _linear(job: TrainJob) -> torch.nn.Linear:
    weight = job.arrays["weight"]
    layer = torch.nn.Linear(weight.shape[1], 1)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        layer.bias.copy_(torch.from_numpy(job.arrays["bias"]))
    return layer


def _snapshot(layer: torch.nn.Linear) -> tuple[np.ndarray, np.ndarray]:
    return layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy()


def _overfit(job: TrainJob, wd: float) -> RunRecord:
    """Seed 002: SGD, the weight in a group with weight_decay, the bias in one without."""
    layer = _linear(job)
    x, y, train = torch.from_numpy(job.arrays["x"]), torch.from_numpy(job.arrays["y"]), job.config["train"]
    optimizer = torch.optim.SGD([{"params": [layer.weight], "weight_decay": wd},
                                 {"params": [layer.bias]}], lr=job.config["lr"])
    start, losses = _snapshot(layer), {"train_loss": [], "test_loss": []}
    for epoch in epoch_batches(job):
        for idx in epoch:
            i = torch.from_numpy(idx)
            optimizer.zero_grad()
            ((layer(x[i]) - y[i]) ** 2).mean().backward()
            optimizer.step()
        with torch.no_grad():
            losses["train_loss"].append(((layer(x[:train]) - y[:train]) ** 2).mean().item())
            losses["test_loss"].append(((layer(x[train:]) - y[train:]) ** 2).mean().item())
    end = _snapshot(layer)
    return RunRecord(FRAMEWORK, decay_label(wd), {"weight": np.stack([start[0], end[0]]),
                                                  "bias": np.stack([start[1], end[1]])},
                     series={k: np.array(v) for k, v in losses.items()})


def _schedule(job: TrainJob, decoupled: bool) -> RunRecord:
    """Seed 000: Adam(weight_decay) or AdamW under CosineAnnealingLR, one batch per step."""
    layer = _linear(job)
    x, y, c = torch.from_numpy(job.arrays["x"]), torch.from_numpy(job.arrays["y"]), job.config["weight_decay"]
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    optimizer = cls(layer.parameters(), lr=job.config["lr"], weight_decay=c)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=job.config["t_max"],
                                                           eta_min=job.config["eta_min"])
    snaps, lrs = [_snapshot(layer)], []
    for idx in (i for epoch in epoch_batches(job) for i in epoch):
        i = torch.from_numpy(idx)
        lrs.append(optimizer.param_groups[0]["lr"])      # the lr this step uses
        optimizer.zero_grad()
        ((layer(x[i]) - y[i]) ** 2).mean().backward()
        optimizer.step()
        scheduler.step()
        snaps.append(_snapshot(layer))
    return RunRecord(FRAMEWORK, "adamw" if decoupled else "adam",
                     {"weight": np.stack([s[0] for s in snaps]), "bias": np.stack([s[1] for s in snaps])},
                     series={"lr": np.array(lrs)})


# ---------------------------------------------------------------- xdecay audit (the user's own model)

def run_audit(job: AuditJob) -> RunRecord:
    return audit_capture.run_audit(job, AUDIT_HOOKS)


def _take(t: torch.Tensor, idx: np.ndarray | None) -> np.ndarray:
    # A sparse gradient (Embedding(sparse=True)) as the dense one the reference replays.
    flat = (t.to_dense() if t.is_sparse else t).detach().reshape(-1)
    return (flat if idx is None else flat[torch.from_numpy(idx)]).float().numpy().copy()


def _optimizer_params(optimizer: Any) -> list[tuple[Any, int]] | None:
    if not isinstance(optimizer, torch.optim.Optimizer):
        return None
    return [(p, g) for g, group in enumerate(optimizer.param_groups) for p in group["params"]]


def _describe(optimizer: torch.optim.Optimizer, p: torch.Tensor, g: int,
              groups: int) -> tuple[dict[str, Any], list[tuple[str, float | None]]]:
    """Torch has one place for decay, the parameter's group (defaults filled in)."""
    group = optimizer.param_groups[g]
    decay = group.get("weight_decay", 0)
    decay = decay.item() if isinstance(decay, torch.Tensor) else decay
    decoupled = type(optimizer).__name__ == "AdamW" or bool(group.get("decoupled_weight_decay"))
    where = f"group {g}" if groups > 1 else "optimizer"
    source = f"{where}: {type(optimizer).__name__} weight_decay={decay!r}" + (" (decoupled)" if decoupled else "")
    return _effective(optimizer)[g], [(source, float(decay) or None)]


def _refusal(optimizer: torch.optim.Optimizer, params: list) -> str | None:
    # Its state would have to be replayed too; a fresh optimizer is what training starts from.
    # (Adagrad fills its state at construction, with step 0.)
    if any(float(s.get("step", 0)) > 0 for s in optimizer.state.values()):
        return "the optimizer has already stepped (its state holds steps): return a fresh one"
    return None


AUDIT_HOOKS = audit_capture.Hooks(
    framework=FRAMEWORK,
    is_model=lambda m: isinstance(m, torch.nn.Module),
    is_tensor=lambda t: isinstance(t, torch.Tensor),
    is_float=lambda t: t.is_floating_point(),
    dtype=lambda t: str(t.dtype).removeprefix("torch."),
    trainable=lambda p: p.requires_grad,
    take=_take,
    constant=lambda a, like: torch.from_numpy(a).to(like.dtype),
    optimizer_params=_optimizer_params,
    refusal=_refusal,
    zero_grad=lambda o: o.zero_grad(set_to_none=True),
    lr=lambda o, p, g: float(o.param_groups[g]["lr"]),
    describe=_describe,
)
