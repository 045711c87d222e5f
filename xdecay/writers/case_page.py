"""A case's page in reports/cases/: the answer first, the evidence after.

Order: verdict; one sentence of what the case means for a port (derived from the
case's claims, their notes and the rules found: `takeaway`); what each parameter got;
the picture; the equivalent setups as code; the comparisons; and last, folded, every
element's delta per step — the reference run's raw value and every other run's
difference from it in float32 ULPs of the weight, instead of columns of near-equal
numbers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tabulate import tabulate

from ..case_files import shown
from ..engine.compare import ulp32
from ..engine.pipeline import CaseResult
from ..engine.precision import report as precision_report
from ..engine.setups import describe
from ..frameworks.records import RunRecord
from .compare_report import (COMPARISON_HEADERS, MAX_SHOWN, POWER_NOTE, _comparison_rows, _num, _params,
                             _setup_rows, _shown_steps, _verdict, json_elements, layout_note, precision_text,
                             rule_check_table)
from .markdown import cell, prose
from .setup_code import setup_code

PLOT_COLUMNS = 64            # elements per parameter in the picture (the leading ones of a large layer)


# ---------------------------------------------------------------- the sentence

def _setup(r: CaseResult, run: str) -> str:
    fw, _, way = run.partition(":")
    return f"{fw} `{describe(r.case, fw, way)}`"


def _notes(r: CaseResult) -> dict[tuple[str, tuple[str, ...], str], str]:
    return {(e.kind, e.runs, e.param): e.note for e in r.case.expectations}


def _equivalent(r: CaseResult, run: str) -> list[str]:
    """Runs of the other framework that a holding `equal` claim puts with `run`."""
    fw = run.partition(":")[0]
    return [other for e in r.case.expectations if e.kind == "equal" and e.param == "all" and run in e.runs
            for other in e.runs if other.partition(":")[0] != fw]


def takeaway(r: CaseResult) -> str:
    """One sentence for someone porting or upgrading, built from the case's own claims:
    a rule claim (what a setup really does, with its note) and the other framework's
    setup a holding `equal` claim pairs it with; else the first `equal` claim across
    frameworks; a refusal; a failing case says that its claims fail."""
    if r.framework_errors or r.failed_runs:
        names = sorted(r.framework_errors) + [x.name for x in r.failed_runs]
        return f"Not verified on these versions: {', '.join(names)} could not run, so no claim here can be relied on."
    failed = [c for c in r.checks if not c.ok]
    blind = len(r.inconclusive)
    if failed and blind == len(failed) and not r.warnings:
        return (f"Cannot tell on these versions: {blind} of {len(r.checks)} checks are inconclusive (they "
                "cannot see the decay), so their claims are not verified (see Comparisons).")
    if failed or r.warnings:
        parts = ([f"{len(failed) - blind} of {len(r.checks)} claims fail"] if len(failed) > blind else []) + \
                ([f"{blind} are inconclusive"] if blind else []) + r.warnings
        return f"Do not rely on this case's claims on these versions: {'; '.join(parts)} (see Comparisons)."
    notes = _notes(r)
    clauses: list[str] = []
    rule_claims = [(c, notes.get(("rule", (c.run,), c.param), "")) for c in r.rule_checks]
    # The claim a port needs most: a rule explained by a note whose run has a verified
    # equivalent in the other framework; then either of the two; then the first.
    ranked = sorted(rule_claims, key=lambda cn: (not (cn[1] and _equivalent(r, cn[0].run)),
                                                 not _equivalent(r, cn[0].run), not cn[1]))
    head = ranked[0] if ranked else None
    if head is not None:
        c, note = head
        clauses.append(f"{_setup(r, c.run)} gives the {c.param} `{c.got}`" + (f" ({prose(note)})" if note else ""))
        twins = _equivalent(r, c.run)
        if twins:
            fw, _, way = twins[0].partition(":")
            clauses.append(f"the {fw} equivalent is `{describe(r.case, fw, way)}`")
    if len(clauses) < 2:
        for e in r.case.expectations:
            frameworks = {run.partition(":")[0] for run in e.runs}
            decayed = [run for run in e.runs if not run.endswith(":none")]
            if e.kind == "equal" and len(frameworks) > 1 and len(decayed) > 1:
                a = decayed[0]
                b = next(run for run in decayed if run.partition(":")[0] != a.partition(":")[0]) \
                    if len({run.partition(":")[0] for run in decayed}) > 1 else decayed[1]
                clauses.append(f"{_setup(r, a)} matches {_setup(r, b)}" + (f" ({prose(e.note)})" if e.note else ""))
                break
    for c in r.reject_checks[:1]:
        clauses.append(f"{_setup(r, c.run)} is refused: {(c.error or '').splitlines()[0]}")
    if not clauses:
        first = next((e.note for e in r.case.expectations if e.note), "")
        clauses.append(prose(first) or "every claim of this case holds")
    sentence = "; ".join(clauses)
    return sentence + ("" if sentence.endswith(".") else ".")


# ---------------------------------------------------------------- code

def _code_blocks(r: CaseResult) -> list[str]:
    """Each group of runs found equal across frameworks, as the code of each setup
    (writers/setup_code.py writes the Linear's)."""
    if r.case.layer.kind != "linear":
        return []
    good = {x.name for x in r.runs if x.error is None}
    classes: list[set[str]] = []
    for c in r.comparisons:
        if c.expected == "equal" and c.ok and c.param == "all" and c.a in good and c.b in good:
            joined = [k for k in classes if c.a in k or c.b in k]
            merged = set().union({c.a, c.b}, *joined)
            classes = [k for k in classes if k not in joined] + [merged]
    order = [x.name for x in r.runs]
    out: list[str] = []
    for k in sorted(classes, key=lambda k: min(order.index(n) for n in k)):
        runs = sorted(k, key=order.index)
        if len({n.partition(":")[0] for n in runs}) < 2 or all(n.endswith(":none") for n in runs):
            continue
        out += [f"Equal within tolerance: {', '.join(f'`{n}`' for n in runs)}.", ""]
        for name in runs:
            fw, _, way = name.partition(":")
            out += ["```python", f"# {name}", setup_code(r.case, fw, way).text(), "```", ""]
    return out


# ---------------------------------------------------------------- deltas in ULP

def reference_run(runs: list[RunRecord]) -> RunRecord:
    """The run the others are measured from: the first without decay, else the first."""
    return next((x for x in runs if x.way == "none"), runs[0])


def _corner(a: np.ndarray, n: int) -> np.ndarray:
    return a[(slice(n),) * a.ndim]


def ulp_from(ref: RunRecord, run: RunRecord, param: str, k: int, n: int) -> np.ndarray:
    """Step k's delta of `run` minus the reference's, in float32 ULPs of the reference's
    weight (the larger of before and after: the unit the comparisons' max_ulp uses)."""
    before, after = (_corner(ref.params[param][i], n) for i in (k, k + 1))
    unit = ulp32(np.maximum(np.abs(before), np.abs(after)))
    return (run.step_delta(param, k, n) - ref.step_delta(param, k, n)) / unit


def _ulp_text(x: float) -> str:
    text = f"{x:+.1f}"
    return "+0.0" if text == "-0.0" else text


def _ulp_table(runs: list[RunRecord], k: int) -> str:
    ref = reference_run(runs)
    others = [x for x in runs if x is not ref]
    rows = []
    for param in ref.params:
        base = ref.step_delta(param, k, MAX_SHOWN)
        diffs = [ulp_from(ref, x, param, k, MAX_SHOWN) for x in others]
        for index in np.ndindex(base.shape):
            rows.append([f"{param}[{','.join(map(str, index))}]", _num(base[index]),
                         *(_ulp_text(d[index]) for d in diffs)])
    return tabulate(rows, ["element", f"{ref.name} (delta)", *(f"{x.name} (ULP)" for x in others)],
                    tablefmt="github", disable_numparse=True)


# ---------------------------------------------------------------- picture

def final_ulps(ref: RunRecord, run: RunRecord, param: str) -> np.ndarray:
    """|final weight of run - final weight of the reference| in float32 ULPs of the
    reference's final weight: how far the run ends from it, element by element."""
    a, b = (np.asarray(x.params[param][-1], np.float64) for x in (run, ref))
    return np.abs(a - b) / ulp32(b)


def write_case_plot(r: CaseResult, path: Path) -> str | None:
    """A heatmap: one row per run, one column per element (the leading PLOT_COLUMNS of
    each parameter), colour = log10(1 + ULP distance of its final value from the
    reference run's). Equal runs are pale, decayed ones dark. The reason if skipped."""
    good = [x for x in r.runs if x.error is None]
    if len(good) < 2:
        return "plot skipped: fewer than two runs ran"
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install 'xdecay[plot]')"
    ref = reference_run(good)
    others = [x for x in good if x is not ref]
    blocks, ticks = [], []
    for param in ref.params:
        width = min(PLOT_COLUMNS, ref.params[param][-1].size)
        ticks.append((sum(b.shape[1] for b in blocks), param))
        blocks.append(np.array([final_ulps(ref, x, param).reshape(-1)[:width] for x in others]))
    grid = np.log10(1 + np.concatenate(blocks, axis=1))
    fig, ax = plt.subplots(figsize=(min(11.0, max(7.5, 4 + 0.12 * grid.shape[1])), 1.3 + 0.3 * len(others)))
    image = ax.imshow(grid, aspect="auto", cmap="viridis_r", vmin=0, vmax=max(1.0, float(grid.max())),
                      interpolation="nearest")
    ax.set_yticks(range(len(others)), [f"{x.name}  (max {np.max(10 ** grid[i] - 1):.3g} ULP)"
                                        for i, x in enumerate(others)], fontsize=8)
    # Each parameter named at its block's middle, slanted: a LayerNorm's blocks are narrow.
    ends = [t for t, _ in ticks[1:]] + [grid.shape[1]]
    ax.set_xticks([(t + end - 1) / 2 for (t, _), end in zip(ticks, ends)], [name for _, name in ticks],
                  fontsize=8, rotation=30, ha="right")
    for t, _ in ticks[1:]:
        ax.axvline(t - 0.5, color="white", linewidth=2)
    ax.set_xlabel("elements of each parameter (weight row-major in [out, in])", fontsize=8)
    ax.set_title(f"{r.case.name}: distance of each run's final value from {ref.name}", fontsize=9)
    bar = fig.colorbar(image, ax=ax, pad=0.01)
    bar.set_label("log10(1 + float32 ULPs)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None})    # no version stamp: reproducible bytes
    plt.close(fig)
    return None


# ---------------------------------------------------------------- the page

def case_markdown(r: CaseResult, versions: dict[str, str], plot: str | None = None) -> str:
    """`plot`: the picture's file name beside the page, or why it was skipped."""
    c = r.case
    o = c.optimizer
    hyper = ", ".join(f"{k}={v}" for k, v in o.hyper.items())
    frameworks = ", ".join(f"{fw} {v}" for fw, v in versions.items())
    out = [f"# {c.name}", "", prose(c.description), "",
           f"**Verdict:** {_verdict(r)} ({frameworks})", "",
           f"**What it means for a port:** {takeaway(r)}", ""]
    out += [f"- **{fw}**: error: {msg}" for fw, msg in r.framework_errors.items()]
    out += [f"- **{x.name}**: error: {x.error}" for x in r.failed_runs]
    out += [f"- **{x.run}**: {'rejected, as expected' if x.ok else 'FAIL: expected a rejection'}: "
            f"{x.error or 'no error'}" for x in r.reject_checks]
    if r.framework_errors or r.failed_runs or r.reject_checks:
        out.append("")
    if r.rules:
        out += ["## What each parameter got", "",
                "Each run's setup, the rule each parameter followed (inferred by replaying the run's steps "
                "with the float64 reference), and the runs it equals within tolerance.", "",
                tabulate([[cell(x) for x in row] for row in _setup_rows(r)],
                         ["run", "setup", *_params(r), "equals"], tablefmt="github", disable_numparse=True), ""]
    if r.rule_checks:
        out += [rule_check_table(r), ""]
    if plot and not plot.startswith("plot skipped"):
        out += [f"![{c.name}: how far each run ends from the reference run, in float32 ULPs]({plot})", "",
                "Each row a run, each column an element; the colour is how far the run's final value is "
                "from the reference run's (log10 of 1 + float32 ULPs): runs that agree are pale, runs "
                "whose decay differs are dark.", ""]
    elif plot:
        out += [prose(plot), ""]
    code = _code_blocks(r)
    if code:
        out += ["## The same setup in each framework", "",
                "Each group of runs below gave the same updates within tolerance; the code is what each "
                "run built (the training loop goes around it).", ""] + code
    logs = [(x.name, line) for x in r.runs if x.error is None for line in x.logs]
    out += ["## Comparisons", "", f"Case `{shown(c.path)}`: {c.layer.describe()}, "
            f"batch {c.batch}, loss {c.loss}, {o.name}(lr={o.lr}{', ' + hyper if hyper else ''}), coeff "
            f"{c.decay.coeff}, {r.steps} steps"
            + (f", precision {precision_text(c.precision)}" if c.precision else "")
            + f". Tolerance: `{r.tolerance.describe()}`.", "", POWER_NOTE + ".", ""]
    good = [x for x in r.runs if x.error is None]
    if c.precision is not None and good:
        # What each run really stored and computed in (a framework's AMP may have made no effect).
        out += [prose(precision_report(c.precision, good)), ""]
    if r.comparisons:
        out += [tabulate([[cell(x) for x in row] for row in _comparison_rows(r.comparisons)],
                         COMPARISON_HEADERS, tablefmt="github", disable_numparse=True), ""]
    out += [f"- skipped {a} vs {b}: {why}" for a, b, why in r.skipped]
    out += [f"- **warning**: {w}" for w in r.warnings]
    if r.skipped or r.warnings:
        out.append("")
    if logs:
        out += ["What the framework logged meanwhile:", ""]
        out += [f"- `{name}`: {line}" for name, line in logs] + [""]
    if good:
        ref = reference_run(good)
        large = c.layer.largest_side() > MAX_SHOWN
        out += ["## Deltas", "", f"after − before per element and step. `{ref.name}` is the reference: its "
                "own delta is shown; every other run as its difference from it, in float32 ULPs of the "
                "weight (0: the same float32 result). " +
                ("Weights in the canonical layout [out, in] (paddle's [in, out] weight is transposed)."
                 if c.layer.kind == "linear" else f"The {layout_note(c.layer)}.") +
                (f" The leading {MAX_SHOWN}x{MAX_SHOWN} block; --format json has {json_elements(c, good)}."
                 if large else ""),
                ""]
        for k in _shown_steps(r.steps):
            out += ["<details>", f"<summary>Step {k + 1} of {r.steps}</summary>", "", _ulp_table(good, k), "",
                    "</details>", ""]
    return "\n".join(out).rstrip() + "\n"
