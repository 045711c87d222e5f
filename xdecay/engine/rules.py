"""Rule names (README, "`xdecay explain`"): how inference writes them and how cases and baselines may.

A rule is one fit — a family of decay steps with their coefficients,
`coupled_l2@0.5+decoupled_lr@0.1` — or several the data cannot tell apart,
`ambiguous(a|b)`, or none at all, `unexplained`. One canonical text per rule:
`+` terms in RULE_FAMILIES order (a family at most once), alternatives by
number of terms and then family (`none` first, each family at most once, as
inference finds at most one coefficient set per family), coefficients as the
shortest %g decimal that gives back the float32 value the frameworks apply
(0.1004 is `0.1004`, never `0.1`). Whether two rules agree is a question of
numbers, not text: see infer.rule_holds.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import numpy as np

RULE_FAMILIES = ("coupled_l2", "decoupled_lr", "l1", "lamb_trust", "clipped_l2")

Fit = tuple[tuple[str, ...], tuple[float, ...]]      # a family and its coefficients; (("none",), ())

# A plain decimal or scientific number: no sign, no underscores ("0_5" is 5 to float()),
# no "inf"/"nan", no spaces, no hexadecimal.
DECIMAL = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_TINY = float(np.finfo(np.float32).tiny)     # the smallest normal float32


def parse_decimal(text: str) -> float | None:
    """A plain decimal or scientific number (DECIMAL), or None."""
    return float(text) if DECIMAL.fullmatch(text) else None


def float32_problem(value: float) -> str | None:
    """Why a number the frameworks will hold as float32 cannot be one, or None. Beyond
    float32 it overflows; a nonzero value below the smallest normal float32 either
    rounds to 0 (lr = 1e-50: a run that cannot move, a decay that is none) or is
    subnormal: held with fewer than float32's 24 significant bits, and 0 wherever
    flush-to-zero is on (torch.set_flush_denormal(True), denormals-are-zero CPU modes).
    (Measured with torch 2.13.0 and paddle 3.3.1 on this CPU: their elementwise kernels
    keep 1e-40 by default, so the refusal is about precision and portability.)"""
    magnitude = abs(value)
    if magnitude > FLOAT32_MAX:
        return f"must fit in float32 (|x| <= {FLOAT32_MAX:.4g}), got {value}"
    if 0 < magnitude < FLOAT32_TINY:
        with np.errstate(under="ignore"):
            zero = np.float32(value) == 0
        what = "rounds to 0 in float32" if zero else "is below the smallest normal float32 (subnormal)"
        return f"{what}: nonzero values must be >= {FLOAT32_TINY:.8g}, got {value}"
    return None


# Power names the nearest other rules of every fit of every check (power.alternatives):
# the same few coefficients, thousands of times a run.
@functools.lru_cache(maxsize=1 << 12)
def coefficient_text(c: float) -> str:
    """The shortest %g decimal that reads back as the same float32: the frameworks apply
    a coefficient to float32 weights as a float32 value, so these digits tell apart every
    two coefficients that can act differently, and no more (at most 9, float32's
    round-trip precision)."""
    held = np.float32(c)
    for digits in range(1, 10):
        text = f"{c:.{digits}g}"
        if np.float32(float(text)) == held:
            return text
    return f"{c:.9g}"         # not reached: 9 significant digits round-trip every float32


def _order(fit: Fit) -> tuple:
    family, cs = fit
    if family == ("none",):
        return (0, (), ())
    return (len(family), tuple(RULE_FAMILIES.index(f) for f in family), cs)


def rule_name(family: tuple[str, ...], cs: tuple[float, ...]) -> str:
    """("decoupled_lr", "coupled_l2"), (0.1, 0.5) -> "coupled_l2@0.5+decoupled_lr@0.1"."""
    if family == ("none",):
        return "none"
    terms = sorted(zip(family, cs), key=lambda t: RULE_FAMILIES.index(t[0]))
    return "+".join(f"{f}@{coefficient_text(c)}" for f, c in terms)


def canonical_fit(family: tuple[str, ...], cs: tuple[float, ...]) -> Fit:
    """The fit with its terms in RULE_FAMILIES order."""
    if family == ("none",):
        return family, ()
    terms = sorted(zip(family, cs), key=lambda t: RULE_FAMILIES.index(t[0]))
    return tuple(f for f, _ in terms), tuple(c for _, c in terms)


def format_rule(fits: Iterable[Fit]) -> str:
    """The canonical text of a set of fits: "unexplained", one rule, or ambiguous(a|b...)."""
    ordered = sorted((canonical_fit(*f) for f in fits), key=_order)
    if not ordered:
        return "unexplained"
    names = [rule_name(*f) for f in ordered]
    return names[0] if len(names) == 1 else f"ambiguous({'|'.join(names)})"


def parse_rule(text: str) -> tuple[Fit, ...] | None:
    """The fits a rule text names, in canonical order (() for "unexplained"), or None if it
    is not a rule: none | unexplained | FAMILY@C(+FAMILY@C)* | ambiguous(a|b...)."""
    text = text.strip()
    if text == "unexplained":
        return ()
    if text.startswith("ambiguous(") and text.endswith(")"):
        parts = [_parse_fit(p) for p in text[len("ambiguous("):-1].split("|")]
        if len(parts) < 2 or None in parts or len({f for f, _ in parts}) != len(parts):
            return None
        return tuple(sorted(parts, key=_order))
    fit = _parse_fit(text)
    return None if fit is None else (fit,)


def _parse_fit(text: str) -> Fit | None:
    if text == "none":
        return ("none",), ()
    terms = []
    for term in text.split("+"):
        family, sep, value = term.partition("@")
        c = parse_decimal(value)
        if not sep or family not in RULE_FAMILIES or c is None or float32_problem(c):
            return None
        terms.append((family, c))
    if len({f for f, _ in terms}) != len(terms):
        return None
    return canonical_fit(tuple(f for f, _ in terms), tuple(c for _, c in terms))


def canonical_rule(text: str) -> str | None:
    """A rule as inference writes it ("decoupled_lr@0.10+coupled_l2@0.5" ->
    "coupled_l2@0.5+decoupled_lr@0.1"), or None if it is not a rule."""
    fits = parse_rule(text)
    return None if fits is None else format_rule(fits)
