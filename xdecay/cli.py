"""Command line: `xdecay list | compare | explain | report | train | matrix | port | audit` (README, "Use")."""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .case import FRAMEWORKS, MAX_STEPS, Case, load_case
from .case_files import ENV, find_cases, shipped_cases
from .engine import catalogue
from .engine.baseline import baseline_files, baseline_versions, find_drift, load_baseline, skipped_frameworks
from .engine.explain import EXPLAIN_STEPS, explain, explain_jobs, explanation_from
from .engine.pipeline import EXIT_FRAMEWORK, EXIT_USAGE, compare_jobs, outcome_from, run_cases, unchecked
from .engine.rules import DECIMAL
from .errors import UsageError
from .files import atomic
from .frameworks import interpreter
from .frameworks.records import AUDIT_STEPS
from .frameworks.runner import run_batch
from .training import build_job, find_train_case, find_train_cases, load_train_case
from .writers import EXTENSIONS, FORMATS
from .writers.compare_report import WRITERS, case_outcome, json_chunks, summary
from .writers.explain_report import WRITERS as EXPLAIN_WRITERS

if TYPE_CHECKING:
    from .engine.matrix import Matrix

# The modules of train, report, matrix, port and audit are imported by those commands:
# `compare` and `explain` start ~0.05 CPU s sooner without them (audit, port, matrix and
# their writers), and the workers start after the imports.

class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit 2."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}")


def number(text: str) -> float:
    """A signed plain decimal or scientific number, or inf/nan (refused later with the
    option's own range message): float() alone would read '1_0' as 10."""
    unsigned = text.strip().lstrip("+-")
    if not (DECIMAL.fullmatch(unsigned) or unsigned.lower() in ("inf", "infinity", "nan")):
        raise ValueError(text)
    return float(text)


