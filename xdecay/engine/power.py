"""Detection power: can a check see the decay, and how wrong could the decay be and still pass?

Every figure here comes from what-if replays with the float64 reference rule of the
run's own optimizer class (infer.ParamReplay, reference.RULES): no framework runs, and
any class rule inference can replay gets its power too.

Visibility. A run built with decay (any way but `none`) is compared with itself
replayed without decay, against the comparison tolerance plus the run's sensitivity:
rule inference's residual of the `none` candidate. Within it (<= 1), `none` is among
the rules that fit (`ambiguous(none|...)`): the run cannot show its decay, and an
`equal` check over it is inconclusive. A run whose rule is `none` alone (a setup that
switches decay off) did show the absence: every decay in play was rejected.

Coefficient error. For an `equal` check, each decayed run's parameter is replayed
(from its own float32 weights, as inference does) with one decay coefficient scaled
by 1 + d and by 1 - d, d on GRID (d = 1 down: that decay left out). The check catches
d when the replay moves some element by more than the check's tolerance there (the
plain bound + both runs' sensitivities) plus the difference the two runs already
have (a wrong coefficient could hide in it). The power is the smallest d caught in
both directions, the worst over decayed runs, parameters and decay terms. A rule
check is measured the same way against the run's own inference tolerance. Not caught
at d = 1: the check cannot see the decay (inconclusive).

Nearest other rules: each decay term swapped (coupled_l2 <-> decoupled_lr, l1 for
either, coupled_l2 for l1), and the decay applied twice (the other of coupled and
decoupled added at the same coefficient); replayed and judged like d.

Suggestions (where an experiment cannot separate two rules): separate.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..case import Case
from ..frameworks.records import RunRecord
from .compare import Pair, Tolerance
from .infer import Inferred, ParamReplay
from .rules import Fit, parse_rule, rule_name
from .separate import NONE, SCALES, SEARCH_STEPS, Separator

# Relative coefficient errors tried: 1-2-5 from 1e-5 to 1.
GRID = tuple(m * 10.0 ** e for e in range(-5, 0) for m in (1, 2, 5)) + (1.0,)
# Up to this many doubles a step (what-ifs x elements), every d of a fit is replayed in
# one stacked replay, where Python's overhead per step dominates; beyond, the few d the
# bisection visits one by one cost less (Adam, 10 steps, one term: all 32 d and the
# nearest rules 0.35 ms vs 1.57 ms one by one at 15 elements, 2.85 vs 2.24 ms at 512,
# 15.4 vs 5.7 ms at a 64x64 sample).
WHAT_IF_BUDGET = 1 << 13


@dataclass(frozen=True)
class Power:
    """What a check can see. verdict: "conclusive", "inconclusive", "no decay" (the
    check involves no run built with decay) or "unknown" (no reference rule fits)."""
    verdict: str
    coeff_error: float | None = None          # smallest relative coefficient error caught
    rules: dict[str, bool] = field(default_factory=dict)   # nearest other rule -> caught?
    # The decayed runs' smallest ratio |run - itself replayed without decay| / tolerance
    # (a run that shows no decay: its ratio to the nearest decay in play).
    visibility: float | None = None
    reason: str = ""
    suggestion: str = ""

    def short(self) -> str:
        """The table's power column."""
        if self.verdict != "conclusive" or self.coeff_error is None:
            return self.verdict if self.verdict != "conclusive" else "-"
        missed = [name for name, caught in self.rules.items() if not caught]
        return f">={_percent(self.coeff_error)}" + (f"; misses {', '.join(missed)}" if missed else "")

    def words(self) -> str:
        """The reason, and the suggestion when there is one."""
        return self.reason + (f"; {self.suggestion}" if self.suggestion else "")

    def json(self) -> dict:
        return {"verdict": self.verdict, "coeff_error": self.coeff_error, "rules": dict(self.rules),
                "visibility": self.visibility, "reason": self.reason, "suggestion": self.suggestion}


def _percent(d: float) -> str:
    return f"{d * 100:.3g} %"


