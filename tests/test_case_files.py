"""Where cases are found: the shipped ones from anywhere, a user's folders beside them,
and one clear answer for a name (README, "Your own cases")."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from xdecay import cli
from xdecay.errors import UsageError

from .conftest import MINIMAL, ROOT, write_case

SHIPPED_NAMES = sorted(p.stem for p in (ROOT / "cases").glob("*.toml"))


def listed(capsys, *args: str) -> tuple[int, list[str], str]:
    code = cli.main(["list", *args])
    out, err = capsys.readouterr()
    return code, [line.split()[0] for line in out.splitlines()], err


def test_a_cases_folder_in_the_current_directory_hides_nothing(tmp_path, monkeypatch, capsys):
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "unrelated.toml").write_text('title = "a user\'s own TOML"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("XDECAY_CASES", raising=False)
    code, names, err = listed(capsys)
    assert code == 0 and names == SHIPPED_NAMES, err


def test_a_users_folder_adds_to_the_shipped_cases(tmp_path, monkeypatch, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    write_case(mine, MINIMAL, "my_sgd.toml")
    monkeypatch.delenv("XDECAY_CASES", raising=False)
    code, names, err = listed(capsys, "--cases", str(mine))
    assert code == 0 and names == ["my_sgd", *SHIPPED_NAMES], err
    monkeypatch.setenv("XDECAY_CASES", str(mine))
    code, names, err = listed(capsys)
    assert code == 0 and names == ["my_sgd", *SHIPPED_NAMES], err
    from xdecay.case_files import find_case
    assert find_case("my_sgd") == mine / "my_sgd.toml"
    assert find_case("momentum").parent.samefile(ROOT / "cases")


def test_a_name_in_two_folders_is_an_error_naming_both(tmp_path, monkeypatch, capsys):
    write_case(tmp_path, MINIMAL, "momentum.toml")
    monkeypatch.delenv("XDECAY_CASES", raising=False)
    code, _, err = listed(capsys, "--cases", str(tmp_path))
    assert code == 2 and len(err.splitlines()) == 1
    assert str(tmp_path / "momentum.toml") in err and "shipped" in err and "'momentum'" in err


def test_the_repository_folder_given_as_the_users_is_no_clash(monkeypatch, capsys):
    monkeypatch.delenv("XDECAY_CASES", raising=False)
    code, names, err = listed(capsys, "--cases", str(ROOT / "cases"))
    assert code == 0 and names == SHIPPED_NAMES, err


def test_a_cases_option_that_is_no_folder_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("XDECAY_CASES", raising=False)
    assert cli.main(["list", "--cases", str(tmp_path / "missing")]) == 2
    assert f"--cases {tmp_path / 'missing'}: not a directory" in capsys.readouterr().err
    monkeypatch.setenv("XDECAY_CASES", str(tmp_path / "missing"))
    assert cli.main(["list"]) == 2
    assert f"XDECAY_CASES: {tmp_path / 'missing'} is not a directory" in capsys.readouterr().err


def test_training_cases_are_looked_up_in_the_train_subfolder(tmp_path, monkeypatch):
    from xdecay.training import find_train_case
    (tmp_path / "train").mkdir()
    shutil.copy(ROOT / "cases" / "train" / "overfit.toml", tmp_path / "train" / "my_overfit.toml")
    monkeypatch.setenv("XDECAY_CASES", str(tmp_path))
    assert find_train_case("my_overfit") == tmp_path / "train" / "my_overfit.toml"
    assert find_train_case("schedule").parent.samefile(ROOT / "cases" / "train")


def test_api_errors_name_no_command_line_option(monkeypatch):
    from xdecay import run_case
    monkeypatch.delenv("XDECAY_CASES", raising=False)
    for case in ("no-such-case", "all", "momentum.toml"):
        with pytest.raises(UsageError) as err:
            run_case(case)
        assert "--" not in str(err.value), str(err.value)
    with pytest.raises(UsageError, match="known: .*momentum"):
        run_case("no-such-case")


def test_api_checks_the_snapshot_size_of_its_steps_before_running(monkeypatch):
    import xdecay.api
    monkeypatch.setattr(xdecay.api, "run_cases", lambda *a, **k: pytest.fail("ran the case"))
    with pytest.raises(UsageError, match=r"^steps: .*GiB of snapshots") as err:
        xdecay.api.run_case(ROOT / "benchmarks" / "large_adam.toml", steps=400)
    assert "--" not in str(err.value)


def test_a_case_name_given_as_a_file_name_gets_a_hint(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["compare", "--case", "momentum.toml"]) == 2
    err = capsys.readouterr().err
    assert "momentum.toml: no such file" in err and "the case named 'momentum'" in err
    write_case(tmp_path, MINIMAL, "mine.toml")
    assert cli.main(["compare", "--case", "mine"]) == 2
    assert "no such case" in (err := capsys.readouterr().err) and "./mine.toml" in err


def test_list_prints_one_line_per_case_whatever_the_description(tmp_path, monkeypatch, capsys):
    write_case(tmp_path, MINIMAL.replace('description = "minimal"', 'description = """two\nlines"""'), "a.toml")
    write_case(tmp_path, MINIMAL.replace('description = "minimal"', 'description = ""'), "b.toml")
    monkeypatch.delenv("XDECAY_CASES", raising=False)
    assert cli.main(["list", "--cases", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + len(SHIPPED_NAMES)
    assert lines[0].split() == ["a", "two", "lines"] and lines[1].split() == ["b", "(no", "description)"]


def test_a_byte_order_mark_is_accepted(tmp_path):
    """Windows editors may start a UTF-8 file with U+FEFF; it is not content."""
    from xdecay.case import load_case
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode("utf-8"))
    assert load_case(path).description == "minimal"


def test_version_option(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    from xdecay import __version__
    assert capsys.readouterr().out == f"xdecay {__version__}\n"


def test_no_module_points_to_a_missing_design_document():
    named = [p for p in (ROOT / "xdecay").rglob("*.py") if "DESIGN.md" in p.read_text(encoding="utf-8")]
    assert named == []


def test_a_wheel_ships_the_cases_and_runs_the_readme_api_example_from_anywhere(tmp_path):
    """A non-editable install: build the wheel from a copy of the sources (nothing is
    written into the repository), unpack it, and run the README's API example from a
    folder outside the repository that holds a `cases/` folder of its own."""
    src = tmp_path / "src"
    src.mkdir()
    for part in ("pyproject.toml", "README.md", "xdecay", "cases"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
        copy(ROOT / part, src / part, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                          if (ROOT / part).is_dir() else {}))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(src)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("xdecay-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for case in (ROOT / "cases").rglob("*.toml"):
        assert f"xdecay/cases/{case.relative_to(ROOT / 'cases').as_posix()}" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    user = tmp_path / "elsewhere"
    (user / "cases").mkdir(parents=True)
    (user / "cases" / "precedence.toml").write_text("not = 'a case'\n")
    code = ("import xdecay; from xdecay import run_case; r = run_case('precedence'); "
            "assert xdecay.__file__.startswith(%r), xdecay.__file__; "
            "assert r.ok, [c for c in r.checks if not c.ok]; "
            "assert ('paddle:param_attr+weight_decay', 'weight', 'coupled_l2@0.5') in r.rules" % str(site))
    env = {k: v for k, v in os.environ.items() if k != "XDECAY_CASES"} | {"PYTHONPATH": str(site)}
    ran = subprocess.run([sys.executable, "-c", code], cwd=user, env=env, capture_output=True, text=True,
                         timeout=300)
    assert ran.returncode == 0, ran.stderr
