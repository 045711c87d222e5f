"""Regression checks against saved results (`compare --baseline FILE_OR_DIR`).

A baseline is what `compare --format json` wrote: one document per case (a
file, or a directory of them as `--out DIR` writes), or one `--case all`
document. Every difference a framework upgrade can make is a drift row with the
old and the new value: a framework version, a run that appeared or vanished or
started failing, a rule, a verdict, a delta that moved beyond the tolerance.

A parameter of more than SAMPLE_SIDE**2 elements (infer.SAMPLE_SIDE: the size from
which rule inference samples too) has its deltas recorded on a fixed sample of elements
(recorded_sample), so the document grows with the steps and runs, not with the layer:
every delta as a Python float in a list costs ~32 bytes of the writer's memory and
~22 of text, which a 4096x4096 layer's 10 steps of 6 runs turn into tens of GB.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from .infer import layer_sample, rule_holds, spaced_sample
from .pipeline import CaseResult, Outcome
from .rules import canonical_rule, parse_rule


@dataclass(frozen=True)
class Drift:
    case: str
    kind: str        # "version" | "case" | "run" | "rule" | "verdict" | "delta"
    what: str
    old: str | float  # a delta row's are the element's values, the others' words
    new: str | float
    ratio: float | None = None   # a delta row's |old - new| / tolerance (NaN: a value is NaN)


def recorded_sample(layer_kind: str, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """param -> the flat element indices its deltas are recorded at, for each parameter
    above SAMPLE_SIDE**2 elements (`params` as a run holds them: [steps + 1, ...]). A
    linear layer's weight is sampled where inference samples it (infer.layer_sample), so
    a baseline check asks the run's sensitivity only at elements inference replayed;
    any other parameter at evenly spaced flat indices."""
    sizes = {p: int(np.prod(v.shape[1:], dtype=np.int64)) for p, v in params.items()}
    big = {p for p, n in sizes.items() if spaced_sample(n) is not None}
    if not big:
        return {}
    grid = layer_sample({p: v[0] for p, v in params.items()}) if layer_kind == "linear" else None
    return {p: grid[p] if grid is not None else spaced_sample(sizes[p]) for p in sorted(big)}


def baseline_files(path: Path) -> list[Path]:
    """The files a baseline FILE_OR_DIR stands for."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise UsageError(f"--baseline {path}: no .json files in the directory")
    return files


def load_baseline(path: Path) -> dict[str, tuple[dict[str, str], dict[str, Any]]]:
    """case name -> (the framework versions it was saved with, its document), from a file
    or a directory of them."""
    files = baseline_files(path)
    cases: dict[str, tuple[dict[str, str], dict[str, Any]]] = {}
    for f in files:
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
            if "kind" in doc:
                raise ValueError(f"a `xdecay train` report (kind {doc['kind']!r})")
            versions = {str(fw): _text(v) for fw, v in doc["frameworks"].items()}
            for case in doc["cases"] if "cases" in doc else [doc]:
                _check_case(case)
                cases[case["case"]] = (versions, case)
        except OSError as exc:
            raise UsageError(f"--baseline {f}: cannot read ({exc.strerror or exc})") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"--baseline {f}: not an xdecay compare JSON document ({exc})") from None
    return cases


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _check_case(case: dict[str, Any]) -> None:
    """Everything find_drift reads, checked up front: a bad file is bad input (exit 2)."""
    _text(case["case"])
    for run in case["runs"]:
        name = _text(run["run"])
        if run.get("error") is not None:
            _text(run["error"])
        sampled = run.get("sampled", {})
        for param, sample in sampled.items():
            _check_sample(f"{name} sampled.{param}", sample)
        shapes: dict[str, tuple[int, tuple[int, ...]]] = {}
        for k, step in enumerate(run["steps"]):
            for key, value in step.items():
                if key.startswith("delta_") and value is not None:
                    where = f"{name} steps[{k}].{key}"
                    try:
                        shape = np.asarray(value, dtype=np.float64).shape
                    except ValueError:       # a ragged list, or a word
                        raise ValueError(f"{where}: not a numeric array") from None
                    # _delta_drift stacks the steps: each must have the first one's shape.
                    first = shapes.setdefault(key, (k, shape))
                    sample = sampled.get(key[len("delta_"):])
                    if sample is not None and shape != (len(sample["indices"]),):
                        raise ValueError(f"{where}: shape {shape}, not one value per sampled index")
                    if shape != first[1]:
                        raise ValueError(f"{where}: shape {shape}, step {first[0]} has {first[1]}")
    for rule in case.get("rules", []):
        _text(rule["run"]), _text(rule["param"])
        if parse_rule(_text(rule["rule"])) is None:
            raise ValueError(f"not a rule: {rule['rule']!r}")
    for c in case.get("comparisons", []):
        _text(c["a"]), _text(c["b"]), bool(c["ok"])


