"""A run's setup as the code a user would write, for the case pages' "same setup in
each framework" blocks. It mirrors what the adapters build (torch_adapter/paddle_adapter
`_optimizer` and `_arguments`), spelt with the user's names: `linear`, `norm`,
`loss`, `opt`."""
from __future__ import annotations

from dataclasses import dataclass

from ..case import Case, Regularizer
from ..engine.optimizers import Construction, construction
from ..engine.pycode import Code, grad_clip, keywords, number, regularizer, scheduler, torch_clip

# Canonical parameter -> the attribute a user writes.
ATTR = {"weight": "linear.weight", "bias": "linear.bias", "norm_gain": "norm.weight", "norm_bias": "norm.bias"}


def _term(param: str, r: Regularizer) -> str:
    if r.kind == "l2":
        return f"0.5 * {number(r.coeff)} * {ATTR[param]}.square().sum()"
    return f"{number(r.coeff)} * {ATTR[param]}.abs().sum()"


def _groups(case: Case, framework: str) -> str:
    out = []
    for g in case.decay.groups:
        params = ", ".join(ATTR[p] for p in g.params)
        value = f', "weight_decay": {g.weight_decay!r}' if g.has_decay else ""
        if g.lr_scale is not None:     # torch: the absolute group lr; paddle: a multiplier
            value += (f', "lr": {number(float(case.optimizer.lr) * g.lr_scale)}' if framework == "torch"
                      else f', "learning_rate": {number(g.lr_scale)}')
        out.append(f'{{"params": [{params}]{value}}}')
    return "[" + ", ".join(out) + "]"


def _layers(case: Case, framework: str, attrs: dict[str, Regularizer], lrs: dict[str, float]) -> list[str]:
    lay = case.layer
    if framework == "torch":
        lines = [f"linear = torch.nn.Linear({lay.in_features}, {lay.out_features}, bias={lay.bias})"]
        return lines + ([f"norm = torch.nn.LayerNorm({lay.out_features})"] if lay.norm else [])

    def attr(param: str) -> str:
        words = ([f"regularizer={regularizer(attrs[param])}"] if param in attrs else []) + \
                ([f"learning_rate={number(lrs[param])}"] if param in lrs else []) + \
                (["need_clip=False"] if case.clip is not None and not case.clip.clips(param) else [])
        return f"paddle.ParamAttr({', '.join(words)})" if words else ""

    args = [str(lay.in_features), str(lay.out_features)]
    if attr("weight"):
        args.append(f"weight_attr={attr('weight')}")
    if not lay.bias:
        args.append("bias_attr=False")
    elif attr("bias"):
        args.append(f"bias_attr={attr('bias')}")
    lines = [f"linear = paddle.nn.Linear({', '.join(args)})"]
    if lay.norm:
        extra = "".join(f", {kw}={attr(p)}" for p, kw in (("norm_gain", "weight_attr"), ("norm_bias", "bias_attr"))
                        if attr(p))
        lines.append(f"norm = paddle.nn.LayerNorm({lay.out_features}{extra})")
    return lines


def _built(case: Case, framework: str, way: str) -> Construction:
    o = case.optimizer
    return construction(o.info, framework, o.lr, o.hyper, o.native.get(framework, {}), way, case.decay.coeff)


def _constructor(case: Case, framework: str, params: str, built: Construction, extra: str = "") -> str:
    """The optimizer the adapters build for this run (optimizers.construction), spelt out."""
    native = case.optimizer.info.native(framework)
    kwargs = dict(built.kwargs)
    given = kwargs.pop(native.lr)
    lr = given.text if isinstance(given, Code) else number(given)
    args = [params, f"lr={lr}"] if framework == "torch" else [f"learning_rate={lr}", f"parameters={params}"]
    args += keywords(framework, kwargs)
    module = "torch.optim" if framework == "torch" else "paddle.optimizer"
    return f"opt = {module}.{built.cls}({', '.join(args + ([extra] if extra else []))})"


@dataclass(frozen=True)
class SetupCode:
    build: str                    # the layer(s), the optimizer (and its lr scheduler)
    loss_term: str | None         # `loss = loss + ...`, after the loss of each step
    before_step: str | None       # what runs before each opt.step() (clipping, SGDW's explicit decay)
    after_step: str | None = None     # what runs after each opt.step() (the scheduler's step)
    accumulation: str | None = None   # how a step's backward passes are split (a comment)
    precision: str | None = None      # what mixed precision changes in the loop (a comment)

    def text(self) -> str:
        parts = [self.build]
        if self.precision:
            parts.append(self.precision)
        if self.accumulation:
            parts.append(self.accumulation)
        if self.before_step:
            parts.append("# before each opt.step():\n" + self.before_step)
        if self.after_step:
            parts.append("# after each opt.step():\n" + self.after_step)
        if self.loss_term:
            where = "micro-batch's" if self.accumulation else "step's"
            parts.append(f"# added to each {where} loss:\n" + self.loss_term)
        return "\n".join(parts)


