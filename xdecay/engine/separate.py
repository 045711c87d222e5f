"""Which experiment would separate two rules a run cannot tell apart.

Where an experiment cannot separate two rules (an `ambiguous(...)` rule, an
inconclusive check), the start is replayed freely (float64, every parameter,
gradients at the replayed weights) under one rule, with the reference rule of the
run's own optimizer class, and the other rule is fitted to that trajectory as
inference would, and vice versa: the first step at which each rejects the other is the number of steps
that separates them (up to SEARCH_STEPS). Likewise a larger lr or coefficient
(SCALES) at the case's steps and, for the constant-gradient "mean" loss, the mse loss.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .infer import Inferred, ParamReplay, _at_step, _ratios, rule_args, step
from .reference import hyper_value, layer_grads
from .rules import Fit
from .spec import Spec

SEARCH_STEPS = 100
SCALES = (2.0, 5.0, 10.0, 100.0)
MAX_SEARCH_ELEMENTS = 1 << 20     # a larger layer is not replayed freely (no suggestion)
NONE: Fit = (("none",), ())


class Separator:
    """Which experiment would separate two rules a run cannot tell apart: free replays
    from a start (module docstring), cached by optimizer class, arguments and rules."""

    def __init__(self, spec_for: Callable[[str], Spec], loss: str, size: int):
        # spec_for(loss): the start to replay from (the mse loss needs a target)
        self.spec_for, self.loss, self.size = spec_for, loss, size
        self._separations: dict[tuple, int | None] = {}
        self._free_runs: dict[tuple, tuple[np.ndarray, list, list]] = {}

    def searchable(self) -> bool:
        return self.size <= MAX_SEARCH_ELEMENTS

    def separation(self, inferred: dict[str, Inferred], param: str, h1: Fit, h2: Fit, *,
                   steps: int = SEARCH_STEPS, lr: float = 1.0, coeff: float = 1.0,
                   loss: str | None = None) -> int | None:
        """The first step (<= steps) by which a run following h1 rejects h2 and one
        following h2 rejects h1, replayed freely from the start; None if none."""
        if not self.searchable():
            return None
        cls = _class_key(inferred)
        key = (cls, param, h1, h2, steps, lr, coeff, loss)
        if key not in self._separations:
            loss = loss or self.loss
            runs = {h: self._free(cls, inferred, param, h, steps, lr, coeff, loss) for h in (h1, h2)}
            a, b = runs[h1][0], runs[h2][0]
            with np.errstate(all="ignore"):
                # Apart by float64 rounding only: one formula here, no float32 run tells them apart.
                same = bool(np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(a)))
            firsts = [] if same else [self._first_rejection(inferred, param, fitted, *runs[follows], lr, coeff)
                                      for follows, fitted in ((h1, h2), (h2, h1))]
            self._separations[key] = None if same or None in firsts else max(firsts)
        return self._separations[key]

    def _free(self, cls: tuple, inferred: dict[str, Inferred], param: str, follows: Fit, steps: int,
              lr: float, coeff: float, loss: str) -> tuple[np.ndarray, list, list]:
        """free_run with `param` following `follows`, the other parameters their first fit:
        `param`'s trajectory, gradients and bounds (kept like the separations: a rule met in
        several pairs is replayed once; `cls`: _class_key(inferred))."""
        key = (cls, param, follows, steps, lr, coeff, loss)
        if key not in self._free_runs:
            replays = {n: i.replay for n, i in inferred.items()}
            hypothesis = {n: i.fits[0] if i.fits else NONE for n, i in inferred.items()}
            hypothesis[param] = follows
            traj, grads, bounds = free_run(replays, hypothesis, self.spec_for(loss), loss, steps, lr, coeff)
            self._free_runs[key] = traj[param], grads[param], bounds[param]
        return self._free_runs[key]

    def _first_rejection(self, inferred: dict[str, Inferred], param: str, fitted: Fit, traj: np.ndarray,
                         grads: list, bounds: list, lr: float, coeff: float) -> int | None:
        """The first step (from 1) at which `fitted` no longer fits the free run, as
        inference judges a fit (x tolerance > 1); None if it fits throughout."""
        rp = inferred[param].replay
        kwargs = _scaled_kwargs(rp, lr)
        family, cs = fitted
        cs = tuple(hyper_value(rp.framework, c * coeff) for c in cs)
        with np.errstate(all="ignore"):
            ratios = _ratios(rp.rule, kwargs, kwargs.get("lr", 0.0), family, cs, traj, grads, bounds, rp.tol,
                             need_across=False)[0]
        beyond = np.flatnonzero(ratios > 1)
        return int(beyond[0]) + 1 if beyond.size else None

    def suggest(self, confusions: list[tuple[dict[str, Inferred], str, Fit, Fit]], steps: int,
                scale_coeff: bool = True) -> str:
        """What would separate every confused pair of rules, replayed: more steps, a
        larger lr (or coefficient) at `steps`, the mse loss."""
        if not confusions:
            return ""
        if not self.searchable():
            return "no suggestion: the layer is too large to replay freely"
        options = []

        def each(**kw) -> list[int | None]:
            return [self.separation(i, p, a, b, **kw) for i, p, a, b in confusions]

        needed = each()
        if None not in needed:
            n = max(needed)
            options.append(f"{n} steps" if n > steps else f"{steps} steps from this start")
        for word, key in (("lr", "lr"), ("coefficient", "coeff"))[:2 if scale_coeff else 1]:
            for scale in SCALES:
                if None not in each(steps=steps, **{key: scale}):
                    options.append(f"{word} x{scale:g}")
                    break
        if self.loss == "mean" and None not in each(steps=steps, loss="mse"):
            options.append('loss "mse" (a gradient that depends on the weights)')
        if not options:
            return (f"no replay up to {SEARCH_STEPS} steps, lr{' or coefficient' if scale_coeff else ''} "
                    f"x{SCALES[-1]:g}{' or the mse loss' if self.loss == 'mean' else ''} separates them")
        return "would separate them (replayed): " + "; or ".join(options)


def _class_key(inferred: dict[str, Inferred]) -> tuple:
    """Runs of one class with the same arguments and rules replay alike."""
    return tuple((n, i.replay.framework, i.replay.rule.__name__, repr(sorted(i.replay.kwargs.items())),
                  i.fits[0] if i.fits else NONE) for n, i in inferred.items())


def _scaled_kwargs(rp: ParamReplay, lr: float) -> dict:
    kwargs = dict(rp.kwargs)
    if "lr" in kwargs and lr != 1.0:
        # A schedule's lrs (an array, engine/loop.py) scale element by element.
        kwargs["lr"] = (hyper_value(rp.framework, kwargs["lr"] * lr) if np.ndim(kwargs["lr"]) == 0
                        else np.array([hyper_value(rp.framework, float(v) * lr) for v in kwargs["lr"]]))
    return kwargs


def free_run(replays: dict[str, ParamReplay], hypothesis: dict[str, Fit], spec: Spec, loss: str, steps: int,
             lr: float = 1.0, coeff: float = 1.0) -> tuple[dict, dict, dict]:
    """The case's start replayed in float64 for `steps` steps, every parameter under its
    rule and the hypothesis' decay, gradients at the replayed weights: per parameter the
    trajectory [steps + 1, ...], and the gradients and their rounding scales per step."""
    params = {n: np.asarray(spec.params[n], np.float64) for n in replays}
    traj = {n: [p] for n, p in params.items()}
    grads: dict[str, list] = {n: [] for n in replays}
    bounds: dict[str, list] = {n: [] for n in replays}
    states: dict[str, dict] = {n: {} for n in replays}
    setups = {}
    for n, rp in replays.items():
        family, cs = hypothesis[n]
        decay = {f: hyper_value(rp.framework, c * coeff) for f, c in zip(family, cs) if f != "none"}
        kwargs = _scaled_kwargs(rp, lr)
        setups[n] = (rule_args(kwargs, decay), kwargs.get("lr", 0.0), decay)
    with np.errstate(all="ignore"):
        for k in range(1, steps + 1):
            data = spec.step(k - 1)
            g, b = layer_grads(spec.layer, params, data.x, data.target, loss)
            new = {}
            for n, rp in replays.items():
                args, lr_n, decay = setups[n]
                new[n] = step(rp.rule, *_at_step(args, lr_n, k - 1), decay, params[n], g[n], states[n], k)
                grads[n].append(g[n])
                bounds[n].append(b[n])
                traj[n].append(new[n])
            params = new
    return {n: np.stack(t) for n, t in traj.items()}, grads, bounds
