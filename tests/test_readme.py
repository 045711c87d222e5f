"""The README's commands work as written, in the order a reader runs them: each finds its
program, each `xdecay` line parses, CI runs the set-up verbatim, the README's own output
folders are ignored by git."""
from __future__ import annotations

import re
import shlex

import pytest

from xdecay import cli

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def sh_commands() -> list[str]:
    """Every command of the README's sh blocks, in order: continuation lines joined,
    comments dropped, `a && b` split."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*", "", line).strip()
            out += [part.strip() for part in line.split("&&") if part.strip()]
    return out


def test_every_command_finds_its_program():
    """A bare `xdecay`, `pip` or `python` is the venv's only once the set-up has activated
    it; anything else is the system's python3 or an explicit path."""
    activated = False
    commands = sh_commands()
    assert commands and commands[0].startswith("python3 -m venv .venv")
    for command in commands:
        program, *args = shlex.split(command)
        if program == "." and args[0] == ".venv/bin/activate":
            activated = True
        elif program in ("xdecay", "pip", "python"):
            assert activated, f"README: `{command}` runs before the venv is activated"
        else:
            assert program == "python3" or program.startswith("/"), f"README: `{command}`"


def test_every_xdecay_command_parses():
    for command in sh_commands():
        words = shlex.split(command.split(">")[0])
        if words[0] == "xdecay":
            try:
                cli._parser().parse_args(words[1:])
            except (cli.UsageError, SystemExit) as exc:
                pytest.fail(f"README: `{command}`: {exc}")


def test_ci_runs_the_setup_as_written_with_quiet_pip():
    setup = re.search(r"## Set-up.*?```sh\n(.*?)```", README, re.S).group(1).splitlines()
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line and not line.startswith(("#", "set ", "cd ", "rm ", "export "))]
    assert [line.replace("pip install -q ", "pip install ") for line in ci] == setup
    assert "adding `-q` to pip" in README
    # the one variable CI sets is said in the README
    exported = [line.split()[1] for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.startswith("export ")]
    assert all(f"`{variable}` to pytest" in README for variable in exported), exported


def test_the_readme_baseline_folder_is_ignored():
    assert "baseline/" in README
    ignored = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()]
    assert "/baseline/" in ignored
