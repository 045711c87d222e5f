"""The committed reports/ pages render right under a real CommonMark/GFM parser
(markdown-it-py, the `test` extra): every table parses as a table, every link and
picture resolves, no `\\|` shows outside a table, nothing turns into emphasis by
accident — and the rendered HTML opens in a headless browser where one exists.
Fresh pages are compared with the committed ones in test_reports.py; the pictures'
reproducibility is checked here (xdecay report twice, same bytes).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xdecay.writers.html import parser, render, render_tree

from .conftest import ROOT

REPORTS = ROOT / "reports"
PAGES = sorted(REPORTS.rglob("*.md"))


def _tokens(page: Path):
    return parser().parse(page.read_text(encoding="utf-8"))


def _table_lines(tokens) -> set[int]:
    return {i for t in tokens if t.type == "table_open" for i in range(*t.map)}


def _fence_lines(tokens) -> set[int]:
    return {i for t in tokens if t.type in ("fence", "code_block", "html_block") for i in range(*t.map)}


def _targets(tokens) -> list[str]:
    out = []
    for t in tokens:
        for child in t.children or ():
            if child.type == "link_open":
                out.append(child.attrs["href"])
            elif child.type == "image":
                out.append(child.attrs["src"])
    return out


def test_the_report_has_pages():
    assert len(PAGES) > 20 and (REPORTS / "index.md") in PAGES


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPORTS)))
def test_every_table_parses_as_a_table(page):
    """A line that starts like a table row must be inside a parsed table: a row that
    breaks (a newline in a cell, a ragged column count) falls out as a paragraph."""
    tokens = _tokens(page)
    inside = _table_lines(tokens) | _fence_lines(tokens)
    lines = page.read_text(encoding="utf-8").splitlines()
    stray = [f"line {i + 1}: {line[:80]}" for i, line in enumerate(lines)
             if line.startswith("|") and i not in inside]
    assert not stray, stray[:3]
    for t in tokens:
        if t.type == "table_open":
            head = next(x for x in tokens[tokens.index(t):] if x.type == "tr_close")
            assert head is not None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPORTS)))
def test_every_link_and_picture_resolves(page):
    for target in _targets(_tokens(page)):
        if re.match(r"[a-z]+:", target):
            continue                     # an absolute URL: not ours to check offline
        path = target.partition("#")[0]
        if path:
            assert (page.parent / path).is_file(), f"{page.relative_to(REPORTS)}: {target} does not exist"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPORTS)))
def test_no_escaped_pipe_outside_tables(page):
    """Outside a table `\\|` shows its backslash."""
    tokens = _tokens(page)
    inside = _table_lines(tokens) | _fence_lines(tokens)
    lines = page.read_text(encoding="utf-8").splitlines()
    escaped = [f"line {i + 1}" for i, line in enumerate(lines) if "\\|" in line and i not in inside]
    assert not escaped, escaped[:3]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPORTS)))
def test_no_accidental_emphasis(page):
    """The writers never mean emphasis (bold is **...**): an <em> is a `*` of a formula
    like 0.5*c*sum(w^2) that went unescaped."""
    assert "<em>" not in parser().render(page.read_text(encoding="utf-8"))


def test_case_pages_put_the_answer_first():
    """Verdict, then what it means, then the rules; raw deltas last and folded."""
    for page in sorted((REPORTS / "cases").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        # A case whose every run the frameworks refuse (adam_capturable) has no deltas and
        # no picture; its page says why in the picture's place.
        refused = "plot skipped: fewer than two runs ran" in text and "## Deltas" not in text
        parts = ("**Verdict:**", "**What it means for a port:**", "## Comparisons",
                 *(() if refused else ("## Deltas", "<details>")))
        order = [text.find(s) for s in parts]
        assert -1 not in order and order == sorted(order), page.name
        assert refused or page.with_suffix(".png").is_file(), f"{page.name}: no picture"


def test_report_twice_gives_identical_bytes_pictures_included(tmp_path):
    """Two `xdecay report` runs: every page and every PNG byte-identical."""
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        out.mkdir()
        done = subprocess.run([sys.executable, "-m", "xdecay", "report", "--out", str(out)], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert any(f.suffix == ".png" for f in files) and any(f.parts[0] == "cases" and f.suffix == ".png"
                                                          for f in files)
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    different = [str(f) for f in files if (a / f).read_bytes() != (b / f).read_bytes()]
    assert not different


def _browser() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                None)


@pytest.mark.skipif(_browser() is None, reason="no headless browser (chromium) on this machine: "
                    "`apt-get install chromium` to run it")
def test_rendered_report_opens_in_a_headless_browser(tmp_path):
    """The HTML of the report (python -m xdecay.writers.html reports/ OUT) loads in
    chromium: the DOM it builds has the index's question tables and a case page's
    picture, and a screenshot is taken (tmp_path/*.png, for a person to look at)."""
    render_tree(REPORTS, tmp_path / "html")
    browser = _browser()
    for page, must in (("index.html", "<table>"), ("cases/precedence_adamw.html", 'src="precedence_adamw.png"')):
        url = (tmp_path / "html" / page).as_uri()
        dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url],
                             capture_output=True, text=True, timeout=120)
        assert must in dom.stdout, dom.stderr[-1000:]
        shot = tmp_path / (Path(page).stem + ".png")
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1280,2000", f"--screenshot={shot}", url],
                       capture_output=True, timeout=120)
        assert shot.is_file() and shot.stat().st_size > 10_000


def test_html_renders_tables_and_links_to_html():
    text = "| a | b |\n|---|---|\n| [x](cases/x.md) | 1 |\n"
    out = render(text, "t")
    assert "<table>" in out and 'href="cases/x.html"' in out
