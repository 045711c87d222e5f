"""`xdecay port` against the real frameworks, in-process: each verified-equal translation
and each one without an exact equivalent is pinned, the printed code is run in the
target framework, and the call is never evaluated."""
from __future__ import annotations

import json

import pytest

from xdecay import cli, run_port
from xdecay.engine.port import parse_call, report_translations, translate, verify
from xdecay.errors import UsageError
from xdecay.writers.port_report import PORT_PAGE, port_page

from .conftest import ROOT

# (framework, call, --no-decay, the target's class, the weight's rule, rule of the
# excluded bias and LayerNorm gain ("" when nothing is excluded: they decay like the weight)).
EQUAL = [
    ("torch", "AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)", "bias|norm",
     "AdamW", "decoupled_lr@0.05", "none"),
    ("paddle", "AdamW(learning_rate=0.01, weight_decay=0.05, apply_decay_param_fun=keep)", "bias|norm",
     "AdamW", "decoupled_lr@0.05", "none"),
    ("torch", "AdamW(params, lr=0.01)", "", "AdamW", "decoupled_lr@0.01", ""),
    ("torch", "torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.1)", "", "Momentum",
     "coupled_l2@0.1", ""),
    ("paddle", "paddle.optimizer.Momentum(learning_rate=0.1, weight_decay=0.1)", "bias|norm", "SGD",
     "coupled_l2@0.1", "none"),
    ("torch", "Adam(params, lr=0.01, weight_decay=0.1)", "bias|norm", "Adam", "coupled_l2@0.1", "none"),
    ("torch", "Adam(params, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)", "", "AdamW",
     "decoupled_lr@0.1", ""),
    ("torch", "Adagrad(params, lr=0.1, weight_decay=0.1)", "", "Adagrad", "coupled_l2@0.1", ""),
    ("torch", "Adadelta(params, lr=1.0, weight_decay=0.1)", "", "Adadelta", "coupled_l2@0.1", ""),
    ("torch", "Adamax(params, lr=0.01, weight_decay=0.1)", "", "Adamax", "coupled_l2@0.1", ""),
    ("torch", "NAdam(params, lr=0.01, weight_decay=0.1)", "", "NAdam", "coupled_l2@0.1", ""),
    ("torch", "RAdam(params, lr=0.01, weight_decay=0.1)", "bias|norm", "RAdam", "coupled_l2@0.1", "none"),
    ("paddle", "SGD(learning_rate=0.1, weight_decay=paddle.regularizer.L1Decay(0.01))", "", "SGD", "l1@0.01", ""),
]


@pytest.mark.parametrize("fw, call, no_decay, cls, weight_rule, excluded_rule", EQUAL,
                         ids=[f"{fw}-{call.split('(')[0]}-{nd or 'all'}" for fw, call, nd, *_ in EQUAL])
def test_verified_equal(fw, call, no_decay, cls, weight_rule, excluded_rule):
    p = run_port(**{fw: call}, no_decay=no_decay, in_process=True)
    assert p.exit_code == 0 and p.ok, (p.result.comparisons, p.result.notes, p.result.warnings)
    assert f".{cls}(" in p.translation.code
    rules = {(run, param): rule for run, param, rule in p.result.rules}
    for run in (x.name for x in p.result.runs):
        assert rules[(run, "weight")] == weight_rule
        for param in ("bias", "norm_gain"):
            assert rules[(run, param)] == (excluded_rule or weight_rule)


# Translations with no exact equivalent: (framework, call, words the measured note says).
NOT_EQUAL = [
    ("paddle", "RMSProp(learning_rate=0.01, weight_decay=0.1)", "update formula differs"),
    ("torch", "RMSprop(params, lr=0.01, weight_decay=0.1)", "update formula differs"),
    ("torch", "NAdam(params, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)",
     "decay rule differs: torch decoupled_lr@0.1, paddle coupled_l2@0.1"),
    ("torch", "RAdam(params, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)",
     "decay rule differs: torch decoupled_lr@0.1, paddle coupled_l2@0.1"),
    ("paddle", "ASGD(learning_rate=0.01, weight_decay=0.1)", "decay rule differs for bias"),
]


@pytest.mark.parametrize("fw, call, why", NOT_EQUAL, ids=[f"{fw}-{c.split('(')[0]}" for fw, c, _ in NOT_EQUAL])
def test_closest_not_equal(fw, call, why):
    p = run_port(**{fw: call}, in_process=True)
    assert p.exit_code == 1 and not p.ok
    assert p.translation.code, "the closest setup is still given"
    assert not all(c.ok for c in p.result.comparisons)
    assert any(why in n for n in p.result.notes), p.result.notes


@pytest.mark.parametrize("fw, call", [("torch", "Adafactor(params, lr=0.01)"), ("paddle", "Lamb(learning_rate=0.01)")])
def test_one_sided(fw, call):
    p = run_port(**{fw: call}, in_process=True)
    assert p.exit_code == 1 and p.result is None and "has no" in p.translation.why_not


def test_defaults_that_differ_are_written_out():
    """torch Adagrad's eps 1e-10 is paddle's epsilon=1e-6 if left out (issue 12's example)."""
    t = translate(parse_call("torch", "Adagrad(params, lr=0.1, weight_decay=0.1)"), "")
    assert "epsilon=1e-10" in t.code
    assert any(p.startswith("eps not set") for p in t.pitfalls)
    t = translate(parse_call("paddle", "RMSProp(learning_rate=0.1)"), "")
    assert "alpha=0.95" in t.code and "eps=1e-06" in t.code