class _Once(argparse.Action):
    """A single-value option: given twice is a mistake, not "the last one wins"."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = f"_given_{self.dest}"
        if getattr(namespace, seen, False):
            parser.error(f"{option_string}: given twice ({getattr(namespace, self.dest)}, {values})")
        setattr(namespace, seen, True)
        setattr(namespace, self.dest, values)


def _worker_options(parser: argparse.ArgumentParser, python_help: str) -> None:
    """--python and --timeout: every command that starts framework workers takes both."""
    parser.add_argument("--python", action="append", default=[], metavar="FRAMEWORK=PATH", help=python_help)
    parser.add_argument("--timeout", action=_Once, type=number, default=600.0, help="seconds per worker (default 600)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="xdecay", description=__doc__)
    p.add_argument("--version", action="version", version=f"xdecay {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    cases_help = (f"a folder of your own cases, looked up besides the shipped ones (default: the "
                  f"folders in ${ENV}, separated by '{os.pathsep}'); training cases in its train/")
    ls = sub.add_parser("list", help="every case, yours (--cases) and the shipped ones, one line each")
    ls.add_argument("--cases", action=_Once, metavar="DIR", help=cases_help)
    c = sub.add_parser("compare", help="run a case in every framework, compare, flag mismatches")
    c.add_argument("--case", action=_Once, required=True,
                   help="a case NAME, a PATH to a .toml, or 'all' (every case `list` shows)")
    c.add_argument("--cases", action=_Once, metavar="DIR", help=cases_help)
    c.add_argument("--steps", action=_Once, type=int, help="optimizer steps (default: the case's)")
    c.add_argument("--framework", action=_Once, default=",".join(FRAMEWORKS),
                   help="comma-separated frameworks to run (default: torch,paddle)")
    c.add_argument("--format", action=_Once, choices=FORMATS, default="table")
    c.add_argument("--out", action=_Once,
                   help="write the report into this directory (created if need be), one file per case")
    c.add_argument("--baseline", action=_Once, metavar="FILE_OR_DIR",
                   help="saved --format json results: report every drift from them (exit 1)")
    c.add_argument("--atol", action=_Once, type=number, help="fixed absolute tolerance (replaces the derived one)")
    c.add_argument("--rtol", action=_Once, type=number, help="fixed relative tolerance (replaces the derived one)")
    c.add_argument("--min-power", action=_Once, type=number, metavar="X",
                   help="every check must catch a relative error X of the decay coefficient "
                        "(e.g. 0.01), else it is inconclusive (default: the case's min_power)")
    t = sub.add_parser("train", help="training over many steps: seed 002's overfitting run, "
                       "seed 000's cosine schedule (cases in cases/train/)")
    t.add_argument("--case", action=_Once, required=True,
                   help="a training case NAME (shipped: overfit, schedule), or a PATH")
    t.add_argument("--cases", action=_Once, metavar="DIR", help=cases_help)
    t.add_argument("--format", action=_Once, choices=FORMATS, default="table")
    t.add_argument("--out", action=_Once,
                   help="write NAME.txt|md|json (and NAME.png) into this directory (created if need be)")
    t.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    r = sub.add_parser("report", help="regenerate the markdown pages under reports/ from real runs of "
                       "the shipped cases")
    r.add_argument("--out", action=_Once, default="reports",
                   help="directory for the pages, created if need be (default: reports)")
    e = sub.add_parser("explain", help="the decay rule each optimizer really applies, per way and parameter")
    e.add_argument("--framework", action=_Once, default=",".join(FRAMEWORKS),
                   help="comma-separated frameworks (default: torch,paddle)")
    e.add_argument("--optimizer", action="append", default=[], metavar="NAME",
                   help="only this optimizer class (case-insensitive; repeatable)")
    e.add_argument("--steps", action=_Once, type=int, default=EXPLAIN_STEPS,
                   help="steps per run (default 3: a first "
                   "Adam step is close to lr*sign(g) and cannot separate rules)")
    e.add_argument("--format", action=_Once, choices=FORMATS, default="table")
    m = sub.add_parser("matrix", help="the same checks across framework releases; one table of what changed")
    m.add_argument("--paddle", action=_Once, metavar="V1,V2,...",
                   help="paddle releases: one venv each from the package registry, cached "
                        "(XDECAY_CACHE, default ~/.cache/xdecay)")
    m.add_argument("--merge", action="extend", nargs="+", default=[], metavar="DIR",
                   help="saved results of `matrix --out DIR` (e.g. one per CI job), merged into the table")
    m.add_argument("--case", action=_Once, default="all", help="a case NAME, a PATH, or 'all' (default)")
    m.add_argument("--cases", action=_Once, metavar="DIR", help=cases_help)
    m.add_argument("--optimizer", action="append", default=[], metavar="NAME",
                   help="explain rows of this optimizer class only (repeatable; default every class)")
    m.add_argument("--all", action="store_true", help="every row, not only the rows that change")
    m.add_argument("--format", action=_Once, choices=FORMATS, default="table")
    m.add_argument("--out", action=_Once, help="write matrix.txt|md|json and the saved results (releases/*.json) "
                   "into this directory (created if missing)")
    m.add_argument("--jobs", action=_Once, type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1,
                   help="releases run at once (default: the cores)")
    o = sub.add_parser("port", help="an optimizer call translated into the other framework, verified by "
                       "running both (exit 0 only when verified equal)")
    src = o.add_mutually_exclusive_group(required=True)
    src.add_argument("--torch", action=_Once, metavar="CALL",
                     help='a torch.optim call, read as literals: "AdamW(params, lr=1e-3, weight_decay=0.05)"')
    src.add_argument("--paddle", action=_Once, metavar="CALL",
                     help='a paddle.optimizer call, read as literals: "Momentum(learning_rate=0.1, momentum=0.9)"')
    src.add_argument("--torch-file", action=_Once, metavar="FILE:FUNC",
                     help="import FILE (your code: only with this option) and port the torch optimizer FUNC() returns")
    o.add_argument("--no-decay", action=_Once, default="", metavar="PATTERN",
                   help="a regular expression on parameter names: these are not decayed (\"bias|norm\")")
    o.add_argument("--lr-scale", action="append", default=[], metavar="PATTERN=FACTOR",
                   help="parameters whose names match train at FACTOR * lr (a parameter group; repeatable, "
                        "the first match wins): \"norm=0.1\"")
    o.add_argument("--clip", action=_Once, metavar="CALL",
                   help='the gradient clip of the same framework, ported too: "clip_grad_norm_(max_norm=1.0)" '
                        'or "ClipGradByGlobalNorm(clip_norm=1.0)"')
    o.add_argument("--schedule", action=_Once, metavar="CALL",
                   help='the lr scheduler of the same framework, ported too: "CosineAnnealingLR(T_max=20)" '
                        'or "CosineAnnealingDecay(learning_rate=0.1, T_max=20)"')
    o.add_argument("--format", action=_Once, choices=FORMATS, default="table")
    o.add_argument("--out", action=_Once, help="write port.txt|md|json into this directory (created if need be)")
    a = sub.add_parser("audit", help="the decay each parameter of your own model really gets from your optimizer")
    a.add_argument("--torch", action=_Once, metavar="MOD:FUNC",
                   help="MODULE:FUNCTION (found from the current folder) or FILE.py:FUNCTION returning "
                        "(model, optimizer, inputs); run in the torch worker")
    a.add_argument("--paddle", action=_Once, metavar="MOD:FUNC", help="the same for paddle")
    a.add_argument("--name-map", action=_Once, metavar="FILE",
                   help="a .toml or .json table: torch parameter name = paddle name(s), for pairs not "
                        "inferred from names and shapes")
    a.add_argument("--no-decay", action="append", default=[], metavar="PATTERN",
                   help="a regular expression on parameter names: a matching parameter that is decayed is flagged")
    a.add_argument("--decay", action="append", default=[], metavar="PATTERN",
                   help="a regular expression on parameter names: a matching parameter not decayed is flagged")
    a.add_argument("--steps", action=_Once, type=int, default=AUDIT_STEPS,
                   help=f"optimizer steps (default {AUDIT_STEPS})")
    a.add_argument("--format", action=_Once, choices=FORMATS, default="table")
    a.add_argument("--out", action=_Once, help="write audit.txt|md|json into this directory (created if need be)")
    for parser in (c, t, r, e, o, a):
        _worker_options(parser, "run FRAMEWORK's worker under another interpreter")
    _worker_options(m, "a release's interpreter (repeatable, several per framework)")
    return p


def main(argv: list[str] | None = None) -> int:
    _on_signals()
    try:
        args = _parser().parse_args(argv)
        if args.command == "list":
            return _list(args)
        if args.command == "explain":
            return _explain(args)
        if args.command == "report":
            return _report(args)
        if args.command == "train":
            return _train(args)
        if args.command == "matrix":
            return _matrix(args)
        if args.command == "port":
            return _port(args)
        if args.command == "audit":
            return _audit(args)
        return _compare(args)
    except UsageError as exc:
        print(f"xdecay: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        try:
            print("xdecay: interrupted", file=sys.stderr)
        except OSError:          # the terminal that hung up is gone
            pass
        return 128 + getattr(exc, "signum", signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C, so workers and the temporary folder go."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _on_signals() -> None:
    for sig in STOP_SIGNALS:
        # `nohup xdecay ...` ignores hang-ups: keep it so.
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _interrupted)


def _interrupted(signum: int, frame) -> None:
    # The first signal unwinds; later ones (a closing terminal sends several) would cut
    # the clean-up short.
    for sig in (*STOP_SIGNALS, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


def _list(args: argparse.Namespace) -> int:
    cases = [load_case(path) for path in find_cases("all", args.cases)]
    width = max(len(c.name) for c in cases)
    for case in cases:
        # One line per case, always: a multi-line description is joined, an empty one said.
        print(f"{case.name:<{width}}  {' '.join(case.description.split()) or '(no description)'}")
    return 0


def _frameworks(value: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    for n in names:
        if n not in FRAMEWORKS:
            raise UsageError(f"--framework: unknown framework {n!r} (known: {', '.join(FRAMEWORKS)})")
    if not names:
        raise UsageError("--framework: names no framework")
    return names


def _pythons(values: list[str], frameworks: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        fw = v.partition("=")[0]
        if fw in out:
            raise UsageError(f"--python {v}: {fw} given twice")
        fw, found = _python(v)
        out[fw] = found
    return out


def _python(value: str) -> tuple[str, str]:
    """--python FRAMEWORK=PATH: the framework and the interpreter's path, checked up front.
    An interpreter that cannot host the worker (too old, no numpy) is a wrong option value,
    exit 2 before any run: running the other framework alone would answer a question the
    user did not ask. A missing framework there stays the worker's exit 3 (README, "Use": exit codes)."""
    fw, sep, path = value.partition("=")
    if not sep or fw not in FRAMEWORKS or not path:
        raise UsageError(f"--python {value}: expected FRAMEWORK=PATH with FRAMEWORK one of "
                         f"{', '.join(FRAMEWORKS)}")
    found = shutil.which(path)
    if found is None:
        raise UsageError(f"--python {value}: {path} is not an executable file")
    problem = interpreter.problem(found)
    if problem is not None:
        raise UsageError(f"--python {value}: {problem}")
    return fw, found


