"""Minibatch couplings of (x0, x1): independent, exact OT (POT's emd) and entropic OT (Sinkhorn)."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

COUPLINGS = ("independent", "exact_ot", "sinkhorn")


def ot_plan(x0: Tensor, x1: Tensor, method: str = "exact_ot", reg: float = 0.05) -> np.ndarray:
    """Transport plan between two equal-weight minibatches, squared Euclidean cost."""
    import ot  # POT: only OT couplings need it, so a GPU box without it can still train the rest

    a = x0.detach().reshape(x0.shape[0], -1).double().cpu()
    b = x1.detach().reshape(x1.shape[0], -1).double().cpu()
    cost_np = (torch.cdist(a, b) ** 2).numpy()
    wa = np.full(a.shape[0], 1.0 / a.shape[0])
    wb = np.full(b.shape[0], 1.0 / b.shape[0])
    if method == "exact_ot":
        plan = ot.emd(wa, wb, cost_np, numItermax=1_000_000)
    elif method == "sinkhorn":
        # plain Sinkhorn is ~15x faster than the log-domain one; when the small regularisation
        # SB-CFM uses (2 sigma^2) underflows it, the log-domain solver takes over
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plan = ot.sinkhorn(wa, wb, cost_np, reg=reg, numItermax=1000, stopThr=1e-4)
            if not np.all(np.isfinite(plan)) or plan.sum() <= 0:
                plan = ot.sinkhorn(wa, wb, cost_np, reg=reg, method="sinkhorn_log", numItermax=1000)
    else:
        raise ValueError(f"unknown OT method {method!r}; valid: exact_ot, sinkhorn")
    if not np.all(np.isfinite(plan)) or plan.sum() <= 0:
        plan = np.outer(wa, wb)  # numerical failure: fall back to the independent coupling
    return plan


def couple(x0: Tensor, x1: Tensor, method: str, generator: torch.Generator | None = None,
           reg: float = 0.05) -> tuple[Tensor, Tensor]:
    """Re-pair a minibatch. OT couplings draw pairs (i, j) from the plan (with replacement)."""
    if method == "independent":
        return x0, x1
    if method not in COUPLINGS:
        raise ValueError(f"unknown coupling {method!r}; valid: {', '.join(COUPLINGS)}")
    plan = ot_plan(x0, x1, method, reg)
    p = torch.as_tensor(plan.ravel() / plan.sum(), dtype=torch.float64)
    idx = torch.multinomial(p, x0.shape[0], replacement=True, generator=generator)
    i, j = idx // plan.shape[1], idx % plan.shape[1]
    return x0[i.to(x0.device)], x1[j.to(x1.device)]
