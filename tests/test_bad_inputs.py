"""Bad input, end to end (README, "Use": exit 2, one line on stderr naming the file/option).

Every case file in tests/bad_inputs/ (its first line says the expected error) and every
malformed command line below must give exit 2, exactly one stderr line that names the
file and key or the option, no traceback, an empty stdout, and nothing written — and be
refused before any framework worker starts. Most run in-process through `cli.main` (a
tripwire fails the test if a worker would start); a few run as real processes to show
the same line comes out with nothing else around it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from xdecay import cli
from xdecay.engine import audit
from xdecay.writers import train_report

from .conftest import ROOT

CORPUS_DIR = Path(__file__).resolve().parent / "bad_inputs"
CORPUS = sorted(CORPUS_DIR.glob("*.toml"))


def expected(path: Path) -> tuple[str, str]:
    """The first line `# error: KEY: WORDS` of a corpus file."""
    head = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    assert head.startswith("# error: "), f"{path.name}: first line must be '# error: KEY: WORDS'"
    key, sep, words = head[len("# error: "):].partition(": ")
    assert key and sep and words, f"{path.name}: first line must be '# error: KEY: WORDS'"
    return key, words


def corpus_prefix(path: Path, key: str) -> str:
    return f"xdecay: error: {path}: " + ("" if key == "-" else f"{key}: ")


def snapshot(folder: Path) -> list[tuple[str, int]]:
    """Every path under `folder` with its size: a bad input must change none of it."""
    return sorted((str(p.relative_to(folder)), p.stat().st_size if p.is_file() else -1)
                  for p in folder.rglob("*"))


def the_line(out: str, err: str) -> str:
    """The one stderr line of a refused command (stdout empty, no traceback or warning)."""
    assert out == "", out
    assert "Traceback" not in err and "Warning" not in err, err
    lines = err.splitlines(keepends=True)
    assert len(lines) == 1 and lines[0].endswith("\n"), err
    return lines[0][:-1]


@pytest.fixture
def no_workers(monkeypatch):
    """A bad input is refused before any framework runs: starting one fails the test."""
    def tripwire(*args, **kwargs):
        raise AssertionError("bad input reached a framework run")

    for name in ("run_cases", "run_batch", "explain"):
        monkeypatch.setattr(cli, name, tripwire)
    # Imported by their commands when they run (cli's start-up): tripped where they live.
    monkeypatch.setattr(train_report, "run_training", tripwire)
    monkeypatch.setattr(audit, "run_audit", tripwire)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}   # main() installs its own
    yield
    for s, handler in handlers.items():
        signal.signal(s, handler)


def xdecay_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xdecay", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


# ------------------------------------------------------------------ case file corpus

def test_the_corpus_is_there_and_self_describing():
    assert len(CORPUS) >= 30
    for path in CORPUS:
        expected(path)


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_bad_case_file(path, tmp_path, capfd, no_workers):
    key, words = expected(path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code = cli.main(["compare", "--case", str(path), "--out", str(out_dir)])
    line = the_line(*capfd.readouterr())
    assert code == 2
    assert line.startswith(corpus_prefix(path, key)), line
    assert words in line, line
    assert list(out_dir.iterdir()) == []


SUBPROCESS_CORPUS = ["not_utf8", "syntax_nested_too_deeply", "syntax_integer_too_long",
                     "lr_huge_integer", "expect_contradiction"]


@pytest.mark.parametrize("name", SUBPROCESS_CORPUS)
def test_bad_case_file_in_a_real_process(name, tmp_path):
    path = CORPUS_DIR / f"{name}.toml"
    key, words = expected(path)
    p = xdecay_process("compare", "--case", str(path), "--out", str(tmp_path))
    line = the_line(p.stdout, p.stderr)
    assert p.returncode == 2
    assert line.startswith(corpus_prefix(path, key)) and words in line, line
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ command lines

LONG = "a" * 5000      # longer than any file name the file system takes


def _unwritable_dir() -> str | None:
    """A directory in which even root cannot create a file (permission bits do not stop root)."""
    for d in ("/sys", "/proc"):
        try:
            fd, probe = tempfile.mkstemp(dir=d)
        except OSError:
            return d
        os.close(fd)
        os.unlink(probe)
    return None


UNWRITABLE = _unwritable_dir()
PY = sys.executable

# (id, argv, the line starts "xdecay: error: " + this, words in the line). Placeholders:
# {tmp} a scratch folder with the files made below, {out} an empty folder,
# {ro} a folder nobody can create files in.
COMMAND_LINES = [
    # compare --case
    ("case-unknown-name", ["compare", "--case", "no-such-case"], "--case no-such-case: ", "no such case in"),
    ("case-name-too-long", ["compare", "--case", LONG], f"--case {LONG}: ", "no such case in"),
    ("case-missing-file", ["compare", "--case", "{tmp}/missing.toml"], "{tmp}/missing.toml: ",
     "cannot read (No such file or directory)"),
    ("case-is-a-directory", ["compare", "--case", "{tmp}/dir.toml"], "{tmp}/dir.toml: ", "cannot read (Is a directory)"),
    ("case-parent-is-a-file", ["compare", "--case", "{tmp}/file/x.toml"], "{tmp}/file/x.toml: ",
     "cannot read (Not a directory)"),
    ("case-not-utf8", ["compare", "--case", "{tmp}/latin1.toml"], "{tmp}/latin1.toml: ", "is not UTF-8 text"),
    ("case-missing", ["compare"], "xdecay compare: ", "the following arguments are required: --case"),
    # compare --steps, --framework, --format
    ("steps-zero", ["compare", "--case", "momentum", "--steps", "0"], "--steps: ", "must be in [1, 10000], got 0"),
    ("steps-negative", ["compare", "--case", "momentum", "--steps", "-3"], "--steps: ", "got -3"),
    ("steps-huge", ["compare", "--case", "momentum", "--steps", "99999999"], "--steps: ", "got 99999999"),
    ("steps-too-many-snapshots", ["compare", "--case", "benchmarks/large_adam.toml", "--steps", "400"],
     "--steps: benchmarks/large_adam.toml: ", "keep 150.4 GiB of snapshots (at most 16 GiB)"),
    ("steps-not-integer", ["compare", "--case", "momentum", "--steps", "1.5"], "xdecay compare: argument --steps: ",
     "invalid int value: '1.5'"),
    ("steps-word", ["compare", "--case", "momentum", "--steps", "abc"], "xdecay compare: argument --steps: ",
     "invalid int value: 'abc'"),
    ("framework-jax", ["compare", "--case", "momentum", "--framework", "torch,jax"], "--framework: ",
     "unknown framework 'jax'"),
    ("framework-none", ["compare", "--case", "momentum", "--framework", ","], "--framework: ", "names no framework"),
    ("format-xml", ["compare", "--case", "momentum", "--format", "xml"], "xdecay compare: argument --format: ",
     "invalid choice: 'xml'"),
    # compare --out
    ("out-regular-file", ["compare", "--case", "momentum", "--out", "{tmp}/file"], "--out {tmp}/file: ",
     "{tmp}/file is not a directory"),
    ("out-parent-is-a-file", ["compare", "--case", "momentum", "--out", "{tmp}/file/sub"], "--out {tmp}/file/sub: ",
     "{tmp}/file is not a directory"),
    ("out-empty", ["compare", "--case", "momentum", "--out", ""], "--out: ", "empty path"),
    ("out-unwritable-parent", ["compare", "--case", "momentum", "--out", "{ro}/new/folder"],
     "--out {ro}/new/folder: ", "cannot create files in {ro}"),
    ("out-unwritable", ["compare", "--case", "momentum", "--out", "{ro}"], "--out {ro}: ",
     "cannot create files in {ro}"),
    ("out-name-too-long", ["compare", "--case", "momentum", "--out", "{tmp}/" + LONG], "--out {tmp}/" + LONG + ": ",
     "File name too long"),
    ("out-target-is-a-directory", ["compare", "--case", "momentum", "--format", "json", "--out", "{tmp}/clash"],
     "--out {tmp}/clash: ", "{tmp}/clash/momentum.json is a directory, not a file"),
    # compare --python
    ("python-missing", ["compare", "--case", "momentum", "--python", "paddle=/no/such/python"],
     "--python paddle=/no/such/python: ", "/no/such/python is not an executable file"),
    ("python-no-equals", ["compare", "--case", "momentum", "--python", "paddle"], "--python paddle: ",
     "expected FRAMEWORK=PATH"),
    ("python-empty-path", ["compare", "--case", "momentum", "--python", "paddle="], "--python paddle=: ",
     "expected FRAMEWORK=PATH"),
    ("python-unknown-framework", ["compare", "--case", "momentum", "--python", f"jax={PY}"], f"--python jax={PY}: ",
     "FRAMEWORK one of torch, paddle"),
    ("python-a-directory", ["compare", "--case", "momentum", "--python", "paddle={tmp}"], "--python paddle={tmp}: ",
     "is not an executable file"),
    ("python-not-executable", ["compare", "--case", "momentum", "--python", "paddle={tmp}/file"],
     "--python paddle={tmp}/file: ", "is not an executable file"),
    # compare --atol/--rtol/--timeout
    ("atol-nan", ["compare", "--case", "momentum", "--atol", "nan"], "--atol: ", "must be a finite number >= 0, got nan"),
    ("atol-negative", ["compare", "--case", "momentum", "--atol=-1e-6"], "--atol: ", "got -1e-06"),
    ("rtol-inf", ["compare", "--case", "momentum", "--rtol", "inf"], "--rtol: ", "got inf"),
    ("atol-word", ["compare", "--case", "momentum", "--atol", "tiny"], "xdecay compare: argument --atol: ",
     "invalid number value: 'tiny'"),
    ("atol-underscore", ["compare", "--case", "momentum", "--atol", "1_0"], "xdecay compare: argument --atol: ",
     "invalid number value: '1_0'"),
    ("timeout-hex", ["compare", "--case", "momentum", "--timeout", "0x10"], "xdecay compare: argument --timeout: ",
     "invalid number value: '0x10'"),
    ("timeout-zero", ["compare", "--case", "momentum", "--timeout", "0"], "--timeout: ", "got 0.0"),
    ("timeout-negative", ["compare", "--case", "momentum", "--timeout", "-5"], "--timeout: ", "got -5.0"),
    ("timeout-nan", ["compare", "--case", "momentum", "--timeout", "nan"], "--timeout: ", "got nan"),
    ("min-power-zero", ["compare", "--case", "momentum", "--min-power", "0"], "--min-power: ", "got 0.0"),
    ("min-power-nan", ["compare", "--case", "momentum", "--min-power", "nan"], "--min-power: ", "got nan"),
    ("timeout-inf", ["compare", "--case", "momentum", "--timeout", "inf"], "--timeout: ", "got inf"),
    ("timeout-huge", ["compare", "--case", "momentum", "--timeout", "1e300"], "--timeout: ", "got 1e+300"),
    # compare --baseline
    ("baseline-missing", ["compare", "--case", "momentum", "--baseline", "{tmp}/missing.json"],
     "--baseline {tmp}/missing.json: ", "no such file or directory"),
    ("baseline-malformed-json", ["compare", "--case", "momentum", "--baseline", "{tmp}/bad.json"],
     "--baseline {tmp}/bad.json: ", "not an xdecay compare JSON document"),
    ("baseline-not-utf8", ["compare", "--case", "momentum", "--baseline", "{tmp}/latin1.json"],
     "--baseline {tmp}/latin1.json: ", "not an xdecay compare JSON document"),
    ("baseline-json-array", ["compare", "--case", "momentum", "--baseline", "{tmp}/array.json"],
     "--baseline {tmp}/array.json: ", "not an xdecay compare JSON document"),
    ("baseline-train-report", ["compare", "--case", "momentum", "--baseline", "{tmp}/train.json"],
     "--baseline {tmp}/train.json: ", "a `xdecay train` report"),
    ("baseline-sample-index-beyond-the-parameter", ["compare", "--case", "momentum", "--baseline",
                                                    "{tmp}/sampled.json"], "--baseline {tmp}/sampled.json: ",
     "(torch:none sampled.weight: `indices` must be element indices below 4)"),
    ("baseline-empty-folder", ["compare", "--case", "momentum", "--baseline", "{out}"], "--baseline {out}: ",
     "no .json files in the directory"),
    ("baseline-name-too-long", ["compare", "--case", "momentum", "--baseline", "{tmp}/" + LONG],
     "--baseline {tmp}/" + LONG + ": ", "File name too long"),
    # explain
    ("explain-unknown-optimizer", ["explain", "--optimizer", "adam", "--optimizer", "sgdw"], "--optimizer sgdw: ",
     "unknown (known: "),
    ("explain-steps-zero", ["explain", "--steps", "0"], "--steps: ", "must be in [1, 10000]"),
    ("explain-framework-jax", ["explain", "--framework", "jax"], "--framework: ", "unknown framework 'jax'"),
    ("explain-format-xml", ["explain", "--format", "xml"], "xdecay explain: argument --format: ", "invalid choice"),
    ("explain-timeout-nan", ["explain", "--timeout", "nan"], "--timeout: ", "got nan"),
    ("explain-python-missing", ["explain", "--python", "torch=/no/such/python"], "--python torch=/no/such/python: ",
     "is not an executable file"),
    # train
    ("train-unknown-case", ["train", "--case", "sprint"], "--case sprint: ", "no such training case"),
    ("train-bad-case-file", ["train", "--case", "{tmp}/train_bad.toml"], "{tmp}/train_bad.toml: kind: ",
     "unknown value 'sprint'"),
    ("train-decay-beyond-float32", ["train", "--case", "{tmp}/train_huge.toml"],
     "{tmp}/train_huge.toml: optimizer.weight_decays[1]: ", "fits in float32"),
    ("train-case-not-utf8", ["train", "--case", "{tmp}/latin1.toml"], "{tmp}/latin1.toml: ", "is not UTF-8 text"),
    ("train-out-parent-is-a-file", ["train", "--case", "overfit", "--out", "{tmp}/file/sub"],
     "--out {tmp}/file/sub: ", "{tmp}/file is not a directory"),
    ("train-out-unwritable", ["train", "--case", "overfit", "--out", "{ro}"], "--out {ro}: ",
     "cannot create files in {ro}"),
    ("train-timeout-inf", ["train", "--case", "overfit", "--timeout", "inf"], "--timeout: ", "got inf"),
    ("train-format-xml", ["train", "--case", "overfit", "--format", "xml"], "xdecay train: argument --format: ",
     "invalid choice"),
    ("train-python-no-equals", ["train", "--case", "overfit", "--python", PY], f"--python {PY}: ",
     "expected FRAMEWORK=PATH"),
    # report
    ("report-out-regular-file", ["report", "--out", "{tmp}/file"], "--out {tmp}/file: ",
     "{tmp}/file is not a directory"),
    ("report-out-unwritable", ["report", "--out", "{ro}/reports"], "--out {ro}/reports: ",
     "cannot create files in {ro}"),
    ("report-out-cases-is-a-file", ["report", "--out", "{tmp}/pages"], "--out {tmp}/pages: ",
     "{tmp}/pages/cases is a file, not a directory"),
    ("report-timeout-zero", ["report", "--out", "{out}", "--timeout", "0"], "--timeout: ", "got 0.0"),
    ("report-python-missing", ["report", "--out", "{out}", "--python", "paddle=/no/such/python"],
     "--python paddle=/no/such/python: ", "is not an executable file"),
    # port: the call is read with ast, literals only
    ("port-not-a-call", ["port", "--torch", "AdamW"], "--torch 'AdamW': ", "not a call"),
    ("port-syntax", ["port", "--torch", "AdamW(lr=1e-3"], "--torch 'AdamW(lr=1e-3': ", "not a Python call expression"),
    ("port-unknown-class", ["port", "--paddle", "AdamWW(learning_rate=0.1)"], "--paddle 'AdamWW(learning_rate=0.1)': ",
     "unknown paddle optimizer 'AdamWW'"),
    ("port-not-literal", ["port", "--torch", "SGD(params, lr=get_lr())"], "--torch 'SGD(params, lr=get_lr())': ",
     "lr must be a literal"),
    ("port-unknown-argument", ["port", "--torch", "Adam(params, lr=0.1, foo=1)"],
     "--torch 'Adam(params, lr=0.1, foo=1)': ", "argument 'foo' cannot be ported"),
    ("port-no-lr", ["port", "--paddle", "Adam(weight_decay=0.1)"], "--paddle 'Adam(weight_decay=0.1)': ",
     "give learning_rate"),
    ("port-positional", ["port", "--paddle", "Adam(0.1)"], "--paddle 'Adam(0.1)': ", "give the arguments by name"),
    ("port-negative-decay", ["port", "--torch", "SGD(params, lr=0.1, weight_decay=-1)"],
     "--torch 'SGD(params, lr=0.1, weight_decay=-1)': ", "weight_decay must be a finite number >= 0, got -1"),
    ("port-beta-out-of-range", ["port", "--torch", "Adam(params, lr=0.1, betas=(1.5, 0.9))"],
     "--torch 'Adam(params, lr=0.1, betas=(1.5, 0.9))': ", "optimizer.beta1: "),
    ("port-bad-pattern", ["port", "--torch", "SGD(params, lr=0.1)", "--no-decay", "("], "--no-decay '(': ",
     "not a regular expression"),
    ("port-filter-without-no-decay", ["port", "--paddle", "AdamW(learning_rate=0.1, apply_decay_param_fun=f)"],
     "--paddle 'AdamW(learning_rate=0.1, apply_decay_param_fun=f)': ", "say which parameters"),
    ("port-both-frameworks", ["port", "--torch", "SGD(params, lr=0.1)", "--paddle", "SGD(learning_rate=0.1)"],
     "xdecay port: argument --paddle: ", "not allowed with argument --torch"),
    ("port-format-xml", ["port", "--torch", "SGD(params, lr=0.1)", "--format", "xml"],
     "xdecay port: argument --format: ", "invalid choice"),
    ("port-out-regular-file", ["port", "--torch", "SGD(params, lr=0.1)", "--out", "{tmp}/file"], "--out {tmp}/file: ",
     "{tmp}/file is not a directory"),
    ("port-torch-file-missing", ["port", "--torch-file", "{tmp}/missing.py:make"], "--torch-file {tmp}/missing.py:make: ",
     "no such file"),
    ("port-torch-file-no-function", ["port", "--torch-file", "{tmp}/file"], "--torch-file {tmp}/file: ",
     "expected FILE.py:FUNCTION"),
    # port --clip / --schedule: read with ast like the call, through the case tables
    ("port-clip-unknown", ["port", "--torch", "SGD(params, lr=0.1)", "--clip", "clip_grad_foo_(max_norm=1.0)"],
     "--clip 'clip_grad_foo_(max_norm=1.0)': ", "unknown torch clip 'clip_grad_foo_'"),
    ("port-clip-other-framework", ["port", "--torch", "SGD(params, lr=0.1)", "--clip", "ClipGradByGlobalNorm(1.0)"],
     "--clip 'ClipGradByGlobalNorm(1.0)': ", "unknown torch clip 'ClipGradByGlobalNorm'"),
    ("port-clip-not-literal", ["port", "--paddle", "SGD(learning_rate=0.1)", "--clip", "ClipGradByNorm(clip_norm=c)"],
     "--clip 'ClipGradByNorm(clip_norm=c)': ", "clip_norm must be a literal"),
    ("port-clip-norm-type", ["port", "--torch", "SGD(params, lr=0.1)", "--clip",
                             "clip_grad_norm_(p, max_norm=1.0, norm_type=1)"],
     "--clip 'clip_grad_norm_(p, max_norm=1.0, norm_type=1)': ", "norm_type=1 cannot be ported"),
    ("port-clip-no-limit", ["port", "--torch", "SGD(params, lr=0.1)", "--clip", "clip_grad_value_(p)"],
     "--clip 'clip_grad_value_(p)': ", "give clip_value"),
    ("port-clip-zero", ["port", "--paddle", "SGD(learning_rate=0.1)", "--clip", "ClipGradByValue(max=0)"],
     "--clip 'ClipGradByValue(max=0)': ", "max must be a finite number > 0, got 0"),
    ("port-grad-clip-without-clip", ["port", "--paddle", "SGD(learning_rate=0.1, grad_clip=clip)"],
     "--paddle 'SGD(learning_rate=0.1, grad_clip=clip)': ", "grad_clip is ported with --clip"),
    ("port-schedule-unknown", ["port", "--torch", "SGD(params, lr=0.1)", "--schedule", "CyclicLR(opt, base_lr=0.01, max_lr=1.0)"],
     "--schedule 'CyclicLR(opt, base_lr=0.01, max_lr=1.0)': ", "unknown torch lr scheduler 'CyclicLR'"),
    ("port-schedule-unknown-argument", ["port", "--torch", "SGD(params, lr=0.1)", "--schedule",
                                        "StepLR(opt, step_size=2, foo=1)"],
     "--schedule 'StepLR(opt, step_size=2, foo=1)': ", "StepLR argument 'foo' cannot be ported"),
    ("port-schedule-missing-word", ["port", "--torch", "SGD(params, lr=0.1)", "--schedule", "CosineAnnealingLR(opt)"],
     "--schedule 'CosineAnnealingLR(opt)': ", "t_max"),
    ("port-schedule-too-long", ["port", "--torch", "SGD(params, lr=0.1)", "--schedule",
                                "CosineAnnealingLR(opt, T_max=20000)"],
     "--schedule 'CosineAnnealingLR(opt, T_max=20000)': ", "t_max: must be in [1, 10000], got 20000"),
    ("port-schedule-paddle-no-lr", ["port", "--paddle", "SGD(learning_rate=s)", "--schedule", "StepDecay(step_size=2)"],
     "--schedule 'StepDecay(step_size=2)': ", "give learning_rate"),
    ("port-schedule-paddle-lr-differs", ["port", "--paddle", "SGD(learning_rate=0.1)", "--schedule",
                                         "StepDecay(learning_rate=0.2, step_size=2)"],
     "--schedule 'StepDecay(learning_rate=0.2, step_size=2)': ", "differs from the optimizer's learning_rate=0.1"),
    ("port-schedule-last-epoch", ["port", "--torch", "SGD(params, lr=0.1)", "--schedule",
                                  "StepLR(opt, step_size=2, last_epoch=5)"],
     "--schedule 'StepLR(opt, step_size=2, last_epoch=5)': ", "last_epoch=5 cannot be ported"),
    # port --lr-scale
    ("port-lr-scale-no-factor", ["port", "--torch", "SGD(params, lr=0.1)", "--lr-scale", "norm"],
     "--lr-scale 'norm': ", "expected PATTERN=FACTOR"),
    ("port-lr-scale-zero", ["port", "--torch", "SGD(params, lr=0.1)", "--lr-scale", "norm=0"],
     "--lr-scale 'norm=0': ", "a finite FACTOR > 0"),
    ("port-lr-scale-bad-pattern", ["port", "--torch", "SGD(params, lr=0.1)", "--lr-scale", "(=0.1"],
     "--lr-scale '(=0.1': ", "not a regular expression"),
    ("port-lr-scale-matches-nothing", ["port", "--torch", "SGD(params, lr=0.1)", "--lr-scale", "embed=0.1"],
     "--lr-scale 'embed=0.1': ", "matches none of the verification's parameters"),
    ("port-lr-scale-decoupled-flag", ["port", "--torch", "Adam(params, lr=0.1, weight_decay=0.1, "
                                      "decoupled_weight_decay=True)", "--lr-scale", "norm=0.1"],
     "--lr-scale with decoupled_weight_decay=True ", "is not ported"),
    ("port-lr-scale-with-schedule", ["port", "--torch", "SGD(params, lr=0.1)", "--lr-scale", "norm=0.1",
                                     "--schedule", "OneCycleLR(o, max_lr=0.1, total_steps=10)"],
     "--lr-scale norm=0.1: ", "cannot be combined with --schedule"),
    # audit: refused before the user's factory runs
    ("audit-no-factory", ["audit", "--no-decay", "bias"], "audit: ", "give --torch MOD:FUNC, --paddle MOD:FUNC or both"),
    ("audit-name-map-one-framework", ["audit", "--torch", "m:make", "--name-map", "{tmp}/file"],
     "--name-map {tmp}/file: ", "give both --torch and --paddle"),
    ("audit-bad-pattern", ["audit", "--torch", "m:make", "--decay", "norm("], "--decay 'norm(': ",
     "not a regular expression"),
    ("audit-steps-zero", ["audit", "--torch", "m:make", "--steps", "0"], "--steps: ", "must be in [1, "),
    ("audit-name-map-missing", ["audit", "--torch", "m:make", "--paddle", "m:make", "--name-map", "{tmp}/no.toml"],
     "--name-map {tmp}/no.toml: ", "no such file"),
    ("audit-name-map-not-toml", ["audit", "--torch", "m:make", "--paddle", "m:make", "--name-map", "{tmp}/file"],
     "--name-map {tmp}/file: ", "expected a .toml or .json file"),
    # list and the top level
    ("list-extra-argument", ["list", "extra"], "xdecay: ", "unrecognized arguments: extra"),
    ("no-command", [], "xdecay: ", "the following arguments are required: command"),
    ("unknown-command", ["frobnicate"], "xdecay: argument command: ", "invalid choice: 'frobnicate'"),
]

TRAIN_BAD = """\
description = "bad kind"
kind = "sprint"
seed = 2
"""
TRAIN_HUGE = """\
description = "a decay float32 cannot hold"
kind = "overfit"
seed = 2

