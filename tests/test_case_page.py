"""A case page's answer comes from the case's own claims and results, not from text
kept in the writer: change the claims or their notes and the sentence follows."""
from __future__ import annotations

from xdecay.case import load_case
from xdecay.engine.compare import Tolerance
from xdecay.engine.pipeline import compare_case
from xdecay.writers.case_page import case_markdown, takeaway

from .conftest import MINIMAL, run, write_case

CLAIMS = MINIMAL + """
[[expect]]
equal = ["torch:weight_decay", "paddle:weight_decay"]
note = "a note only this file has"
"""


def _result(tmp_path, text):
    case = load_case(write_case(tmp_path, text))
    return compare_case(case, 0, run(case), case.steps, Tolerance.for_case(case))


def test_the_sentence_is_built_from_the_claim_and_its_note(tmp_path):
    r = _result(tmp_path, CLAIMS)
    assert r.ok
    sentence = takeaway(r)
    assert sentence == ("torch `SGD(weight_decay=0.1)` matches paddle `SGD(weight_decay=0.1)` "
                        "(a note only this file has).")
    page = case_markdown(r, {"torch": "x", "paddle": "y"})
    assert page.index("**Verdict:** OK") < page.index(sentence) < page.index("## Comparisons")


def test_a_failing_claim_turns_the_sentence_into_a_warning(tmp_path):
    r = _result(tmp_path, CLAIMS + '\n[[expect]]\nequal = ["torch:none", "torch:weight_decay"]\n')
    assert not r.ok
    assert takeaway(r).startswith("Do not rely on this case's claims on these versions: 1 of 2 claims fail")


def test_a_rule_claim_leads_with_its_run_and_the_equivalent(tmp_path):
    text = CLAIMS + ('\n[[expect]]\nrun = "paddle:weight_decay"\nparam = "weight"\nrule = "ambiguous(coupled_l2@0.1|'
                     'decoupled_lr@0.1)"\nnote = "why it is so"\n')
    sentence = takeaway(_result(tmp_path, text))
    assert sentence.startswith("paddle `SGD(weight_decay=0.1)` gives the weight `ambiguous(")
    assert sentence.endswith("(why it is so); the torch equivalent is `SGD(weight_decay=0.1)`.")
