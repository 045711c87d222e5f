"""`xdecay explain`: the decay rule each optimizer really applies, measured.

Every optimizer class of the catalogue runs every decay way it accepts from one
numpy start; each run's parameters are explained by rule inference (infer.py).
For optimizers present in both frameworks, the same user-level construction
(lr and weight_decay) is compared across frameworks, and a disagreement is
traced to its cause with the float64 reference.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..case import FRAMEWORKS
from ..frameworks.records import ExplainJob, RunRecord
from ..frameworks.runner import DEFAULT_TIMEOUT, FrameworkResult, run
from . import catalogue, causes
from .compare import Comparison, Tolerance, compare_pair
from .infer import Inferred, infer_run
from .loop import Loop
from .optimizers import EXPLAIN_CLIP
from .separate import Separator
from .spec import Spec

SEED = 20240607
COEFF = 0.1              # the decay every way is given
PARAM_ATTR_COEFF = 0.5   # ParamAttr(L2Decay(...)) on the weight: distinguishable from COEFF
LOSS = "mse"
EXPLAIN_STEPS = 3        # a first Adam step is close to lr*sign(g) and cannot separate rules             # parameters' gradients depend on each other, as in real training


def explain_spec(seed: int = SEED) -> Spec:
    """Linear(5 -> 3) with a bias, batch 4, mse against a uniform target."""
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(5)
    return Spec({"weight": rng.uniform(-bound, bound, (3, 5)).astype(np.float32),
                 "bias": rng.uniform(-bound, bound, 3).astype(np.float32)},
                rng.uniform(0, 1, (4, 5)).astype(np.float32),
                rng.uniform(0, 1, (4, 3)).astype(np.float32))


@dataclass(frozen=True)
class Row:
    framework: str
    optimizer: str
    variant: str
    way: str
    options: dict
    param: str
    rule: str                  # inferred rule, or "rejected" with the framework's message
    residual: float | None
    error: str | None = None
    residuals: dict[str, float] | None = None   # every candidate's, when nothing fits
    separate: str = ""         # an ambiguous rule: the steps/lr that would separate its rules (replayed)


@dataclass(frozen=True)
class CrossRow:
    torch: str                 # "SGD(momentum)"
    paddle: str
    one_step: Comparison
    all_steps: Comparison
    torch_rule: str            # the weight's rule under weight_decay=COEFF
    paddle_rule: str
    cause: str                 # "" when they agree


@dataclass
class Explanation:
    versions: dict[str, str]
    steps: int
    rows: list[Row]
    cross: list[CrossRow]
    errors: dict[str, str]


def label(optimizer: str, variant: str) -> str:
    return f"{optimizer}({variant})" if variant else optimizer


def explain(frameworks: tuple[str, ...] = FRAMEWORKS, optimizers: set[str] | None = None,
            steps: int = EXPLAIN_STEPS, pythons: dict[str, str] | None = None,
            timeout: float = DEFAULT_TIMEOUT, in_process: bool = False) -> Explanation:
    inferred: dict[tuple, list[Inferred]] = {}
    # Each framework's rules are inferred as soon as it is done, while the other still runs.
    done = run(explain_jobs(frameworks, optimizers, steps), pythons, timeout, in_process,
               on_done=lambda fw, result: inferred.update(infer_framework(fw, result)))
    return explanation_from(done, steps, inferred)


def explain_jobs(frameworks: tuple[str, ...] = FRAMEWORKS, optimizers: set[str] | None = None,
                 steps: int = EXPLAIN_STEPS) -> dict[str, ExplainJob]:
    """Each framework's request: every catalogue item, from one numpy start."""
    jobs = {fw: ExplainJob(explain_spec(), LOSS, steps, COEFF, PARAM_ATTR_COEFF,
                           tuple(catalogue.items(fw, optimizers)))
            for fw in frameworks}
    return {fw: job for fw, job in jobs.items() if job.items}


