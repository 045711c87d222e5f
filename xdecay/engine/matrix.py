"""`xdecay matrix`: the same checks under several releases of a framework, one table.

A release's results are its *cells*: row -> text, where a row is a case's verdict, the
rule one run of a case applied to one parameter, or one `explain` row (optimizer, way,
parameter). Cells are what a release is compared on: a change of verdict, rule, error
message or accepted argument between two consecutive releases is a changed cell. They
are saved per release as small JSON files (`--out DIR` writes DIR/releases/*.json) so
that releases run on different machines, one CI job each, are merged into one table
(`--merge DIR...`), and so that `xdecay report` renders the history page from committed
results instead of rebuilding every release.

The other framework is held fixed (the interpreter running xdecay) and run once, not
once per release: a case's verdict compares it with the release under test.
"""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..case import FRAMEWORKS, Case
from ..errors import UsageError
from ..files import atomic
from ..frameworks.records import Job
from ..frameworks.runner import DEFAULT_TIMEOUT, FrameworkResult, run_batch
from .explain import EXPLAIN_STEPS, Explanation, explain_jobs, explanation_from, label
from .pipeline import EXIT_FRAMEWORK, EXIT_MISMATCH, EXIT_OK, CaseResult, Outcome, compare_jobs, outcome_from

KIND = "xdecay-matrix-release"
# An optimizer class the release does not have: the adapters' own message (explain) or
# Python's (a case's run), e.g. "paddle 2.6.2 has no paddle.optimizer.NAdam".
_ABSENT = re.compile(r"has no (?:attribute '\w+'|(?:paddle\.optimizer|torch\.optim)\.\w+)")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")    # object addresses differ on every run
# paddle's C++ errors end with the source line that raised them, which moves from release to
# release without the message changing: "(at /paddle/paddle/fluid/pybind/op_function_common.cc:236)".
_SOURCE_LINE = re.compile(r"\s*\(at [^()]*:\d+\)")
MAX_MESSAGE = 160


@dataclass(frozen=True)
class Release:
    """One release's results: its cells, or the error that kept its worker from running."""
    framework: str
    version: str
    python: str                                     # X.Y of the interpreter it ran under
    others: dict[str, str]                          # the fixed frameworks' versions
    cells: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.framework} {self.version}"

    @property
    def file_name(self) -> str:
        return f"{self.framework}-{self.version}.json"


def refusal(error: str) -> str:
    """A failed run's cell: `absent` for a missing optimizer class, else the message's
    first line, without what changes when nothing else does (addresses, C++ source lines)."""
    if _ABSENT.search(error):
        return "absent"
    line = next((l.strip() for l in error.splitlines() if l.strip()), "no message")
    line = _SOURCE_LINE.sub("", _ADDRESS.sub("0x…", line))
    return "refused: " + (line if len(line) <= MAX_MESSAGE else line[:MAX_MESSAGE - 1] + "…")


def _verdict(r: CaseResult, framework: str) -> str:
    mine = [x for x in r.failed_runs if x.framework == framework]
    if mine and all(refusal(x.error) == "absent" for x in mine):
        return "absent"
    if r.ok:
        return "ok"
    if r.exit_code == EXIT_FRAMEWORK:
        return "error"
    return f"MISMATCH ({sum(c.ok for c in r.checks)}/{len(r.checks)} held)"


def release_cells(framework: str, outcome: Outcome, explanation: Explanation | None) -> dict[str, str]:
    """Row -> cell for one release of `framework`: its cases and its explain rows."""
    cells: dict[str, str] = {}
    for r in outcome.results:
        if not r.case.runs.get(framework):
            continue
        name = r.case.name
        cells[f"case {name}"] = _verdict(r, framework)
        rules = {(run, param): rule for run, param, rule in r.rules}
        params = list(r.case.spec().params)
        for x in r.runs:
            if x.framework != framework:
                continue
            for p in params:
                cells[f"case {name} · {x.name} · {p}"] = (
                    refusal(x.error) if x.error is not None else rules.get((x.name, p), "not inferred"))
    for row in explanation.rows if explanation is not None else ():
        if row.framework == framework:
            cells[f"explain {label(row.optimizer, row.variant)} · {row.way} · {row.param}"] = (
                refusal(row.error or "") if row.rule == "rejected" else row.rule)
    return cells