def _check_sample(where: str, sample: dict[str, Any]) -> None:
    of, shape, indices = sample["of"], sample["shape"], sample["indices"]
    if not (isinstance(of, int) and isinstance(shape, list) and all(isinstance(n, int) for n in shape)
            and int(np.prod(shape, dtype=np.int64)) == of):
        raise ValueError(f"{where}: `of` must be the element count of `shape`")
    if not (isinstance(indices, list) and indices and all(isinstance(i, int) and 0 <= i < of for i in indices)):
        raise ValueError(f"{where}: `indices` must be element indices below {of}")


def baseline_versions(cases: dict[str, tuple[dict[str, str], dict[str, Any]]],
                      names: set[str]) -> dict[str, str]:
    """The versions the named cases were saved with ("a / b" if their files disagree)."""
    seen: dict[str, set[str]] = {}
    for versions, _ in (cases[n] for n in sorted(names & set(cases))):
        for fw, v in versions.items():
            seen.setdefault(fw, set()).add(v)
    return {fw: " / ".join(sorted(v)) for fw, v in sorted(seen.items())}


def find_drift(outcome: Outcome, cases: dict[str, tuple[dict[str, str], dict[str, Any]]],
               every_case: bool, frameworks: tuple[str, ...] | None = None) -> list[Drift]:
    """Every difference between a fresh outcome and a baseline; `every_case` when the
    fresh run covered all cases, so a baseline case it lacks has vanished. Only the
    `frameworks` run (default: all) are compared: the baseline's other runs, rules and
    versions are not drift (skipped_frameworks names them)."""
    def selected(run: str) -> bool:
        return frameworks is None or run.split(":", 1)[0] in frameworks

    fresh = {r.case.name for r in outcome.results}
    versions = set()
    for r in outcome.results:
        if r.case.name in cases:
            old, doc = cases[r.case.name]
            # Only the frameworks the case has runs for: a worker that had nothing to run
            # did not start and reports no version.
            used = {x["run"].split(":", 1)[0] for x in doc["runs"]} | {fw for fw, w in r.case.runs.items() if w}
            versions |= {(fw, old.get(fw, "absent"), outcome.versions.get(fw, "absent"))
                         for fw in used if selected(fw) and old.get(fw) != outcome.versions.get(fw)}
    drift = [Drift("*", "version", fw, was, now) for fw, was, now in sorted(versions)]
    if every_case:
        # A case the selection could not check was not run: it has not vanished.
        gone = set(cases) - fresh - {name for name, _ in outcome.unchecked}
        drift += [Drift(name, "case", name, "present", "absent") for name in sorted(gone)]
    for r in outcome.results:
        if r.case.name not in cases:
            drift.append(Drift(r.case.name, "case", r.case.name, "absent", "present"))
        else:
            saved_with = cases[r.case.name][0]
            drift += _case_drift(r, cases[r.case.name][1], selected,
                                 narrowed=not all(selected(fw) for fw in saved_with))
    return drift


def skipped_frameworks(cases: dict[str, tuple[dict[str, str], dict[str, Any]]], names: set[str],
                       frameworks: tuple[str, ...]) -> list[str]:
    """The frameworks the named baseline cases were saved with that this run did not select."""
    return sorted({fw for n in names & set(cases) for fw in cases[n][0]} - set(frameworks))


