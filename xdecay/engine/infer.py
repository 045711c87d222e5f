"""Rule inference: which decay a run really applied, per parameter.

Replays the run's steps in float64 with the optimizer's reference rule and each
candidate decay, starting every step from the run's own float32 weights (so a
step's residual measures that step's rule; the rule's state still accumulates
on its own). A candidate fits when every element is within the comparison
tolerance (compare.Tolerance), k-fold at step k like a comparison: the weights
are re-anchored every step, but the optimizer state (momentum, moments) carries
k steps of the framework's float32 rounding. Coefficients are tried from the values in play
(the ones given, the optimizer's defaults), then fitted on a log grid.

A decay rule treats every element alike, so on a large layer (more than
SAMPLE_SIDE**2 weights) inference looks at a fixed sample of SAMPLE_SIDE rows x
SAMPLE_SIDE columns: its cost no longer grows with the layer. Rules that mix
elements (Lamb's trust ratio, Adafactor's factored moments) always see everything.
"""
from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product

import numpy as np

from ..frameworks.records import RunRecord
from .compare import Tolerance, on_cores
from .layers import Layer
from .loop import Loop
from .precision import round_to
from .reference import (
    FLOAT32_HYPER,
    RULES,
    coupled_l2,
    decoupled_lr,
    grads_at,
    hyper_value,
    l1,
    linear_forward_rows,
    rule_kwargs,
    uses_f32_pows,
)
from .rules import Fit, canonical_fit, format_rule, parse_rule, rule_name
from .spec import Spec

# Single decay steps; "lamb_trust" is paddle Lamb's decay inside its trust ratio,
# "clipped_l2" an L2 term of the loss inside a gradient clip (tried under a clip only).
FAMILIES = (("none",), ("coupled_l2",), ("decoupled_lr",), ("l1",),
            ("coupled_l2", "decoupled_lr"), ("lamb_trust",), ("coupled_l2", "lamb_trust"), ("clipped_l2",))

# clipped_l2@c's gradients of one parameter: c -> (per step gradient, per step bound).
GradsFor = Callable[[float], tuple[list[np.ndarray], list[np.ndarray]]]

SAMPLE_SIDE = 64
MIXING_RULES = {"paddle_lamb", "torch_adafactor"}


@dataclass(frozen=True)
class ParamReplay:
    """One parameter's replay inputs: the reference rule and its arguments, the run's
    float64 snapshots ([steps + 1, ...], on the sample of a large layer) and the
    float64 gradients and their rounding scales at them, per step."""
    framework: str
    rule: object
    kwargs: dict
    lr: float
    actual: np.ndarray
    grads: list[np.ndarray]
    bounds: list[np.ndarray]
    tol: Tolerance
    grads_for: GradsFor | None = None    # under a clip: clipped_l2's gradients

    def predict_all(self, fits: list[Fit]) -> np.ndarray:
        """[len(fits), steps, ...] the parameter after each step under each decay, each step
        from the run's own weights (as inference replays it), replayed together (_replay_options)."""
        fits = [(f, tuple(hyper_value(self.framework, c) for c in cs)) for f, cs in fits]
        grads = [_family_grads(f, cs, self.grads, self.bounds, self.grads_for)[0] for f, cs in fits]
        return np.concatenate([_stored(_replay_options(self.rule, self.kwargs, self.lr, block, self.actual,
                                                       grads[s:s + len(block)]), self.tol)
                               for s, block in _blocks(fits, self.actual)])

    def ratios(self, family: tuple[str, ...], cs: tuple[float, ...]) -> np.ndarray:
        """[steps] per step, max |predicted - actual| / tolerance under this decay
        (inference's residual, step by step)."""
        cs = tuple(hyper_value(self.framework, c) for c in cs)
        grads, bounds = _family_grads(family, cs, self.grads, self.bounds, self.grads_for)
        return _ratios(self.rule, self.kwargs, self.lr, family, cs, self.actual, grads, bounds, self.tol,
                       need_across=False)[0]


def _family_grads(family: tuple[str, ...], cs: tuple[float, ...], grads: list[np.ndarray],
                  bounds: list[np.ndarray], grads_for: GradsFor | None) -> tuple[list, list]:
    """The gradients a decay candidate steps with: the loss gradient as the loop gives
    it, or for clipped_l2@c the clipped sum of it and c*w (the term is inside the
    gradient, so the replay's own decay steps ignore that family)."""
    if "clipped_l2" not in family:
        return grads, bounds
    return grads_for(cs[family.index("clipped_l2")])


@dataclass(frozen=True)
class Inferred:
    param: str             # "weight" | "bias"
    rule: str              # e.g. "coupled_l2@0.1", "ambiguous(a|b)", "unexplained"
    residual: float        # best candidate's max |predicted - actual| / tolerance (<= 1 fits)
    residuals: dict[str, float]   # each family's best candidate and its residual
    # [2, steps, ...] how far float32 rounding moves the fitted rule's replay (None when
    # no rule fits): what a comparison within ([0]) and across ([1]) frameworks adds to
    # its tolerance (_residual). On a sampled layer it covers the sample (flat indices
    # `sample`); RunSensitivity replays the fits elsewhere.
    sensitivity: np.ndarray | None = None
    fits: tuple[Fit, ...] = ()
    sample: np.ndarray | None = None
    # What the replays were made from, for power.py's what-if replays (None when
    # inference did not replay: an unexplained parameter still has one).
    replay: "ParamReplay | None" = dataclasses.field(default=None, compare=False, repr=False)


