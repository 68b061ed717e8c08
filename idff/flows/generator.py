"""A trained network bound to a sampler, a solver and an NFE budget: x0 (+ cond) -> x1.

``Generator`` runs the plain sampling loop (``sampling.generate``); ``FusedGenerator`` the fused
one (``fused.fused_generate``), the small-batch fast path behind ``sweep.fused``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .fused import fused_generate
from .nfe import CountingNet
from .sampling import generate


@dataclass
class Generator:
    net: CountingNet
    sampler: str
    solver: str
    nfe: int | None
    sigma: float
    params: dict = field(default_factory=dict)
    t_eps: float = 1e-3
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    calls: int = 0
    nfe_per_call: int = 0
    vjp_per_call: int = 0
    steps_per_call: int | None = None
    wall_s: float = 0.0

    @staticmethod
    def _generate(*args, **kwargs):
        """The sampling loop; ``FusedGenerator`` swaps in the fused one."""
        return generate(*args, **kwargs)

    def __call__(self, x0: Tensor, cond: Tensor | None = None, seed: int = 0,
                 return_trajectory: bool = False):
        """Generate x1 from ``x0``; the SDE noise (if any) is seeded by ``seed``."""
        g = torch.Generator(device=self.device).manual_seed(int(seed) + 99)
        x0 = x0.to(self.device)
        cond = cond.to(self.device) if cond is not None else None
        res = self._generate(self.net, self.sampler, x0, sigma=self.sigma, solver=self.solver,
                             nfe=self.nfe, params=self.params, cond=cond, generator=g,
                             t_eps=self.t_eps, return_trajectory=return_trajectory)
        stats = res[-1]
        self.calls += 1
        self.nfe_per_call, self.vjp_per_call = stats.nfe, stats.vjp
        self.steps_per_call = stats.steps
        self.wall_s += stats.wall_s
        return res[:-1] if return_trajectory else res[0]


class FusedGenerator(Generator):
    """A ``Generator`` whose calls go through ``fused_generate`` (plain loop where not fusable)."""

    @staticmethod
    def _generate(*args, **kwargs):
        return fused_generate(*args, **kwargs)
