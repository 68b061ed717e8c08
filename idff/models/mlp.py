"""MLP vector-field network with a time input and an optional condition embedding."""

from __future__ import annotations

import torch
from torch import Tensor, nn

ACTIVATIONS = {"selu": nn.SELU, "silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """[x, t (, embed(cond))] -> hidden layers -> ``n_heads * dim`` outputs.

    The paper's toy network: 3 hidden layers of 256 units with SELU. ``n_cond > 0`` adds an
    ``nn.Embedding(n_cond, cond_dim)`` for the frame index or lead time of time-series data.
    """

    def __init__(self, dim: int, n_heads: int = 1, hidden: int = 256, depth: int = 3,
                 activation: str = "selu", n_cond: int = 0, cond_dim: int = 32) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
        if dim < 1 or hidden < 1 or depth < 1 or n_heads < 1:
            raise ValueError("dim, hidden, depth and n_heads must all be >= 1")
        self.dim, self.n_heads, self.n_cond = dim, n_heads, n_cond
        self.embed = nn.Embedding(n_cond, cond_dim) if n_cond > 0 else None
        width_in = dim + 1 + (cond_dim if n_cond > 0 else 0)
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(width_in if i == 0 else hidden, hidden), ACTIVATIONS[activation]()]
        layers.append(nn.Linear(hidden, n_heads * dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        shape = x.shape
        x = x.reshape(shape[0], -1)
        t = t.reshape(-1, 1).to(x.dtype).expand(shape[0], 1)
        parts = [x, t]
        if self.embed is not None:
            if cond is None:
                raise ValueError("this model was built with a condition embedding; pass cond")
            parts.append(self.embed(cond.clamp(0, self.n_cond - 1)))
        out = self.net(torch.cat(parts, dim=1))
        if len(shape) > 2:  # (B, C, ...) data: heads stack along dim 1
            out = out.reshape(shape[0], self.n_heads * shape[1], *shape[2:])
        return out