def layer_sample(params: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The flat elements of each parameter that inference looks at: None (all of them)
    for a layer of at most SAMPLE_SIDE**2 weights, else SAMPLE_SIDE evenly spaced rows
    by SAMPLE_SIDE evenly spaced columns of the weight, and those rows (outputs) of
    the other parameters, so the forward pass is needed for those rows only."""
    out_f, in_f = params["weight"].shape[-2:]
    if out_f * in_f <= SAMPLE_SIDE ** 2:
        return None
    rows, cols = _spaced(out_f, SAMPLE_SIDE), _spaced(in_f, SAMPLE_SIDE)
    return {n: (rows[:, None] * in_f + cols[None, :]).ravel() if n == "weight" else rows for n in params}


def flat_sample(size: int, rule) -> np.ndarray | None:
    """The flat elements inference looks at in any parameter of `size` elements (xdecay
    audit's models): all of them (None) up to SAMPLE_SIDE**2 or under a rule that mixes
    elements, else SAMPLE_SIDE**2 evenly spaced ones -- as many as a large layer's sample."""
    if rule.__name__ in MIXING_RULES:
        return None
    return spaced_sample(size)


def spaced_sample(size: int) -> np.ndarray | None:
    """All of `size` elements (None) up to SAMPLE_SIDE**2, else SAMPLE_SIDE**2 evenly
    spaced flat indices."""
    return None if size <= SAMPLE_SIDE ** 2 else _spaced(size, SAMPLE_SIDE ** 2)


def _spaced(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(np.int64))


def infer_run(run: RunRecord, spec: Spec, loss: str, coeffs: tuple[float, ...],
              reference: tuple[str, str] | None = None, loop: Loop | None = None,
              clip_as: str | None = None) -> list[Inferred]:
    """Infer the decay rule of each parameter of a successful run, replayed with the
    reference rule of its own (framework, class) or with another one. With a loop
    (engine/loop.py), the loss gradient is accumulated and clipped as the reference's
    framework does it (or `clip_as`'s clip), the decay candidates join after it (the
    optimizer's own decay: a decay inside a clip, a manual term, fits none of them),
    and a schedule's lr of each step replaces the lr."""
    inputs = list(_param_inputs(run, spec, loss, coeffs, reference, loop, clip_as))
    found = {}
    for group in _joint(inputs):
        if len(group) == 1:
            param, _, args = group[0]
            found[param] = infer_param(*args[:1], param, *args[1:])
        else:
            found.update(zip([p for p, _, _ in group], infer_params([p for p, _, _ in group], [a for *_, a in group])))
    return [dataclasses.replace(found[param], sample=None if sample is None else sample[param])
            for param, sample, _ in inputs]


def _joint(inputs: list[tuple]) -> list[list[tuple]]:
    """_param_inputs' parameters in groups replayed together (infer_params): an
    element-wise rule with the same arguments and candidates, no clip; others alone."""
    groups: list[list[tuple]] = []
    for item in inputs:
        _, rule, hyper, *_, tol, candidates, grads_for = item[2]
        group = next((g for g in groups if grads_for is None and rule.__name__ not in MIXING_RULES
                      and g[0][2][8] is None and g[0][2][1] is rule and g[0][2][6] == tol
                      and g[0][2][7] == candidates and _same_values(g[0][2][2], hyper)), None)
        if group is None:
            groups.append([item])
        else:
            group.append(item)
    return groups


def _same_values(a: dict, b: dict) -> bool:
    """Two hyper-parameter dicts with the same values (a schedule's lrs: arrays)."""
    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) or isinstance(b[k], np.ndarray)
        else type(a[k]) is type(b[k]) and a[k] == b[k] for k in a)


def explains(run: RunRecord, spec: Spec, loss: str, coeffs: tuple[float, ...],
             reference: tuple[str, str] | None = None, loop: Loop | None = None,
             clip_as: str | None = None) -> bool:
    """Whether infer_run would explain every parameter (no rule "unexplained"), found
    without the rest of its work: it stops at the first parameter nothing fits, and
    builds no Inferred records (causes.py asks only this)."""
    return all(any(r <= 1 for _, r, *_ in _family_fits(*args))
               for _, _, args in _param_inputs(run, spec, loss, coeffs, reference, loop, clip_as))


def _param_inputs(run: RunRecord, spec: Spec, loss: str, coeffs: tuple[float, ...],
                  reference: tuple[str, str] | None, loop: Loop | None, clip_as: str | None):
    """Per parameter: its name, the layer's sample (None: every element) and infer_param's
    other arguments (_family_fits')."""
    loop = loop or Loop()
    reference = reference or (run.framework, run.optimizer)
    rule = RULES[reference]
    steps = run.steps
    at = [{n: v[k] for n, v in run.params.items()} for k in range(steps)]
    sample = None
    if spec.layer is None and rule.__name__ not in MIXING_RULES and not loop.whole and not loop.accumulates:
        sample = layer_sample(run.params)
    if sample is None:
        grads, bounds = _loss_grads(at, spec, loss, loop, clip_as or reference[0])
        snapshots = dict(run.params)
    else:
        grads, bounds = zip(*(grads_at(p, spec.step(k).x, spec.step(k).target, loss, sample)
                              for k, p in enumerate(at)))
        snapshots = {n: _flat_at(v, sample[n]) for n, v in run.params.items()}
    clipped = _ClippedL2(at, spec, loss, loop, clip_as or reference[0]) if loop.clip is not None else None
    for index, (param, snaps) in enumerate(snapshots.items()):
        hyper = _hyper(run, index, loop)
        yield (param, sample, (run.framework, rule, hyper, snaps, _ascent([g[param] for g in grads], hyper),
                               [b[param] for b in bounds], _tolerance(spec, run), _candidates(coeffs, hyper),
                               clipped.of(param, hyper) if clipped and loop.clip.clips(param) else None))


class _ClippedL2:
    """clipped_l2@c's gradients of every parameter, per step, computed once per c (the
    clip of a global norm mixes the parameters: one computation serves them all)."""

    def __init__(self, at: list[dict[str, np.ndarray]], spec: Spec, loss: str, loop: Loop, framework: str):
        self.at, self.loop, self.framework = at, loop, framework
        # The loss gradient does not depend on c: computed once, the term added per c.
        self._unclipped = [loop.unclipped(p, spec.step(k), loss) for k, p in enumerate(at)]
        self._done: dict[float, list[tuple[dict, dict]]] = {}

    def _steps(self, c: float) -> list[tuple[dict, dict]]:
        if c not in self._done:
            self._done[c] = [self.loop.l2_in_clip(p, raw, self.framework, c)
                             for p, raw in zip(self.at, self._unclipped)]
        return self._done[c]

    def of(self, param: str, hyper: dict) -> GradsFor:
        return lambda c: (_ascent([g[param] for g, _ in self._steps(c)], hyper),
                          [b[param] for _, b in self._steps(c)])


def _loss_grads(at: list[dict[str, np.ndarray]], spec: Spec, loss: str, loop: Loop,
                framework: str) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    """Per step, every parameter's loss gradient as the optimizer gets it, and its bound."""
    pairs = [loop.loss_grads(p, spec.step(k), loss, framework) for k, p in enumerate(at)]
    return [g for g, _ in pairs], [b for _, b in pairs]


