"""Where case files are found: a user's case folders, then the cases shipped with xdecay.

The shipped cases are package data: the repository's top-level cases/ folder is the
package `xdecay.cases` (pyproject.toml maps it), so a wheel or `pip install .` carries
them and they are read through importlib.resources; a source checkout reads its own
cases/ directly. The current directory is never searched implicitly — a user's
unrelated `./cases` folder hides nothing.

A user's folders come from `--cases DIR` or, without it, the XDECAY_CASES environment
variable (folders separated by os.pathsep). Each mirrors the shipped layout: compare
cases in the folder, training cases in its train/. A NAME is looked up in all of them;
a name found in two folders is an error naming both files (rename one, or give the
path), so a name never silently means another file. `list` and `--case all` cover the
user's cases first, then the shipped ones; a PATH (ending in .toml, or containing a
slash) is read as given.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from .errors import UsageError

ENV = "XDECAY_CASES"


def shipped_dir() -> Path:
    """The shipped cases: a source checkout's cases/ (run in place or installed
    editable), else the installed package data."""
    source = Path(__file__).resolve().parent.parent
    if (source / "pyproject.toml").is_file() and (source / "cases").is_dir():
        return source / "cases"
    return Path(str(resources.files("xdecay.cases")))


def shipped_cases(sub: str = "") -> list[Path]:
    """The shipped cases only (`xdecay report` documents those); `sub`: "train"."""
    return sorted((shipped_dir() / sub).glob("*.toml"))


def user_dirs(cases: str | Path | None = None, option: str = "--cases") -> list[Path]:
    """The user's case folders: `cases` (named `option` in errors), else XDECAY_CASES."""
    if cases is not None:
        folders, where = [Path(cases)], f"{option} {cases}: "
    else:
        folders, where = [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p], f"{ENV}: "
    for folder in folders:
        if not _is_dir(folder):
            raise UsageError(f"{where}{'' if cases is not None else f'{folder} is '}not a directory")
    return folders


def catalogue(cases: str | Path | None = None, sub: str = "", option: str = "--cases") -> dict[str, Path]:
    """name -> file of every case in the user's folders (first) and the shipped ones;
    `sub`: "train" for training cases."""
    shipped = shipped_dir() / sub
    found: dict[str, Path] = {}
    seen: set[Path] = set()
    for folder in [d / sub for d in user_dirs(cases, option)] + [shipped]:
        real = folder.resolve()
        if real in seen:                   # the repository's cases/ named as a user's folder
            continue
        seen.add(real)
        for path in sorted(folder.glob("*.toml")) if _is_dir(folder) else ():
            if path.stem in found:
                where = "the shipped one" if folder == shipped else str(path)
                raise UsageError(f"case {path.stem!r} is both {found[path.stem]} and {where}: rename "
                                 f"one, or give the file's path")
            found[path.stem] = path
    return found


def find_cases(spec: str, cases: str | Path | None = None) -> list[Path]:
    """`--case NAME|PATH|all` (with `--cases DIR`) to compare case files."""
    if spec != "all":
        return [find_case(spec, cases)]
    found = list(catalogue(cases).values())
    if not found:                        # an installation without its package data
        raise UsageError(f"--case all: no case files in {shipped_dir()}")
    return found


def find_case(spec: str, cases: str | Path | None = None, *, sub: str = "", option: str = "--case",
              cases_option: str = "--cases", kind: str = "case") -> Path:
    """One case file from a NAME or a PATH; `option` and `cases_option` name the
    arguments in errors (the CLI's flags, or the API's parameters)."""
    if spec.endswith(".toml") or "/" in spec or os.sep in spec:
        path = Path(spec)
        if not _exists(path) and "/" not in spec and os.sep not in spec:
            known = catalogue(cases, sub, cases_option)
            if path.stem in known:
                raise UsageError(f"{spec}: no such file; did you mean the {kind} named {path.stem!r} "
                                 f"({known[path.stem]})? A name needs no .toml")
        return path
    known = catalogue(cases, sub, cases_option)
    if spec in known:
        return known[spec]
    folders = "".join(f"{d / sub}, " for d in user_dirs(cases, cases_option))
    hint = f"; ./{spec}.toml exists: give its path" if _exists(Path(f"{spec}.toml")) else ""
    raise UsageError(f"{option} {spec}: no such {kind} in {folders}the shipped cases "
                     f"(known: {', '.join(known)}){hint}")


def shown(path: str | Path) -> str:
    """A case file as pages show it: a shipped one as cases/NAME.toml wherever xdecay is
    installed (pages must not depend on the machine), any other as given."""
    try:
        return "cases/" + Path(path).resolve().relative_to(shipped_dir().resolve()).as_posix()
    except ValueError:
        return str(path)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:                       # a name the file system refuses (too long, ...)
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False