def visibility(inferred: Inferred) -> tuple[bool | None, float | None]:
    """(can the run show its decay, the ratio that says so): see the module docstring.
    (None, None) when no rule fits: the reference cannot say."""
    if inferred.rule == "unexplained":
        return None, None
    families = [f for f, _ in inferred.fits]
    if families == [("none",)]:
        others = [r for name, r in inferred.residuals.items() if name != "none"]
        return True, (min(others) if others else None)
    return ("none",) not in families, inferred.residuals.get("none")


def _decay_fits(inferred: Inferred) -> list[Fit]:
    return [(f, cs) for f, cs in inferred.fits if f != ("none",)]


def _doubled(fit: Fit) -> Fit:
    family, cs = fit
    return family, tuple(2 * c for c in cs)


def _measured_fits(inferred: Inferred) -> list[Fit]:
    """The decay fits whose coefficients a check is measured on: those with the fewest
    terms. A longer fit's extra term is one the run cannot show (that is the ambiguity;
    `rules` reports it as the decay applied twice, missed)."""
    fits = _decay_fits(inferred)
    fewest = min((len(f) for f, _ in fits), default=0)
    return [(f, cs) for f, cs in fits if len(f) == fewest]


def alternatives(family: tuple[str, ...], cs: tuple[float, ...]) -> dict[str, Fit]:
    """The nearest other rules of a fit, by rule name (module docstring)."""
    out: dict[str, Fit] = {}
    swaps = {"coupled_l2": ("decoupled_lr", "l1"), "decoupled_lr": ("coupled_l2", "l1"), "l1": ("coupled_l2",),
             "clipped_l2": ("coupled_l2",)}
    for i, f in enumerate(family):
        for other in swaps.get(f, ()):
            if other not in family:
                fam = family[:i] + (other,) + family[i + 1:]
                out[rule_name(fam, cs)] = (fam, cs)
    if family in (("coupled_l2",), ("decoupled_lr",)):
        both = (("coupled_l2", "decoupled_lr"), (cs[0], cs[0]))
        out[rule_name(*both)] = both
    return out


