"""Data families: how each kind of data feeds the trainer and the evaluation.

A family turns a job spec into a training pair source, held-out targets and metrics. The toy
family is defined here; md, sst and images register theirs in their own modules.
"""

from __future__ import annotations

from typing import Any, Protocol

from torch import Tensor


class Family(Protocol):
    def train_source(self, spec: dict) -> Any: ...
    def eval_batch(self, spec: dict, split: str, n: int, seed: int) -> tuple[Tensor, Tensor, Any]: ...
    def metrics(self, samples: Tensor, target: Tensor) -> dict[str, float]: ...


def get_family(name: str) -> Family:
    if name == "toy":
        from .toy import ToyFamily

        return ToyFamily()
    raise ValueError(f"data family {name!r} is not available yet; valid: toy")
