"""`xdecay train`: run a training case in every framework, check it, report it.

overfit (seed 002): per epoch train/test loss for each weight decay, torch vs
paddle and each against the float64 reference, the seed's claim that decay
lowers the final test loss, and the trained weights' norms and int8 scale.
schedule (seed 000): the lr sequence of both cosine schedules against each other
and the closed form, and how much of each step is decay, with the framework's
steps checked against the reference rule.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tabulate import tabulate

from .. import __version__
from ..case import FRAMEWORKS
from ..engine.compare import EPS32, ulp32
from ..engine.pipeline import EXIT_FRAMEWORK, EXIT_MISMATCH, EXIT_OK
from ..engine.reference import coupled_l2, decoupled_lr, torch_adam
from ..engine.rules import coefficient_text
from ..frameworks.records import RunRecord
from ..frameworks.runner import DEFAULT_TIMEOUT, FrameworkResult, run
from ..training import TrainCase, TrainJob, build_job, cosine_lrs, decay_label, epoch_batches, reference_overfit
from .markdown import prose

EPS64 = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Check:
    what: str
    measured: str
    allowed: str
    ok: bool


@dataclass
class Training:
    case: TrainCase
    job: TrainJob
    versions: dict[str, str]
    runs: dict[str, list[RunRecord]]            # framework (and "float64") -> runs
    errors: dict[str, str]
    checks: list[Check] = field(default_factory=list)
    tables: dict[str, list[list[Any]]] = field(default_factory=dict)
    headers: dict[str, list[str]] = field(default_factory=dict)
    plot: str | None = None                    # file name of the PNG, or why it was skipped

    @property
    def ok(self) -> bool:
        return not self.errors and all(c.ok for c in self.checks)

    @property
    def exit_code(self) -> int:
        return EXIT_FRAMEWORK if self.errors else (EXIT_OK if self.ok else EXIT_MISMATCH)


def run_training(case: TrainCase, pythons: dict[str, str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT, in_process: bool = False,
                 progress=lambda message: None) -> Training:
    job = build_job(case)
    progress(f"train {case.name}: running torch and paddle ({_steps(job)} steps per run)")
    done = run({fw: job for fw in FRAMEWORKS}, pythons, timeout, in_process)
    return training_from(case, job, done, progress)


def training_from(case: TrainCase, job: TrainJob, done: dict[str, FrameworkResult],
                  progress=lambda message: None) -> Training:
    """Check what the frameworks did with a training job, against the float64 reference."""
    runs = {fw: r.records[0] for fw, r in done.items() if r.error is None}
    t = Training(case, job, {fw: r.version for fw, r in done.items() if r.version}, runs,
                 {fw: r.error for fw, r in done.items() if r.error})
    if case.kind == "overfit":
        progress(f"train {case.name}: float64 reference")
        t.runs["float64"] = [reference_overfit(job, wd) for wd in case.weight_decays]
        _check_overfit(t)
    else:
        _check_schedule(t)
    return t


def _steps(job: TrainJob) -> int:
    return sum(len(epoch) for epoch in epoch_batches(job))


def _residual_rounding(t: Training, run: RunRecord) -> float:
    """r: the float32 rounding of a residual at the run's final weights,
    gamma_n * mean(sum|w*x| + |b|), n = inputs + batch + 16."""
    n = t.case.inputs + t.case.batch + 16
    x = np.abs(t.job.arrays["x"].astype(np.float64))
    w = np.abs(run.params["weight"][-1].astype(np.float64))
    return n * EPS32 / 2 * float(np.mean(x @ w.T + abs(float(run.params["bias"][-1][0]))))


def loss_allowed(t: Training, run: RunRecord, epoch_steps: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """|La - Lb| a correct float32 run may show at each epoch: the trajectory term
    S*n*eps32*L (S steps so far, n = inputs + batch + 16) plus the loss evaluation's
    own rounding, 2*sqrt(L)*r + r^2 (r: _residual_rounding)."""
    n = t.case.inputs + t.case.batch + 16
    r = _residual_rounding(t, run)
    return epoch_steps * n * EPS32 * loss + 2 * np.sqrt(loss) * r + r * r


def loss_resolution(t: Training, run: RunRecord) -> float:
    """The smallest loss the run's float32 evaluation can tell from zero: below
    (1 + sqrt(2))^2 * r^2 the evaluation's own rounding, 2*sqrt(L)*r + r^2, exceeds L
    itself, so its digits are rounding noise (another CPU prints others)."""
    return (1 + np.sqrt(2)) ** 2 * _residual_rounding(t, run) ** 2


def _loss_cell(t: Training, run: RunRecord, loss: float) -> str:
    """A final loss as 4 digits, or "< resolution" where the digits would be noise."""
    floor = loss_resolution(t, run)
    return f"< {floor:.2g}" if loss < floor else f"{loss:.4g}"


def diverged_at(values: list[np.ndarray]) -> int | None:
    """The first epoch or step (1-based: the arrays' first axis) at which a value is not finite."""
    finite = np.logical_and.reduce([np.isfinite(v).reshape(len(v), -1).all(axis=1) for v in values])
    return None if finite.all() else int(np.argmin(finite)) + 1


def _check_diverged(t: Training, values: Callable[[RunRecord], list[np.ndarray]], unit: str,
                    allowed: str) -> set[tuple[str, str]]:
    """One failed check per run that diverged (overflowed to inf or NaN), saying where,
    instead of numpy's warnings and a table of NaN comparisons: the (framework, way) of
    those runs, which no other check reads."""
    out = set()
    for fw in (*FRAMEWORKS, "float64"):
        for r in t.runs.get(fw, []):
            k = None if r.error is not None else diverged_at(values(r))
            if k is not None:
                out.add((fw, r.way))
                t.checks.append(Check(f"{fw} {r.way}: training", f"diverged at {unit} {k}", allowed, False))
    return out


def _check_overfit(t: Training) -> None:
    diverged = _check_diverged(t, lambda r: [r.series["train_loss"], r.series["test_loss"]], "epoch",
                               "finite losses")
    by = {fw: {r.way: r for r in runs if r.error is None and (fw, r.way) not in diverged}
          for fw, runs in t.runs.items()}
    steps_per_epoch = len(epoch_batches(t.job)[0])
    epoch_steps = steps_per_epoch * np.arange(1, t.case.epochs + 1)
    rows = []
    for wd in t.case.weight_decays:
        way = decay_label(wd)
        for a, b in (("torch", "paddle"), ("torch", "float64"), ("paddle", "float64")):
            if way not in by.get(a, {}) or way not in by.get(b, {}):
                continue
            for series in ("train_loss", "test_loss"):
                la, lb = by[a][way].series[series], by[b][way].series[series]
                diff = np.abs(la - lb)
                allowed = loss_allowed(t, by[a][way], epoch_steps, np.maximum(la, lb))
                rel = float(np.max(diff / np.maximum(np.maximum(la, lb), 1e-300)))
                ratio = float(np.max(diff / allowed))
                t.checks.append(Check(f"{a} vs {b}, {way}, {series} per epoch",
                                      f"max abs {np.max(diff):.3g}, max rel {rel:.3g}",
                                      f"{ratio:.3g}x the tolerance", bool(np.isfinite(ratio) and ratio <= 1)))
    for fw in ("torch", "paddle"):
        finals = {wd: by.get(fw, {}).get(decay_label(wd)) for wd in t.case.weight_decays}
        lo, hi = min(finals), max(finals)
        if finals[lo] is not None and finals[hi] is not None:
            a, b = finals[lo].series["test_loss"][-1], finals[hi].series["test_loss"][-1]
            t.checks.append(Check(f"{fw}: final test loss, {decay_label(hi)} below {decay_label(lo)}",
                                  f"{b:.4g} vs {a:.4g}", "below", bool(b < a)))
        for wd, r in finals.items():
            if r is None:
                continue
            w = r.params["weight"][-1].astype(np.float64)
            rows.append([fw, coefficient_text(wd), _loss_cell(t, r, r.series["train_loss"][-1]),
                         _loss_cell(t, r, r.series["test_loss"][-1]),
                         f"{np.linalg.norm(w):.4g}", f"{np.max(np.abs(w)):.4g}",
                         f"{(w.max() - w.min()) / 255:.4g}"])
    if rows:         # none when every run diverged
        t.tables["weights after training"] = rows
    t.headers["weights after training"] = ["framework", "weight_decay", "final train loss",
                                           "final test loss", "‖w‖₂", "max abs(w)", "int8 scale (max−min)/255"]


def _check_schedule(t: Training) -> None:
    c = t.case
    steps = _steps(t.job)
    closed = cosine_lrs(c.lr, c.eta_min, c.t_max, steps)
    # Both recursions run in float64: a few eps64 of lr per step, accumulated.
    allowed = steps * 8 * EPS64 * c.lr
    runs = {fw: {r.way: r for r in rs if r.error is None} for fw, rs in t.runs.items()}
    lrs = {fw: r["adam"].series["lr"] for fw, r in runs.items() if "adam" in r}
    for fw, seq in lrs.items():
        d = float(np.max(np.abs(seq - closed)))
        t.checks.append(Check(f"{fw}: lr sequence vs the closed form", f"max abs {d:.3g}",
                              f"<= {allowed:.3g}", d <= allowed))
    if len(lrs) == 2:
        d = float(np.max(np.abs(lrs["torch"] - lrs["paddle"])))
        t.checks.append(Check("torch vs paddle: lr sequence", f"max abs {d:.3g}", f"<= {allowed:.3g}",
                              d <= allowed))
    diverged = _check_diverged(t, lambda r: [r.params["weight"][1:], r.params["bias"][1:]], "step",
                               "finite weights")
    shares = {}
    for fw, r in runs.items():
        for way, record in r.items():
            if (fw, way) in diverged:
                continue
            share, residual = decay_parts(record, t.job, decoupled=way == "adamw")
            shares[(fw, way)] = share
            t.checks.append(Check(f"{fw} {'AdamW' if way == 'adamw' else 'Adam(weight_decay)'}: steps follow "
                                  f"{'Adam + lr_t*c*w' if way == 'adamw' else 'Adam on g + c*w'} (float64 replay)",
                                  f"{residual:.3g}x the tolerance", "<= 1", residual <= 1))
    show = sorted(set(range(0, steps, max(1, steps // 10))) | {steps - 1})
    keys = [k for k in (("torch", "adam"), ("torch", "adamw"), ("paddle", "adam"), ("paddle", "adamw")) if k in shares]
    t.tables["decay share per step"] = [[k + 1, f"{closed[k]:.6g}"] + [f"{shares[key][k]:.4f}" for key in keys]
                                        for k in show]
    t.headers["decay share per step"] = ["step", "lr"] + [f"{fw} {'AdamW' if w == 'adamw' else 'Adam(wd)'}"
                                                           for fw, w in keys]


def decay_parts(run: RunRecord, job: TrainJob, decoupled: bool) -> tuple[np.ndarray, float]:
    """Per step, mean |decay part| / mean |update| of the weight, and how far the run's
    steps are from the reference rule (max |predicted - actual| / tolerance).

    From the run's weights before each step, the float64 Adam reference gives the
    update with and without the decay from the same state: decoupled decay is
    lr_t*c*w exactly; coupled decay is what Adam's normalisation makes of c*w."""
    a = job.arrays
    x, y = a["x"].astype(np.float64), a["y"].astype(np.float64)
    c, lrs = job.config["weight_decay"], run.series["lr"]
    ws, bs = run.params["weight"].astype(np.float64), run.params["bias"].astype(np.float64)
    n = x.shape[1] + job.config["batch"] + 16
    state: dict = {}
    shares, worst = [], 0.0
    for k, idx in enumerate(i for epoch in epoch_batches(job) for i in epoch):
        w, lr = ws[k], float(lrs[k])
        g = 2 * (x[idx] @ w.T + bs[k] - y[idx]).T @ x[idx] / len(idx)
        probe = {key: v.copy() if isinstance(v, np.ndarray) else v for key, v in state.items()}
        if decoupled:
            plain = torch_adam(w, g, state, k + 1, lr=lr)
            full = decoupled_lr(w, plain, c, lr)
        else:
            full = torch_adam(w, coupled_l2(w, g, c), state, k + 1, lr=lr)
            plain = torch_adam(w, g, probe, k + 1, lr=lr)
        with np.errstate(invalid="ignore", divide="ignore"):   # a step that moves nothing: share NaN
            shares.append(float(np.mean(np.abs(full - plain)) / np.mean(np.abs(full - w))))
        actual = ws[k + 1]
        delta = actual - w
        allowed = (k + 1) * (ulp32(np.maximum(np.abs(w), np.abs(actual))) + n * EPS32 * np.abs(delta))
        worst = max(worst, float(np.max(np.abs(full - actual) / allowed)))
    return np.array(shares), worst


# ---------------------------------------------------------------- output

def write_plot(t: Training, path: Path) -> str | None:
    """The loss curves as a PNG (matplotlib, the "plot" extra); the reason if skipped."""
    if t.case.kind != "overfit":
        return None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install 'xdecay[plot]')"
    # Each panel its own log scale: the train loss falls to ~1e-10 while the test loss
    # stays near 1e2, and one shared axis would flatten the test curves into a line.
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(1, t.case.epochs + 1)
    for ax, series in zip(axes, ("train_loss", "test_loss")):
        for fw, style in (("torch", "-"), ("paddle", "--")):
            for r in t.runs.get(fw, []):
                if r.error is None:
                    ax.plot(epochs, r.series[series], style, label=f"{fw} {r.way}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{series.replace('_', ' ')} (MSE, log scale)")
        ax.set_title(f"{series.replace('_', ' ')} per epoch")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(t.case.description, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})    # no version stamp: reproducible
    plt.close(fig)
    return None


def table(t: Training) -> str:
    out = [f"== {t.case.name} ({t.case.kind})", t.case.description,
           ", ".join(f"{fw} {v}" for fw, v in sorted(t.versions.items()))]
    out += [f"{fw}: ERROR {msg}" for fw, msg in t.errors.items()]
    for name, rows in t.tables.items():
        out += ["", name, tabulate(rows, t.headers[name], disable_numparse=True)]
    out += ["", "checks", tabulate([[c.what, c.measured, c.allowed, "ok" if c.ok else "FAIL"]
                                    for c in t.checks], ["check", "measured", "allowed", "verdict"],
                                   disable_numparse=True)]
    if t.plot:
        out.append(t.plot if t.plot.startswith("plot skipped") else f"plot: {t.plot}")
    out.append(f"verdict: {'OK' if t.ok else 'ERROR' if t.errors else 'MISMATCH'}")
    return "\n".join(out) + "\n"


def markdown(t: Training) -> str:
    out = [f"## {t.case.name}", "", prose(t.case.description), "",
           "Versions: " + ", ".join(f"{fw} {v}" for fw, v in sorted(t.versions.items())), ""]
    out += [f"- **{fw}**: error: {msg}" for fw, msg in t.errors.items()]
    if t.plot and not t.plot.startswith("plot skipped"):
        out += [f"![train and test loss per epoch]({t.plot})", ""]
    elif t.plot:
        out += [f"_{t.plot}_", ""]
    for name, rows in t.tables.items():
        out += [f"### {name.capitalize()}", "", tabulate(rows, t.headers[name], tablefmt="github",
                                                         disable_numparse=True), ""]
    out += ["### Checks", "", tabulate([[prose(c.what), c.measured, c.allowed, "ok" if c.ok else "FAIL"]
                                        for c in t.checks], ["check", "measured", "allowed", "verdict"],
                                       tablefmt="github", disable_numparse=True), "",
            f"**Verdict:** {'OK' if t.ok else 'ERROR' if t.errors else 'MISMATCH'}", ""]
    return "\n".join(out)


def json_report(t: Training) -> str:
    runs = [{"run": f"{fw}:{r.way}", "framework": fw, "way": r.way, "error": r.error,
             **{k: v.tolist() for k, v in r.series.items()}}
            for fw, rs in t.runs.items() for r in rs]
    doc = {"xdecay": __version__, "frameworks": dict(sorted(t.versions.items())), "case": t.case.name,
           "kind": t.case.kind, "runs": runs,
           "checks": [{"what": c.what, "measured": c.measured, "allowed": c.allowed, "ok": c.ok}
                      for c in t.checks],
           "tables": {name: {"headers": t.headers[name], "rows": rows} for name, rows in t.tables.items()},
           "errors": t.errors, "ok": t.ok}
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"


WRITERS = {"table": table, "markdown": markdown, "json": json_report}


def stderr_progress(quiet: bool):
    return (lambda message: None) if quiet else (lambda message: print(message, file=sys.stderr))