def _python_version(python: str) -> str:
    done = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True)
    return done.stdout.strip() or "?"


def run_releases(cases: list[Case], optimizers: set[str] | None, columns: list[tuple[str, str]],
                 jobs: int, timeout: float = DEFAULT_TIMEOUT,
                 say: Callable[[str], None] = lambda line: None) -> list[Release]:
    """One worker per (framework, interpreter) column, `jobs` at a time, and one per fixed
    framework under this interpreter; each column's cases and explain rows as a Release."""
    varied = {fw for fw, _ in columns}
    used = compare_jobs(cases)             # only the frameworks the cases have runs for
    fixed = [fw for fw in used if varied - {fw}]
    # A release runs every case (a job without ways where a case has no runs for it), so that
    # its results line up with the cases; and its explain rows even when no case uses it.
    compare = {fw: [Job.from_case(c, fw) for c in cases] for fw in FRAMEWORKS}
    explain = explain_jobs(FRAMEWORKS, optimizers)
    workers: list[tuple[str, list, str]] = [(fw, [compare[fw]], sys.executable) for fw in fixed]
    workers += [(f"{fw}@{i}", [compare[fw], *([explain[fw]] if fw in explain else [])], python)
                for i, (fw, python) in enumerate(columns)]
    done: dict[str, list[FrameworkResult]] = {}
    for start in range(0, len(workers), jobs):
        wave = workers[start:start + jobs]
        say(f"running {', '.join(_shown(key, python) for key, _, python in wave)}")
        done.update(run_batch({key: requests for key, requests, _ in wave},
                              {key: python for key, _, python in wave}, timeout))
    releases = []
    for i, (fw, python) in enumerate(columns):
        results = done[f"{fw}@{i}"]
        base = {o: done[o][0] for o in fixed if o != fw}
        others = {o: r.version or "?" for o, r in sorted(base.items())}
        if results[0].error is not None:
            releases.append(Release(fw, results[0].version or "?", _python_version(python), others,
                                    error=results[0].error))
            continue
        outcome = outcome_from(cases, {fw: results[0], **base})
        explanation = explanation_from({fw: results[1]}, EXPLAIN_STEPS) if len(results) > 1 else None
        releases.append(Release(fw, results[0].version, _python_version(python), others,
                                release_cells(fw, outcome, explanation)))
    return releases


def _shown(key: str, python: str) -> str:
    return key.partition("@")[0] + (f" under {python}" if python != sys.executable else " (this interpreter)")


# ---- saved results: one JSON file per release --------------------------------------------

def release_json(release: Release) -> str:
    doc = {"kind": KIND, "xdecay": __version__, "framework": release.framework,
           "version": release.version, "python": release.python, "others": release.others,
           "error": release.error, "cells": release.cells}
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def save_releases(directory: Path, releases: list[Release]) -> list[Path]:
    folder = directory / "releases"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for release in releases:
        path = folder / release.file_name
        with atomic(path) as f:
            f.write(release_json(release))
        paths.append(path)
    return paths


def load_releases(directory: Path, option: str = "--merge") -> list[Release]:
    """The releases saved under DIRECTORY/releases (as `matrix --out DIRECTORY` writes them)."""
    folder = directory / "releases"
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise UsageError(f"{option} {directory}: no saved releases ({folder}/*.json); "
                         "`xdecay matrix ... --out DIR` writes them")
    return [_load(path, option) for path in files]


