"""The docs stand alone: every link in README.md and docs/ (and config/README.md) points at a
file of this repository that exists; nothing points outside it (a fresh clone has nothing
there), neither as a link nor as a quoted relative path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "config" / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
AUTOLINK = re.compile(r"<((?:https?|ftp|file)://[^>]+)>")
QUOTED_PATH = re.compile(r"`(\.\./[^`\s]+)`")


def links(text: str) -> list[str]:
    return LINK.findall(text) + AUTOLINK.findall(text)


def problems(doc: Path, text: str | None = None) -> list[str]:
    """What is wrong with the links of ``doc`` (its file text, or ``text`` placed there)."""
    text = doc.read_text() if text is None else text
    bad = []
    for target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            bad.append(f"{target} (leaves the repository)")
            continue
        path = target.split("#", 1)[0]
        if not path:
            continue  # an anchor on the same page
        resolved = (doc.parent / path).resolve()
        if not resolved.is_relative_to(REPO):
            bad.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            bad.append(f"{target} (no such file)")
    for quoted in QUOTED_PATH.findall(text):
        if not (doc.parent / quoted).resolve().is_relative_to(REPO):
            bad.append(f"`{quoted}` (a path outside the repository)")
    return bad


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_link_leaves_the_repository(doc):
    assert not problems(doc), f"{doc.relative_to(REPO)}: {problems(doc)}"


def test_the_checker_catches_each_kind():
    doc = REPO / "docs" / "x.md"  # links resolve against docs/; the file is never written
    text = ("[a](../../shared/docs/METHOD.md) [b](https://example.org) [c](missing.md) "
            "[d](method.md) ![e](results/fig_md_cpu.png) [f](#top) see `../../shared/notes.md`")
    bad = problems(doc, text)
    assert len(bad) == 4, bad
    assert any("outside" in b for b in bad) and any("leaves" in b for b in bad)
    assert any("no such file" in b for b in bad) and any("`../../shared/notes.md`" in b for b in bad)
