"""Which torch parameter is which paddle parameter, for `xdecay audit --torch ... --paddle ...`.

Pairs come first from the user's --name-map file, then by name (the same attribute path
and shape), then by order among the rest when every remaining pair's shapes agree.
Shapes agree when equal, or when both are 2-D and transposed: paddle's Linear stores
its weight [in, out], torch's [out, in]. A name map maps a torch name to one paddle
name or to several (torch's MultiheadAttention keeps q, k and v in one in_proj_weight,
paddle's MultiHeadAttention in three Linears): each paddle one is paired with it. A `*`
stands for one part of a dotted name (a layer index): each torch name the key matches is
mapped to the values with the same parts put in, in order.

    # name_map.toml (or the same object as .json)
    "blocks.*.attn.in_proj_weight" = ["blocks.*.attn.q_proj.weight", "blocks.*.attn.k_proj.weight", ...]
    "head.weight" = "classifier.weight"
"""
from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

Shapes = dict[str, tuple[int, ...]]      # parameter name -> shape, in the model's order
WILDCARD = "*"


@dataclass(frozen=True)
class Matching:
    pairs: list[tuple[str, str, str]]     # (torch name, paddle name, how: "map" | "name" | "order")
    torch_only: list[str]
    paddle_only: list[str]


def load_name_map(path: str) -> dict[str, tuple[str, ...]]:
    """The file's torch name -> paddle names; UsageError naming --name-map and the key."""
    opt = f"--name-map {path}"
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{opt}: no such file")
    try:
        if file.suffix == ".json":
            data = json.loads(file.read_text(encoding="utf-8"))
        elif file.suffix == ".toml":
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        else:
            raise UsageError(f"{opt}: expected a .toml or .json file")
    except (ValueError, UnicodeDecodeError) as exc:      # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise UsageError(f"{opt}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{opt}: expected a table of torch name = paddle name (or a list of them)")
    out: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for key, value in data.items():
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise UsageError(f"{opt}: key {key!r}: expected a paddle parameter name or a non-empty list of them")
        for name in names:
            if name in seen:
                raise UsageError(f"{opt}: key {key!r}: paddle {name} is already mapped from {seen[name]!r}")
            if name.count(WILDCARD) != key.count(WILDCARD):
                raise UsageError(f"{opt}: key {key!r}: {name} must hold as many '{WILDCARD}' as the key")
            seen[name] = key
        out[key] = tuple(names)
    return out


def _expanded(given: dict[str, tuple[str, ...]], torch: Shapes, map_path: str) -> dict[str, tuple[str, ...]]:
    """The map with each wildcard key replaced by the torch names it matches."""
    out: dict[str, tuple[str, ...]] = {}
    for key, names in given.items():
        if WILDCARD not in key:
            out[key] = names
            continue
        pattern = re.compile(r"([^.]+)".join(re.escape(part) for part in key.split(WILDCARD)))
        hits = [(t, m.groups()) for t in torch if (m := pattern.fullmatch(t))]
        if not hits:
            raise UsageError(f"--name-map {map_path}: key {key!r}: matches no torch parameter")
        for t, parts in hits:
            out[t] = tuple(_filled(n, parts) for n in names)
    return out


def _filled(name: str, parts: tuple[str, ...]) -> str:
    pieces = name.split(WILDCARD)
    return "".join(p + q for p, q in zip(pieces, parts)) + pieces[-1]


def shapes_agree(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return a == b or (len(a) == len(b) == 2 and a == b[::-1])


def match(torch: Shapes, paddle: Shapes, given: dict[str, tuple[str, ...]], map_path: str = "") -> Matching:
    """Pair the two models' parameters (module docstring). A map naming a parameter the
    model does not have is a UsageError naming the file and key."""
    pairs: list[tuple[str, str, str]] = []
    for key, names in _expanded(given, torch, map_path).items():
        if key not in torch:
            raise UsageError(f"--name-map {map_path}: key {key!r}: the torch model has no such parameter")
        for name in names:
            if name not in paddle:
                raise UsageError(f"--name-map {map_path}: key {key!r}: the paddle model has no parameter {name}")
            pairs.append((key, name, "map"))
    done_t = {t for t, _, _ in pairs}
    done_p = {p for _, p, _ in pairs}
    for name, shape in torch.items():
        if name not in done_t and name in paddle and name not in done_p and shapes_agree(shape, paddle[name]):
            pairs.append((name, name, "name"))
            done_t.add(name)
            done_p.add(name)
    rest_t = [n for n in torch if n not in done_t]
    rest_p = [n for n in paddle if n not in done_p]
    if rest_t and len(rest_t) == len(rest_p) and all(shapes_agree(torch[a], paddle[b]) for a, b in zip(rest_t, rest_p)):
        pairs += [(a, b, "order") for a, b in zip(rest_t, rest_p)]
        rest_t, rest_p = [], []
    order = {n: i for i, n in enumerate(torch)}
    return Matching(sorted(pairs, key=lambda p: order[p[0]]), rest_t, rest_p)
