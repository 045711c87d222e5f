"""The questions the report's index is organised by: data in the shipped
cases/docs/questions.toml (its header says the keys), not prose in the writer."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..case import _Table, read_toml
from ..case_files import shipped_dir
from ..errors import CaseError


@dataclass(frozen=True)
class Question:
    text: str
    cases: tuple[str, ...]      # the shipped cases that answer it, in reading order


def questions_file() -> Path:
    return shipped_dir() / "docs" / "questions.toml"


def load_questions(known: list[str] | None = None, path: Path | None = None) -> list[Question]:
    """Every [[question]] of the file, its cases checked against `known` (case names;
    default: every shipped case file, whichever cases a report covers)."""
    path = path or questions_file()
    known = known if known is not None else [p.stem for p in shipped_dir().glob("*.toml")]
    top = read_toml(path)
    items = top.get("question", list, required=True)
    top.finish()
    out: list[Question] = []
    for i, item in enumerate(items):       # the case files' strict reader: unknown keys are errors
        t = _Table(str(path), f"question[{i}].", item)
        text = t.get("text", str, required=True).strip()
        if not text.endswith("?"):
            raise t.error("text", f"must be a question ending in '?', got {text!r}")
        if any(q.text == text for q in out):
            raise t.error("text", f"repeats an earlier question: {text!r}")
        cases = t.get("cases", list, required=True)
        if not cases:
            raise t.error("cases", "must name at least one case")
        for name in cases:
            if not isinstance(name, str) or name not in known:
                raise t.error("cases", f"names {name!r}, which is not a shipped case")
        if len(set(cases)) != len(cases):
            raise t.error("cases", "names a case twice")
        t.finish()
        out.append(Question(text, tuple(cases)))
    if not out:
        raise CaseError(str(path), "question", "lists no questions")
    return out
