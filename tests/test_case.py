"""Case files: the shipped ones load, bad ones fail with one line naming file and key."""
from __future__ import annotations

import pytest

from xdecay.case import Group, Regularizer, load_case
from xdecay.case_files import find_cases
from xdecay.errors import CaseError, UsageError

from .conftest import MINIMAL, SHIPPED, write_case


def test_ships_the_cases_the_issue_asks_for():
    names = {p.stem for p in SHIPPED}
    assert {"momentum", "sgd", "adam", "adamw", "precedence"} <= names
    # issue 12: every optimizer both frameworks have, with each framework's defaults and
    # aligned where they differ, and AdamW with its decay argument left out.
    assert {"adamax", "adagrad", "adagrad_eps", "adadelta", "adadelta_rho", "rmsprop", "rmsprop_aligned",
            "nadam", "radam", "asgd", "rprop", "adamw_default"} <= names
    # ...and the implementation variants: amsgrad in both, torch foreach/fused against
    # paddle use_multi_tensor/multi_precision/lazy_mode, what a CPU build refuses.
    assert {"adam_amsgrad", "adam_multi_tensor", "adamw_fused", "momentum_multi_tensor", "adagrad_fused",
            "sgd_fused", "adam_capturable", "adam_differentiable", "lamb_exclude", "adamw_lr_ratio",
            "adamw_tensor", "adam_tensor", "momentum_maximize"} <= names
    cases = [load_case(p) for p in SHIPPED]
    assert any(c.layer.bias for c in cases)
    assert all(c.expectations for c in cases)


def test_momentum_case_is_seed_003():
    c = load_case(SHIPPED[[p.stem for p in SHIPPED].index("momentum")])
    assert (c.layer.in_features, c.layer.out_features, c.layer.bias) == (3, 4, False)
    assert (c.batch, c.loss, c.optimizer.name, c.optimizer.lr) == (2, "mean", "momentum", 0.1)
    assert (c.optimizer.hyper["momentum"], c.decay.coeff) == (0.9, 0.1)


def test_minimal_case_defaults(tmp_path):
    c = load_case(write_case(tmp_path, MINIMAL))
    assert c.steps == 1 and c.loss == "mean" and c.layer.bias is False
    assert c.decay.param_attr == {"weight": Regularizer("l2", 0.1)} and c.expectations == ()
    assert c.decay.manual == {"weight": Regularizer("l2", 0.1)}
    assert c.decay.groups == (Group(("weight",), True, 0.1),)
    assert c.run_names() == ["torch:none", "torch:weight_decay", "paddle:none", "paddle:weight_decay"]


BAD = [
    # (replace this, with this, key named in the message, words in the message)
    ("seed = 1", "seed = 1\ncolour = 3", "colour", "unknown key"),
    ("lr = 0.1", "lr = 0.1\nmomentum = 0.9", "optimizer.momentum", "unknown key"),
    ("lr = 0.1", "lr = -0.1", "optimizer.lr", "must be > 0"),
    ("lr = 0.1", "lr = 0", "optimizer.lr", "must be > 0"),
    ("lr = 0.1", "lr = nan", "optimizer.lr", "finite"),
    ("lr = 0.1", "lr = inf", "optimizer.lr", "finite"),
    ("lr = 0.1", "lr = 1e300", "optimizer.lr", "must fit in float32"),
    ("lr = 0.1", 'lr = "0.1"', "optimizer.lr", "must be a number, got string"),
    ("coeff = 0.1", "coeff = -0.1", "decay.coeff", "must be >= 0"),
    ("coeff = 0.1", "coeff = nan", "decay.coeff", "finite"),
    ("coeff = 0.1", "coeff = true", "decay.coeff", "got boolean"),
    ('name = "sgd"', 'name = "lbfgs"', "optimizer.name", "unknown value 'lbfgs'"),
    ("in_features = 3", "in_features = 0", "layer.in_features", "must be in"),
    ("in_features = 3", "in_features = 3.5", "layer.in_features", "must be an integer"),
    ("seed = 1", "seed = 1\nsteps = 0", "steps", "must be in"),
    ('torch = ["none", "weight_decay"]', 'torch = ["none", "l2decay"]', "runs.torch",
     "unknown way 'l2decay' for torch"),
    ('torch = ["none", "weight_decay"]', 'tensorflow = ["none"]', "runs.tensorflow", "unknown key"),
    ("batch = 2", 'batch = 2\nloss = "hinge"', "data.loss", "unknown value 'hinge'"),
    ("[data]\nbatch = 2\n", "", "data", "is required"),
]