def setup_code(case: Case, framework: str, way: str) -> SetupCode:
    """The code that builds the layer and optimizer of one run, and the loss term or
    step it adds; a user's training loop goes around it (tests/test_setup_code.py runs
    it in that loop and gets the run's updates)."""
    d = case.decay
    c = number(d.coeff)
    everything = "model.parameters()"
    base = way.partition("+")[0]
    attrs = d.param_attr if framework == "paddle" and "param_attr" in way else {}
    lines = _layers(case, framework, attrs, d.param_attr_lr if framework == "paddle" and "param_attr" in way else {})
    if case.layer.norm:
        lines.append(f"model = {framework}.nn.Sequential(linear, norm)")
    else:
        everything = "linear.parameters()"
    before_step: str | None = None
    built = _built(case, framework, way)
    params = _groups(case, framework) if "groups" in way and way != "after_groups" else everything
    extra = ""
    if way == "after_groups":
        lines.append("_ = " + _constructor(case, framework, _groups(case, framework), _built(case, framework, "groups"))[6:])
    elif way == "apply_decay_param_fun":
        if case.optimizer.info.native(framework).decay_filter == "exclude_from_weight_decay_fn":
            names = " or ".join(f"p.name == {ATTR[p]}.name" for p in d.decay_params)
            extra = f"exclude_from_weight_decay_fn=lambda p: not ({names})"
        else:
            names = " or ".join(f"name == {ATTR[p]}.name" for p in d.decay_params)
            extra = f"apply_decay_param_fun=lambda name: {names}"
    if case.clip is not None and framework == "paddle":
        extra = ", ".join(e for e in (extra, f"grad_clip={grad_clip(case.clip)}") if e)
    if case.schedule is not None and framework == "paddle":
        lines.append(f"sched = {scheduler(case.schedule, framework, case.optimizer.lr, 'opt')}")
        built = Construction(built.cls, {**built.kwargs, "learning_rate": Code("sched")}, built.explicit_decoupled)
    amp = case.precision
    if amp is not None and not amp.autocast and framework == "torch":
        # Cast before the optimizer is built: it keeps the parameters it is given.
        lines.append(f"{'model' if case.layer.norm else 'linear'}.to(torch.{amp.dtype})")
    lines.append(_constructor(case, framework, params, built, extra))
    if amp is not None and not amp.autocast and framework == "paddle":
        model = "model" if case.layer.norm else "linear"
        lines.append(f"{model}, opt = paddle.amp.decorate(models={model}, optimizers=opt, level=\"O2\", "
                     f"dtype=\"{amp.dtype}\", master_weight={amp.master_weights})")
    if case.schedule is not None and framework == "torch":
        lines.append(f"sched = {scheduler(case.schedule, framework, case.optimizer.lr, 'opt')}")
    clipped = everything if case.clip is None or case.clip.params is None else \
        "[" + ", ".join(ATTR[p] for p in case.clip.params) + "]"
    before = [torch_clip(case.clip, clipped) if case.clip is not None and framework == "torch" else None]
    if built.explicit_decoupled:
        lr = number(case.optimizer.lr) if case.schedule is None else (
            'opt.param_groups[0]["lr"]' if framework == "torch" else "opt.get_lr()")
        before.append("# SGDW: neither SGD has the option\n" + (f"with torch.no_grad():\n    for p in {everything}:\n        p.mul_(1 - {lr} * {c})"
                      if framework == "torch" else
                      f"for p in {everything}:\n    p.set_value(p * (1 - {lr} * {c}))"))
    before_step = "\n".join(b for b in before if b) or None
    loss_term = ("loss = loss + " + " + ".join(_term(p, r) for p, r in d.manual.items())) if base == "manual" else None
    a = case.accumulate
    accumulation = None if a is None else (
        f"# each step: {a.micro_batches} micro-batches of {case.batch // a.micro_batches} rows, one backward each "
        f"(loss{' / ' + str(a.micro_batches) if a.divide_loss else ', not divided'}), then one opt.step()")
    return SetupCode("\n".join(lines), loss_term, before_step,
                     "sched.step()" if case.schedule is not None else None, accumulation,
                     None if amp is None else _precision_loop(amp, framework))


def _precision_loop(p, framework: str) -> str:
    """What [precision] changes in the user's loop (a comment, as the accumulation's)."""
    if framework == "torch":
        lines = [f"# the inputs cast to torch.{p.dtype} too" if not p.autocast else
                 f'# forward and loss under torch.autocast("cpu", dtype=torch.{p.dtype})']
        if p.init_scale is not None:
            lines.append(f'# scaler = torch.amp.GradScaler("cpu", init_scale={number(p.init_scale)}): '
                         "scaler.scale(loss).backward(); scaler.unscale_(opt) before clipping; "
                         "scaler.step(opt); scaler.update() instead of opt.step()")
        return "\n".join(lines)
    level = "O1" if p.autocast else "O2"
    lines = [f'# forward and loss under paddle.amp.auto_cast(level="{level}", dtype="{p.dtype}")']
    if p.init_scale is not None:
        lines.append(f"# scaler = paddle.amp.GradScaler(init_loss_scaling={number(p.init_scale)}): "
                     "scaler.scale(loss).backward(); scaler.step(opt); scaler.update() instead of opt.step()")
    return "\n".join(lines)
