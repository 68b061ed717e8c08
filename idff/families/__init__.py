"""Data families: how each kind of data feeds the trainer and is evaluated.

A family turns a job spec (a config slice) into a training pair source and evaluates a
generator on a held-out split (the hooks of ``base.FamilyBase``). It owns its settings too:
its data sets, its preparation and evaluation-only data keys and its config checks. Families
live in their own modules and are looked up by name: training, tuning, sweeps and floors need a
module and a registry line; a family's tables, figures and figure-only jobs are registered in
the report and in ``idff.plan`` (docs/architecture.md lists every place).
"""

from __future__ import annotations

import importlib

from .base import FamilyBase

FAMILIES: dict[str, str] = {
    "toy": "idff.families.toy:ToyFamily",
    "md": "idff.families.md:MDFamily",
    "sst": "idff.families.sst:SSTFamily",
    "images": "idff.families.images:ImagesFamily",
}


def get_family(name: str) -> FamilyBase:
    if name not in FAMILIES:
        raise ValueError(f"unknown data family {name!r}; valid: {', '.join(FAMILIES)}")
    module, cls = FAMILIES[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise ValueError(f"data family {name!r} is not available in this version ({exc})") from exc
    return getattr(mod, cls)()


__all__ = ["FAMILIES", "FamilyBase", "get_family"]
