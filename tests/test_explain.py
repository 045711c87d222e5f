"""`xdecay explain` against real torch and paddle: the reference reproduces every
optimizer, a wrong reference is caught, and every surprising finding is pinned."""
from __future__ import annotations

import json

import numpy as np
import pytest

from xdecay.engine import catalogue
from xdecay.engine.explain import LOSS, explain, explain_spec
from xdecay.engine.infer import infer_run
from xdecay.engine.reference import RULES
from xdecay.writers.explain_report import json_report, markdown


@pytest.fixture(scope="module")
def explained():
    return explain(in_process=True)


def rules_of(e, framework, optimizer, variant, way):
    rows = [r for r in e.rows if (r.framework, r.optimizer, r.variant, r.way) ==
            (framework, optimizer, variant, way)]
    assert rows, (framework, optimizer, variant, way)
    return {r.param: r.rule for r in rows}


ENTRIES = [(fw, cls, variant) for fw in ("torch", "paddle") for cls, variant, _ in catalogue.ENTRIES[fw]]


@pytest.mark.parametrize("framework,optimizer,variant", ENTRIES,
                         ids=[f"{f}-{o}-{v}" if v else f"{f}-{o}" for f, o, v in ENTRIES])
def test_reference_reproduces_the_optimizer_without_decay(explained, framework, optimizer, variant):
    # paddle Rprop rejects weight_decay=0.0, so its no-decay run is the default construction.
    way = "default" if optimizer == "Rprop" else "none"
    rules = rules_of(explained, framework, optimizer, variant, way)
    if optimizer == "Rprop":
        # Rprop steps by sign(g): a small decay rarely flips a sign, so "none" is one of the fits.
        assert all(r == "none" or (r.startswith("ambiguous(none|")) for r in rules.values()), rules
    else:
        assert rules == {"weight": "none", "bias": "none"}
    residuals = [r.residual for r in explained.rows
                 if (r.framework, r.optimizer, r.variant, r.way) == (framework, optimizer, variant, way)]
    assert all(0 <= x <= 1 for x in residuals)


def _wrong_rmsprop(w, g, state, step, lr, rho=0.95, epsilon=1e-6, momentum=0.0, centered=False):
    """Paddle's RMSProp with epsilon outside the square root (torch's placement): wrong on purpose."""
    ms = rho * state.get("ms", 0.0) + (1 - rho) * g * g
    state["ms"] = ms
    return w - lr * g / (np.sqrt(ms) + epsilon)


def test_a_wrong_reference_is_unexplained(monkeypatch):
    e = explain(frameworks=("paddle",), optimizers={"rmsprop"}, in_process=True)
    assert rules_of(e, "paddle", "RMSProp", "", "none")["weight"] == "none"
    monkeypatch.setitem(RULES, ("paddle", "RMSProp"), _wrong_rmsprop)
    run = _run(e, "RMSProp", "none")
    inferred = infer_run(run, explain_spec(), LOSS, (0.1, 0.5))
    assert [i.rule for i in inferred] == ["unexplained", "unexplained"]
    assert all(i.residual > 10 for i in inferred)
    families = {k.split("@")[0] for k in inferred[0].residuals}
    assert {"none", "coupled_l2", "decoupled_lr", "l1"} <= families
    assert all(v > 1 for v in inferred[0].residuals.values())


def _run(e, optimizer, way):
    # explain keeps rows, not runs: run the one we need again, in-process.
    from xdecay.frameworks.records import ExplainItem, ExplainJob
    from xdecay.frameworks.runner import run
    options = next(o for c, v, o in catalogue.ENTRIES["paddle"] if c == optimizer and v == "")
    job = ExplainJob(explain_spec(), LOSS, e.steps, 0.1, 0.5, (ExplainItem(optimizer, "", options, way),))
    return run({"paddle": job}, in_process=True)["paddle"].records[0][0]


