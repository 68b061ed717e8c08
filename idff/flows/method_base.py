"""The base of every trained method: pairing, time draw and the regression-loss interface.

Its own module so that the method classes (``methods``) and the neural-ODE baseline (``node``)
both build on it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .couplings import couple
from .paths import ProbabilityPath


def draw_time(batch: int, like: Tensor, generator: torch.Generator | None,
              t_min: float = 0.0) -> Tensor:
    t = torch.rand(batch, generator=generator, device=like.device, dtype=like.dtype)
    return t_min + (1 - 2 * t_min) * t if t_min > 0 else t


@dataclass
class LossOutput:
    loss: Tensor
    parts: dict[str, Tensor | float]  # detached tensors: reading one would sync the GPU


class Method:
    """Base class: a probability path, a coupling and a regression loss."""

    name: str = ""
    n_heads: int = 1
    path: ProbabilityPath
    coupling: str = "independent"
    t_min: float = 0.0

    def pair(self, x0: Tensor, x1: Tensor, cond: Tensor | None,
             generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        # time-series pairs carry a frame index: re-pairing them would break the labels
        if cond is not None or self.coupling == "independent":
            return x0, x1
        return couple(x0, x1, self.coupling, generator=_cpu_gen(generator), reg=self.ot_reg)

    ot_reg: float = 0.05

    def loss(self, model: nn.Module, x0: Tensor, x1: Tensor, cond: Tensor | None = None,
             generator: torch.Generator | None = None) -> LossOutput:
        x0, x1 = self.pair(x0, x1, cond, generator)
        t = draw_time(x1.shape[0], x1, generator, self.t_min)
        eps = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
        xt = self.path.sample_xt(x0, x1, t, eps)
        return self.regress(model(xt, t, cond), x0, x1, t, xt, eps)

    def regress(self, out: Tensor, x0: Tensor, x1: Tensor, t: Tensor, xt: Tensor,
                eps: Tensor) -> LossOutput:
        raise NotImplementedError




def _cpu_gen(generator: torch.Generator | None) -> torch.Generator | None:
    # the plan is sampled on the CPU; derive a CPU generator from a device one deterministically
    if generator is None or generator.device.type == "cpu":
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    return torch.Generator().manual_seed(seed)
