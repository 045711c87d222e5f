"""`xdecay audit` (README, "Auditing your own model"): real torch and paddle, the shipped
examples/ models and small factories written here; in-process but for the CLI tests."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

from xdecay.engine.audit import run_audit
from xdecay.engine.name_map import load_name_map, match
from xdecay.errors import UsageError

from .conftest import ROOT

EXAMPLES = ROOT / "examples"
TORCH, PADDLE, NAME_MAP = EXAMPLES / "torch_model.py", EXAMPLES / "paddle_model.py", EXAMPLES / "name_map.toml"
NO_DECAY = ("bias|norm",)
NORM_WEIGHTS = ["blocks.0.norm1.weight", "blocks.0.norm2.weight", "blocks.1.norm1.weight",
                "blocks.1.norm2.weight", "norm.weight"]


def audit(**factories: str):
    opts = {k: factories.pop(k) for k in ("no_decay", "decay", "name_map", "steps") if k in factories}
    return run_audit(factories, in_process=True, **opts)


def rules(result, fw: str) -> dict[str, str]:
    return {r.name: r.rule for r in result.audits[fw].rows}


@pytest.mark.parametrize("fw, path", [("torch", TORCH), ("paddle", PADDLE)])
def test_the_correct_recipe_decays_weights_only(fw, path):
    result = audit(**{fw: f"{path}:make"}, no_decay=NO_DECAY)
    assert result.exit_code == 0, result.flags
    for row in result.audits[fw].rows:
        excluded = "bias" in row.name or "norm" in row.name
        assert row.rule == ("none" if excluded else "decoupled_lr@0.05"), row
        # Each verdict can see what it claims: a decayed coefficient within 10 %, a missing
        # decay of 0.05 (the recipe's) at least.
        if excluded:
            assert row.power.verdict == "conclusive" and row.power.sees <= 0.05, row
        else:
            assert row.power.verdict == "conclusive" and row.power.coeff_error <= 0.1, row


@pytest.mark.parametrize("fw, path", [("torch", TORCH), ("paddle", PADDLE)])
def test_the_classic_mistake_is_flagged(fw, path):
    result = audit(**{fw: f"{path}:make_mistake"}, no_decay=NO_DECAY)
    flagged = [r.name for r in result.audits[fw].rows if r.flag]
    assert flagged == NORM_WEIGHTS
    assert result.exit_code == 1
    assert all(rules(result, fw)[n] == "decoupled_lr@0.05" for n in flagged)


def test_decay_intent_flags_a_parameter_left_undecayed():
    result = audit(torch=f"{TORCH}:make", decay=("norm",))
    flagged = {r.name for r in result.audits["torch"].rows if r.flag}
    assert flagged == {r.name for r in result.audits["torch"].rows if "norm" in r.name}
    assert result.exit_code == 1


@pytest.fixture(scope="module")
def both():
    return audit(torch=f"{TORCH}:make", paddle=f"{PADDLE}:make", name_map=load_name_map(str(NAME_MAP)),
                 no_decay=NO_DECAY)


def test_the_port_is_checked_pair_by_pair(both):
    assert both.exit_code == 0, both.flags
    assert not both.torch_only and not both.paddle_only
    assert len(both.pairs) == len(both.audits["paddle"].rows) == 38
    by_how = {}
    for p in both.pairs:
        by_how.setdefault(p.how, []).append(p)
        assert p.torch.rule == p.paddle.rule and not p.problem
    assert {p.torch.name for p in by_how["map"]} == {f"blocks.{i}.attn.in_proj_{k}" for i in (0, 1)
                                                     for k in ("weight", "bias")}
    # paddle's Linear weights are [in, out]: paired by name across the transpose
    assert any(p.torch.shape == p.paddle.shape[::-1] != p.paddle.shape for p in by_how["name"])


def test_unmatched_parameters_ask_for_a_name_map():
    result = audit(torch=f"{TORCH}:make", paddle=f"{PADDLE}:make")
    assert result.torch_only == [f"blocks.{i}.attn.in_proj_{k}" for i in (0, 1) for k in ("weight", "bias")]
    assert any("--name-map" in f for f in result.flags) and result.exit_code == 1


def test_paddle_param_attr_with_adamw_decays_twice():
    """The pitfall shows by itself: an L2Decay ParamAttr on the head plus AdamW's own decay."""
    result = audit(torch=f"{TORCH}:make", paddle=f"{PADDLE}:make_param_attr", name_map=load_name_map(str(NAME_MAP)))
    assert rules(result, "paddle")["head.weight"] == "coupled_l2@0.0001+decoupled_lr@0.05"
    head = next(r for r in result.audits["paddle"].rows if r.name == "head.weight")
    assert head.sources == (("coupled_l2@0.0001 <- param.regularizer L2Decay(0.0001) (ParamAttr, or an earlier "
                             "optimizer's group)"), "decoupled_lr@0.05 <- optimizer: AdamW weight_decay=0.05")
    assert [p.paddle.name for p in result.pairs if p.problem] == ["head.weight"]
    assert result.exit_code == 1


