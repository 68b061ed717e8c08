"""Which files each named paper target writes (Snakemake outputs and DVC outs alike).

Every target writes three files beside each other, so that one DVC stage template fits all:
a table writes Markdown (the path named in the config), CSV and LaTeX; a figure writes the PNG
(the path in the config), the plotted numbers as CSV and its caption as Markdown.
"""

from __future__ import annotations

from pathlib import PurePosixPath

OUTPUT_KEYS = ("main", "data", "extra")


def paper_outputs(target: str, path: str) -> list[str]:
    p = PurePosixPath(path)
    stem = str(p.with_suffix(""))
    if target.startswith("table_"):
        if p.suffix != ".md":
            raise ValueError(f"paper_targets.{target}: a table's path must end in .md, got {path}")
        return [f"{stem}.md", f"{stem}.csv", f"{stem}.tex"]
    if target.startswith("fig_"):
        if p.suffix != ".png":
            raise ValueError(f"paper_targets.{target}: a figure's path must end in .png, got {path}")
        return [f"{stem}.png", f"{stem}.csv", f"{stem}.caption.md"]
    raise ValueError(f"paper target {target!r} must start with table_ or fig_")


def dvc_items(paper_targets: dict[str, str]) -> dict[str, dict[str, str]]:
    """The ``foreach`` items of dvc.yaml's ``paper`` stage."""
    return {t: dict(zip(OUTPUT_KEYS, paper_outputs(t, p), strict=True))
            for t, p in paper_targets.items()}
