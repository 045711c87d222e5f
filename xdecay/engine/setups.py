"""A run's setup in words, for reports: what the user would have written."""
from __future__ import annotations

from ..case import Case, Group
from .optimizers import construction


def _group(g: Group, framework: str, lr: float) -> str:
    value = f"weight_decay={g.weight_decay!r}" if g.has_decay else "no weight_decay key"
    if g.lr_scale is not None:     # torch: the absolute group lr; paddle: a multiplier
        value += f", lr={float(lr) * g.lr_scale:g}" if framework == "torch" else f", learning_rate={g.lr_scale:g}"
    return f"{{{', '.join(g.params)}: {value}}}"


def _manual(case: Case) -> str:
    return " + ".join(f"{'0.5*' if r.kind == 'l2' else ''}{r.coeff:g}*sum({'p^2' if r.kind == 'l2' else '|p|'})"
                      f" over {p}" for p, r in case.decay.manual.items())


def describe(case: Case, framework: str, way: str) -> str:
    d, o = case.decay, case.optimizer
    native = o.info.native(framework)
    cls = native.label
    arg = native.decay_arg
    if way == "decoupled":
        built = construction(o.info, framework, o.lr, o.hyper, o.native.get(framework, {}), way, d.coeff)
        if built.explicit_decoupled:
            return f"{cls} + p *= 1 - lr*{d.coeff:g} before each step (SGDW)"
        flag = ", decoupled_weight_decay=True" if "decoupled_weight_decay" in built.kwargs else ""
        return f"{built.cls}({arg}={d.coeff:g}{flag})"
    decay = {"weight_decay": f"{arg}={d.coeff:g}", "weight_decay_tensor": f"{arg}=tensor({d.coeff:g})",
             "l2decay": f"{arg}=L2Decay({d.coeff:g})",
             "l1decay": f"{arg}=L1Decay({d.coeff:g})"}
    lrs = d.param_attr_lr
    attr = ", ".join(f"{p}: ParamAttr(" + ", ".join(
        ([f"{'L2' if d.param_attr[p].kind == 'l2' else 'L1'}Decay({d.param_attr[p].coeff:g})"] if p in d.param_attr else [])
        + ([f"learning_rate={lrs[p]:g}"] if p in lrs else [])) + ")"
        for p in (*d.param_attr, *(p for p in lrs if p not in d.param_attr)))
    groups = "groups " + ", ".join(_group(g, framework, o.lr) for g in d.groups)
    left_out = (f"{arg}={native.default_decay:g}" if native.decays_by_default else "no decay")
    words = {
        "none": f"{cls}, no decay",
        "default": f"{cls}, decay argument left out (means {left_out})",
        "manual": f"{cls}, no decay; loss + {_manual(case)}",
        "manual+weight_decay": f"{cls}({arg}={d.coeff:g}); loss + {_manual(case)}",
        "groups": f"{cls} with {groups}",
        "groups+weight_decay": f"{cls}({arg}={d.coeff:g}) with {groups}",
        "param_attr": f"{cls}, no decay; {attr}",
        "param_attr+groups": f"{cls} with {groups}; {attr}",
        "after_groups": f"{cls}, no decay, built after a {groups} optimizer on the same layer",
        "apply_decay_param_fun": f"{cls}({arg}={d.coeff:g}, {native.decay_filter}: "
                                 f"{', '.join(d.decay_params)} only)",
    }
    if way in words:
        return words[way]
    base, _, optimizer_way = way.partition("+")
    if base == "param_attr":
        return f"{cls}({decay[optimizer_way]}); {attr}"
    return f"{cls}({decay[way]})"
