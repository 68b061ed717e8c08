"""A named table or figure: which experiment it reads, how it is built, which files it needs.

Its own module so that each report module can define its targets without importing the
registry (``idff.report.TARGETS``) that collects them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Builder = Callable[[str, dict, str, Path, Path], list[Path]]


@dataclass(frozen=True)
class Target:
    experiment: str
    build: Builder
    inputs: Callable[[dict, str], list[str]]
    caption: str
    #: every experiment the target reads, when more than its own (e.g. one image figure over
    #: all image experiments); the report rule passes exactly these config slices
    reads: Callable[[dict], list[str]] | None = None

    def experiments(self, cfg: dict) -> list[str]:
        return self.reads(cfg) if self.reads is not None else [self.experiment]
