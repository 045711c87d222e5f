"""Same command, same bytes (README, "Upgrade checks": two runs of the same command give byte-identical
JSON), and `--out DIR` holds only whole files: never a temporary, partial or probe file."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from xdecay import cli
from xdecay.errors import UsageError
from xdecay.files import atomic

from .conftest import ROOT, SHIPPED


def xdecay(*args: str) -> bytes:
    p = subprocess.run([sys.executable, "-m", "xdecay", *args], cwd=ROOT, capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return p.stdout


def assert_same_bytes(a: bytes, b: bytes) -> None:
    if a != b:
        for i, (x, y) in enumerate(zip(a.splitlines(), b.splitlines()), 1):
            assert x == y, f"line {i} differs:\n{x!r}\n{y!r}"
        pytest.fail(f"one output is a prefix of the other ({len(a)} vs {len(b)} bytes)")


@pytest.mark.parametrize("args", [["compare", "--case", "all", "--format", "json"],
                                  ["explain", "--format", "json"]], ids=["compare-all", "explain"])
def test_two_runs_give_byte_identical_json(args):
    first, second = xdecay(*args), xdecay(*args)
    json.loads(first)
    assert_same_bytes(first, second)


def test_out_dir_holds_exactly_the_reports(tmp_path):
    (tmp_path / "keep.txt").write_text("not ours\n")
    xdecay("compare", "--case", "all", "--format", "json", "--out", str(tmp_path))
    expected = {f"{p.stem}.json" for p in SHIPPED} | {"keep.txt"}
    assert {p.name for p in tmp_path.iterdir()} == expected       # no .part, no probe file
    for p in tmp_path.glob("*.json"):
        assert json.loads(p.read_text())["case"] == p.stem
    assert (tmp_path / "keep.txt").read_text() == "not ours\n"


# ------------------------------------------------------------------ a write that fails midway

def test_a_write_that_fails_midway_leaves_no_file(tmp_path):
    target = tmp_path / "case.json"
    with pytest.raises(TypeError):
        with atomic(target) as f:
            # json.dump writes as it goes: '{"ok": true, "runs": ' is out before the failure.
            json.dump({"ok": True, "runs": object()}, f)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rewrite_keeps_the_old_file_whole(tmp_path):
    target = tmp_path / "case.json"
    target.write_text('{"old": 1}\n')
    with pytest.raises(TypeError):
        with atomic(target) as f:
            json.dump({"new": [1, 2, object()]}, f)
    assert [p.name for p in tmp_path.iterdir()] == ["case.json"]
    assert target.read_text() == '{"old": 1}\n'


def test_a_rename_onto_a_directory_fails_without_a_part_file(tmp_path):
    target = tmp_path / "case.json"
    target.mkdir()                      # a folder where the report should go
    with pytest.raises(UsageError, match=f"--out {tmp_path}: cannot write {target}"):
        cli._write_atomic(target, "text\n", str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["case.json"] and target.is_dir()
    assert list(target.iterdir()) == []


def test_a_full_file_system_mid_write_leaves_no_file(tmp_path):
    # A real EFBIG from the kernel: the file-size limit (RLIMIT_FSIZE) stops the write
    # after 64 KiB, in a child process so that this one keeps its limits.
    code = textwrap.dedent(f"""
        import resource, signal, sys
        from pathlib import Path
        from xdecay import cli
        from xdecay.errors import UsageError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)    # the write fails instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        try:
            cli._write_atomic(Path({str(tmp_path)!r}) / "big.txt", "x" * 1_000_000, {str(tmp_path)!r})
        except UsageError as exc:
            print(exc)
            sys.exit(2)
    """)
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert p.stdout.startswith(f"--out {tmp_path}: cannot write {tmp_path / 'big.txt'} (File too large)")
    assert list(tmp_path.iterdir()) == []
