"""Probability paths (METHOD.md section 1) against hand formulas and finite differences."""

from __future__ import annotations

import math

import pytest
import torch

from idff.flows.paths import BrownianBridgePath, ConstantSigmaPath, ProbabilityPath, expand_like

SHAPES = [(7, 2), (5, 3, 4, 4)]
SIGMAS = [0.0, 0.1, 0.2, 1.0]


def _triple(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(3))


def _times(n: int, lo: float = 0.05, hi: float = 0.95) -> torch.Tensor:
    return torch.linspace(lo, hi, n, dtype=torch.float64)


def _bcast(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, *([1] * (x.dim() - 1)))


def test_expand_like_shapes():
    t = torch.arange(5.0)
    assert expand_like(t, torch.zeros(5, 3, 4, 4)).shape == (5, 1, 1, 1)
    assert expand_like(t, torch.zeros(5, 2)).shape == (5, 1)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_sigma_t_formulas(sigma):
    t = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.9, 1.0], dtype=torch.float64)
    bb = BrownianBridgePath(sigma).sigma_t(t)
    hand = torch.tensor([sigma * math.sqrt(v * (1 - v)) for v in t.tolist()], dtype=torch.float64)
    torch.testing.assert_close(bb, hand, rtol=0, atol=1e-15)
    assert bb[0] == 0 and bb[-1] == 0  # the bridge pins both ends
    torch.testing.assert_close(ConstantSigmaPath(sigma).sigma_t(t), torch.full_like(t, sigma))


@pytest.mark.parametrize("sigma", [0.1, 0.2, 1.0])
def test_dsigma_t_is_the_derivative_of_sigma_t(sigma):
    t, h = _times(19), 1e-6
    for path in (BrownianBridgePath(sigma), ConstantSigmaPath(sigma)):
        fd = (path.sigma_t(t + h) - path.sigma_t(t - h)) / (2 * h)
        torch.testing.assert_close(path.dsigma_t(t), fd, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("path_cls", [ConstantSigmaPath, BrownianBridgePath])
def test_mu_t_and_sample_xt_by_hand(path_cls, sigma, shape):
    x0, x1, eps = _triple(shape)
    t = torch.rand(shape[0], generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    path = path_cls(sigma)
    tb = _bcast(t, x0)
    mu = tb * x1 + (1 - tb) * x0
    st = sigma * torch.sqrt(tb * (1 - tb)) if path_cls is BrownianBridgePath else sigma
    torch.testing.assert_close(path.mu_t(x0, x1, t), mu, rtol=0, atol=1e-14)
    torch.testing.assert_close(path.sample_xt(x0, x1, t, eps), mu + st * eps, rtol=0, atol=1e-14)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("path_cls", [ConstantSigmaPath, BrownianBridgePath])
def test_conditional_velocity_is_dxt_dt(path_cls, sigma, shape):
    """u_t(x_t | x0, x1) equals d/dt of x_t(t) = t x1 + (1 - t) x0 + sigma_t eps (central FD)."""
    x0, x1, eps = _triple(shape, seed=1)
    path, h = path_cls(sigma), 1e-6
    t = _times(shape[0])
    xt = path.sample_xt(x0, x1, t, eps)
    fd = (path.sample_xt(x0, x1, t + h, eps) - path.sample_xt(x0, x1, t - h, eps)) / (2 * h)
    u = path.conditional_velocity(x0, x1, t, xt)
    torch.testing.assert_close(u, fd, rtol=1e-6, atol=1e-7)
    if sigma > 0 and path_cls is BrownianBridgePath:
        # the generic base-class formula (x1 - x0) + sigma_t'/sigma_t (x - mu_t) agrees too
        torch.testing.assert_close(ProbabilityPath.conditional_velocity(path, x0, x1, t, xt), u)
        # and it is the SB-CFM flow of METHOD.md section 6
        tb = _bcast(t, x0)
        sb = (1 - 2 * tb) / (2 * tb * (1 - tb)) * (xt - path.mu_t(x0, x1, t)) + (x1 - x0)
        torch.testing.assert_close(u, sb, rtol=1e-12, atol=1e-12)


def test_negative_sigma_is_rejected():
    for cls in (ConstantSigmaPath, BrownianBridgePath):
        with pytest.raises(ValueError, match="sigma must be >= 0"):
            cls(-0.1)