# (framework, optimizer, variant, way) -> {param: rule}: what the frameworks do, measured.
FINDINGS = {
    # Paddle documents "ParamAttr has higher priority than the optimizer": true for the
    # coupled optimizers (the weight gets ParamAttr's 0.5 only, the bias the optimizer's 0.1)...
    ("paddle", "SGD", "", "param_attr+weight_decay"):
        {"weight": "ambiguous(coupled_l2@0.5|decoupled_lr@0.5)",
         "bias": "ambiguous(coupled_l2@0.1|decoupled_lr@0.1)"},
    ("paddle", "Momentum", "", "param_attr+weight_decay"): {"weight": "coupled_l2@0.5", "bias": "coupled_l2@0.1"},
    ("paddle", "Adam", "", "param_attr+weight_decay"): {"weight": "coupled_l2@0.5", "bias": "coupled_l2@0.1"},
    # ...but AdamW and Lamb decay the weight twice: ParamAttr's L2 plus their own decay.
    ("paddle", "AdamW", "", "param_attr+weight_decay"):
        {"weight": "coupled_l2@0.5+decoupled_lr@0.1", "bias": "decoupled_lr@0.1"},
    ("paddle", "Lamb", "", "param_attr+weight_decay"):
        {"weight": "coupled_l2@0.5+lamb_trust@0.1", "bias": "lamb_trust@0.1"},
    # apply_decay_param_fun stops AdamW's own decay of the bias, not ParamAttr's of the weight.
    ("paddle", "AdamW", "apply_decay_param_fun", "param_attr+weight_decay"):
        {"weight": "coupled_l2@0.5+decoupled_lr@0.1", "bias": "none"},
    ("paddle", "AdamW", "apply_decay_param_fun", "weight_decay"): {"weight": "decoupled_lr@0.1", "bias": "none"},
    # Defaults: AdamW decays without being asked (0.01) in both frameworks, Lamb too.
    ("torch", "AdamW", "", "default"): {"weight": "decoupled_lr@0.01", "bias": "decoupled_lr@0.01"},
    ("paddle", "AdamW", "", "default"): {"weight": "decoupled_lr@0.01", "bias": "decoupled_lr@0.01"},
    ("paddle", "Lamb", "", "default"): {"weight": "lamb_trust@0.01"},
    ("torch", "Adam", "", "default"): {"weight": "none", "bias": "none"},
    # A parameter group without a weight_decay key gets the constructor's default, which
    # for AdamW is 0.01, not 0: "weight only" groups still decay the bias.
    ("torch", "AdamW", "", "groups"): {"weight": "decoupled_lr@0.1", "bias": "decoupled_lr@0.01"},
    ("paddle", "AdamW", "", "groups"): {"weight": "decoupled_lr@0.1", "bias": "decoupled_lr@0.01"},
    ("torch", "Adam", "", "groups"): {"weight": "coupled_l2@0.1", "bias": "none"},
    ("paddle", "Momentum", "", "groups"): {"weight": "coupled_l2@0.1", "bias": "none"},
    # Coupled vs decoupled is the class (or flag), not the argument's name.
    ("torch", "Adam", "", "weight_decay"): {"weight": "coupled_l2@0.1", "bias": "coupled_l2@0.1"},
    ("torch", "Adam", "", "decoupled"): {"weight": "decoupled_lr@0.1", "bias": "decoupled_lr@0.1"},
    ("torch", "NAdam", "", "decoupled"): {"weight": "decoupled_lr@0.1", "bias": "decoupled_lr@0.1"},
    ("torch", "RAdam", "", "decoupled"): {"weight": "decoupled_lr@0.1", "bias": "decoupled_lr@0.1"},
    ("torch", "Adafactor", "", "weight_decay"): {"weight": "decoupled_lr@0.1", "bias": "decoupled_lr@0.1"},
    ("paddle", "AdamW", "", "weight_decay"): {"weight": "decoupled_lr@0.1", "bias": "decoupled_lr@0.1"},
    ("paddle", "Adam", "", "l1decay"): {"weight": "l1@0.1", "bias": "l1@0.1"},
    ("paddle", "Lamb", "", "weight_decay"): {"weight": "lamb_trust@0.1", "bias": "lamb_trust@0.1"},
    # Rprop rejects weight_decay=, yet a ParamAttr regularizer still decays the weight.
    ("paddle", "Rprop", "", "param_attr"): {"weight": "coupled_l2@0.5"},
    # torch maximize=True ascends, yet its decay still shrinks the weights: c*w joins
    # after the gradient's sign flip (the reference replays -g, then coupled_l2).
    ("torch", "SGD", "momentum+maximize", "weight_decay"): {"weight": "coupled_l2@0.1", "bias": "coupled_l2@0.1"},
    # Implementations and amsgrad do not change the rule.
    ("torch", "SGD", "momentum+foreach", "weight_decay"): {"weight": "coupled_l2@0.1"},
    ("torch", "AdamW", "fused", "default"): {"weight": "decoupled_lr@0.01", "bias": "decoupled_lr@0.01"},
    ("paddle", "Adam", "use_multi_tensor", "param_attr+weight_decay"):
        {"weight": "coupled_l2@0.5", "bias": "coupled_l2@0.1"},
    ("paddle", "Adam", "amsgrad", "weight_decay"): {"weight": "coupled_l2@0.1"},
    # paddle ASGD averages the last batch_num gradients, decay included: with 2 it is
    # coupled, no longer one formula with decoupled decay as with 1.
    ("paddle", "ASGD", "batch_num", "weight_decay"): {"weight": "coupled_l2@0.1", "bias": "coupled_l2@0.1"},
    ("paddle", "ASGD", "", "weight_decay"): {"weight": "ambiguous(coupled_l2@0.1|decoupled_lr@0.1)"},
    # ...but an L2 term in the loss is maximized with the rest: the weights grow, a
    # negative coefficient no decay rule has (the reference cannot fit it: unexplained).
    ("torch", "SGD", "momentum+maximize", "manual"): {"weight": "unexplained", "bias": "unexplained"},
    # A loss term is coupled L2 everywhere, AdamW and Lamb included (not their own decay).
    ("torch", "AdamW", "", "manual"): {"weight": "coupled_l2@0.1", "bias": "coupled_l2@0.1"},
    ("paddle", "AdamW", "", "manual"): {"weight": "coupled_l2@0.1", "bias": "coupled_l2@0.1"},
    ("paddle", "Lamb", "", "manual"): {"weight": "coupled_l2@0.1", "bias": "coupled_l2@0.1"},
    # ParamAttr L1Decay, and a ParamAttr on the bias: each reaches its own parameter only.
    ("paddle", "Adam", "", "param_attr_l1"): {"weight": "l1@0.5", "bias": "none"},
    ("paddle", "Momentum", "", "param_attr_bias"): {"weight": "none", "bias": "coupled_l2@0.5"},
    ("paddle", "AdamW", "", "param_attr_bias"): {"weight": "none", "bias": "coupled_l2@0.5"},
    # Plain SGD: coupled and decoupled decay are one formula; the tool says so.
    ("torch", "SGD", "", "weight_decay"):
        {"weight": "ambiguous(coupled_l2@0.1|decoupled_lr@0.1)",
         "bias": "ambiguous(coupled_l2@0.1|decoupled_lr@0.1)"},
}


