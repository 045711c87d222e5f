"""The report as HTML, to look at it as a docs site would show it:

    python -m xdecay.writers.html reports/ /tmp/reports-html

Every page under the first folder is rendered by a CommonMark parser with GitHub's
tables (markdown-it-py: the `test` extra), links to .md pages turned into links to
their .html, and pictures copied beside them. A development aid for checking that the
pages render right (tests/test_pages_render.py), not part of the xdecay command.
"""
from __future__ import annotations

import html
import re
import shutil
import sys
from pathlib import Path

STYLE = ("body{font-family:sans-serif;max-width:75em;margin:1em auto;padding:0 1em;line-height:1.4}"
         "table{border-collapse:collapse;margin:.5em 0;font-size:.85em}"
         "td,th{border:1px solid #bbb;padding:.15em .4em;text-align:left}"
         "pre{background:#f4f4f4;padding:.5em;overflow-x:auto}code{font-size:.9em}"
         "img{max-width:100%}details{margin:.3em 0}")


def parser():
    """CommonMark with GFM tables and raw HTML (the pages fold deltas in <details>)."""
    from markdown_it import MarkdownIt
    return MarkdownIt("commonmark", {"html": True}).enable("table")


def render(text: str, title: str) -> str:
    body = parser().render(text)
    body = re.sub(r'href="([^":#]+)\.md(#[^"]*)?"', lambda m: f'href="{m[1]}.html{m[2] or ""}"', body)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n{body}</body></html>\n")


def render_tree(src: Path, dst: Path) -> list[Path]:
    """Every .md under `src` as .html under `dst` (same layout), pictures copied."""
    written = []
    for page in sorted(src.rglob("*.md")):
        out = dst / page.relative_to(src).with_suffix(".html")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render(page.read_text(encoding="utf-8"), page.stem), encoding="utf-8")
        written.append(out)
    for picture in sorted(src.rglob("*.png")):
        target = dst / picture.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(picture, target)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m xdecay.writers.html REPORTS_DIR OUT_DIR", file=sys.stderr)
        return 2
    written = render_tree(Path(argv[0]), Path(argv[1]))
    print(f"wrote {len(written)} pages under {argv[1]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