# The longest worker timeout: subprocess waits in poll(), whose timeout is milliseconds in a C int.
MAX_TIMEOUT = 1e6


def _timeout(value: float) -> None:
    if not 0 < value <= MAX_TIMEOUT:          # NaN fails too
        raise UsageError(f"--timeout: must be a number of seconds in (0, {MAX_TIMEOUT:g}], got {value}")


def _probe_dir(option: str, directory: Path) -> None:
    """Create and remove a file in `directory`: os.access cannot tell (root is allowed
    everything by permission bits, yet /sys, /proc or a read-only mount refuse files)."""
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".xdecay-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{option}: cannot create files in {directory} ({exc.strerror or exc})") from None


def _out_dir(value: str | None) -> Path | None:
    """--out: a directory, or one we can create (parents too). Checked before any run:
    the nearest existing folder must take files; make_out_dir creates the rest."""
    if value is None:
        return None
    if not value:
        raise UsageError("--out: empty path")
    path = Path(value)
    try:
        existing = next(p for p in (path, *path.parents) if p.exists())
        if not existing.is_dir():
            raise UsageError(f"--out {value}: {existing} is not a directory")
    except OSError as exc:                   # e.g. a name too long for the file system
        raise UsageError(f"--out {value}: {exc.strerror or exc}") from None
    _probe_dir(f"--out {value}", existing)
    return path