@pytest.mark.parametrize("key", list(FINDINGS), ids=["-".join(k) for k in FINDINGS])
def test_finding(explained, key):
    measured = rules_of(explained, *key)
    assert {p: measured[p] for p in FINDINGS[key]} == FINDINGS[key]


REJECTED = [
    ("torch", "SGD", "", "decoupled", "unexpected keyword argument 'decoupled_weight_decay'"),
    ("torch", "AdamW", "", "decoupled", "unexpected keyword argument 'decoupled_weight_decay'"),
    ("paddle", "AdamW", "", "l2decay", "weight_decay should be int, float or Tensor"),
    ("paddle", "Lamb", "", "l1decay", "must be double, but got L1Decay"),
    ("paddle", "Rprop", "", "weight_decay", "unexpected keyword argument 'weight_decay'"),
    ("torch", "Rprop", "", "weight_decay", "unexpected keyword argument 'weight_decay'"),
]


@pytest.mark.parametrize("framework,optimizer,variant,way,message", REJECTED)
def test_rejected_ways_show_the_framework_message(explained, framework, optimizer, variant, way, message):
    rows = [r for r in explained.rows if (r.framework, r.optimizer, r.variant, r.way) ==
            (framework, optimizer, variant, way)]
    assert rows and all(r.rule == "rejected" and message in r.error for r in rows)