class ParamPower:
    """What-if replays of one run's parameter, kept for every check the run is in."""

    def __init__(self, replay: ParamReplay):
        self.replay = replay
        self._moved: dict[tuple[Fit, Fit], np.ndarray] = {}
        # The fitted rules' replays: every what-if of a fit is measured against the same one.
        self._predicted: dict[Fit, np.ndarray] = {}
        # coeff_error's what-ifs of a small parameter's fit: moved() [term, sign (+, -), d of GRID,
        # steps * elements]
        self._scaled: dict[Fit, np.ndarray] = {}

    def moved(self, fit: Fit, other: Fit) -> np.ndarray:
        """[steps, elements] |replay under other - replay under fit|."""
        if (fit, other) not in self._moved:
            self._remember(fit, [other])
        return self._moved[(fit, other)]

    def _remember(self, fit: Fit, others: list[Fit]) -> None:
        """moved() of each of `others` not known yet, from one stacked replay."""
        todo = [o for o in dict.fromkeys(others) if (fit, o) not in self._moved]
        if todo:
            self._moved.update(zip([(fit, o) for o in todo], self._what_ifs(fit, todo)))

    def _what_ifs(self, fit: Fit, others: list[Fit]) -> np.ndarray:
        """[len(others), steps, elements] moved() of each of `others`, from one stacked
        replay (ParamReplay.predict_all), with the fit's own if that is not known yet."""
        mine = [] if fit in self._predicted else [fit]
        predicted = self.replay.predict_all(mine + others)
        if mine:
            self._predicted[fit] = predicted[0]
        a = self._predicted[fit]
        with np.errstate(all="ignore"):
            d = np.abs(predicted[len(mine):] - a).reshape(len(others), len(a), -1)
        return np.where(np.isnan(d), np.inf, d)

    def caught(self, fit: Fit, other: Fit, margin: np.ndarray) -> bool:
        with np.errstate(all="ignore"):
            return bool(np.max(self.moved(fit, other) / margin) > 1)

    def coeff_error(self, fit: Fit, margin: np.ndarray) -> float | None:
        """The smallest d of GRID caught with every coefficient of the fit scaled by
        1 + d and, separately, by 1 - d (the worst over terms); None: not even d = 1."""
        cs = fit[1]
        self.prepare(fit)
        if fit in self._scaled:
            with np.errstate(all="ignore"):
                # [term, sign, d]: caught() of each (the same maximum, over a row per d)
                known = np.max(self._scaled[fit] / margin.reshape(-1), axis=-1) > 1

            def caught(i: int, sign: int, k: int) -> bool:
                return bool(known[i, sign, k])
        else:
            def caught(i: int, sign: int, k: int) -> bool:
                return self.caught(fit, _scale(fit, i, (1.0, -1.0)[sign], GRID[k]), margin)
        worst = 0.0
        for i in range(len(cs)):
            for sign in range(2):
                # Caught grows with d: bisect for the first d caught.
                if not caught(i, sign, len(GRID) - 1):
                    return None
                lo, hi = -1, len(GRID) - 1
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if caught(i, sign, mid):
                        hi = mid
                    else:
                        lo = mid
                worst = max(worst, GRID[hi])
        return worst

    def prepare(self, fit: Fit) -> None:
        """A small parameter's what-ifs of the fit (WHAT_IF_BUDGET): every d of GRID and
        the nearest other rules (rules()), in one replay. They need no margin: made as
        soon as the run is in, while the frameworks still run."""
        if fit in self._scaled:
            return
        cs = fit[1]
        every = [_scale(fit, i, sign, d) for i in range(len(cs)) for sign in (1.0, -1.0) for d in GRID]
        if len(every) * self.replay.actual[0].size <= WHAT_IF_BUDGET:
            others = [o for o in dict.fromkeys(alternatives(*fit).values()) if (fit, o) not in self._moved]
            moved = self._what_ifs(fit, every + others)
            self._moved.update(zip([(fit, o) for o in others], moved[len(every):]))
            self._scaled[fit] = moved[:len(every)].reshape(len(cs), 2, len(GRID), -1)

    def effect(self, fit: Fit, margin: np.ndarray) -> float:
        """max |the replay without one of the fit's decay terms - with it| / margin, the
        largest over terms: how far the check is from seeing the decay at all."""
        family, cs = fit
        without = [(family, cs[:i] + (0.0,) + cs[i + 1:]) for i in range(len(cs))]
        self._remember(fit, without)
        with np.errstate(all="ignore"):
            return max(float(np.max(self.moved(fit, other) / margin)) for other in without)

    def rules(self, fit: Fit, margin: np.ndarray) -> dict[str, bool]:
        found = alternatives(*fit)
        self._remember(fit, list(found.values()))
        return {name: self.caught(fit, alt, margin) for name, alt in found.items()}


def _scale(fit: Fit, i: int, sign: float, d: float) -> Fit:
    """The fit with its i-th coefficient scaled by 1 + sign * d."""
    family, cs = fit
    return family, cs[:i] + (cs[i] * (1 + sign * d),) + cs[i + 1:]


