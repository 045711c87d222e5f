"""A run's setup as the code a user would write, for the case pages' "same setup in
each framework" blocks. It mirrors what the adapters build (torch_adapter/paddle_adapter
`_optimizer` and `_arguments`), spelt with the user's names: `linear`, `norm`,
`loss`, `opt`."""
from __future__ import annotations

from dataclasses import dataclass

from ..case import HYPER, Case, Regularizer

# Canonical parameter -> the attribute a user writes.
ATTR = {"weight": "linear.weight", "bias": "linear.bias", "norm_gain": "norm.weight", "norm_bias": "norm.bias"}
PADDLE_CLASS = {"sgd": "SGD", "momentum": "Momentum", "adam": "Adam", "adamw": "AdamW", "lamb": "Lamb"}
TORCH_CLASS = {"sgd": "SGD", "momentum": "SGD", "adam": "Adam", "adamw": "AdamW"}


def _num(x: float | int) -> str:
    return repr(x) if isinstance(x, int) else f"{x:g}"


def _hyper(case: Case, framework: str) -> list[str]:
    """The case's hyper-parameters in the framework's names; those at their default
    (case.HYPER: the frameworks' own defaults too) are left out, as a user would."""
    name = case.optimizer.name
    h = {k: v for k, v in case.optimizer.hyper.items() if v != HYPER[name][k]}
    if name == "momentum":
        nesterov = "nesterov" if framework == "torch" else "use_nesterov"
        return [f"momentum={_num(h['momentum'])}"] + ([f"{nesterov}=True"] if h.get("nesterov") else [])
    if framework == "torch":
        full = case.optimizer.hyper
        betas = [f"betas=({_num(full['beta1'])}, {_num(full['beta2'])})"] if {"beta1", "beta2"} & set(h) else []
        return betas + ([f"eps={_num(h['eps'])}"] if "eps" in h else [])
    return [f"{ {'eps': 'epsilon'}.get(k, k)}={_num(v)}" for k, v in h.items()]


def _regularizer(r: Regularizer) -> str:
    return f"paddle.regularizer.{r.kind.upper()}Decay({_num(r.coeff)})"


def _term(param: str, r: Regularizer) -> str:
    if r.kind == "l2":
        return f"0.5 * {_num(r.coeff)} * {ATTR[param]}.square().sum()"
    return f"{_num(r.coeff)} * {ATTR[param]}.abs().sum()"


def _groups(case: Case) -> str:
    out = []
    for g in case.decay.groups:
        params = ", ".join(ATTR[p] for p in g.params)
        value = f', "weight_decay": {g.weight_decay!r}' if g.has_decay else ""
        out.append(f'{{"params": [{params}]{value}}}')
    return "[" + ", ".join(out) + "]"


def _layers(case: Case, framework: str, attrs: dict[str, Regularizer]) -> list[str]:
    lay = case.layer
    if framework == "torch":
        lines = [f"linear = torch.nn.Linear({lay.in_features}, {lay.out_features}, bias={lay.bias})"]
        return lines + ([f"norm = torch.nn.LayerNorm({lay.out_features})"] if lay.norm else [])

    def attr(param: str) -> str:
        return f"paddle.ParamAttr(regularizer={_regularizer(attrs[param])})" if param in attrs else ""

    args = [str(lay.in_features), str(lay.out_features)]
    if "weight" in attrs:
        args.append(f"weight_attr={attr('weight')}")
    if not lay.bias:
        args.append("bias_attr=False")
    elif "bias" in attrs:
        args.append(f"bias_attr={attr('bias')}")
    lines = [f"linear = paddle.nn.Linear({', '.join(args)})"]
    if lay.norm:
        extra = "".join(f", {kw}={attr(p)}" for p, kw in (("norm_gain", "weight_attr"), ("norm_bias", "bias_attr"))
                        if p in attrs)
        lines.append(f"norm = paddle.nn.LayerNorm({lay.out_features}{extra})")
    return lines


