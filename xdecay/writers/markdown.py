"""Text inside markdown pages: the one place that says what GFM would misread."""
from __future__ import annotations

import re

# GFM opens emphasis at a `*` anywhere (0.5*c*sum(w^2)) and at a `_` that is not between two
# letters or digits (SGD.__init__ renders as SGD.<strong>init</strong>). An intraword `_`
# (coupled_l2, apply_decay_param_fun) opens nothing and stays as written, so rule names and
# arguments read plainly in the page source too.
_EMPHASIS = re.compile(r"\*|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def prose(text: str) -> str:
    """Running text (descriptions, notes, messages): every character shows as itself.
    Not for code spans, where a backslash would show."""
    return _EMPHASIS.sub(lambda m: "\\" + m.group(0), text)


def cell(text: str) -> str:
    """A table cell: as `prose`, with a pipe escaped (only here: outside a table the
    backslash would show) and on one line (a line break ends the row)."""
    return prose(text).replace("|", "\\|").replace("\n", " ")