def _load(path: Path, option: str) -> Release:
    def bad(problem: str) -> UsageError:
        return UsageError(f"{option}: {path}: {problem}")

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise bad(f"not a readable JSON file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise bad(f'not a saved release (no "kind": "{KIND}")')
    strings = {k: doc.get(k) for k in ("framework", "version", "python")}
    if not all(isinstance(v, str) and v for v in strings.values()):
        raise bad("framework, version and python must be non-empty strings")
    if doc["framework"] not in FRAMEWORKS:
        raise bad(f"unknown framework {doc['framework']!r}")
    cells, others, error = doc.get("cells"), doc.get("others"), doc.get("error")
    if not _str_dict(cells) or not _str_dict(others) or not (error is None or isinstance(error, str)):
        raise bad("cells and others must map strings to strings, error be a string or null")
    return Release(doc["framework"], doc["version"], doc["python"], others, cells, error)


def _str_dict(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


# ---- the table ---------------------------------------------------------------------------

def version_key(version: str) -> tuple:
    """Release order: 2.6.2 < 3.0.0rc1 < 3.0.0 < 3.0.0.post1 < 3.1.0 (a pre-release before
    its release). Versions that are not numbers sort last, by text."""
    m = re.match(r"^(\d+(?:\.\d+)*)(?:(a|b|rc)(\d+))?(.*)$", version)
    if m is None:
        return (1, (), 0, 0, version)
    numbers = tuple(int(x) for x in m.group(1).split("."))
    pre = {"a": 0, "b": 1, "rc": 2}.get(m.group(2) or "", 3)
    return (0, numbers, pre, int(m.group(3) or 0), m.group(4))


@dataclass(frozen=True)
class Change:
    framework: str
    before: str          # release labels
    after: str
    row: str
    old: str | None      # None: the row is not there
    new: str | None


@dataclass
class Matrix:
    releases: list[Release]          # by framework, oldest first

    @classmethod
    def of(cls, releases: list[Release]) -> Matrix:
        """Ordered releases; a release given twice keeps the last one given."""
        by_label = {r.label: r for r in releases}
        return cls(sorted(by_label.values(), key=lambda r: (FRAMEWORKS.index(r.framework),
                                                              version_key(r.version))))

    def frameworks(self) -> list[str]:
        return list(dict.fromkeys(r.framework for r in self.releases))

    def of_framework(self, framework: str) -> list[Release]:
        return [r for r in self.releases if r.framework == framework]

    @property
    def rows(self) -> list[str]:
        """Every row, in the order first seen (cases, then explain rows), oldest release first."""
        return list(dict.fromkeys(row for r in self.releases for row in r.cells))

    def changes(self) -> list[Change]:
        """Each cell that differs between two consecutive releases of one framework (a release
        whose worker failed is left out of the chain: it says nothing about semantics)."""
        out = []
        for fw in self.frameworks():
            chain = [r for r in self.of_framework(fw) if r.error is None]
            for a, b in zip(chain, chain[1:]):
                out += [Change(fw, a.label, b.label, row, a.cells.get(row), b.cells.get(row))
                        for row in self.rows if a.cells.get(row) != b.cells.get(row)]
        return out

    def changed_rows(self) -> list[str]:
        changed = {c.row for c in self.changes()}
        return [row for row in self.rows if row in changed]

    def newest_changes(self) -> list[Change]:
        """The changes from each framework's previous release to its newest."""
        newest = {fw: [r.label for r in self.of_framework(fw) if r.error is None][-2:]
                  for fw in self.frameworks()}
        return [c for c in self.changes() if [c.before, c.after] == newest[c.framework]]

    @property
    def exit_code(self) -> int:
        if any(r.error for r in self.releases):
            return EXIT_FRAMEWORK
        return EXIT_MISMATCH if self.newest_changes() else EXIT_OK


# ---- saved results against a fresh run ----------------------------------------------------

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
CELL_RTOL = 1e-6     # rule coefficients printed on another CPU may differ in their last digit


def same_cell(a: str | None, b: str | None) -> bool:
    """Two cells say the same: equal text around the numbers, numbers within CELL_RTOL
    (a rule's coefficient is a measurement; its printed digits are not the claim)."""
    if a is None or b is None:
        return a is b
    if _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return False
    return all(math.isclose(float(x), float(y), rel_tol=CELL_RTOL, abs_tol=1e-12)
               for x, y in zip(_NUMBER.findall(a), _NUMBER.findall(b)))


def stale_rows(saved: Release, fresh: dict[str, str]) -> list[str]:
    """The rows where saved results no longer say what a fresh run of the same release says."""
    return [row for row in dict.fromkeys([*saved.cells, *fresh])
            if not same_cell(saved.cells.get(row), fresh.get(row))]