def test_call_is_never_evaluated(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(UsageError, match="must be a literal"):
        parse_call("torch", f"SGD(params, lr=open({str(marker)!r}, 'w').write('x'))")
    assert not marker.exists()


def _torch_model():
    import torch

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)
            self.norm = torch.nn.LayerNorm(3)

    return Model()


def _paddle_model():
    import paddle

    class Model(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.linear = paddle.nn.Linear(4, 3)
            self.norm = paddle.nn.LayerNorm(3)

    return Model()


@pytest.mark.parametrize("fw, call, no_decay", [(fw, call, nd) for fw, call, nd, *_ in EQUAL],
                         ids=[f"{fw}-{call.split('(')[0]}-{nd or 'all'}" for fw, call, nd, *_ in EQUAL])
def test_code_runs_in_the_target(fw, call, no_decay):
    """The printed code, pasted next to a model of the target framework, builds the optimizer."""
    t = translate(parse_call(fw, call, no_decay), call)
    model = _paddle_model() if fw == "torch" else _torch_model()
    scope = {"model": model}
    exec(t.code, scope)        # our own generated code, not the user's input
    opt = scope["optimizer"]
    assert type(opt).__name__ in t.code
    if no_decay and fw == "torch" and "apply_decay_param_fun" in t.code:
        decide = opt._apply_decay_param_fun
        assert decide(model.linear.weight.name) and not decide(model.linear.bias.name)
        assert not decide(model.norm.weight.name)


def test_cli_json(capsys):
    code = cli.main(["port", "--torch", "AdamW(params, lr=1e-3, weight_decay=0.05)", "--no-decay", "bias|norm",
                     "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["ok"] and doc["target"]["class"] == "AdamW"
    assert doc["verification"]["comparisons"][0]["ok"]
    assert {"run": "paddle:apply_decay_param_fun", "param": "bias", "rule": "none"} in doc["verification"]["rules"]


def test_committed_port_page_states_the_fresh_verdicts():
    """reports/port.md against a fresh in-process run of the same calls: codes, pitfalls,
    rules and verdicts exactly; numbers in table cells measure rounding (their verdict
    beside them is the fact), the others within one unit of their last digit
    (test_reports.page_problems)."""
    from .test_reports import page_problems
    results = [verify(t, in_process=True) for t in report_translations()]
    versions = next(p.versions for p in results if p.versions)
    committed = (ROOT / "reports" / PORT_PAGE).read_text(encoding="utf-8")
    problems = page_problems(committed, port_page(results, versions), lambda *_: None)
    assert not problems, "reports/port.md is stale (run `xdecay report`): " + "; ".join(problems[:5])


FACTORY = '''
import torch


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.norm = torch.nn.LayerNorm(3)


def grouped():
    model = Model()
    decay = [p for n, p in model.named_parameters() if "bias" not in n and "norm" not in n]
    rest = [p for n, p in model.named_parameters() if "bias" in n or "norm" in n]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}],
                             lr=1e-3, betas=(0.9, 0.95))


def adagrad():
    return torch.optim.Adagrad(Model().parameters(), lr=0.1, weight_decay=0.1)


def maximize():
    return torch.optim.SGD(Model().parameters(), lr=0.1, maximize=True)


def lr_groups():
    model = Model()
    return torch.optim.SGD([{"params": [model.linear.weight], "lr": 0.1}, {"params": [model.linear.bias]}], lr=0.2)
'''


@pytest.fixture
def factory(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(FACTORY)
    return path


def test_torch_file_reads_the_optimizer_object(factory):
    from xdecay.frameworks.factory import load_factory, torch_call
    grouped = load_factory(f"{factory}:grouped")
    # torch AdamW carries decoupled_weight_decay=True itself: not an argument to port.
    assert torch_call(grouped, "x", "bias|norm") == "AdamW(params, lr=0.001, weight_decay=0.05, betas=(0.9, 0.95))"
    p = run_port(torch_optimizer=grouped, no_decay="bias|norm", in_process=True)
    assert p.ok and "apply_decay_param_fun" in p.translation.code
    p = run_port(torch_optimizer=load_factory(f"{factory}:adagrad"), in_process=True)
    assert p.ok and "epsilon=1e-10" in p.translation.code


@pytest.mark.parametrize("func, no_decay, words", [
    ("grouped", "", "say which with --no-decay"),
    ("maximize", "", "maximize=True cannot be ported"),
    ("lr_groups", "", "the parameter groups differ in lr"),
    ("missing", "", "has no function missing"),
])
def test_torch_file_refuses_what_it_cannot_port(factory, func, no_decay, words):
    from xdecay.frameworks.factory import load_factory, torch_call
    with pytest.raises(UsageError, match=words):
        torch_call(load_factory(f"{factory}:{func}"), f"{factory}:{func}", no_decay)


def test_an_int_lr_is_written_as_a_float_for_paddle():
    """torch takes lr=1; paddle raises TypeError for an int learning_rate."""
    p = run_port(torch="SGD(params, lr=1, weight_decay=0.1)", in_process=True)
    assert p.ok and "learning_rate=1.0" in p.translation.code
    assert p.translation.pitfalls[0].startswith("lr=1: paddle refuses an int learning_rate")
