"""Which files each named paper target writes (Snakemake outputs and DVC outs alike).

Every target writes three files beside each other, so that one DVC stage template fits all:
a table writes Markdown (the path named in the config), CSV and LaTeX; a figure writes the PNG
(the path in the config), the plotted numbers as CSV and its caption as Markdown.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from . import target_inputs

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


DEP_KEYS = ("in1", "in2", "in3", "in4")


def dvc_deps(target: str, cfg: dict) -> list[str]:
    """The result folders ``target`` reads (``results/<kind>/<experiment>``), in DEP_KEYS slots.

    DVC cannot splice a list into a stage's ``deps``, so each paper item carries a fixed number
    of folders (repeated when fewer); a target reading more folders than slots depends on the
    whole ``results/<kind>`` folders instead. So `dvc repro paper@table_toy` runs only toy jobs.
    """
    files = [f for f in target_inputs(target, cfg) if f.startswith("results/")]
    for depth in (3, 2):
        dirs = list(dict.fromkeys("/".join(f.split("/")[:depth]) for f in files))
        if len(dirs) <= len(DEP_KEYS):
            break
    else:
        raise ValueError(f"paper target {target} reads {len(dirs)} result folders, more than the "
                         f"{len(DEP_KEYS)} dependency slots of dvc.yaml's paper stage")
    if not dirs:
        raise ValueError(f"paper target {target} reads no result files")
    return dirs + [dirs[0]] * (len(DEP_KEYS) - len(dirs))


def dvc_items(paper_targets: dict[str, str], cfg: dict) -> dict[str, dict[str, str]]:
    """The ``foreach`` items of dvc.yaml's ``paper`` stage: each target's three outputs and the
    result folders it reads."""
    return {t: {**dict(zip(OUTPUT_KEYS, paper_outputs(t, p), strict=True)),
                **dict(zip(DEP_KEYS, dvc_deps(t, cfg), strict=True))}
            for t, p in paper_targets.items()}