def _ascent(grads: list[np.ndarray], hyper: dict) -> list[np.ndarray]:
    """torch's maximize=True: the rule steps along -g, and decay joins after the sign flip
    (grad = -grad, then grad += c*w), so a decay still shrinks the weights."""
    return [-g for g in grads] if hyper.get("maximize") is True else grads


def _hyper(run: RunRecord, index: int, loop: Loop | None = None) -> dict:
    """Per-group hyper-parameters (torch groups): the parameter's group (Loop.group).
    A schedule's lrs replace the lr: as float32 for paddle, whose kernels get it so.
    A group's lr_scale (engine/loop.py) makes the parameter's lr lr_scale * the
    optimizer's (or the schedule's of each step): torch's group lr (a Python float),
    paddle's float32 global lr times the float32 multiplier."""
    loop = loop or Loop()
    param = list(run.params)[index] if run.params else ""
    hyper = run.hyper[min(loop.group(run.framework, run.way, param, index), len(run.hyper) - 1)] if run.hyper else {}
    key = "learning_rate" if run.framework == "paddle" else "lr"
    scale = loop.lr_scale(run.framework, run.way, param) if run.params else 1.0
    if scale != 1.0 and key in hyper and loop.base_lr is not None:
        if FLOAT32_HYPER[run.framework]:
            lr = float(np.float32(np.float32(loop.base_lr) * np.float32(scale)))
        else:
            lr = loop.base_lr * scale
        hyper = {**hyper, key: lr}
    if loop.lrs is None:
        return hyper
    # A schedule scales each torch group's own lr (lr_scale * lr_t); paddle multiplies its
    # float32 scheduled lr by the parameter's float32 multiplier.
    if FLOAT32_HYPER[run.framework]:
        values = (np.float32(loop.lrs) * np.float32(scale)).astype(np.float64)
    else:
        values = np.asarray(loop.lrs, np.float64) * scale
    return {**hyper, key: values}