def test_cross_framework_agreement_and_causes(explained):
    cross = {c.torch: c for c in explained.cross}
    for same in ("SGD", "SGD(momentum)", "SGD(nesterov)", "Adam", "AdamW", "Adamax", "NAdam", "RAdam",
                 "Adam(decoupled_weight_decay=True)", "Adam(amsgrad)"):
        assert cross[same].one_step.ok and cross[same].all_steps.ok and not cross[same].cause
    assert "eps=1e-10 vs epsilon=1e-06" in cross["Adagrad"].cause
    assert "the defaults are the cause" in cross["Adagrad"].cause
    assert "rho=0.9 vs rho=0.95" in cross["Adadelta"].cause and "defaults are the cause" in cross["Adadelta"].cause
    for rmsprop in ("RMSprop", "RMSprop(centered+momentum)"):
        assert "update formula differs" in cross[rmsprop].cause and "alpha=0.99 vs rho=0.95" in cross[rmsprop].cause
    assert "update formula differs" in cross["ASGD"].cause
    # torch's decoupled Adam is paddle's AdamW, rule and all.
    decoupled = cross["Adam(decoupled_weight_decay=True)"]
    assert decoupled.paddle == "AdamW" and decoupled.torch_rule == decoupled.paddle_rule == "decoupled_lr@0.1"


def test_json_covers_every_optimizer_and_way_per_parameter(explained):
    doc = json.loads(json_report(explained))
    assert set(doc["frameworks"]) == {"torch", "paddle"}
    seen = {(r["framework"], r["optimizer"], r["variant"], r["way"], r["param"]) for r in doc["rows"]}
    for fw in ("torch", "paddle"):
        for cls, variant, _ in catalogue.ENTRIES[fw]:
            for way in catalogue.WAYS[fw]:
                for param in ("weight", "bias"):
                    assert (fw, cls, variant, way, param) in seen
    for r in doc["rows"]:
        assert {"framework", "optimizer", "way", "options", "param", "rule", "residual"} <= set(r)
    assert json_report(explained) == json_report(explain(in_process=True))


def test_markdown_reads_as_a_docs_page(explained):
    md = markdown(explained)
    assert md.startswith("# Which weight decay")
    assert md.index("## Rule names") < md.index("## torch") < md.index("## Same optimizer")
    assert "| `coupled_l2@c` |" in md and "rejected" in md


CLIPPED = [(fw, cls) for fw in ("torch", "paddle") for cls, variant, _ in catalogue.ENTRIES[fw]
           if not variant and cls != "Rprop"]


@pytest.mark.parametrize("framework,optimizer", CLIPPED, ids=[f"{f}-{o}" for f, o in CLIPPED])
def test_a_clip_changes_the_rule_of_the_loss_term_only(explained, framework, optimizer):
    """Under the clip ways a manual L2 term is clipped with the gradient (clipped_l2@0.1)
    for every optimizer, while the optimizer's own decay keeps the rule it has without a
    clip (Rprop, a sign step, cannot show the term: ambiguous(none|clipped_l2@0.1))."""
    assert set(rules_of(explained, framework, optimizer, "", "clip+manual").values()) == {"clipped_l2@0.1"}
    clipped = rules_of(explained, framework, optimizer, "", "clip+weight_decay")
    plain = rules_of(explained, framework, optimizer, "", "weight_decay")
    assert clipped == plain, (clipped, plain)
