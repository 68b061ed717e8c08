"""The trainer's speed switches: optimiser kernels, matmul precision, memory format, CUDA graphs.

- AdamW runs the fused kernel (one launch per step on CUDA, its step counters stay on the
  device; on the CPU one pass over each tensor instead of a dozen operations).
- ``train.tf32`` lets CUDA matmuls and convolutions use TF32 (the issue-17 measurement on an
  H200: TF32 was faster than bf16 autocast at the paper's CIFAR-10 size).
- ``train.channels_last`` stores 4-D weights and image batches NHWC.
- ``train.cuda_graphs`` captures the network's forward and backward for the fixed batch shape
  (``torch.cuda.make_graphed_callables``); CUDA only.

All are off in ``TrainConfig`` and are set per experiment in the config; none was measured on a
GPU in the session that added them (docs/performance.md).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


def make_optimizer(model: nn.Module, lr: float, weight_decay: float,
                   device: torch.device) -> torch.optim.Optimizer:
    """Fused AdamW (CUDA, and the CPU too: 3x faster than the per-tensor loop for the toy MLP,
    benchmarks/bench_trainer.py); foreach where this torch has no fused kernel for the device."""
    try:
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    except RuntimeError:
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                                 foreach=True)


def check_switches(cfg: Any, device: torch.device) -> None:
    """One-line errors, before any compute, for switches the device cannot honour."""
    if cfg.cuda_graphs and device.type != "cuda":
        raise ValueError(f"train.cuda_graphs needs a CUDA device, but this job runs on {device}; "
                         f"set train.cuda_graphs: false (or run on a GPU)")
    if cfg.cuda_graphs and cfg.bf16:
        raise ValueError("train.cuda_graphs does not combine with train.bf16 (autocast caches "
                         "casts outside the captured graph); turn one of them off")


def configure_backends(cfg: Any, device: torch.device) -> None:
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest convolution once
    if cfg.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def memory_format(model: nn.Module, cfg: Any) -> nn.Module:
    return model.to(memory_format=torch.channels_last) if cfg.channels_last else model


def as_format(x: Tensor | None, cfg: Any) -> Tensor | None:
    if x is None or not cfg.channels_last or x.ndim != 4:
        return x
    return x.contiguous(memory_format=torch.channels_last)


class _Call(nn.Module):
    """``model(x, t)`` or ``model(x, t, cond)`` with tensor arguments only (what graphing needs)."""

    def __init__(self, model: nn.Module, with_cond: bool) -> None:
        super().__init__()
        self.model, self.with_cond = model, with_cond

    def forward(self, x: Tensor, t: Tensor, *cond: Tensor) -> Tensor:
        return self.model(x, t, cond[0] if self.with_cond else None)


class GraphedNet(nn.Module):
    """The training network with its forward and backward captured once per batch shape.

    Built lazily at the first call (the shapes are then known). Parameters are shared with the
    eager model, so the optimiser, the EMA and the checkpoints see the same tensors.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self._graphed: dict[tuple, Any] = {}

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        t = t.reshape(x.shape[0]) if t.numel() == x.shape[0] else t.expand(x.shape[0])
        key = (tuple(x.shape), x.dtype, None if cond is None else tuple(cond.shape))
        if key not in self._graphed:
            args = (x.detach().clone().requires_grad_(x.requires_grad), t.detach().clone())
            if cond is not None:
                args = (*args, cond.detach().clone())
            self._graphed[key] = torch.cuda.make_graphed_callables(
                _Call(self.model, cond is not None), args)
        call = self._graphed[key]
        return call(x, t, cond) if cond is not None else call(x, t)


def maybe_graph(model: nn.Module, cfg: Any) -> nn.Module:
    """The module the loss calls: ``GraphedNet`` when ``train.cuda_graphs`` is on."""
    return GraphedNet(model) if cfg.cuda_graphs else model