def _constructor(case: Case, framework: str, params: str, decay: str | None, cls: str | None = None) -> str:
    name, lr = case.optimizer.name, _num(case.optimizer.lr)
    cls = cls or (TORCH_CLASS if framework == "torch" else PADDLE_CLASS)[name]
    args = [params, f"lr={lr}"] if framework == "torch" else [f"learning_rate={lr}", f"parameters={params}"]
    args += _hyper(case, framework)
    if decay is not None:
        arg = "lamb_weight_decay" if name == "lamb" else "weight_decay"
        args.append(f"{arg}={decay}")
    module = "torch.optim" if framework == "torch" else "paddle.optimizer"
    return f"opt = {module}.{cls}({', '.join(args)})"


@dataclass(frozen=True)
class SetupCode:
    build: str                    # the layer(s) and the optimizer
    loss_term: str | None         # `loss = loss + ...`, after the loss of each step
    before_step: str | None       # what runs before each opt.step() (SGDW's explicit decay)

    def text(self) -> str:
        parts = [self.build]
        if self.before_step:
            parts.append("# before each opt.step() (SGDW: neither SGD has the option):\n" + self.before_step)
        if self.loss_term:
            parts.append("# added to each step's loss:\n" + self.loss_term)
        return "\n".join(parts)


def setup_code(case: Case, framework: str, way: str) -> SetupCode:
    """The code that builds the layer and optimizer of one run, and the loss term or
    step it adds; a user's training loop goes around it (tests/test_setup_code.py runs
    it in that loop and gets the run's updates)."""
    d = case.decay
    c = _num(d.coeff)
    everything = "model.parameters()"
    base, _, extra = way.partition("+")
    attrs = d.param_attr if framework == "paddle" and "param_attr" in way else {}
    lines = _layers(case, framework, attrs)
    if case.layer.norm:
        lines.append(f"model = {framework}.nn.Sequential(linear, norm)")
    else:
        everything = "linear.parameters()"
    before_step: str | None = None
    # An optimizer without decay: AdamW and Lamb default to 0.01, so 0.0 is passed explicitly.
    off = "0.0" if case.optimizer.name in ("adamw", "lamb") else None
    if way == "decoupled" and case.optimizer.name in ("adam", "adamw"):
        lines.append(_constructor(case, framework, everything, c, cls="AdamW"))
    elif way == "decoupled":
        lines.append(_constructor(case, framework, everything, None))
        before_step = (f"with torch.no_grad():\n    for p in {everything}:\n        p.mul_(1 - {_num(case.optimizer.lr)} * {c})"
                       if framework == "torch" else
                       f"for p in {everything}:\n    p.set_value(p * (1 - {_num(case.optimizer.lr)} * {c}))")
    elif way in ("groups", "param_attr+groups"):
        lines.append(_constructor(case, framework, _groups(case), None))
    elif way == "groups+weight_decay":
        lines.append(_constructor(case, framework, _groups(case), c))
    elif way == "after_groups":
        lines.append("_ = " + _constructor(case, framework, _groups(case), None)[len("opt = "):])
        lines.append(_constructor(case, framework, everything, off))
    elif way == "apply_decay_param_fun":
        names = " or ".join(f"name == {ATTR[p]}.name" for p in d.decay_params)
        lines.append(_constructor(case, framework, everything, c)[:-1]
                     + f", apply_decay_param_fun=lambda name: {names})")
    else:
        optimizer_way = extra if base in ("param_attr", "manual") else base
        decay = {"weight_decay": c, "l2decay": f"paddle.regularizer.L2Decay({c})",
                 "l1decay": f"paddle.regularizer.L1Decay({c})"}.get(optimizer_way, off)
        lines.append(_constructor(case, framework, everything, decay))
    loss_term = ("loss = loss + " + " + ".join(_term(p, r) for p, r in d.manual.items())) if base == "manual" else None
    return SetupCode("\n".join(lines), loss_term, before_step)