def _make_out_dir(value: str, out_dir: Path | None) -> None:
    """Create --out once every input is known good: a refused command makes nothing."""
    if out_dir is None:
        return
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {value}: cannot create it ({exc.strerror or exc})") from None


def _out_files(value: str, out_dir: Path | None, names: list[str]) -> None:
    """The files --out will write (paths relative to it) must not be directories, nor sit
    under a file: the write would fail after the run."""
    for name in names if out_dir is not None else ():
        path = out_dir / name
        for folder in reversed(path.relative_to(out_dir).parents[:-1]):
            if (out_dir / folder).exists() and not (out_dir / folder).is_dir():
                raise UsageError(f"--out {value}: {out_dir / folder} is a file, not a directory")
        if path.is_dir():
            raise UsageError(f"--out {value}: {path} is a directory, not a file")


def _not_a_baseline(value: str, out_dir: Path | None, names: list[str], baseline: list[Path]) -> None:
    """An output must not replace a baseline file (the next run would compare with itself).
    The rename replaces the directory entry out_dir/name; a baseline file is what its
    path finally points to."""
    saved = {f.resolve(): f for f in baseline}
    for name in names if out_dir is not None else ():
        hit = saved.get(out_dir.resolve() / name)
        if hit is not None:
            raise UsageError(f"--out {value}: writing {name} would overwrite the baseline {hit}")


def _steps(steps: int | None) -> None:
    if steps is not None and not 1 <= steps <= MAX_STEPS:
        raise UsageError(f"--steps: must be in [1, {MAX_STEPS}], got {steps}")


def _tolerance(name: str, value: float | None) -> None:
    if value is not None and not (value >= 0 and value != float("inf")):
        raise UsageError(f"--{name}: must be a finite number >= 0, got {value}")


def _unchecked_cases(cases: list[Case], frameworks: tuple[str, ...], option: str) -> list[tuple[str, str]]:
    """The cases nothing could be checked in with `frameworks` (name, why): not run, and
    listed as such. If that is every case, the command would check nothing: refused
    (exit 2) before any worker starts, rather than an "all 0 expectations hold"."""
    skipped = [(c.name, why) for c in cases if (why := unchecked(c, frameworks))]
    if len(skipped) < len(cases):
        return skipped
    if len(cases) > 1:
        raise UsageError(f"--case {option}: nothing to check in any of its {len(cases)} cases with "
                         f"{', '.join(frameworks)}")
    (case,) = cases
    if not case.expectations:
        raise UsageError(f"{case.path}: expect: nothing to check (no expectations)")
    raise UsageError(f"--framework {','.join(frameworks)}: nothing to check in case {case.name} "
                     f"({skipped[0][1]})")