def _flat(snaps: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
    flat = np.asarray(snaps).reshape(len(snaps), -1)
    return np.asarray(flat if idx is None else flat[:, idx], np.float64)


def _steps_axis(n: int) -> np.ndarray:
    return np.arange(1, n + 1).reshape(-1, 1)


class CasePower:
    """Power of every check of one case result (pipeline.compare_case)."""

    def __init__(self, case: Case, tol: Tolerance, sensitivity: dict, steps: int):
        self.case, self.tol, self.sensitivity, self.steps = case, tol, sensitivity, steps
        self._params: dict[tuple[str, str], ParamPower] = {}
        c = case
        self.separator = Separator(
            c.spec, c.loss, max(int(np.prod(s)) for s in c.layer.shapes().values()))

    def _inferred(self, run: str, param: str) -> Inferred:
        return self.sensitivity[run].inferred[param]

    def _param(self, run: str, param: str) -> ParamPower:
        key = (run, param)
        if key not in self._params:
            self._params[key] = ParamPower(self._inferred(run, param).replay)
        return self._params[key]

    def prepare(self, run: RunRecord, params: list[str]) -> None:
        """The what-if replays an equal check over this run will measure (ParamPower.prepare),
        made before its other run is in."""
        if run.way == "none":
            return
        for param in params:
            inferred = self._inferred(run.name, param)
            if visibility(inferred)[0]:
                for fit in _measured_fits(inferred):
                    self._param(run.name, param).prepare(fit)

    # ------------------------------------------------------------ margins

    def pair_margin(self, pair: Pair, param: str, idx: np.ndarray | None) -> np.ndarray:
        """[steps, elements] what the pair's comparison tolerates at these elements:
        its tolerance (as compare._compare_chunk) plus the difference already there."""
        a, b = _flat(pair.a.params[param], idx), _flat(pair.b.params[param], idx)
        da, db = np.diff(a, axis=0), np.diff(b, axis=0)
        tol = self.tol.for_runs(pair.a, pair.b)
        ulp = tol.ulp(np.maximum(np.abs(a[:-1]), np.abs(a[1:])))
        allowed = tol.allowed_from(ulp, np.maximum(np.abs(da), np.abs(db)), _steps_axis(len(da)))
        if not tol.fixed:
            across = pair.a.framework != pair.b.framework
            allowed = allowed + self._sensitivity_at(pair.a.name, param, idx, across) \
                + self._sensitivity_at(pair.b.name, param, idx, across)
        return allowed + np.abs(da - db)

    def _sensitivity_at(self, run: str, param: str, idx: np.ndarray | None, across: bool) -> np.ndarray:
        """[steps, elements] the run's sensitivity at these elements: inference's own on
        its sample (no replay), else RunSensitivity's."""
        inferred = self._inferred(run, param)
        if (idx is not None and inferred.sample is not None and inferred.sensitivity is not None
                and np.array_equal(idx, inferred.sample)):
            return inferred.sensitivity[int(across)]
        sens = self.sensitivity[run]
        return sens.at(param, idx if idx is not None else np.arange(sens.run.params[param][0].size), across)

    def run_margin(self, run: RunRecord, param: str, inferred: Inferred) -> np.ndarray:
        """[steps, elements] rule inference's tolerance for the run (its own sensitivity)."""
        idx = inferred.sample
        a = _flat(run.params[param], idx)
        d = np.diff(a, axis=0)
        tol = inferred.replay.tol
        ulp = tol.ulp(np.maximum(np.abs(a[:-1]), np.abs(a[1:])))
        return (tol.allowed_from(ulp, np.abs(d), _steps_axis(len(d)))
                + self._sensitivity_at(run.name, param, idx, False))

    # ------------------------------------------------------------ checks

    def equal(self, pair: Pair) -> Power:
        decayed = [r for r in (pair.a, pair.b) if r.way != "none"]
        if not decayed:
            return Power("no decay", reason="neither run is built with decay")
        ratios, invisible, unknown, errors, blind, rules = [], [], [], [], [], {}
        for r in decayed:
            for param in pair.params:
                inferred = self._inferred(r.name, param)
                seen, ratio = visibility(inferred)
                if seen is None:
                    unknown.append(f"{r.name} {param}")
                    continue
                if ratio is not None:
                    ratios.append(ratio)
                if not seen:
                    invisible.append((r, param, inferred, ratio))
                    continue
                fits = _measured_fits(inferred)
                if not fits:
                    continue
                margin = self.pair_margin(pair, param, inferred.sample)
                power = self._param(r.name, param)
                for fit in fits:
                    d = power.coeff_error(fit, margin)
                    if d is None:
                        words = (f"{r.name} {param} (its decay moves it by at most "
                                 f"{power.effect(fit, margin):.3g}x what the check tolerates)")
                        blind.append((r, param, fit, words))
                    errors.append((r.name, param, d))
                    for name, caught in power.rules(fit, margin).items():
                        rules[name] = rules.get(name, True) and caught
        seen_ratio = min(ratios) if ratios else None
        if invisible:
            reason = "; ".join(f"{r.name} {p} is within {ratio:.3g}x the tolerance of itself replayed "
                               f"without decay (rule {i.rule})" for r, p, i, ratio in invisible)
            return Power("inconclusive", None, rules, seen_ratio, f"cannot see the decay: {reason}",
                         self._suggest_all([(r, p, NONE, fit) for r, p, i, _ in invisible
                                            for fit in _decay_fits(i)]))
        if blind:
            # Blind to the coefficient (Adam's first step is lr*sign(g + c*w): c and 2c alike),
            # so the suggestion is what separates the fit from its double.
            return Power("inconclusive", None, rules, seen_ratio,
                         f"would pass with the decay of {', '.join(b[-1] for b in blind)} left out or doubled",
                         self._suggest_all([(r, p, fit, _doubled(fit)) for r, p, fit, _ in blind]))
        if unknown and not errors:
            return Power("unknown", None, rules, seen_ratio,
                         f"no reference rule fits {', '.join(unknown)}: power not measured")
        if not errors:
            return Power("conclusive", None, rules, seen_ratio, "no decay applied; every decay in play "
                         "would have been seen")
        return Power("conclusive", max(d for _, _, d in errors), rules, seen_ratio,
                     f"not measured for {', '.join(unknown)}: no reference rule fits" if unknown else "")

    def differ(self, pair: Pair, within: bool) -> Power:
        """A differ check; `within`: the runs came out equal within the tolerance."""
        if not within:
            return Power("conclusive")
        s = self.case.schedule
        if s is not None and s.words.get("cycle_momentum") and "torch" in (pair.a.framework, pair.b.framework):
            # Not replayed, so no replay can say when the cycled momentum shows (a momentum
            # buffer starts as the first gradient: from the second step at the earliest).
            return Power("inconclusive", reason="torch's OneCycleLR cycles the momentum / beta1 "
                         "(cycle_momentum=True), which rule inference does not replay: the difference "
                         "it makes shows from the second step at the earliest",
                         suggestion="more steps (a momentum or beta1 of its own from step 2 on)")
        found = []          # (param, rule a, rule b, {(rule of a, rule of b): steps that separate})
        apart = []          # parameters whose rules inference tells apart
        for param in pair.params:
            ia, ib = self._inferred(pair.a.name, param), self._inferred(pair.b.name, param)
            if "unexplained" in (ia.rule, ib.rule):
                continue
            if not set(ia.fits) & set(ib.fits):
                # No rule fits both: the runs are told apart by inference, not by this
                # comparison (a fixed tolerance wider than their difference).
                apart.append(f"{param}: {ia.rule} vs {ib.rule}")
                continue
            candidates = {(ha, hb) for ha in ia.fits for hb in ib.fits if ha != hb}
            if not candidates:
                continue
            steps = {(ha, hb): self.separation(pair.a, param, ha, hb) for ha, hb in sorted(candidates)}
            found.append((param, ia.rule, ib.rule, steps))
        separable = [(p, ra, rb, s) for p, ra, rb, s in found if any(v is not None for v in s.values())]
        if not separable:
            if found:
                p, ra, rb, s = found[0]
                names = ", ".join(f"{rule_name(*ha)} / {rule_name(*hb)}" for ha, hb in s)
                return Power("conclusive", reason=f"{p}: {names} are one formula here: no replay up to "
                             f"{SEARCH_STEPS} steps, lr or coefficient x{SCALES[-1]:g} separates them")
            if apart:
                return Power("conclusive", reason=f"the rules differ ({'; '.join(apart)}) by less than "
                             "the comparison's tolerance")
            return Power("conclusive")
        reason = "; ".join(f"{p}: {pair.a.name} follows {ra}, {pair.b.name} {rb}" for p, ra, rb, _ in separable)
        return Power("inconclusive", reason=f"the experiment cannot separate the rules: {reason}",
                     suggestion=self._suggest_all([(pair.a, p, ha, hb) for p, _, _, s in separable
                                                   for (ha, hb), n in s.items() if n is not None]))

    def rule(self, run: RunRecord, param: str, expected: str, got: str, matches: bool) -> Power:
        """A rule check (`matches`: the inferred rule is the expected one): its coefficient
        error when it holds; inconclusive when it fails only because the inferred rule is
        ambiguous between the expected one and others a replay could separate."""
        inferred = self._inferred(run.name, param)
        if matches:
            seen, ratio = visibility(inferred)
            claims_ambiguity = "none" in expected.removeprefix("ambiguous(").rstrip(")").split("|")
            if seen is False and run.way != "none" and not claims_ambiguity:
                return Power("inconclusive", visibility=ratio, reason=f"{run.name} {param} cannot show "
                             f"its decay (within {ratio:.3g}x of itself without decay)",
                             suggestion=self._suggest_all([(run, param, NONE, f) for f in _decay_fits(inferred)]))
            if seen is False and claims_ambiguity:
                # The claim is the invisibility itself (a decay below the stored dtype's
                # resolution): it fails as soon as the run shows any decay.
                return Power("conclusive", visibility=ratio, reason=f"{run.name} {param} claimed and found "
                             f"within {ratio:.3g}x of itself without decay")
            fits = _measured_fits(inferred)
            if not fits or seen is None:
                return Power("conclusive", visibility=ratio)
            margin = self.run_margin(run, param, inferred)
            power = self._param(run.name, param)
            errors = [power.coeff_error(f, margin) for f in fits]
            rules: dict[str, bool] = {}
            for f in fits:
                for name, caught in power.rules(f, margin).items():
                    rules[name] = rules.get(name, True) and caught
            if None in errors:
                return Power("inconclusive", None, rules, ratio,
                             f"would pass with the decay of {run.name} {param} left out or doubled",
                             self._suggest_all([(run, param, f, _doubled(f)) for f, e in zip(fits, errors)
                                                if e is None]))
            return Power("conclusive", max(errors), rules, ratio)
        # Inference names each family's best coefficient only: the expected rule may fit
        # the run as well as the rules named (the data cannot exclude it).
        claimed = parse_rule(expected)
        if not claimed or len(claimed) > 1 or inferred.replay is None or not inferred.fits:
            return Power("conclusive")
        mine = claimed[0]
        with np.errstate(all="ignore"):
            fits = bool(np.max(inferred.replay.ratios(*mine)) <= 1)
        others = [f for f in inferred.fits if f != mine]
        if fits and any(self.separation(run, param, mine, f) is not None for f in others):
            return Power("inconclusive", reason=f"{run.name} {param} fits {expected} as well as {got}: "
                         "the experiment cannot separate them",
                         suggestion=self._suggest_all([(run, param, mine, f) for f in others]))
        return Power("conclusive")

    # ------------------------------------------------------------ suggestions

    def separation(self, run: RunRecord, param: str, h1: Fit, h2: Fit, **kw) -> int | None:
        return self.separator.separation(self.sensitivity[run.name].inferred, param, h1, h2, **kw)

    def _suggest_all(self, confusions: list[tuple[RunRecord, str, Fit, Fit]]) -> str:
        return self.separator.suggest([(self.sensitivity[r.name].inferred, p, a, b) for r, p, a, b in confusions],
                                      self.steps)


def min_power_problem(power: Power, required: float | None) -> str:
    """Why a conclusive check misses --min-power / the case's min_power ("" if it does not)."""
    if required is None or power.verdict != "conclusive" or power.coeff_error is None:
        return ""
    if power.coeff_error <= required * (1 + 1e-12):
        return ""
    return (f"catches a coefficient error of {_percent(power.coeff_error)} or more only; "
            f"min power asks {_percent(required)}")
