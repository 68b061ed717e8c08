"""Shared rendering of tables and figures: number formatting, Markdown and LaTeX cells, and
saving a figure with the numbers it plots and its caption (each file atomically)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from ..io import atomic_path, write_text_atomic

TABLE_SUFFIXES = (".md", ".csv", ".tex")


def fmt_sig(x: float, sig: int = 3) -> str:
    """``x`` with ``sig`` significant digits, plain decimals for 1e-4 <= |x| < 1e6."""
    if x is None or not math.isfinite(x):
        return "–"
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    if -4 <= mag < 6:
        text = f"{x:.{max(0, sig - 1 - mag)}f}"
        return "0" if float(text) == 0 else text
    return f"{x:.{sig - 1}e}"


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def tex_escape(text: str) -> str:
    table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
             "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
             "^": r"\textasciicircum{}"}
    return "".join(table.get(ch, ch) for ch in text)


def table_paths(out: str | Path) -> dict[str, Path]:
    """The three files of a table target: ``out`` names one of them, the others share its stem."""
    out = Path(out)
    if out.suffix not in TABLE_SUFFIXES:
        raise ValueError(f"table output {out} must end in one of {', '.join(TABLE_SUFFIXES)}; "
                         f"the other two formats are written next to it")
    return {s: out.with_suffix(s) for s in TABLE_SUFFIXES}


DPI = 120


def save_png(fig: Figure, out: str | Path, dpi: int | None = None, colors: int | None = 256) -> Path:
    """Write a PNG atomically, quantised to a 256-colour palette (about 3x smaller, same look).

    ``colors=None`` keeps full RGB: smooth colour maps (several on one figure) band otherwise.
    """
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"figure output {out} must be a .png file")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi or DPI, bbox_inches="tight", facecolor="white")
    buf.seek(0)
    with Image.open(buf) as im:
        small = im.convert("RGB")
        if colors is not None:
            small = small.quantize(colors=colors, dither=Image.Dither.NONE)
    with atomic_path(out, suffix=".png") as tmp:
        small.save(tmp, format="PNG", optimize=True)
    return out


def companion_paths(out: str | Path) -> tuple[Path, Path]:
    """The plotted numbers (``<stem>.csv``) and caption (``<stem>.caption.md``) beside a PNG."""
    out = Path(out)
    return out.parent / f"{out.stem}.csv", out.parent / f"{out.stem}.caption.md"


def save_figure(fig: Figure, out: str | Path, data: pd.DataFrame, caption: str,
              **kw: Any) -> list[Path]:
    """The PNG, the numbers it plots (CSV) and its caption (Markdown), each atomically."""
    png = save_png(fig, out, **kw)
    csv, md = companion_paths(out)
    with atomic_path(csv, suffix=".csv") as tmp:
        data.to_csv(tmp, index=False, float_format="%.8g")
    write_text_atomic(md, caption.rstrip() + "\n")
    return [png, csv, md]


def stat_cell(stat: tuple[float, float, int] | None, n_total: int, scale: float = 1.0,
              tex: bool = False) -> str:
    """``mean ± std (n=k)`` of a (mean, std, n seeds) statistic, scaled; a dash when there is
    no statistic or no finite mean. The ± part needs two seeds, the (n=k) part fewer seeds
    than the experiment has."""
    if stat is None or stat[2] == 0 or not math.isfinite(stat[0]):
        return "--" if tex else "–"
    mean, std, n = stat
    text = fmt_sig(mean * scale)
    if n > 1 and math.isfinite(std):
        text += (r" $\pm$ " if tex else " ± ") + fmt_sig(std * scale)
    if n < n_total:
        text += f" ($n={n}$)" if tex else f" (n={n})"
    return text
