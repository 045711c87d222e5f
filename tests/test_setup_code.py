"""The code the case pages show for each setup does what the run did: executed in a
plain training loop with the real framework, from the case's start, it ends where the
run ended — within 1e-4 of the run's whole movement, far below any decay a case
checks (a decay of lr*c*|w| per step is ~1e-2 of it), far above float32 rounding."""
from __future__ import annotations

import numpy as np

from xdecay.engine.compare import Tolerance
from xdecay.engine.pipeline import compare_case
from xdecay.writers.setup_code import setup_code

RELATIVE = 1e-4


def _execute(case, framework: str, way: str) -> dict[str, np.ndarray]:
    """The page's code inside the loop a user writes; the final parameters, canonical layout."""
    code = setup_code(case, framework, way)
    spec = case.spec()
    if framework == "torch":
        import torch as fw
    else:
        import paddle as fw
    scope: dict = {framework: fw}
    exec(code.build, scope)
    model, names = scope.get("model", scope["linear"]), {"weight": "linear.weight", "bias": "linear.bias",
                                                          "norm_gain": "norm.weight", "norm_bias": "norm.bias"}
    params = {p: eval(names[p], scope) for p in spec.params}
    for p, value in spec.params.items():
        start = value.T if framework == "paddle" and p == "weight" else value      # paddle's [in, out]
        if framework == "torch":
            with fw.no_grad():
                params[p].copy_(fw.from_numpy(np.ascontiguousarray(start)))
        else:
            params[p].set_value(np.ascontiguousarray(start))
    opt = scope["opt"]
    # The page's precision comment: the adapters' loop parts (cast inputs, autocast, scaler).
    amp = _amp(framework, case.precision)
    m = case.accumulate.micro_batches if case.accumulate else 1     # the page's accumulation comment
    rows = len(spec.x) // m
    for k in range(case.steps):
        data = spec.step(k)       # [data] fresh: the user's loader gives a new batch
        x = fw.to_tensor(data.x) if framework == "paddle" else fw.from_numpy(data.x)
        target = None if data.target is None else (fw.to_tensor(data.target) if framework == "paddle"
                                                   else fw.from_numpy(data.target))
        if framework == "torch":
            x = amp.cast(x)
            target = None if target is None else amp.cast(target)
        for i in range(m):
            part = slice(i * rows, (i + 1) * rows)
            with amp.autocast():
                out = model(x[part])
                scope["loss"] = ((out - target[part]) ** 2).mean() if case.loss == "mse" else out.mean()
                if case.loss == "zero":
                    scope["loss"] = scope["loss"] * 0.0
                if code.loss_term:
                    exec(code.loss_term, scope)
            if case.accumulate and case.accumulate.divide_loss:
                scope["loss"] = scope["loss"] / m
            amp.backward(scope["loss"])
        if framework == "torch":
            amp.unscale(opt)
        if code.before_step:
            exec(code.before_step, scope)
        amp.step(opt)
        if code.after_step:
            exec(code.after_step, scope)
        opt.zero_grad() if framework == "torch" else opt.clear_grad()
    final = {p: v.detach().float().numpy() if framework == "torch" else v.numpy() for p, v in params.items()}
    if "weight" in final and framework == "paddle":
        final["weight"] = final["weight"].T
    return final


def _amp(framework: str, precision):
    if framework == "torch":
        from xdecay.frameworks.torch_adapter import Amp
    else:
        from xdecay.frameworks.paddle_adapter import Amp
    return Amp(precision)


def test_every_runs_code_ends_where_the_run_ended(shipped):
    cases, done = shipped
    checked = 0
    for i, case in enumerate(cases):
        if case.layer.kind != "linear":
            continue        # the pages show code for the Linear only (README, "Case files")
        result = compare_case(case, i, done, case.steps, Tolerance.for_case(case))
        for run in result.runs:
            if run.error is not None:
                continue
            final = _execute(case, run.framework, run.way)
            for p, snaps in run.params.items():
                moved = float(np.max(np.abs(snaps[-1].astype(np.float64) - snaps[0])))
                off = float(np.max(np.abs(final[p].astype(np.float64) - snaps[-1])))
                assert off <= RELATIVE * moved, (f"{case.name} {run.name} {p}: the page's code ends "
                                                 f"{off:.3g} from the run (moved {moved:.3g}):\n"
                                                 f"{setup_code(case, run.framework, run.way).text()}")
            checked += 1
    assert checked > 100


def test_the_check_sees_a_wrong_setup(shipped):
    """The same loop with the weight's ParamAttr left out of precedence_adamw's paddle
    code: the bound above flags it."""
    cases, done = shipped
    i, case = next((i, c) for i, c in enumerate(cases) if c.name == "precedence_adamw")
    result = compare_case(case, i, done, case.steps, Tolerance.for_case(case))
    run = next(x for x in result.runs if x.name == "paddle:param_attr+weight_decay")
    wrong = _execute(case, "paddle", "weight_decay")
    snaps = run.params["weight"]
    moved = float(np.max(np.abs(snaps[-1].astype(np.float64) - snaps[0])))
    assert float(np.max(np.abs(wrong["weight"] - snaps[-1]))) > 100 * RELATIVE * moved
