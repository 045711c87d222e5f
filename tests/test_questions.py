"""cases/docs/questions.toml, the index's questions: read strictly, like a case file."""
from __future__ import annotations

import pytest

from xdecay.case_files import shipped_cases
from xdecay.errors import CaseError
from xdecay.writers.questions import load_questions

KNOWN = ["momentum", "adam"]


def test_the_shipped_questions_name_shipped_cases_only():
    names = [p.stem for p in shipped_cases()]
    questions = load_questions(names)
    assert questions and all(q.text.endswith("?") for q in questions)
    assert {n for q in questions for n in q.cases} <= set(names)


@pytest.mark.parametrize("text, words", [
    ('[[question]]\ntext = "Same?"\ncases = ["momentum"]\nextra = 1\n', "question[0].extra: unknown key"),
    ('[[question]]\ntext = "Same?"\ncases = ["nope"]\n', "question[0].cases: names 'nope'"),
    ('[[question]]\ntext = "Same"\ncases = ["adam"]\n', "question[0].text: must be a question"),
    ('[[question]]\ntext = "Same?"\ncases = []\n', "question[0].cases: must name at least one"),
    ('[[question]]\ntext = "Same?"\ncases = ["adam", "adam"]\n', "names a case twice"),
    ('[[question]]\ntext = "Same?"\ncases = ["adam"]\n[[question]]\ntext = "Same?"\ncases = ["momentum"]\n',
     "question[1].text: repeats"),
    ('question = []\n', "question: lists no questions"),
    ('[[question]]\ncases = ["adam"]\n', "question[0].text: is required"),
    ('[[question]\n', "TOML syntax error"),
])
def test_a_bad_questions_file_is_one_error_naming_the_key(tmp_path, text, words):
    path = tmp_path / "questions.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CaseError) as err:
        load_questions(KNOWN, path)
    assert str(err.value).startswith(str(path)) and words in str(err.value)