def _compare(args: argparse.Namespace) -> int:
    _steps(args.steps)
    _tolerance("atol", args.atol)
    _tolerance("rtol", args.rtol)
    _timeout(args.timeout)
    if args.min_power is not None and not 0 < args.min_power <= 1:     # NaN fails too
        raise UsageError(f"--min-power: must be a relative coefficient error in (0, 1], got {args.min_power}")
    frameworks = _frameworks(args.framework)
    pythons = _pythons(args.python, frameworks)
    out_dir = _out_dir(args.out)
    cases = [load_case(p) for p in find_cases(args.case, args.cases)]
    for case in cases if args.steps else ():
        case.check_size(args.steps)
    skipped = _unchecked_cases(cases, frameworks, args.case)
    cases = [c for c in cases if c.name not in dict(skipped)]
    outputs = [f"{c.name}.{EXTENSIONS[args.format]}" for c in cases]
    _out_files(args.out, out_dir, outputs)
    baseline = None
    if args.baseline is not None:
        try:
            exists = Path(args.baseline).exists()
        except OSError as exc:
            raise UsageError(f"--baseline {args.baseline}: {exc.strerror or exc}") from None
        if not exists:
            raise UsageError(f"--baseline {args.baseline}: no such file or directory")
        _not_a_baseline(args.out, out_dir, outputs, baseline_files(Path(args.baseline)))
        baseline = load_baseline(Path(args.baseline))
    _make_out_dir(args.out, out_dir)

    outcome = run_cases(cases, steps=args.steps, frameworks=frameworks, pythons=pythons,
                        atol=args.atol, rtol=args.rtol, timeout=args.timeout, min_power=args.min_power)
    outcome.unchecked = skipped
    if baseline is not None:
        names = {c.name for c in cases}
        outcome.baseline_versions = {fw: v for fw, v in baseline_versions(baseline, names).items()
                                     if fw in frameworks}
        outcome.baseline_skipped = skipped_frameworks(baseline, names, frameworks)
        outcome.drift = find_drift(outcome, baseline, every_case=args.case == "all", frameworks=frameworks)
    # JSON in pieces: a long or large run's text is never held whole.
    writer = json_chunks if args.format == "json" else WRITERS[args.format]
    if out_dir is None:
        report = writer(outcome)
        # A text whole, or JSON's pieces: writelines over a text writes it a character at a time.
        sys.stdout.writelines([report] if isinstance(report, str) else report)
    else:
        for r in outcome.results:
            path = out_dir / f"{r.case.name}.{EXTENSIONS[args.format]}"
            _write_atomic(path, writer(case_outcome(outcome, r)), args.out)
            print(f"wrote {path}", file=sys.stderr)
        # The reports are in files: the verdict still belongs where the user looks.
        for line in summary(outcome):
            print(line, file=sys.stderr)
    return outcome.exit_code


def _explain(args: argparse.Namespace) -> int:
    _steps(args.steps)
    _timeout(args.timeout)
    frameworks = _frameworks(args.framework)
    wanted = _optimizers(args.optimizer, frameworks)
    result = explain(frameworks, wanted, args.steps, _pythons(args.python, frameworks), args.timeout)
    sys.stdout.write(EXPLAIN_WRITERS[args.format](result))
    return EXIT_FRAMEWORK if result.errors else 0


def _train(args: argparse.Namespace) -> int:
    from .writers.train_report import WRITERS as TRAIN_WRITERS
    from .writers.train_report import run_training, stderr_progress, write_plot
    _timeout(args.timeout)
    out_dir = _out_dir(args.out)
    case = load_train_case(find_train_case(args.case, args.cases))
    _out_files(args.out, out_dir, [f"{case.name}.{EXTENSIONS[args.format]}", f"{case.name}.png"])
    pythons = _pythons(args.python, FRAMEWORKS)
    _make_out_dir(args.out, out_dir)
    progress = stderr_progress(args.quiet)
    result = run_training(case, pythons, args.timeout, progress=progress)
    if out_dir is not None and case.kind == "overfit":
        png = out_dir / f"{case.name}.png"
        skipped = write_plot(result, png)
        result.plot = skipped or png.name
        progress(skipped or f"wrote {png}")
    elif case.kind == "overfit":
        result.plot = "plot skipped: no --out directory to write it into"
    text = TRAIN_WRITERS[args.format](result)
    if out_dir is None:
        sys.stdout.write(text)
    else:
        path = out_dir / f"{case.name}.{EXTENSIONS[args.format]}"
        _write_atomic(path, text, args.out)
        progress(f"wrote {path}")
    return result.exit_code


