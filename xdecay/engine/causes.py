"""Why the same user-level optimizer differs across frameworks: the decay rule, a
default the user did not set, or the update formula itself.

Used by `compare` (a cross-framework pair of runs that differ) and by `explain`
(its cross-framework table). The names that mean the same thing in both
frameworks come from the optimizer model (optimizers.pair_names).
"""
from __future__ import annotations

import dataclasses

from ..frameworks.records import RunRecord
from .infer import explains
from .loop import Loop
from .optimizers import get_native, pair_names, same_value, set_native
from .spec import Spec


def cause(t: RunRecord, p: RunRecord, t_rules: dict[str, str], p_rules: dict[str, str], spec: Spec,
          loss: str, coeffs: tuple[float, ...], given: frozenset[str] = frozenset(),
          loop: Loop | None = None) -> str:
    """t a torch run, p a paddle run; the rules by parameter (the weight's first). `given`:
    the torch native names (tuples by their base name) the user set in either framework:
    a difference there is the user's values, not the defaults. `loop`: the case's loop
    around the step (engine/loop.py), its clip replayed as each framework does it."""
    causes = []
    differing: dict[tuple[str, str], list[str]] = {}
    for param, t_rule in t_rules.items():
        p_rule = p_rules.get(param)
        if p_rule is not None and t_rule != p_rule:
            differing.setdefault((t_rule, p_rule), []).append(param)
    for (t_rule, p_rule), params in differing.items():
        where = "" if len(params) == len(t_rules) else f" for {', '.join(params)}"
        causes.append(f"decay rule differs{where}: torch {t_rule}, paddle {p_rule}")
    names = pair_names(t.optimizer, p.optimizer)
    th, ph = t.hyper[0] if t.hyper else {}, p.hyper[0] if p.hyper else {}
    values = {tn: (get_native(th, tn), get_native(ph, pn)) for tn, pn in names.items()}
    differ = [tn for tn, (tv, pv) in values.items()
              if tv is not None and pv is not None and not same_value(tv, pv)]
    kind = "values" if {tn.partition(".")[0] for tn in differ} <= given else "defaults"
    defaults = [f"{_shown(tn)}={values[tn][0]!r} vs {_shown(names[tn])}={values[tn][1]!r}" for tn in differ]
    if defaults:
        causes.append(f"{kind} differ: " + ", ".join(defaults))
    # Does torch's reference rule, given paddle's hyper-parameters, reproduce paddle's run?
    as_torch = dict(th)
    for tn, (_, pv) in values.items():
        if pv is not None:
            set_native(as_torch, tn, pv)
    if _replays(p, as_torch, t.optimizer, spec, loss, coeffs, loop):
        # ...and with torch's own values? Then the values do not matter at this scale.
        if defaults and not _replays(p, th, t.optimizer, spec, loss, coeffs, loop):
            causes[-1] += f" (torch's rule with paddle's values reproduces paddle: the {kind} are the cause)"
        elif defaults:
            causes[-1] += " (immaterial here: torch's rule with its own values reproduces paddle too)"
    elif loop is not None and (clip := loop.clip) is not None and _replays(p, as_torch, t.optimizer, spec, loss,
                                                                         coeffs, loop, "paddle"):
        causes.append(f"clipping differs: torch's rule reproduces paddle's run with paddle's clip formula, "
                      f"not with torch's ({clip.native('torch')} vs {clip.native('paddle')}"
                      f"{'; torch divides by norm + 1e-6' if clip.kind != 'value' else ''})")
    else:
        causes.append(f"update formula differs (torch's {t.optimizer} rule with paddle's "
                      f"hyper-parameters does not reproduce paddle's {p.optimizer})")
    return "; ".join(causes) or "rounding beyond the tolerance (no rule or value differs)"


def _replays(p: RunRecord, hyper: dict, torch_cls: str, spec: Spec, loss: str,
             coeffs: tuple[float, ...], loop: Loop | None = None, clip_as: str | None = None) -> bool:
    """Does torch's reference rule of this class, with these hyper-parameters (and
    torch's clip formula, or `clip_as`'s), explain every parameter of paddle's run?"""
    return explains(dataclasses.replace(p, hyper=[hyper]), spec, loss, coeffs, reference=("torch", torch_cls),
                    loop=loop, clip_as=clip_as)


def _shown(name: str) -> str:
    base, dot, slot = name.partition(".")
    return f"{base}[{slot}]" if dot else name
