"""The README renders: every table is a table (as GitHub's Markdown reads it),
every row has as many cells as its header, and every link to a file of the
repository points at one that exists."""

from __future__ import annotations

import re

from tests.conftest import ROOT, require_module

markdown_it = require_module("markdown_it")

README = ROOT / "README.md"


def render(text: str):
    return markdown_it.MarkdownIt("commonmark").enable("table").parse(text)


def cells(line: str) -> int:
    """Cells of a raw table row, split as GitHub does: on every `|` not escaped
    with a backslash, inside `code` too."""
    line = line.strip().replace("\\|", "")
    return len(line.strip("|").split("|"))


def table_problems(text: str) -> list[str]:
    tokens = render(text)
    lines = text.splitlines()
    in_tables, in_code = set(), set()
    problems = []
    for token in tokens:
        if token.type == "table_open":
            start, end = token.map
            in_tables.update(range(start, end))
            header = cells(lines[start])
            for number in range(start, end):
                if cells(lines[number]) != header:
                    problems.append(f"line {number + 1}: {cells(lines[number])} cells, the header has {header}")
        if token.type in ("fence", "code_block") and token.map:
            in_code.update(range(*token.map))
    for number, line in enumerate(lines):
        if line.lstrip().startswith("|") and number not in in_tables | in_code:
            problems.append(f"line {number + 1}: a table row that does not render as a table: {line[:60]!r}")
    return problems


def test_the_check_finds_a_broken_table():
    broken = "| a | b | c |\n|---|---|---|---|\n| 1 | 2 | 3 |\n"
    assert table_problems(broken)[0].startswith("line 1: a table row that does not render")
    ragged = "| a | b |\n|---|---|\n| 1 | 2 | 3 |\n"
    assert table_problems(ragged) == ["line 3: 3 cells, the header has 2"]
    assert table_problems("| a | `x\\|y` |\n|---|---|\n| 1 | 2 |\n") == []
    assert table_problems("| a | `x|y` |\n|---|---|\n| 1 | 2 |\n")  # GitHub splits cells inside code too


def test_every_table_of_the_readme_renders():
    assert table_problems(README.read_text(encoding="utf-8")) == []


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_point_at_files_and_headings_that_exist():
    tokens = render(README.read_text(encoding="utf-8"))
    headings = {anchor(tokens[index + 1].content) for index, token in enumerate(tokens)
                if token.type == "heading_open"}
    missing = []
    for token in tokens:
        for child in token.children or []:
            href = child.attrGet("href") if child.type == "link_open" else None
            if href and href.startswith("#") and href[1:] not in headings:
                missing.append(href)
            elif href and not re.match(r"^(#|[a-z]+:)", href) and not (ROOT / href.split("#")[0]).exists():
                missing.append(href)
    assert missing == []


def test_an_anchor_is_the_one_github_makes():
    assert anchor("Emulator mode: the cloud loop on a laptop") == "emulator-mode-the-cloud-loop-on-a-laptop"
    assert anchor("Dependencies, and why") == "dependencies-and-why"
