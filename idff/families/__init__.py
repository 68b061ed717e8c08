"""Data families: how each kind of data feeds the trainer and is evaluated.

A family turns a job spec (a config slice) into a training pair source and evaluates a
generator on a held-out split. Families live in their own modules and are looked up by name,
so adding a data family adds a module and a registry line, nothing else in the library.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from torch import Tensor

from ..flows.generator import Generator

FAMILIES: dict[str, str] = {
    "toy": "idff.families.toy:ToyFamily",
    "md": "idff.families.md:MDFamily",
    "sst": "idff.families.sst:SSTFamily",
    "images": "idff.families.images:ImagesFamily",
}


class Family(Protocol):
    """What every data family provides.

    ``evaluate`` receives a ``Generator`` (network + sampler + solver + NFE budget + sampler
    parameters) that maps a source x0 (and a condition) to a generated x1; the family decides
    which x0 to start from (prior noise, the previous frame, ...), how often to call it
    (one step, roll-outs, ensembles) and which metrics to compute. Lower is better for the
    metric named by ``tune.metric``.
    """

    default_metric: str

    def data_file(self, spec: dict) -> str | None: ...
    def prepare(self, spec: dict, out: str) -> None: ...
    def train_source(self, spec: dict) -> Any: ...
    def evaluate(self, spec: dict, gen: Generator, split: str) -> dict[str, float]: ...
    def floor(self, spec: dict) -> dict[str, float] | None: ...


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown data family {name!r}; valid: {', '.join(FAMILIES)}")
    module, cls = FAMILIES[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise ValueError(f"data family {name!r} is not available in this version ({exc})") from exc
    return getattr(mod, cls)()


__all__ = ["FAMILIES", "Family", "Generator", "Tensor", "get_family"]