def _report(args: argparse.Namespace) -> int:
    from .engine.port import port_cases, port_result, report_translations
    from .writers.case_page import write_case_plot
    from .writers.pages import (
        HISTORY_DIR,
        HISTORY_PAGE,
        case_plot,
        link_other_pages,
        page_paths,
        pages,
        train_plot,
        write_pages,
    )
    from .writers.port_report import PORT_PAGE, port_page
    from .writers.questions import load_questions
    from .writers.train_report import training_from, write_plot
    out_dir = _out_dir(args.out)
    _timeout(args.timeout)
    pythons = _pythons(args.python, FRAMEWORKS)
    history = _saved_history(out_dir, args.out)
    cases = [load_case(p) for p in shipped_cases()]
    questions = load_questions()
    train_cases = [load_train_case(p) for p in find_train_cases()]
    # Every page and plot path, before the run: a clash found after it would waste the run.
    _out_files(args.out, out_dir, page_paths([c.name for c in cases],
                                             [(c.name, c.kind) for c in train_cases])
               + ([HISTORY_PAGE] if history is not None else []) + [PORT_PAGE])
    _make_out_dir(args.out, out_dir)
    train_jobs = [build_job(c) for c in train_cases]
    explain_requests = explain_jobs()
    translations = report_translations()
    with tempfile.TemporaryDirectory(prefix="xdecay-port-") as folder:
        per_translation = [port_cases(t, Path(folder), f"port_{k}") for k, t in enumerate(translations)]
    ported = [c for cs in per_translation for c in cs]
    port_requests = compare_jobs(ported)
    # Everything in one worker per framework: each framework is imported once.
    done = run_batch({fw: [compare, explain_requests[fw], port_requests.get(fw, []), *train_jobs]
                      for fw, compare in compare_jobs(cases).items()}, pythons, args.timeout)

    def part(i: int) -> dict:
        return {fw: results[i] for fw, results in done.items()}

    outcome = outcome_from(cases, part(0))
    explanation = explanation_from(part(1), EXPLAIN_STEPS)
    try:
        (out_dir / "train").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {args.out}: cannot create {out_dir / 'train'} "
                         f"({exc.strerror or exc})") from None
    trainings = []
    port_outcome = outcome_from(ported, part(2))
    port_results = iter(port_outcome.results)
    ports = [port_result(t, port_outcome.versions, [next(port_results) for _ in cs])
             for t, cs in zip(translations, per_translation)]
    for k, (case, job) in enumerate(zip(train_cases, train_jobs)):
        t = training_from(case, job, part(3 + k))
        if t.case.kind == "overfit":
            plot = out_dir / train_plot(t.case.name)
            t.plot = write_plot(t, plot) or plot.name
        trainings.append(t)
    try:
        (out_dir / "cases").mkdir(exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {args.out}: cannot create {out_dir / 'cases'} "
                         f"({exc.strerror or exc})") from None
    plots = {r.case.name: write_case_plot(r, out_dir / case_plot(r.case.name)) or Path(case_plot(r.case.name)).name
             for r in outcome.results}
    texts = pages(outcome, explanation, trainings, questions, plots, history)
    if history is not None:
        _warn_if_stale(history, outcome, explanation, out_dir)
    else:
        saved = out_dir / HISTORY_DIR
        print(f"{HISTORY_PAGE} not regenerated: no saved release results in {saved}/releases "
              f"(`xdecay matrix --paddle V1,V2,... --out {saved}` writes them)", file=sys.stderr)
    link_other_pages(texts, out_dir)       # once every generated page is in texts: those are not "other" pages
    # After the links: the index lists port.md among the other pages (test_reports' fresh
    # pages, which do not run the ports, link the committed one the same way).
    texts[PORT_PAGE] = port_page(ports, port_outcome.versions)
    try:
        write_pages(out_dir, texts)
    except OSError as exc:
        raise UsageError(f"--out {args.out}: cannot write the pages ({exc.strerror or exc})") from None
    print(f"wrote {len(texts)} pages under {out_dir}", file=sys.stderr)
    if explanation.errors or any(t.errors for t in trainings) or port_outcome.exit_code == EXIT_FRAMEWORK:
        return EXIT_FRAMEWORK
    # The port page's exit-1 rows are its findings (no exact equivalent), not a failure.
    return max(outcome.exit_code, *(t.exit_code for t in trainings))


