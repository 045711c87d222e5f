"""engine/pycode.py: the one spelling of numbers in the code xdecay writes (case pages'
setup code and `xdecay port`), checked against Python reading it back."""
from __future__ import annotations

import pytest

from xdecay.engine.pycode import Code, number, value


@pytest.mark.parametrize("x, text", [
    (1, "1"), (1.0, "1.0"), (100.0, "100.0"), (0.1, "0.1"), (1e-06, "1e-06"), (1e16, "1e+16"),
    (0.1 * 0.1, "0.01"),                     # a computed group lr shows as the decimal it stands for
    (123456789.0, "123456789.0"),            # the old %g spelling wrote 1.23457e+08
])
def test_number(x, text):
    assert number(x) == text


@pytest.mark.parametrize("x", [1 / 3, 2 / 3 * 1e-7, 0.9999999, 123456.789012345])
def test_number_reads_back_within_15_digits(x):
    assert abs(float(number(x)) - x) <= 1e-15 * abs(x)


def test_value():
    assert value("torch", "betas", [0.9, 0.95]) == "(0.9, 0.95)"
    assert value("torch", "milestones", (3,)) == "(3,)"
    assert value("paddle", "lr_ratio", 0.5) == "lambda param: 0.5"
    assert value("paddle", "grad_clip", Code("clip")) == "clip"
    assert value("torch", "nesterov", True) == "True"
