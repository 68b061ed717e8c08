"""Networks: MLP (toys, MD) and UNet (images, SST)."""

from __future__ import annotations

from torch import nn

from .mlp import MLP
from .unet import UNet


def build_model(arch: str, data_shape: tuple[int, ...], n_heads: int, n_cond: int = 0,
                **params) -> nn.Module:
    """Make a network for data of ``data_shape`` with ``n_heads`` stacked outputs."""
    if arch == "mlp":
        dim = 1
        for s in data_shape:
            dim *= s
        return MLP(dim, n_heads=n_heads, n_cond=n_cond, **params)
    if arch == "unet":
        c, h, _ = data_shape
        return UNet(in_channels=c, out_channels=n_heads * c, image_size=h, n_cond=n_cond, **params)
    raise ValueError(f"unknown model arch {arch!r}; valid: mlp, unet")