def _optimizers(values: list[str], frameworks: tuple[str, ...]) -> set[str] | None:
    """--optimizer NAME...: known classes, each in one of `frameworks` at least."""
    known = catalogue.known_optimizers()
    wanted = {o.lower() for o in values} or None
    for name in sorted(wanted or ()):
        if name not in known:
            raise UsageError(f"--optimizer {name}: unknown (known: {', '.join(sorted(known))})")
        if not any(name in catalogue.classes(fw) for fw in frameworks):
            has = [fw for fw in FRAMEWORKS if name in catalogue.classes(fw)]
            cls = catalogue.classes(has[0])[name]
            raise UsageError(f"--optimizer {name}: {' and '.join(frameworks)} "
                             f"{'has' if len(frameworks) == 1 else 'have'} no {cls} ({', '.join(has)} has)")
    return wanted


def _releases(value: str | None) -> list[str]:
    """--paddle V1,V2,...: release numbers, each once."""
    from .frameworks import venvs
    if value is None:
        return []
    versions = [v.strip() for v in value.split(",")]
    for v in versions:
        venvs.check_version(f"--paddle {value}", v)
    twice = sorted({v for v in versions if versions.count(v) > 1})
    if twice:
        raise UsageError(f"--paddle {value}: {', '.join(twice)} given twice")
    return versions


def _matrix(args: argparse.Namespace) -> int:
    from .engine.matrix import Matrix, load_releases, run_releases, save_releases
    from .frameworks import venvs
    from .writers.matrix_report import WRITERS as MATRIX_WRITERS
    from .writers.matrix_report import summary as matrix_summary
    _timeout(args.timeout)
    if args.jobs < 1:
        raise UsageError(f"--jobs: must be >= 1, got {args.jobs}")
    versions = _releases(args.paddle)
    columns = [_python(v) for v in args.python]
    if not (versions or columns or args.merge):
        raise UsageError("matrix: give --paddle V1,V2,..., --python FRAMEWORK=PATH or --merge DIR")
    merged = [r for d in args.merge for r in load_releases(Path(d))]
    optimizers = _optimizers(args.optimizer, FRAMEWORKS)
    cases = [load_case(p) for p in find_cases(args.case, args.cases)]
    out_dir = _out_dir(args.out)
    _out_files(args.out, out_dir, [f"matrix.{EXTENSIONS[args.format]}", "releases/x.json"])

    def say(line: str) -> None:
        print(line, file=sys.stderr)

    # Venvs first, every one of them: a release that does not install is exit 2 before any run.
    columns = [("paddle", venvs.release_python("paddle", v, f"--paddle {args.paddle}", say=say))
               for v in versions] + columns
    fresh = run_releases(cases, optimizers, columns, args.jobs, args.timeout, say) if columns else []
    matrix = Matrix.of(merged + fresh)
    labels = [r.label for r in merged + fresh]
    for label in sorted({l for l in labels if labels.count(l) > 1}):
        say(f"{label} given {labels.count(label)} times: the last one is shown (runs come after --merge)")
    text = MATRIX_WRITERS[args.format](matrix, args.all)
    if out_dir is None:
        sys.stdout.write(text)
    else:
        _make_out_dir(args.out, out_dir)
        try:
            written = save_releases(out_dir, matrix.releases)
        except OSError as exc:
            raise UsageError(f"--out {args.out}: cannot write the saved results ({exc.strerror or exc})") from None
        for path in written:
            say(f"wrote {path}")
        path = out_dir / f"matrix.{EXTENSIONS[args.format]}"
        _write_atomic(path, text, args.out)
        say(f"wrote {path}")
        say(matrix_summary(matrix))      # the verdict, which the files hold but the terminal would not
    return matrix.exit_code


