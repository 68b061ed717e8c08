"""Count real network forward passes (NFE) and autograd vector-Jacobian passes separately."""

from __future__ import annotations

from torch import Tensor, nn


class CountingNet(nn.Module):
    """Wraps a network; every forward call on a batch adds 1 to ``nfe``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.nfe = 0
        self.vjp = 0

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        self.nfe += 1
        return self.net(x, t, cond)

    def reset(self) -> None:
        self.nfe = 0
        self.vjp = 0