def _case_drift(r: CaseResult, old: dict[str, Any], selected: Callable[[str], bool],
                narrowed: bool) -> list[Drift]:
    name = r.case.name
    out: list[Drift] = []
    # A narrowed run checks fewer expectations than the saved one: its case verdict is not
    # comparable, each selected comparison's verdict (below) is.
    if not narrowed and old.get("ok") != r.ok:
        out.append(Drift(name, "verdict", "case", _ok(old.get("ok")), _ok(r.ok)))
    old_runs = {x["run"]: x for x in old["runs"] if selected(x["run"])}
    new_runs = {x.name: x for x in r.runs}
    for run in sorted(set(old_runs) | set(new_runs)):
        if run not in new_runs or run not in old_runs:
            out.append(Drift(name, "run", run, "present" if run in old_runs else "absent",
                             "present" if run in new_runs else "absent"))
            continue
        was, now = old_runs[run].get("error"), new_runs[run].error
        if was != now:
            out.append(Drift(name, "run", run, was or "ran", now or "ran"))
        elif now is None:
            out += _delta_drift(r, run, old_runs[run], new_runs[run])
    old_rules = {(x["run"], x["param"]): x["rule"] for x in old.get("rules", []) if selected(x["run"])}
    new_rules = {(run, param): rule for run, param, rule in r.rules}
    for key in sorted(set(old_rules) | set(new_rules)):
        if not _same_rule(r, key, old_rules.get(key), new_rules.get(key)):
            out.append(Drift(name, "rule", f"{key[0]} {key[1]}", old_rules.get(key, "absent"),
                             new_rules.get(key, "absent")))
    old_checks = {(c["a"], c["b"], c.get("param", "all")): c["ok"] for c in old.get("comparisons", [])}
    for c in r.comparisons:
        was = old_checks.get((c.a, c.b, c.param))
        if was is not None and was != c.ok:
            out.append(Drift(name, "verdict", f"{c.a} vs {c.b} ({c.expected}, {c.param})",
                             _ok(was), _ok(c.ok)))
    return out


def _same_rule(r: CaseResult, key: tuple[str, str], old: str | None, new: str | None) -> bool:
    """A saved rule is still the fresh one when it names the same families and its
    coefficients still fit the fresh run within the inference tolerance
    (infer.rule_holds): a coefficient's last digit that another CPU fits differently is
    no drift, 0.1 -> 0.1004 is."""
    if old is None or new is None:
        return old == new
    if canonical_rule(old) == new:
        return True
    analysis = r.sensitivity.get(key[0])
    return analysis is not None and key[1] in analysis.inferred and rule_holds(analysis, key[1], old)


def _delta_drift(r: CaseResult, run: str, old: dict[str, Any], new) -> list[Drift]:
    """Deltas that moved beyond the comparison tolerance, per parameter: on every
    element, or on the elements a sampled baseline recorded."""
    steps = old["steps"]
    if len(steps) != new.steps:
        return [Drift(r.case.name, "delta", run, f"{len(steps)} steps", f"{new.steps} steps")]
    out = []
    for param in new.params:
        key = f"delta_{param}"
        if any(key not in s or s[key] is None for s in steps):
            out.append(Drift(r.case.name, "delta", f"{run} {param}", "absent", "present"))
            continue
        was = np.array([s[key] for s in steps], dtype=np.float64)
        sample = old.get("sampled", {}).get(param)
        shape = new.params[param].shape[1:]
        old_shape = was.shape[1:] if sample is None else tuple(sample["shape"])
        if old_shape != shape:
            out.append(Drift(r.case.name, "delta", f"{run} {param}", f"shape {(len(steps),) + old_shape}",
                             f"shape {(new.steps,) + shape}"))
            continue
        if sample is None:
            idx = np.arange(int(np.prod(shape, dtype=np.int64)))
            snaps = new.params[param].astype(np.float64)
        else:
            # Only the recorded elements of the fresh run: the same indices, never the whole layer.
            idx = np.asarray(sample["indices"], dtype=np.int64)
            snaps = new.params[param].reshape(new.steps + 1, -1)[:, idx].astype(np.float64)
        now = np.diff(snaps, axis=0)
        was = was.reshape(now.shape)
        before = snaps[:-1]
        w = np.maximum(np.abs(before), np.abs(before + now))
        # As in a comparison: the run's sensitivity to gradient rounding, for both runs.
        found = r.sensitivity.get(run)
        sensitivity = 0.0 if found is None else 2 * found.at(param, idx).reshape(now.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            diff = np.abs(was - now)
            # At the precision the run used (a [precision] run may have stayed float32).
            allowed = r.tolerance.for_runs(new, new).allowed(w, was, now)
            ratio = np.where(diff == 0, 0.0, diff / (allowed + sensitivity))
        worst = float(np.max(ratio)) if ratio.size else 0.0
        if not worst <= 1.0:      # NaN counts as drift
            flat = ratio.reshape(len(ratio), -1)
            k, j = np.unravel_index(int(np.nanargmax(np.where(np.isnan(flat), np.inf, flat))), flat.shape)
            at = [int(k)] + [int(i) for i in np.unravel_index(int(idx[j]), shape)]
            out.append(Drift(r.case.name, "delta", f"{run} {param}{at}", float(was.reshape(flat.shape)[k, j]),
                             float(now.reshape(flat.shape)[k, j]), worst))
    return out


def _ok(value: Any) -> str:
    return {True: "ok", False: "not ok"}.get(value, "absent")
