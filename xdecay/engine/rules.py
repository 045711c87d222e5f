"""Rule names (README, "`xdecay explain`"): how inference writes them and how cases may."""
from __future__ import annotations

RULE_FAMILIES = ("coupled_l2", "decoupled_lr", "l1", "lamb_trust")


def rule_name(family: tuple[str, ...], cs: tuple[float, ...]) -> str:
    """("coupled_l2", "decoupled_lr"), (0.5, 0.1) -> "coupled_l2@0.5+decoupled_lr@0.1"."""
    if family == ("none",):
        return "none"
    return "+".join(f"{f}@{c:.3g}" for f, c in zip(family, cs))


def canonical_rule(text: str) -> str | None:
    """A rule as the inference writes it ("coupled_l2@0.10" -> "coupled_l2@0.1"), or
    None if it is not a rule: none | unexplained | FAMILY@C(+FAMILY@C)* | ambiguous(a|b...)."""
    text = text.strip()
    if text in ("none", "unexplained"):
        return text
    if text.startswith("ambiguous(") and text.endswith(")"):
        parts = [canonical_rule(p) for p in text[len("ambiguous("):-1].split("|")]
        if len(parts) < 2 or None in parts or "unexplained" in parts:
            return None
        return f"ambiguous({'|'.join(parts)})"
    terms = []
    for term in text.split("+"):
        family, sep, value = term.partition("@")
        try:
            c = float(value)
        except ValueError:
            return None
        if not sep or family not in RULE_FAMILIES or not (c >= 0 and c != float("inf")):
            return None
        terms.append((family, c))
    return rule_name(tuple(f for f, _ in terms), tuple(c for _, c in terms))