def _saved_history(out_dir: Path, option: str) -> Matrix | None:
    """The saved release results beside the pages, if any (loaded, so checked, before the run)."""
    from .engine.matrix import Matrix, load_releases
    from .writers.pages import HISTORY_DIR
    saved = out_dir / HISTORY_DIR
    if not (saved / "releases").is_dir():
        return None
    return Matrix.of(load_releases(saved, f"--out {option}"))


def _warn_if_stale(history: Matrix, outcome, explanation, out_dir: Path) -> None:
    from .engine.matrix import release_cells, stale_rows
    from .writers.pages import HISTORY_DIR, HISTORY_PAGE
    for release in history.releases:
        if release.version != outcome.versions.get(release.framework) or release.error:
            continue
        stale = stale_rows(release, release_cells(release.framework, outcome, explanation))
        if stale:
            print(f"{HISTORY_PAGE}: the saved {release.label} results differ from this run "
                  f"(rows: {len(stale)}, first: {stale[0]}); re-run `xdecay matrix ... --out "
                  f"{out_dir / HISTORY_DIR}`", file=sys.stderr)


def _port(args: argparse.Namespace) -> int:
    from .engine.port import check_pattern, loop_calls, parse_call, parse_lr_scales, translate, verify
    from .frameworks.factory import load_factory, read_factory, torch_call
    from .writers.port_report import WRITERS as PORT_WRITERS
    _timeout(args.timeout)
    out_dir = _out_dir(args.out)
    name = f"port.{EXTENSIONS[args.format]}"
    _out_files(args.out, out_dir, [name])
    pythons = _pythons(args.python, FRAMEWORKS)
    framework = "paddle" if args.paddle is not None else "torch"
    call = args.torch if args.torch is not None else args.paddle
    lr_scales = parse_lr_scales(args.lr_scale)
    factory = None
    if args.torch_file is not None:
        check_pattern(args.no_decay)          # before the user's code runs
        loop_calls(framework, args.clip, args.schedule)
        factory = read_factory(load_factory(args.torch_file), args.torch_file)
        call = torch_call(factory.optimizer, args.torch_file, args.no_decay, lr_scales)
    loop = loop_calls(framework, args.clip, args.schedule, factory, args.torch_file)
    translation = translate(parse_call(framework, call, args.no_decay, loop, lr_scales), call, loop)
    _make_out_dir(args.out, out_dir)
    result = verify(translation, pythons=pythons, timeout=args.timeout)
    text = PORT_WRITERS[args.format](result)
    if out_dir is None:
        sys.stdout.write(text)
    else:
        _write_atomic(out_dir / name, text, args.out)
        print(f"wrote {out_dir / name}", file=sys.stderr)
    return result.exit_code


def _audit(args: argparse.Namespace) -> int:
    from .engine.audit import checked_arguments, run_audit
    from .writers.audit_report import WRITERS as AUDIT_WRITERS
    factories = {fw: spec for fw, spec in (("torch", args.torch), ("paddle", args.paddle)) if spec is not None}
    _timeout(args.timeout)
    name_map = checked_arguments(factories, args.steps, tuple(args.no_decay), tuple(args.decay), args.name_map)
    out_dir = _out_dir(args.out)
    name = f"audit.{EXTENSIONS[args.format]}"
    _out_files(args.out, out_dir, [name])
    pythons = _pythons(args.python, tuple(factories))
    result = run_audit(factories, steps=args.steps, no_decay=tuple(args.no_decay), decay=tuple(args.decay),
                       name_map=name_map, name_map_path=args.name_map or "", pythons=pythons, timeout=args.timeout)
    text = AUDIT_WRITERS[args.format](result)
    if out_dir is None:
        sys.stdout.write(text)
    else:
        _make_out_dir(args.out, out_dir)
        _write_atomic(out_dir / name, text, args.out)
        print(f"wrote {out_dir / name}", file=sys.stderr)
    return result.exit_code


def _write_atomic(path: Path, text: str | Iterable[str], option: str) -> None:
    """All of `path` or none of it (`text` whole or in pieces); a failing write is one
    line naming --out, not a traceback."""
    try:
        with atomic(path) as f:
            f.writelines([text] if isinstance(text, str) else text)
    except OSError as exc:
        raise UsageError(f"--out {option}: cannot write {path} ({exc.strerror or exc})") from None


if __name__ == "__main__":
    sys.exit(main())