def infer_framework(fw: str, result: FrameworkResult) -> dict[tuple, list[Inferred]]:
    """The rules of one framework's successful explain runs, by (framework, class, variant, way)."""
    spec = explain_spec()
    return {(fw, r.optimizer, r.variant, r.way): infer_run(r, spec, LOSS, (COEFF, PARAM_ATTR_COEFF),
                                                          loop=explain_loop(r.way))
            for r in (result.records[0] if result.error is None else []) if r.error is None}


def explain_loop(way: str) -> Loop:
    """The loop an explain way runs in: the clip ways under EXPLAIN_CLIP."""
    return Loop(EXPLAIN_CLIP) if way.startswith("clip+") else Loop()


def explanation_from(done: dict[str, FrameworkResult], steps: int,
                     inferred: dict[tuple, list[Inferred]] | None = None) -> Explanation:
    """Rules per run and parameter, and the cross-framework table, from explain_jobs' runs
    (with the rules already inferred, if given)."""
    spec = explain_spec()
    rows: list[Row] = []
    inferred = dict(inferred or {})
    separator = Separator(lambda loss: spec, LOSS, spec.params["weight"].size)
    for fw, result in done.items():
        if not any(key[0] == fw for key in inferred):
            inferred.update(infer_framework(fw, result))
        for r in result.records[0] if result.error is None else []:
            if r.error is not None:
                rows += [Row(fw, r.optimizer, r.variant, r.way, r.options, p, "rejected", None, r.error)
                         for p in ("weight", "bias")]
                continue
            found = inferred[(fw, r.optimizer, r.variant, r.way)]
            by_param = {i.param: i for i in found}
            rows += [Row(fw, r.optimizer, r.variant, r.way, r.options, i.param, i.rule, i.residual,
                         residuals=i.residuals if i.rule == "unexplained" else None,
                         separate=_separate(separator, by_param, i, steps))
                     for i in found]
    cross = _cross(done, inferred, spec, steps) if set(done) >= {"torch", "paddle"} else []
    return Explanation({fw: r.version for fw, r in done.items() if r.version}, steps, rows, cross,
                       {fw: r.error for fw, r in done.items() if r.error})


def _cross(done: dict[str, FrameworkResult], inferred: dict, spec: Spec, steps: int) -> list[CrossRow]:
    if done["torch"].error or done["paddle"].error:
        return []
    runs = {(fw, r.optimizer, r.variant, r.way): r
            for fw in ("torch", "paddle") for r in done[fw].records[0]}
    tol = Tolerance(ops=spec.x.shape[1] + spec.x.shape[0] + 16)
    out = []
    for (tc, tv, tw), (pc, pv, pw) in catalogue.PAIRS:
        t = runs.get(("torch", tc, tv, tw))
        p = runs.get(("paddle", pc, pv, pw))
        if t is None or p is None or t.error or p.error:
            continue
        one = compare_pair(_first(t, 1), _first(p, 1), "equal", tol)
        every = compare_pair(t, p, "equal", tol)
        t_rule = inferred[("torch", tc, tv, tw)][0].rule
        p_rule = inferred[("paddle", pc, pv, pw)][0].rule
        cause = "" if one.ok and every.ok else causes.cause(t, p, {"weight": t_rule}, {"weight": p_rule},
                                                              spec, LOSS, (COEFF, PARAM_ATTR_COEFF))
        shown = label(tc, tv) if tw == "weight_decay" else f"{tc}({tw}_weight_decay=True)"
        out.append(CrossRow(shown, label(pc, pv), one, every, t_rule, p_rule, cause))
    return out


def _separate(separator: Separator, by_param: dict[str, Inferred], i: Inferred, steps: int) -> str:
    """For an ambiguous rule: the steps or lr at which a replay tells its rules apart."""
    if len(i.fits) < 2:
        return ""
    pairs = [(by_param, i.param, a, b) for k, a in enumerate(i.fits) for b in i.fits[k + 1:]]
    return separator.suggest(pairs, steps, scale_coeff=False)


def _first(r: RunRecord, steps: int) -> RunRecord:
    return dataclasses.replace(r, params={n: v[:steps + 1] for n, v in r.params.items()})