@pytest.mark.parametrize("old,new,key,words", BAD, ids=[b[2] + ":" + b[3] for b in BAD])
def test_bad_case_names_file_and_key(tmp_path, old, new, key, words):
    assert old in MINIMAL
    path = write_case(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(CaseError) as err:
        load_case(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert words in message and "\n" not in message


EXPECT_BAD = [
    ('[[expect]]\nequal = ["torch:none", "torch:manual"]', "expect[0].equal", "which [runs] does not make"),
    ('[[expect]]\nequal = ["torch:none"]', "expect[0].equal", "at least two runs"),
    ('[[expect]]\nsame = ["torch:none", "paddle:none"]', "expect[0]", "exactly one of"),
    ('[[expect]]\nrule = "none"\nrun = "torch:none"\nparam = "gain"', "expect[0].param", "unknown value 'gain'"),
    ('[[expect]]\nrule = "none"\nrun = "torch:manual"\nparam = "weight"', "expect[0].run", "does not make"),
    ('[[expect]]\nrule = "coupled_l3@0.1"\nrun = "torch:none"\nparam = "weight"', "expect[0].rule", "not a rule"),
    ('[[expect]]\nequal = ["torch:none", "paddle:none"]\nparam = "bias"', "expect[0].param", "unknown value 'bias' (expected one of: all, weight)"),
    ('[[expect]]\nequal = ["torch:none", "paddle:none"]\n[[expect]]\ndiffer = ["paddle:none", "torch:none"]',
     "expect[1].differ", "contradicts"),
]


@pytest.mark.parametrize("extra,key,words", EXPECT_BAD, ids=[b[2] for b in EXPECT_BAD])
def test_bad_expectation(tmp_path, extra, key, words):
    path = write_case(tmp_path, MINIMAL + "\n" + extra + "\n")
    with pytest.raises(CaseError) as err:
        load_case(path)
    assert str(err.value).startswith(f"{path}: {key}: ") and words in str(err.value)


def test_toml_syntax_error_and_unreadable_file(tmp_path):
    with pytest.raises(CaseError, match="TOML syntax error"):
        load_case(write_case(tmp_path, "seed = = 1"))
    with pytest.raises(CaseError, match="cannot read"):
        load_case(tmp_path / "missing.toml")


def test_unknown_case_name_lists_the_known_ones():
    with pytest.raises(UsageError, match="known: .*momentum"):
        find_cases("no-such-case")


def test_rule_expectations_are_stored_in_canonical_form(tmp_path):
    text = MINIMAL + '\n[[expect]]\nrule = "coupled_l2@0.10"\nrun = "torch:weight_decay"\nparam = "weight"\n'
    (e,) = load_case(write_case(tmp_path, text)).expectations
    assert e.rule == "coupled_l2@0.1"


def test_optimizer_words_aliases_and_native_arguments(tmp_path):
    text = MINIMAL.replace('name = "sgd"\nlr = 0.1', 'name = "rmsprop"\nlearning_rate = 1\nalpha = 0.9\n'
                           'epsilon = 1e-8\n\n[optimizer.torch]\nforeach = true\n\n[optimizer.paddle]\n'
                           'name = "opt"')
    o = load_case(write_case(tmp_path, text)).optimizer
    # Aliases land on the neutral words; values stay as written (an int lr stays an int).
    assert o.hyper == {"rho": 0.9, "eps": 1e-8} and o.lr == 1 and type(o.lr) is int
    assert o.native == {"torch": {"foreach": True}, "paddle": {"name": "opt"}}