def _flat_at(snaps: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """[steps + 1, len(idx)]: the snapshots of some flat elements."""
    return np.asarray(snaps.reshape(len(snaps), -1)[:, idx])


class SharedForwards:
    """The forward passes of one case's runs (RunSensitivity._forward), shared wherever
    runs hold bit-identical parameters at a step: every run starts from the same
    weights, and two ways often stay identical (paddle's weight_decay and manual L2 on
    Adam). On a 4096x4096 layer a step's float64 forward costs ~0.09 s, telling two
    snapshots apart ~0.02 s, and a strided sample's digest finds the candidates."""

    def __init__(self):
        self._done: dict[tuple, list[tuple[np.ndarray, tuple]]] = {}
        self._lock = threading.Lock()

    def get(self, k: int, weight: np.ndarray, bias: np.ndarray | None, compute: Callable[[], tuple]) -> tuple:
        """Step k's forward pass at these parameters: one already computed, or compute()."""
        key = (k, _digest(weight), None if bias is None else bias.tobytes())
        with self._lock:
            known = list(self._done.get(key, ()))
        for w, value in known:
            if np.array_equal(w, weight):
                return value
        value = compute()
        with self._lock:
            self._done.setdefault(key, []).append((weight, value))
        return value


def _digest(a: np.ndarray) -> bytes:
    """~1024 elements spread over the array, as bytes: equal for equal arrays."""
    flat = a.reshape(-1)
    return flat[::max(1, flat.size // 1024)].tobytes()


class RunSensitivity:
    """One run's sensitivity to gradient rounding per parameter, step and element
    (Inferred.sensitivity): known wherever inference looked, replayed on demand with
    the fitted rules at the elements a comparison asks for (zero where no rule fits)."""

    def __init__(self, run: RunRecord, spec: Spec, loss: str, inferred: list[Inferred],
                 loop: Loop | None = None, forwards: SharedForwards | None = None):
        """`forwards`: shared with the case's other runs of the same `spec`."""
        self.run, self.spec, self.loss, self.loop = run, spec, loss, loop or Loop()
        self.shared = forwards or SharedForwards()
        self.inferred = {i.param: i for i in inferred}
        self._forwards: list | None = None
        self._replayed: dict[str, tuple[np.ndarray, np.ndarray]] = {}   # param -> (sorted idx, values)
        self._lock = threading.Lock()     # comparisons ask from several threads

    @property
    def framework(self) -> str:
        return self.run.framework

    def full(self, param: str, across: bool = False) -> np.ndarray | None:
        """[steps, ...] for every element, or None when inference looked at a sample;
        `across`: for a comparison with another framework."""
        found = self.inferred[param]
        if found.sample is not None:
            return None
        if found.sensitivity is None:
            return np.zeros_like(self.run.params[param][1:], np.float64)
        return found.sensitivity[int(across)]

    def at(self, param: str, idx: np.ndarray, across: bool = False, keep: bool = True) -> np.ndarray:
        """[steps, len(idx)] at flat elements of the parameter. Replayed elements are
        kept (unless not `keep`): the pairs a run is in mostly ask for the same ones
        (where its gradient cancels)."""
        full = self.full(param, across)
        if full is not None:
            return full.reshape(len(full), -1)[:, idx]
        if not self.inferred[param].fits:
            return np.zeros((self.run.steps, len(idx)))
        with self._lock:
            known, values = self._replayed.get(param, (np.empty(0, np.int64), None))
        if not keep:
            return self._replay_at(param, idx)[int(across)]
        missing = np.setdiff1d(idx, known)
        if missing.size:
            new = self._replay_at(param, missing)
            with self._lock:      # merged into what other threads may have added meanwhile
                known, values = self._replayed.get(param, (np.empty(0, np.int64), None))
                fresh = ~np.isin(missing, known)
                known = np.concatenate([known, missing[fresh]])
                values = new[..., fresh] if values is None else np.concatenate([values, new[..., fresh]], axis=-1)
                order = np.argsort(known)
                known, values = known[order], values[..., order]
                self._replayed[param] = known, values
        return values[int(across)][:, np.searchsorted(known, idx)]

    def _replay_at(self, param: str, idx: np.ndarray) -> np.ndarray:
        """[2, steps, len(idx)]: both sensitivities (within, across) at these elements."""
        found, run = self.inferred[param], self.run
        hyper = _hyper(run, list(run.params).index(param), self.loop)
        rule = RULES[(run.framework, run.optimizer)]
        kwargs = rule_kwargs(run.framework, rule, hyper)
        snaps = _flat_at(run.params[param], idx)
        grads, bounds = [], []
        for k, forward in enumerate(self._forward()):
            data = self.spec.step(k)
            g, b = grads_at({n: v[k] for n, v in run.params.items()}, data.x, data.target,
                            self.loss, {param: idx}, forward)
            grads.append(_ascent([g[param]], hyper)[0])
            bounds.append(b[param])
        tol = _tolerance(self.spec, run)
        return np.max([_residual(rule, kwargs, kwargs.get("lr", 0.0), family,
                                 tuple(hyper_value(run.framework, c) for c in cs),
                                 snaps, grads, bounds, tol)[1] for family, cs in found.fits], axis=0)

    def residual(self, param: str, fit: Fit) -> float:
        """The run's parameter replayed with one fit, where inference looked (all of it, or
        its sample): max |predicted - actual| / tolerance, the number inference fits by
        (<= 1 fits)."""
        found, run = self.inferred[param], self.run
        hyper = _hyper(run, list(run.params).index(param), self.loop)
        rule = RULES[(run.framework, run.optimizer)]
        kwargs = rule_kwargs(run.framework, rule, hyper)
        at = [{n: v[k] for n, v in run.params.items()} for k in range(run.steps)]
        if found.sample is None:
            snaps = run.params[param].astype(np.float64)
            every, every_bound = _loss_grads(at, self.spec, self.loss, self.loop, run.framework)
            grads = [g[param] for g in every]
            bounds = [b[param] for b in every_bound]
        else:
            snaps = _flat_at(run.params[param], found.sample).astype(np.float64)
            pairs = [grads_at(p, self.spec.step(k).x, self.spec.step(k).target, self.loss, {param: found.sample})
                     for k, p in enumerate(at)]
            grads, bounds = [g[param] for g, _ in pairs], [b[param] for _, b in pairs]
        family, cs = fit
        cs = tuple(hyper_value(run.framework, c) for c in cs)
        grads_for = found.replay.grads_for if found.replay is not None else None
        if "clipped_l2" in family and grads_for is None:
            return math.inf       # a decay inside a clip, where no clip is replayed
        grads, bounds = _family_grads(family, cs, grads, bounds, grads_for)
        return _residual(rule, kwargs, kwargs.get("lr", 0.0), family, cs, snaps, grads, bounds,
                         _tolerance(self.spec, run), need_across=False)[0]

    def prepare(self) -> None:
        """Compute now what a comparison's replays will ask for on a sampled layer: every
        step's forward pass (a 4096x4096 layer: ~0.1 s a step). Called as the run
        arrives, so this overlaps the workers still running instead of following them."""
        if any(i.sample is not None and i.fits for i in self.inferred.values()):
            self._forward()

    def _forward(self) -> list:
        """Per step, every output row's forward pass (computed once, for any elements);
        None with LayerNorm, whose gradient grads_at computes whole."""
        with self._lock:
            if self._forwards is None:
                self._forwards = self._compute_forwards()
        return self._forwards

    def _compute_forwards(self) -> list:
        params = self.run.params
        if "norm_gain" in params:
            return [None] * self.run.steps
        rows = np.arange(params["weight"].shape[1])
        bias = params.get("bias")

        def forward(k: int) -> tuple:
            w, b = params["weight"][k], None if bias is None else bias[k]
            return self.shared.get(k, w, b, lambda: (rows, *linear_forward_rows(w, b, self.spec.step(k).x, rows)))

        # The steps on every core: the last run's forward passes are what the parent
        # still has to do once the workers are done.
        return list(on_cores(forward, range(self.run.steps)))


def rule_holds(analysis: RunSensitivity, param: str, claim: str) -> bool:
    """Whether a claimed rule (a case's expectation, a baseline's saved rule) is the rule
    inference found for a run's parameter — compared as numbers, not text: the same
    families (as many alternatives, in any order), and each claimed coefficient either
    the inferred one as float32 or one the run, replayed with it, fits within the
    tolerance inference fits by (RunSensitivity.residual <= 1). So `coupled_l2@0.1`
    fails a run that applied 0.1004 (its replay is far beyond the tolerance), and
    `coupled_l2@0.10040` holds for it."""
    fits = parse_rule(claim)
    found = dict(canonical_fit(*f) for f in analysis.inferred[param].fits)
    if fits is None or sorted(f for f, _ in fits) != sorted(found):
        return False
    return all(np.array_equal(np.float32(cs), np.float32(found[family]))
               or analysis.residual(param, (family, cs)) <= 1 for family, cs in fits)


def _tolerance(spec: Spec, run: RunRecord) -> Tolerance:
    """The comparison tolerance at the precision the run stored its parameters and
    computed its forward in (float32 but under [precision], engine/precision.py), with
    the operation count of the run's layer (layers.Layer.operation_count)."""
    batch = len(spec.x)
    layer = spec.layer or Layer(spec.x.shape[1], spec.params["weight"].shape[0], norm=spec.has_norm)
    return Tolerance(ops=layer.operation_count(batch), stored=run.dtype, computed=run.forward)


def _stored(predicted: np.ndarray, tol: Tolerance) -> np.ndarray:
    """A replay's weights as the run stores them: a float64 replay rounded to a
    low-precision dtype, so a decay below half its ULP rounds away as in the run (float32
    replays stay unrounded: their rounding is within the tolerance's ULP term)."""
    return predicted if tol.stored == "float32" else round_to(predicted, tol.stored)


def _candidates(coeffs: tuple[float, ...], hyper: dict) -> list[float]:
    values = set(c for c in coeffs if c > 0)
    for key in ("weight_decay", "lamb_weight_decay", "lambd"):
        v = hyper.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            values.add(float(v))
    return sorted(values)


def infer_param(framework: str, param: str, rule, hyper: dict, snaps: np.ndarray,
                grads: list[np.ndarray], bounds: list[np.ndarray], tol: Tolerance,
                candidates: list[float], grads_for: GradsFor | None = None) -> Inferred:
    """One parameter's rule, from its own arrays only: float32 snapshots [steps + 1, ...]
    in any layout, the gradient the optimizer got at each step and its rounding scale,
    the tolerance of its layer (Tolerance(ops=n)); under a clip, `grads_for` gives the
    gradients of the clipped_l2 candidates. Nothing here knows the layer: a caller with
    captured gradients (a user's model) can replay any parameter."""
    actual = snaps.astype(np.float64)
    (found,) = _fits(framework, rule, hyper, actual, grads, bounds, tol, candidates, grads_for, need_across=True)
    return _inferred(framework, param, rule, hyper, actual, grads, bounds, tol, grads_for, found)


def infer_params(params: list[str], args: list[tuple]) -> list[Inferred]:
    """infer_param of several parameters whose replays can share one (_joint: the same
    element-wise rule, arguments, tolerance and candidates, no clip): their elements
    side by side on one flat axis, each parameter's residuals over its own."""
    framework, rule, hyper, _, _, _, tol, candidates, _ = args[0]
    actuals = [a[3].astype(np.float64) for a in args]
    steps = len(actuals[0]) - 1
    ends = np.cumsum([0] + [a[0].size for a in actuals]).tolist()
    segments = [(slice(lo, hi), a.shape[1:]) for lo, hi, a in zip(ends, ends[1:], actuals)]
    flat = np.concatenate([a.reshape(steps + 1, -1) for a in actuals], axis=1)
    grads = [np.concatenate([np.ravel(a[4][k]) for a in args]) for k in range(steps)]
    bounds = [np.concatenate([np.ravel(a[5][k]) for a in args]) for k in range(steps)]
    found = _fits(framework, rule, hyper, flat, grads, bounds, tol, candidates, need_across=True, segments=segments)
    return [_inferred(framework, param, rule, hyper, actual, a[4], a[5], tol, None, mine)
            for param, actual, a, mine in zip(params, actuals, args, found)]


def _inferred(framework: str, param: str, rule, hyper: dict, actual: np.ndarray, grads: list[np.ndarray],
              bounds: list[np.ndarray], tol: Tolerance, grads_for: GradsFor | None, found: list) -> Inferred:
    """The Inferred record of a parameter from _fits' families (family, residual,
    coefficients, sensitivity)."""
    kwargs = rule_kwargs(framework, rule, hyper)
    lr = kwargs.get("lr", 0.0)
    fits, best = [], {}
    for family, r, cs, sensitivity in found:
        best[family] = (r, cs)
        if r <= 1:
            if sensitivity is None:       # a fitted coefficient: replayed for its sensitivity
                fitted = tuple(hyper_value(framework, c) for c in cs)
                sensitivity = _residual(rule, kwargs, lr, family, fitted, actual,
                                        *_family_grads(family, fitted, grads, bounds, grads_for), tol)[1]
            fits.append((family, cs, r, sensitivity))
    residuals = {rule_name(f, cs): r for f, (r, cs) in best.items()}
    replay = ParamReplay(framework, rule, kwargs, lr, actual, grads, bounds, tol, grads_for)
    if not fits:
        return Inferred(param, "unexplained", min(residuals.values()), residuals, replay=replay)
    sensitivity = np.max([s for *_, s in fits], axis=0)
    fitted = tuple((f, cs) for f, cs, *_ in fits)
    return Inferred(param, format_rule(fitted), min(r for _, _, r, _ in fits), residuals, sensitivity, fitted,
                    replay=replay)


def _family_fits(framework: str, rule, hyper: dict, snaps: np.ndarray, grads: list[np.ndarray],
                 bounds: list[np.ndarray], tol: Tolerance, candidates: list[float],
                 grads_for: GradsFor | None = None) -> list[tuple]:
    """_fits of one parameter (explains: whether any family fits)."""
    return _fits(framework, rule, hyper, snaps.astype(np.float64), grads, bounds, tol, candidates, grads_for)[0]


def _fits(framework: str, rule, hyper: dict, actual: np.ndarray, grads: list[np.ndarray],
          bounds: list[np.ndarray], tol: Tolerance, candidates: list[float], grads_for: GradsFor | None = None,
          need_across: bool = False, segments: list[tuple[slice, tuple]] | None = None) -> list[list[tuple]]:
    """Per parameter (one, or each segment of the flat last axis: (slice, its shape)),
    (family, residual, coefficients, sensitivity) of each family's best candidate among
    the coefficients in play, in FAMILIES' order; then, for a parameter none of them
    fits (residual <= 1), each single decay with a fitted coefficient (a default we did
    not know of; with none in play at all -- an audited optimizer naming no decay --
    every family). The sensitivity (_ratios', with `need_across`) comes with a candidate
    in play that fits, else None. The candidates in play are replayed together, and so
    are the fitted ones of every parameter and family (_fit's lockstep)."""
    kwargs = rule_kwargs(framework, rule, hyper)
    lr = kwargs.get("lr", 0.0)
    parts = [slice(None)] if segments is None else [sl for sl, _ in segments]

    def part(sensitivity: np.ndarray, i: int, s: int) -> np.ndarray:
        """Option i's sensitivity [2, steps, ...] over parameter s."""
        if segments is None:
            return sensitivity[:, i]
        sl, shape = segments[s]
        return sensitivity[:, i, :, sl].reshape(sensitivity.shape[:1] + sensitivity.shape[2:3] + shape)

    def scored(options: list[Fit], need_across: bool = False) -> list[list[tuple[float, np.ndarray | None]]]:
        """Per option, per parameter: the residual, and the sensitivity where it fits (with need_across)."""
        out = []
        for _, block in _blocks(options, actual):
            block = [(f, tuple(hyper_value(framework, c) for c in cs)) for f, cs in block]
            per_step, sensitivity = _ratios_options(
                rule, kwargs, lr, block, actual,
                *zip(*(_family_grads(f, cs, grads, bounds, grads_for) for f, cs in block)), tol, need_across,
                None if segments is None else parts)
            for i, ratios in enumerate(per_step if segments is not None else per_step[:, None]):
                out.append([(r, part(sensitivity, i, s) if sensitivity is not None and r <= 1 else None)
                            for s, r in enumerate(_worst(ratios))])
        return out

    def tried(family: tuple[str, ...]) -> bool:
        """Families the run can have: Lamb's trust-ratio decay in Lamb, a term inside a clip under one."""
        return (("lamb_trust" not in family or "lamb_weight_decay" in kwargs)
                and ("clipped_l2" not in family or grads_for is not None))

    families = list(filter(tried, FAMILIES))
    options = [(f, cs) for f in families for cs in ([()] if f == ("none",) else product(candidates, repeat=len(f)))]
    results = scored(options, need_across)
    found: list[list[tuple]] = [[] for _ in parts]
    for s, mine in enumerate(found):
        for family in families:
            scores = [(r[s][0], cs, r[s][1]) for (f, cs), r in zip(options, results) if f == family]
            if scores:
                r, cs, sensitivity = min(scores, key=lambda m: m[:2])
                mine.append((family, r, cs, sensitivity))
    unfitted = [s for s, mine in enumerate(found) if not any(r <= 1 for _, r, *_ in mine)]
    if not unfitted:
        return found
    singles = [f for f in FAMILIES if len(f) == 1 and f != ("none",) and tried(f)]

    def asked(pairs: list) -> list[float]:
        """The values of (parameter, family) keys at coefficients: each (family, c) replayed once."""
        options = list(dict.fromkeys((f, (c,)) for (_, f), c in pairs))
        values = dict(zip(options, scored(options)))
        return [values[(f, (c,))][s][0] for (s, f), c in pairs]

    fitted = _fit(asked, [(s, f) for s in unfitted for f in singles], _width(actual, LOOKAHEAD_BUDGET))
    for s in unfitted:
        best = {family: (r, cs) for family, r, cs, _ in found[s]}
        found[s] += [(family, *min(best.get(family, (math.inf, ())), fitted[(s, family)]), None) for family in singles]
    return found


# Doubles one array of a stacked replay ([options, steps, elements]) may hold: every
# option of a small layer fits in one replay (whose cost there is Python's, per step,
# not the arithmetic), while a sampled layer's replays stay a few MB.
STACK_BUDGET = 1 << 18
# Up to this many doubles a replay costs about the same whatever it holds (Python's
# per-step overhead): the fitted-coefficient search asks ahead only within it. Beyond,
# the arithmetic counts and the points asked for the other outcome are work thrown away
# (a 64x64 sample over 2 steps: 0.136 s with 6 points a family an ask, 0.076 s with 2).
LOOKAHEAD_BUDGET = 1 << 15


def _width(actual: np.ndarray, budget: int = STACK_BUDGET) -> int:
    """How many options one stacked replay of a parameter (snapshots `actual`) takes."""
    return max(1, budget // max(1, actual[1:].size))


def _blocks(options: list, actual: np.ndarray):
    """(start, options[start:start + _width]) over the options."""
    width = _width(actual)
    return [(s, options[s:s + width]) for s in range(0, len(options), width)]


class _Stacked(dict):
    """The decay steps of options replayed together (see step): per decay step an
    [n, 1, ...] array of each option's coefficient (NaN for an option without the step),
    and `absent`: per decay step some options lack, where they lack it."""
    absent: dict[str, np.ndarray]


def _stacked(fits: list[Fit], ndim: int) -> _Stacked:
    """_Stacked of these options for a parameter of `ndim` dimensions."""
    terms = [dict(zip(family, cs)) for family, cs in fits]
    names = dict.fromkeys(name for t in terms for name in t)
    out = _Stacked({name: np.array([t.get(name, np.nan) for t in terms], np.float64).reshape((-1,) + (1,) * ndim)
                    for name in names})
    out.absent = {name: np.isnan(c) for name, c in out.items() if not all(name in t for t in terms)}
    return out


def _given(coeff: dict, name: str, applied: np.ndarray, skipped: np.ndarray,
           absent: np.ndarray | None = None) -> np.ndarray:
    """A decay step's result: `applied`, but `skipped` for the stacked options without
    the step (_Stacked.absent, or `absent` reshaped for another layout)."""
    if not isinstance(coeff, _Stacked) or name not in coeff.absent:
        return applied
    return np.where(coeff.absent[name] if absent is None else absent, skipped, applied)


def _replay(rule, args: dict, lr: float, coeff: dict[str, float], actual: np.ndarray,
            grads: list[np.ndarray], bounds: list[np.ndarray] | None = None,
            jitter: float | tuple[float, ...] = 0.0, width: int | None = None) -> np.ndarray:
    """The predicted parameter after every step, each step from the run's own weights.

    jitter != 0 moves every decayed gradient by jitter*(G + |decay term|), G the
    gradient's rounding scale (reference.gradient_bounds): the size of float32
    rounding in the framework's gradient, to measure the replay's sensitivity to it.
    A tuple of jitters replays them all at once ([len(jitter), steps, ...], see step);
    `width` options stacked in coeff likewise ([width, steps, ...], [len(jitter), width,
    steps, ...] with both).
    """
    state: dict = {}
    scheduled = np.ndim(lr) != 0
    # One errstate for the whole replay, not one per step: on small layers its cost was
    # a tenth of the replay's.
    with np.errstate(all="ignore"):
        return np.stack([step(rule, *(_at_step(args, lr, k) if scheduled else (args, lr)), coeff, actual[k], g0,
                              state, k + 1, None if bounds is None else bounds[k], jitter, width)
                         for k, g0 in enumerate(grads)], axis=int(isinstance(jitter, tuple)) + int(width is not None))


def _at_step(args: dict, lr: float | np.ndarray, k: int) -> tuple[dict, float]:
    """The rule's arguments and lr of step k (from 0): a schedule's lr is an array."""
    if np.ndim(lr) == 0:
        return args, lr
    return ({**args, "lr": float(lr[k])} if "lr" in args else args), float(lr[k])


def step(rule, args: dict, lr: float, coeff: dict[str, float], w: np.ndarray, g0: np.ndarray,
         state: dict, k: int, bound: np.ndarray | None = None,
         jitter: float | tuple[float, ...] = 0.0, width: int | None = None) -> np.ndarray:
    """One step (k from 1) of the rule with the decay steps in `coeff` composed around it
    (callers silence numpy's floating-point warnings around their steps). A tuple of
    jitters steps them all at once, stacked on a new first axis (the state too): an
    element-wise rule computes each slice with the very operations of its own step.
    Likewise `width` options at once: coeff's values are then [width, 1, ...] arrays
    (_stacked), g0 and bound the parameter's shape or [width, ...] (an option's own
    gradient), and the result [width, ...] (behind the jitters' axis)."""
    g = g0
    if "coupled_l2" in coeff:
        g = _given(coeff, "coupled_l2", coupled_l2(w, g, coeff["coupled_l2"]), g)
    if "l1" in coeff:
        g = _given(coeff, "l1", l1(w, g, coeff["l1"]), g)
    if width is not None and g.shape != (width,) + w.shape:
        # Every option steps its own state, also where the decay leaves the gradient alone.
        g = np.broadcast_to(g, (width,) + w.shape)
    if isinstance(jitter, tuple):
        spread = bound + np.abs(g - g0)
        g = np.stack([g + j * spread if j else g for j in jitter])
    elif jitter:
        g = g + jitter * (bound + np.abs(g - g0))
    if g.shape != w.shape:
        w = np.broadcast_to(w, g.shape)
    w_new = rule(w, g, state, k, **args)
    if "decoupled_lr" in coeff:
        w_new = _given(coeff, "decoupled_lr", decoupled_lr(w, w_new, coeff["decoupled_lr"], lr), w_new)
    return w_new


def _replay_options(rule, kwargs: dict, lr: float, fits: list[Fit], actual: np.ndarray,
                    grads: list[list[np.ndarray]]) -> np.ndarray:
    """[len(fits), steps, ...] _replay under each decay (coefficients as the kernel sees
    them; grads: each one's per step): an element-wise rule replays them all at once
    (step's width), a rule over whole tensors one by one."""
    if rule.__name__ in MIXING_RULES:
        return np.stack([_replay(rule, rule_args(kwargs, dict(zip(*fit))), lr, dict(zip(*fit)), actual, g)
                         for fit, g in zip(fits, grads)])
    coeff = _stacked(fits, actual.ndim - 1)
    return _replay(rule, rule_args(kwargs, coeff), lr, coeff, actual, _option_stack(grads), width=len(fits))


def _option_stack(per_option: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Per step, the options' arrays: shared by all (the same list: a decay outside the
    gradient), or stacked on a new first axis (clipped_l2's, one per coefficient)."""
    if all(each is per_option[0] for each in per_option):
        return per_option[0]
    return [np.stack(at) for at in zip(*per_option)]


def rule_args(kwargs: dict, coeff: dict[str, float]) -> dict:
    """The rule's arguments under a decay candidate: paddle Lamb's own decay is one of them."""
    args = dict(kwargs)
    if "lamb_weight_decay" in args:
        args["lamb_weight_decay"] = coeff.get("lamb_trust", 0.0)
    return args


def _residual(rule, kwargs: dict, lr: float, family: tuple[str, ...], cs: tuple[float, ...],
              actual: np.ndarray, grads: list[np.ndarray], bounds: list[np.ndarray],
              tol: Tolerance, need_across: bool = True) -> tuple[float, np.ndarray | None]:
    """Max of _ratios over steps, and the run's sensitivity (see _ratios)."""
    ratio, sensitivity = _ratios(rule, kwargs, lr, family, cs, actual, grads, bounds, tol, need_across)
    return _worst(ratio[None])[0], sensitivity


def _worst(per_step: np.ndarray) -> list[float]:
    """Each option's largest per-step ratio ([options, steps]; inf for NaN or none finite)."""
    worst = per_step.max(axis=1).tolist() if per_step.shape[1] else [0.0] * len(per_step)
    return [w if math.isfinite(w) else math.inf for w in worst]


def _ratios(rule, kwargs: dict, lr: float, family: tuple[str, ...], cs: tuple[float, ...],
            actual: np.ndarray, grads: list[np.ndarray], bounds: list[np.ndarray],
            tol: Tolerance, need_across: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Per step, max over elements of |predicted - actual| / tolerance, and the run's
    sensitivity under this rule ([2, steps, ...]: what a comparison within, and one
    across frameworks, adds to its tolerance for this run; see _option_ratios)."""
    ratio, sensitivity = _ratios_options(rule, kwargs, lr, [(family, cs)], actual, [grads], [bounds], tol,
                                         need_across)
    return ratio[0], None if sensitivity is None else sensitivity[:, 0]


def _ratios_options(rule, kwargs: dict, lr: float, fits: list[Fit], actual: np.ndarray,
                    grads: list[list[np.ndarray]], bounds: list[list[np.ndarray]],
                    tol: Tolerance, need_across: bool = True,
                    segments: list[slice] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """_ratios of each decay (coefficients as the kernel sees them; grads and bounds:
    each one's per step): [len(fits), steps] ([len(fits), len(segments), steps]: the
    maximum over each segment of the last axis) and [2, len(fits), steps, ...]. An
    element-wise rule replays them all at once (step's width): each element gets the
    very operations of its own replay; a rule over whole tensors one by one."""
    if rule.__name__ in MIXING_RULES:
        each = [_option_ratios(rule, kwargs, lr, dict(zip(*fit)), actual, g, b, tol, need_across, None, segments)
                for fit, g, b in zip(fits, grads, bounds)]
        return (np.stack([r for r, _ in each]),
                np.stack([s for _, s in each], axis=1) if need_across else None)
    return _option_ratios(rule, kwargs, lr, _stacked(fits, actual.ndim - 1), actual,
                          _option_stack(grads), _option_stack(bounds), tol, need_across, len(fits), segments)


def _option_ratios(rule, kwargs: dict, lr: float, coeff: dict, actual: np.ndarray, grads: list[np.ndarray],
                   bounds: list[np.ndarray], tol: Tolerance, need_across: bool,
                   width: int | None = None, segments: list[slice] | None = None
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """Per step, max over elements (over each of `segments` of the last axis: a
    [len(segments), steps] ratio) of |predicted - actual| / tolerance, and the run's
    sensitivity under this decay (coeff; `width` options stacked in it, see step:
    then a first axis of that many on everything returned) ([2, steps, ...]: what a
    comparison within, and one across frameworks, adds to its tolerance for this run;
    None without `need_across`).

    The tolerance is the comparison's plus two terms of the rule's own:
      * its sensitivity to float32 rounding of the gradient (gamma_n relative to |g|
        and to the decay term; at the eps of the forward's dtype under [precision]): where the gradient and a coupled decay nearly cancel,
        an adaptive optimizer's normalisation magnifies that rounding far beyond
        gamma_n of the update;
      * a decoupled decay is a step of its own, w*fl32(1 - lr*c), rounded before the
        update: the factor's rounding (<= ULP(w)), the product's (0.5 ULP), and lr*c's
        own (lr*c ULP) come on top of the stored weight's 0.5 ULP, k-fold at step k.
    The sensitivity is returned twice, stacked: as is (for comparisons within a
    framework), and with a third term for comparisons across frameworks: how far the
    update moves if the rule's scalars are computed exactly (paddle keeps beta^t as
    float32 running products, torch computes it in float64). Rule inference does not
    need that term (nor the sensitivity): the reference replays paddle's float32 products.
    """
    args = rule_args(kwargs, coeff)
    gamma = tol.ops * tol.eps / 2
    with np.errstate(all="ignore"):
        if rule.__name__ in MIXING_RULES:       # a rule over whole tensors: one replay each
            raw, up, down = (_replay(rule, dict(args), lr, coeff, actual, grads, bounds, j)
                             for j in (0.0, gamma, -gamma))
        else:
            # All three in one replay (jitter 0 leaves the gradient as it is): a third of
            # the steps' Python overhead on small layers.
            raw, up, down = _replay(rule, dict(args), lr, coeff, actual, grads, bounds, (0.0, gamma, -gamma), width)
    # The sensitivities are measured on the unrounded replay; the ratio on the weights as stored.
    predicted = _stored(raw, tol)
    before, after = actual[:-1], actual[1:]
    delta = after - before
    mag = np.maximum(np.abs(before), np.abs(after))
    with np.errstate(all="ignore"):
        sensitivity = np.maximum(np.abs(up - raw), np.abs(down - raw))
        if "decoupled_lr" in coeff:
            k = np.arange(1, len(delta) + 1).reshape((-1,) + (1,) * (delta.ndim - 1))
            lr_k = np.reshape(lr[:len(delta)], (-1,) + (1,) * (delta.ndim - 1)) if np.ndim(lr) else lr
            c = coeff["decoupled_lr"]
            c = c if width is None else np.reshape(c, (-1,) + (1,) * delta.ndim)     # [width, steps, ...]
            sensitivity = _given(coeff, "decoupled_lr", sensitivity + k * (1.5 + lr_k * c) * tol.ulp(mag),
                                 sensitivity, np.isnan(c))
        scalars = (np.abs(_replay(rule, {**args, "f32_pows": False}, lr, coeff, actual, grads, width=width) - raw)
                   if need_across and uses_f32_pows(rule, args) else None)
    sensitivity = np.where(np.isfinite(sensitivity), sensitivity, 0.0)
    with np.errstate(all="ignore"):
        allowed = tol.allowed(mag, delta, predicted - before) + sensitivity
        ratio = np.abs(predicted - after) / allowed
    ratio = np.where(predicted == after, 0.0, ratio)
    # NaN (a replay that overflowed) counts as beyond any tolerance.
    lead = ratio.shape[:1 + int(width is not None)]     # (steps,) or (width, steps)
    flat = ratio.reshape(lead + (-1,))
    worst = (flat.max(axis=-1, initial=0.0) if segments is None
             else np.stack([flat[..., sl].max(axis=-1, initial=0.0) for sl in segments], axis=-2))
    per_step = np.nan_to_num(worst, nan=math.inf, posinf=math.inf)
    if not need_across:
        return per_step, None
    across = sensitivity if scalars is None else sensitivity + np.where(np.isfinite(scalars), scalars, 0.0)
    return per_step, np.stack([sensitivity, across])


# Golden-section iterations one stacked replay looks ahead (see _fit): 2**(n+1) - 2 points.
LOOKAHEAD = 4


def _fit(f: Callable[[list[tuple[object, float]]], list[float]], keys: list,
         width: int = 1) -> dict[object, tuple[float, tuple[float]]]:
    """Minimise f(key, c) over c in [1e-4, 3] for each key (_search), the searches in
    lockstep: f maps (key, coefficient) pairs to values, a replay of them all, asked
    for every search's next points at once; `width`: how many points an ask may hold
    at about the cost of one (LOOKAHEAD_BUDGET), which sets how far the searches look
    ahead (LOOKAHEAD iterations at most)."""
    searches = {key: _search(max(1, min(LOOKAHEAD, (width // len(keys) + 2).bit_length() - 2))) for key in keys}
    asked = {key: next(search) for key, search in searches.items()}
    found = {}
    while asked:
        values = iter(f([(key, c) for key, cs in asked.items() for c in cs]))
        for key, cs in list(asked.items()):
            try:
                asked[key] = searches[key].send({c: next(values) for c in cs})
            except StopIteration as done:
                found[key] = done.value
                del asked[key]
    return found


def _search(depth: int):
    """One minimisation for _fit, as a generator: yields the coefficients whose values
    it needs next and is sent them ({c: value}); returns (value, (c,)). A log grid,
    golden-section refinement, then the shortest decimal that fits as well (up to 9
    significant digits, float32's round trip: a rule name shows every digit of its
    coefficient, rules.coefficient_text). A coefficient met again (golden-section
    points recur, the shortest decimal may be the refined one) is looked up, not asked
    for; the golden section asks for its next `depth` iterations' points under either
    outcome at once, and the decimals are asked for together: the points are the very
    ones a search of one point at a time visits."""
    seen: dict[float, float] = {}

    def new(cs) -> list[float]:
        return list(dict.fromkeys(c for c in cs if c not in seen))

    grid = np.geomspace(1e-4, 3.0, 36)
    seen.update((yield new(grid)))
    values = [seen[c] for c in grid]
    i = int(np.argmin(values))
    lo, hi = math.log(grid[max(i - 1, 0)]), math.log(grid[min(i + 1, len(grid) - 1)])
    ratio = (math.sqrt(5) - 1) / 2
    for n in range(40):
        a, b = _golden(lo, hi, ratio)
        if math.exp(a) not in seen or math.exp(b) not in seen:
            seen.update((yield new(_golden_points(lo, hi, ratio, min(depth, 40 - n)))))
        if seen[math.exp(a)] < seen[math.exp(b)]:
            hi = b
        else:
            lo = a
    c = math.exp((lo + hi) / 2)
    shorts = [float(f"{c:.{digits - 1}e}") for digits in range(1, 10)]
    seen.update((yield new([c, *shorts])))
    for short in shorts:
        if seen[short] <= 1:
            return seen[short], (short,)
    return seen[c], (c,)


def _golden_points(lo: float, hi: float, ratio: float, depth: int) -> list[float]:
    """The points the next `depth` golden-section iterations from [lo, hi] evaluate,
    under every outcome of their comparisons."""
    points, level = [], [(lo, hi)]
    for _ in range(depth):
        below = []
        for left, right in level:
            a, b = _golden(left, right, ratio)
            points += [math.exp(a), math.exp(b)]
            below += [(left, b), (a, right)]      # f(a) < f(b): [left, b], else [a, right]
        level = below
    return points


def _golden(lo: float, hi: float, ratio: float) -> tuple[float, float]:
    """A golden-section iteration's two inner points of [lo, hi]."""
    return hi - ratio * (hi - lo), lo + ratio * (hi - lo)
