"""Probability paths x_t between a source x0 and a target x1.

One small class family in the torchcfm style: a path knows its mean mu_t, its noise scale
sigma_t and the conditional velocity that moves a point along it. Times ``t`` have shape (B,)
and broadcast over the data dimensions.
"""

from __future__ import annotations

import torch
from torch import Tensor


def expand_like(t: Tensor, x: Tensor) -> Tensor:
    """Reshape per-sample times (B,) to (B, 1, ..., 1) so they broadcast against x."""
    return t.reshape(-1, *([1] * (x.dim() - 1)))


class ProbabilityPath:
    """x_t = t x1 + (1 - t) x0 + sigma_t eps, with sigma_t defined by the subclass."""

    def __init__(self, sigma: float) -> None:
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)

    def sigma_t(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def dsigma_t(self, t: Tensor) -> Tensor:
        """Time derivative of sigma_t."""
        raise NotImplementedError

    def mu_t(self, x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
        te = expand_like(t, x1)
        return te * x1 + (1 - te) * x0

    def sample_xt(self, x0: Tensor, x1: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        return self.mu_t(x0, x1, t) + expand_like(self.sigma_t(t), x1) * eps

    def conditional_velocity(self, x0: Tensor, x1: Tensor, t: Tensor, xt: Tensor) -> Tensor:
        """u_t(x | x0, x1) = (x1 - x0) + sigma_t'/sigma_t (x - mu_t)."""
        u = x1 - x0
        if self.sigma == 0:
            return u
        ratio = self.dsigma_t(t) / self.sigma_t(t)
        return u + expand_like(ratio, xt) * (xt - self.mu_t(x0, x1, t))


class ConstantSigmaPath(ProbabilityPath):
    """I-CFM / OT-CFM path: sigma_t = sigma for all t (Tong et al. 2023)."""

    def sigma_t(self, t: Tensor) -> Tensor:
        return torch.full_like(t, self.sigma)

    def dsigma_t(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def conditional_velocity(self, x0: Tensor, x1: Tensor, t: Tensor, xt: Tensor) -> Tensor:
        return x1 - x0


class BrownianBridgePath(ProbabilityPath):
    """Brownian-bridge path of IDFF and SB-CFM: sigma_t = sigma sqrt(t (1 - t))."""

    def sigma_t(self, t: Tensor) -> Tensor:
        return self.sigma * torch.sqrt(t * (1 - t))

    def dsigma_t(self, t: Tensor) -> Tensor:
        return self.sigma * (1 - 2 * t) / (2 * torch.sqrt(t * (1 - t)))

    def conditional_velocity(self, x0: Tensor, x1: Tensor, t: Tensor, xt: Tensor) -> Tensor:
        # sigma_t'/sigma_t = (1 - 2t) / (2 t (1 - t)); written without the sqrt to stay finite longer
        ratio = (1 - 2 * t) / (2 * t * (1 - t))
        return (x1 - x0) + expand_like(ratio, xt) * (xt - self.mu_t(x0, x1, t))