def write(tmp_path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_paddle_groups_optimizer_built_earlier_leaves_its_decay(tmp_path):
    """A group optimizer writes its decay onto the parameter: a later plain Adam still decays."""
    factory = write(tmp_path, "leak", """
        import paddle
        def make():
            paddle.seed(1)
            layer = paddle.nn.Linear(4, 3)
            paddle.optimizer.Adam(learning_rate=0.01, parameters=[
                {"params": [layer.weight], "weight_decay": 0.1}, {"params": [layer.bias]}])
            optimizer = paddle.optimizer.Adam(learning_rate=0.01, parameters=layer.parameters())
            return layer, optimizer, paddle.rand([5, 4])
    """)
    result = audit(paddle=f"{factory}:make", no_decay=(".",))
    assert rules(result, "paddle") == {"weight": "coupled_l2@0.1", "bias": "none"}
    assert result.audits["paddle"].rows[0].sources == (
        "coupled_l2@0.1 <- param.regularizer L2Decay(0.1) (ParamAttr, or an earlier optimizer's group)",)
    assert [r.name for r in result.audits["paddle"].rows if r.flag] == ["weight"]


def test_paddle_momentum_groups_decay_in_its_kernel(tmp_path):
    """paddle Momentum keeps a group's L2 decay in its kernel; a group without the key takes
    the optimizer's (0.05), as a torch group does."""
    factory = write(tmp_path, "momentum", """
        import paddle
        def make():
            paddle.seed(0)
            m = paddle.nn.Sequential(paddle.nn.Linear(6, 5), paddle.nn.LayerNorm(5))
            groups = [{"params": [m[0].weight], "weight_decay": 0.1}, {"params": [m[0].bias, m[1].weight, m[1].bias]}]
            optimizer = paddle.optimizer.Momentum(learning_rate=0.01, parameters=groups, weight_decay=0.05)
            return m, optimizer, paddle.rand([4, 6])
    """)
    rows = {r.name: r for r in audit(paddle=f"{factory}:make", steps=3).audits["paddle"].rows}
    assert rows["0.weight"].sources == ("coupled_l2@0.1 <- group 0: Momentum weight_decay=L2Decay(0.1), in its kernel",)
    assert rows["1.weight"].sources == (
        "coupled_l2@0.05 <- group 1: Momentum weight_decay=L2Decay(0.05), in its kernel",)


def test_torch_coupled_decay_group_lr_and_frozen(tmp_path):
    factory = write(tmp_path, "sgd", """
        import torch
        def make():
            torch.manual_seed(1)
            model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
            model[0].requires_grad_(False)
            optimizer = torch.optim.SGD([{"params": [model[1].weight], "weight_decay": 0.1},
                                         {"params": [model[1].bias], "lr": 0.02}], lr=0.1, momentum=0.9)
            return model, optimizer, (torch.rand(5, 4),)
    """)
    result = audit(torch=f"{factory}:make", steps=3)
    rows = {r.name: r for r in result.audits["torch"].rows}
    assert rows["1.weight"].rule == "coupled_l2@0.1" and rows["1.weight"].lr == (0.1, 0.1, 0.1)
    assert rows["1.bias"].rule == "none" and rows["1.bias"].lr == (0.02, 0.02, 0.02)
    assert rows["0.weight"].rule == rows["0.weight"].status == "frozen"


CLASS_FACTORY = """
import torch, paddle
def make():
    if FW == "torch":
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.LayerNorm(5), torch.nn.Linear(5, 3))
        return m, getattr(torch.optim, CLS)(m.parameters(), **KW), torch.rand(4, 6)
    paddle.seed(0)
    m = paddle.nn.Sequential(paddle.nn.Linear(6, 5), paddle.nn.LayerNorm(5), paddle.nn.Linear(5, 3))
    kw = dict(KW)
    if "regularizer" in kw:
        kind, c = kw.pop("regularizer")
        kw["weight_decay"] = getattr(paddle.regularizer, kind)(c)
    return m, getattr(paddle.optimizer, CLS)(parameters=m.parameters(), **kw), paddle.rand([4, 6])
"""


# Each class's rule as `xdecay explain` measures it (README): the audit must find the same
# on a model of three layers, every parameter alike, from the coefficient the objects hold.
CLASSES = [
    ("torch", "SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}, "coupled_l2@0.1"),
    ("torch", "Adam", {"lr": 0.01, "weight_decay": 0.1}, "coupled_l2@0.1"),
    ("torch", "AdamW", {"lr": 0.01}, "decoupled_lr@0.01"),
    ("torch", "Adagrad", {"lr": 0.1, "weight_decay": 0.1}, "coupled_l2@0.1"),     # state filled at construction
    ("torch", "NAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}, "decoupled_lr@0.1"),
    ("torch", "Adafactor", {"lr": 0.01, "weight_decay": 0.1}, "decoupled_lr@0.1"),  # factored: shapes kept
    ("paddle", "Momentum", {"learning_rate": 0.1, "weight_decay": 0.1}, "coupled_l2@0.1"),   # in its kernel
    ("paddle", "SGD", {"learning_rate": 0.1, "regularizer": ("L1Decay", 0.01)}, "l1@0.01"),
    ("paddle", "Adam", {"learning_rate": 0.01, "weight_decay": 0.1}, "coupled_l2@0.1"),
    ("paddle", "AdamW", {"learning_rate": 0.01}, "decoupled_lr@0.01"),
    ("paddle", "Lamb", {"learning_rate": 0.01, "lamb_weight_decay": 0.1}, "lamb_trust@0.1"),
    ("paddle", "RMSProp", {"learning_rate": 0.01, "weight_decay": 0.1}, "coupled_l2@0.1"),
]


@pytest.mark.parametrize("fw, cls, kw, rule", CLASSES, ids=[f"{c[0]}-{c[1]}" for c in CLASSES])
def test_each_optimizer_class_is_replayed_with_its_own_rule(fw, cls, kw, rule, tmp_path):
    factory = write(tmp_path, f"{fw}_{cls}", f"FW, CLS, KW = {fw!r}, {cls!r}, {kw!r}\n" + CLASS_FACTORY)
    result = audit(**{fw: f"{factory}:make"}, steps=3)
    assert {r.name: r.rule for r in result.audits[fw].rows} == dict.fromkeys(
        ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"], rule)


def test_a_large_parameter_is_replayed_on_a_sample(tmp_path):
    factory = write(tmp_path, "large", """
        import torch
        def make():
            torch.manual_seed(1)
            model = torch.nn.Linear(300, 200)
            return model, torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.1), torch.rand(8, 300)
    """)
    result = audit(torch=f"{factory}:make")
    rows = {r.name: r for r in result.audits["torch"].rows}
    assert rows["weight"].sample == 4096 and rows["bias"].sample is None
    assert rows["weight"].rule == rows["bias"].rule == "coupled_l2@0.1"


def test_dict_inputs_and_outputs(tmp_path):
    """model(**inputs) for a dict; a dict of outputs (a transformers ModelOutput is one):
    its floating-point tensors make the loss, the rest is left out."""
    factory = write(tmp_path, "dicts", """
        import torch
        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.a, self.b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 2)
            def forward(self, x, y):
                return {"logits": self.a(x), "aux": self.b(y), "ids": torch.arange(3), "cache": None}
        def make():
            torch.manual_seed(1)
            model = Model()
            groups = [{"params": [model.a.weight], "weight_decay": 0.1}, {"params": [model.b.weight]}]
            return model, torch.optim.AdamW(groups, lr=0.01), {"x": torch.rand(5, 4), "y": torch.rand(5, 4)}
    """)
    result = audit(torch=f"{factory}:make")
    assert rules(result, "torch") == {"a.weight": "decoupled_lr@0.1", "a.bias": "frozen",
                                      "b.weight": "decoupled_lr@0.01", "b.bias": "frozen"}


def test_a_sparse_gradient_is_replayed_dense(tmp_path):
    """torch Embedding(sparse=True) under Adagrad (which takes sparse gradients): rows not
    looked up get no step, as the dense replay with a zero gradient row gives."""
    factory = write(tmp_path, "sparse", """
        import torch
        def make():
            torch.manual_seed(1)
            model = torch.nn.Embedding(10, 4, sparse=True)
            return model, torch.optim.Adagrad(model.parameters(), lr=0.1), torch.tensor([[1, 3, 3]])
    """)
    result = audit(torch=f"{factory}:make", decay=("weight",))
    assert rules(result, "torch") == {"weight": "none"} and result.exit_code == 1


BF16 = """
import torch
def make():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.LayerNorm(5), torch.nn.Linear(5, 3)).bfloat16()
    return m, OPTIMIZER, torch.rand(4, 6).bfloat16()
"""


def test_bfloat16_decay_below_resolution_cannot_be_told(tmp_path):
    """torch model.bfloat16(): AdamW's lr*c = 5e-5 is far below half a bfloat16 ULP (2^-9 of
    w), so w*(1 - lr*c) rounds back to w. Replayed at bfloat16, `none` fits as well as the
    decay: every weight is `cannot tell`, never `decoupled_lr@0.05` or `none` alone."""
    factory = write(tmp_path, "bf16", BF16.replace(
        "OPTIMIZER", "torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.05)"))
    result = audit(torch=f"{factory}:make", steps=3, decay=("weight",))
    rows = [r for r in result.audits["torch"].rows if r.name.endswith("weight")]
    assert all(r.dtype == "bfloat16" and r.decayed is None and "none" in r.rule for r in rows), rows
    assert all("cannot tell" in r.flag for r in rows) and result.exit_code == 1


def test_bfloat16_decay_above_resolution_is_seen(tmp_path):
    """SGD momentum, lr*c = 0.01 per step, above bfloat16's resolution: the weights are
    decayed by 0.1 (at bfloat16's tolerance coupled and decoupled decay may not separate)."""
    factory = write(tmp_path, "bf16", BF16.replace(
        "OPTIMIZER", "torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)"))
    rows = {r.name: r for r in audit(torch=f"{factory}:make", steps=3).audits["torch"].rows}
    assert rows["0.weight"].decayed is True and "@0.1" in rows["0.weight"].rule and "none" not in rows["0.weight"].rule


def test_a_module_name_is_found_from_the_current_folder(monkeypatch):
    monkeypatch.chdir(EXAMPLES)
    result = audit(torch="torch_model:make_mistake", no_decay=NO_DECAY)
    assert [r.name for r in result.audits["torch"].rows if r.flag] == NORM_WEIGHTS


FACTORY_ERRORS = {
    "import": ("import no_such_module_xdecay\ndef make():\n    pass\n", "ModuleNotFoundError: No module named"),
    "missing": ("def other():\n    pass\n", "has no function make"),
    "shape": (("import torch\ndef make():\n    m = torch.nn.Linear(2, 2)\n"
               "    return m, torch.optim.SGD(m.parameters(), lr=0.1)\n"),
              "returned a tuple of 2, expected (model, optimizer, inputs)"),
    "no-params": (("import torch\ndef make():\n    m = torch.nn.ReLU()\n"
                   "    o = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)\n"
                   "    return m, o, torch.rand(1, 2)\n"),
                  "the model has no parameters"),
    "foreign": (("import torch\ndef make():\n    m = torch.nn.Linear(2, 2)\n"
                 "    o = torch.optim.SGD(torch.nn.Linear(2, 3).parameters(), lr=0.1)\n"
                 "    return m, o, torch.rand(1, 2)\n"),
                "the optimizer steps 2 parameter(s) that are not the model's"),
    "raises": ("def make():\n    raise RuntimeError('no data here')\n", "RuntimeError: no data here"),
    "outputs": (("import torch\nclass M(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                 "        self.l = torch.nn.Linear(2, 2)\n"
                 "    def forward(self, x):\n        return self.l(x).argmax(-1)\n"
                 "def make():\n    m = M()\n    return m, torch.optim.SGD(m.parameters(), lr=0.1), torch.rand(1, 2)\n"),
                "model(*inputs) returned a Tensor holding no floating-point tensor"),
    "backward": (("import torch\ndef make():\n    m = torch.nn.Linear(2, 2)\n    m.requires_grad_(False)\n"
                  "    return m, torch.optim.SGD(m.parameters(), lr=0.1), torch.rand(1, 2)\n"),
                 "backward() of xdecay's loss raised RuntimeError"),
    "decay-fun": (("import paddle\ndef make():\n    m = paddle.nn.Linear(2, 2)\n"
                   "    o = paddle.optimizer.AdamW(parameters=m.parameters(), apply_decay_param_fun=lambda n: 1 / 0)\n"
                   "    return m, o, paddle.rand([1, 2])\n"),
                  "reading the optimizer's setting of weight raised ZeroDivisionError"),
    "not-optimizer": (("import torch\ndef make():\n    m = torch.nn.Linear(2, 2)\n"
                       "    return m, 'adam', torch.rand(1, 2)\n"),
                      "returned a str as the optimizer, not a torch optimizer"),
    "forward": (("import torch\ndef make():\n    m = torch.nn.Linear(2, 2)\n"
                 "    return m, torch.optim.SGD(m.parameters(), lr=0.1), torch.rand(1, 5)\n"),
                "model(*inputs) raised RuntimeError"),
    "float64": (("import torch\ndef make():\n    m = torch.nn.Linear(2, 2).double()\n"
                 "    return m, torch.optim.SGD(m.parameters(), lr=0.1), torch.rand(1, 2).double()\n"),
                "parameter weight is float64: xdecay audit replays float32, bfloat16, float16 parameters"),
}


@pytest.mark.parametrize("kind", sorted(FACTORY_ERRORS))
def test_a_broken_factory_is_one_line(kind, tmp_path):
    body, words = FACTORY_ERRORS[kind]
    path = tmp_path / "factory.py"
    path.write_text(body)
    fw = "paddle" if "paddle" in body else "torch"
    with pytest.raises(UsageError) as err:
        audit(**{fw: f"{path}:make"})
    message = str(err.value)
    assert message.startswith(f"--{fw} {path}:make: ") and words in message and "\n" not in message, message


def test_name_map_pairs_by_name_shape_and_order():
    torch = {"a.weight": (3, 2), "a.bias": (3,), "x": (4, 4), "y": (5,)}
    paddle = {"a.weight": (2, 3), "a.bias": (3,), "p": (4, 4), "q": (5,)}
    m = match(torch, paddle, {})
    assert m.pairs == [("a.weight", "a.weight", "name"), ("a.bias", "a.bias", "name"), ("x", "p", "order"),
                       ("y", "q", "order")]
    m = match(torch, {**paddle, "q": (6,)}, {})
    assert m.torch_only == ["x", "y"] and m.paddle_only == ["p", "q"]


@pytest.mark.parametrize("text, suffix, words", [
    ('"a" = 1\n', ".toml", "key 'a': expected a paddle parameter name"),
    ('"a.*" = "b"\n', ".toml", "key 'a.*': b must hold as many '*' as the key"),
    ('"a" = ["p"]\n"b" = "p"\n', ".toml", "key 'b': paddle p is already mapped from 'a'"),
    ("{", ".json", "Expecting property name"),
    ('"a" = "p"\n', ".yaml", "expected a .toml or .json file"),
])
def test_a_bad_name_map_is_one_line(tmp_path, text, suffix, words):
    path = tmp_path / f"map{suffix}"
    path.write_text(text)
    with pytest.raises(UsageError, match="^" + re.escape(f"--name-map {path}: ") + ".*" + re.escape(words)):
        load_name_map(str(path))


def test_a_wildcard_maps_every_layer():
    torch = {"l.0.qkv": (6, 2), "l.1.qkv": (6, 2), "l.1.x": (1,)}
    paddle = {f"l.{i}.{k}": (2, 2) for i in (0, 1) for k in "qkv"} | {"l.1.x": (1,)}
    m = match(torch, paddle, {"l.*.qkv": ("l.*.q", "l.*.k", "l.*.v")})
    assert m.pairs == [("l.0.qkv", "l.0.q", "map"), ("l.0.qkv", "l.0.k", "map"), ("l.0.qkv", "l.0.v", "map"),
                       ("l.1.qkv", "l.1.q", "map"), ("l.1.qkv", "l.1.k", "map"), ("l.1.qkv", "l.1.v", "map"),
                       ("l.1.x", "l.1.x", "name")]
    with pytest.raises(UsageError, match=r"key 'm\.\*': matches no torch parameter"):
        match(torch, paddle, {"m.*": ("m.*",)}, "m.toml")


def test_a_name_map_naming_no_parameter_names_the_key():
    with pytest.raises(UsageError, match="key 'nope': the torch model has no such parameter"):
        match({"a": (1,)}, {"a": (1,)}, {"nope": ("a",)}, "m.toml")


def xdecay(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xdecay", "audit", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)


def test_cli_json_flags_the_mistake_and_is_deterministic():
    runs = [xdecay("--torch", "examples/torch_model.py:make_mistake", "--no-decay", "bias|norm", "--format", "json")
            for _ in range(2)]
    assert [p.returncode for p in runs] == [1, 1], runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    doc = json.loads(runs[0].stdout)
    assert doc["frameworks"] == {"torch": doc["frameworks"]["torch"]} and not doc["ok"]
    assert [p["name"] for p in doc["audits"]["torch"]["params"] if p["flag"]] == NORM_WEIGHTS


def test_cli_factory_error_is_exit_2_in_one_line(tmp_path):
    path = tmp_path / "f.py"
    path.write_text("def make():\n    return 1\n")
    p = xdecay("--paddle", f"{path}:make")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == f"xdecay: error: --paddle {path}:make: returned an int, expected (model, optimizer, inputs)\n"


def test_markdown_tables_parse(both):
    from xdecay.writers.audit_report import markdown
    from xdecay.writers.html import parser
    text = markdown(both)
    tokens = parser().parse(text)
    inside = {i for t in tokens if t.type == "table_open" for i in range(*t.map)}
    rows = [i for i, line in enumerate(text.splitlines()) if line.startswith("|")]
    assert rows and set(rows) <= inside
    body_rows = sum(t.type == "tr_open" for t in tokens) - sum(t.type == "thead_open" for t in tokens)
    assert body_rows == len(both.audits["torch"].rows) + len(both.audits["paddle"].rows)


def test_cli_a_crashed_worker_is_exit_3_and_the_other_framework_is_reported(tmp_path):
    crash = tmp_path / "crash"
    crash.write_text(f'#!/bin/sh\nif [ "$1" = -c ]; then exec {sys.executable} "$@"; fi\nkill -SEGV $$\n')
    crash.chmod(0o755)
    p = xdecay("--torch", "examples/torch_model.py:make", "--paddle", "examples/paddle_model.py:make",
               "--python", f"paddle={crash}", "--format", "json")
    assert p.returncode == 3, p.stderr
    doc = json.loads(p.stdout)
    assert "killed by signal SIGSEGV" in doc["framework_errors"]["paddle"] and list(doc["audits"]) == ["torch"]


def test_python_api(monkeypatch):
    import xdecay
    monkeypatch.chdir(EXAMPLES)
    result = xdecay.run_audit(paddle="paddle_model:make_mistake", no_decay=["bias|norm"], in_process=True)
    assert [r.name for r in result.audits["paddle"].rows if r.flag] == NORM_WEIGHTS
    with pytest.raises(UsageError, match="give both --torch and --paddle"):
        xdecay.run_audit(torch="m:make", name_map=str(NAME_MAP))


def test_the_parent_imports_neither_framework():
    code = ("import contextlib, io, sys\nfrom xdecay import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    code = cli.main(['audit', '--torch', 'examples/torch_model.py:make', '--paddle', "
            "'examples/paddle_model.py:make', '--name-map', 'examples/name_map.toml'])\n"
            "print(code, 'torch' in sys.modules, 'paddle' in sys.modules)\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       check=False)
    assert p.stdout.split() == ["0", "False", "False"], p.stderr