[data]
inputs = 4
train = 4
test = 4
true_weight = 0.01
true_bias = 0.05
noise = 0.01

[optimizer]
lr = 0.003
batch = 2
epochs = 2
weight_decays = [0, 1e39]
"""


def scratch(tmp_path: Path) -> dict[str, str]:
    """The files the command lines point at; returns the placeholders."""
    tmp = tmp_path / "scratch"
    tmp.mkdir()
    (tmp / "dir.toml").mkdir()                                   # a folder where a file is expected
    (tmp / "file").write_text("a regular file\n")
    (tmp / "latin1.toml").write_bytes(b'description = "caf\xe9"\n')  # not UTF-8
    (tmp / "latin1.json").write_bytes(b'{"caf\xe9": 1}\n')
    (tmp / "bad.json").write_text('{"xdecay": "0.1", "frameworks": {')
    (tmp / "array.json").write_text("[1, 2]\n")
    (tmp / "train.json").write_text('{"xdecay": "0.1", "kind": "overfit", "frameworks": {}}\n')
    (tmp / "sampled.json").write_text('{"xdecay": "0.1", "frameworks": {}, "case": "momentum", "runs": [{"run": '
                                      '"torch:none", "sampled": {"weight": {"of": 4, "shape": [2, 2], "indices": '
                                      '[4]}}, "steps": [{"delta_weight": [0.0]}]}]}\n')
    (tmp / "clash" / "momentum.json").mkdir(parents=True)
    (tmp / "pages").mkdir()
    (tmp / "pages" / "cases").write_text("not a folder\n")
    (tmp / "train_bad.toml").write_text(TRAIN_BAD)
    (tmp / "train_huge.toml").write_text(TRAIN_HUGE)
    out = tmp_path / "out"
    out.mkdir()
    return {"tmp": str(tmp), "out": str(out), "ro": UNWRITABLE or "/unwritable-folder-not-found"}


def fill(text: str, paths: dict[str, str]) -> str:
    for name, value in paths.items():
        text = text.replace("{" + name + "}", value)
    return text


def test_enough_command_lines():
    assert len(COMMAND_LINES) >= 15
    assert len({c[0] for c in COMMAND_LINES}) == len(COMMAND_LINES)


@pytest.mark.parametrize("argv,starts,words", [c[1:] for c in COMMAND_LINES], ids=[c[0] for c in COMMAND_LINES])
def test_bad_command_line(argv, starts, words, tmp_path, capfd, no_workers):
    if "{ro}" in " ".join(argv) and UNWRITABLE is None:
        pytest.skip("no folder here refuses new files to this user")
    paths = scratch(tmp_path)
    before = snapshot(tmp_path)
    code = cli.main([fill(a, paths) for a in argv])
    line = the_line(*capfd.readouterr())
    assert code == 2
    assert line.startswith("xdecay: error: " + fill(starts, paths)), line
    assert fill(words, paths) in line, line
    assert snapshot(tmp_path) == before          # nothing written, nothing half-written


SUBPROCESS_LINES = ["out-unwritable", "timeout-inf", "steps-word", "case-is-a-directory",
                    "report-out-unwritable", "no-command"]


@pytest.mark.parametrize("name", SUBPROCESS_LINES)
def test_bad_command_line_in_a_real_process(name, tmp_path):
    (argv, starts, words), = [c[1:] for c in COMMAND_LINES if c[0] == name]
    if "{ro}" in " ".join(argv) and UNWRITABLE is None:
        pytest.skip("no folder here refuses new files to this user")
    paths = scratch(tmp_path)
    before = snapshot(tmp_path)
    p = xdecay_process(*(fill(a, paths) for a in argv))
    line = the_line(p.stdout, p.stderr)
    assert p.returncode == 2
    assert line.startswith("xdecay: error: " + fill(starts, paths)) and fill(words, paths) in line, line
    assert snapshot(tmp_path) == before
