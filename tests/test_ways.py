"""Every way a case may use with an optimizer is one the adapter really builds (issue 11,
item 8): run with real torch and paddle, each decaying way moves the weight away from
way `none` far beyond the tolerance, or the framework refuses it (a finding the case
can expect) — never a run labelled with a decay that applies none, as `decoupled` with
paddle Lamb did (Lamb(lamb_weight_decay=0.0))."""
from __future__ import annotations

import pytest

from xdecay.case import OPTIMIZER_WAYS, OPTIMIZERS, WAYS, load_case
from xdecay.engine.compare import Tolerance, compare_pair

from .conftest import run, write_case

# `after_groups` promises nothing: a plain optimizer built after a groups one, to see
# whether building the first changes the second (paddle's does: cases/leak.toml).
# `default` leaves the decay argument out: it decays only where that means a decay
# (AdamW, Lamb), which tests/test_semantics.py pins.
PROBES = {"none", "after_groups", "default"}

CASE = """\
description = "every way of {optimizer}"
seed = 3
steps = 2

[layer]
in_features = 4
out_features = 3
bias = true

[data]
batch = 4

[optimizer]
name = "{optimizer}"
lr = {lr}
{hyper}
[decay]
coeff = {coeff}

[runs]
{runs}
"""


def case_text(optimizer: str) -> str:
    runs = "\n".join(f"{fw} = {list(ways)!r}".replace("'", '"')
                     for (fw, o), ways in OPTIMIZER_WAYS.items() if o == optimizer)
    return CASE.format(optimizer=optimizer, runs=runs, lr=LR.get(optimizer, 0.05), coeff=COEFF.get(optimizer, 0.1),
                       hyper="momentum = 0.9\n" if optimizer == "momentum" else "")


# Adadelta's natural lr is 1.0: at 0.05 its decay is 4x the tolerance, not far beyond.
LR = {"adadelta": 1.0}
# Rprop steps by sign(g): a decay shows only where it flips a sign (cases/rprop.toml).
COEFF = {"rprop": 2.0}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_decaying_way_decays_the_weight_or_is_refused(optimizer, tmp_path):
    case = load_case(write_case(tmp_path, case_text(optimizer)))
    tol = Tolerance.for_case(case)
    for fw, result in run(case).items():
        assert result.error is None, result.error
        (records,) = result.records
        by_way = {r.way: r for r in records}
        none = by_way["none"]
        for way, r in by_way.items():
            if r.error is not None or way in PROBES:
                continue                  # refused by the framework: reported, never a silent no-op
            c = compare_pair(none, r, "differ", tol, param="weight")
            assert c.ok and c.excess > 10, f"{fw}:{way} with {optimizer} applies no decay ({c.excess:.3g}x)"


def test_each_framework_supports_each_way_with_some_optimizer():
    for fw, ways in WAYS.items():
        assert set(ways) == {w for (f, _), ws in OPTIMIZER_WAYS.items() if f == fw for w in ws}
