"""Sampler fields on the IDFF network (METHOD.md sections 3, 3b, 4) against hand formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from idff.flows.fields import SAMPLERS, make_field
from idff.flows.nfe import CountingNet

SHAPES = [(6, 2), (3, 3, 4, 4)]
TIMES = [0.1, 0.37, 0.8]
SIGMAS = [0.2, 1.0]


class Poly(nn.Module):
    """Heads x1_hat = x + 0.1 x^3 + t (elementwise), s_hat = -0.5 x (1 + t).

    So D_1 = 1 + 0.3 x^2, D_2 = 0.6 x, D_3 = 0.6 (METHOD.md section 4, elementwise).
    """

    def forward(self, x, t, cond=None):
        tb = t.reshape(-1, *([1] * (x.dim() - 1)))
        return torch.cat([x + 0.1 * x**3 + tb, -0.5 * x * (1 + tb)], dim=1)


class Smooth(nn.Module):
    """A small tanh MLP that mixes coordinates (its D_k are not elementwise)."""

    def __init__(self, shape) -> None:
        super().__init__()
        d = math.prod(shape[1:])
        g = torch.Generator().manual_seed(0)
        self.w1 = nn.Parameter(torch.randn(d + 1, 16, generator=g, dtype=torch.float64) / 3)
        self.w2 = nn.Parameter(torch.randn(16, 2 * d, generator=g, dtype=torch.float64) / 3)
        self.shape = shape

    def forward(self, x, t, cond=None):
        b = x.shape[0]
        h = torch.tanh(torch.cat([x.reshape(b, -1), t.reshape(-1, 1)], dim=1) @ self.w1)
        return (h @ self.w2).reshape(b, 2 * self.shape[1], *self.shape[2:])


def _x(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _heads(model, x, t):
    return model(x, torch.full((x.shape[0],), t, dtype=x.dtype)).chunk(2, dim=1)


def _poly_d(x):
    return [1 + 0.3 * x**2, 0.6 * x, torch.full_like(x, 0.6)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("t", TIMES)
@pytest.mark.parametrize("order,gammas", [(2, (0.3, 0.7)), (2, (-0.5, 2.0)),
                                          (3, (0.3, 0.7, -0.4)), (3, (1.0, 0.0, 2.0))])
def test_higher_order_field_by_hand(shape, sigma, t, order, gammas):
    x = _x(shape)
    net = CountingNet(Poly())
    params = {f"gamma{k + 1}": g for k, g in enumerate(gammas)}
    field = make_field(f"idff{order}", net, sigma=sigma, params=params)
    out = field(x, t)
    x1_hat = x + 0.1 * x**3 + t
    sigma_t2 = sigma**2 * t * (1 - t)
    hand = math.sqrt(1 - sum(gammas) * sigma_t2) * (x1_hat - x) / (1 - t)
    d = _poly_d(x)
    hand = hand + 0.5 * (2 * gammas[0] - 1) * (sigma_t2 / sigma**2) * d[0]
    for k in range(2, order + 1):
        hand = hand + gammas[k - 1] * (sigma_t2 / sigma**2) * d[k - 1]
    torch.testing.assert_close(out, hand, rtol=1e-12, atol=1e-12)
    assert net.nfe == 1 and net.vjp == order
    assert field.info == {"order": order}
    assert not out.requires_grad


class Affine(nn.Module):
    """x1_hat = 2 x + t: D_1 = 2 does not depend on x, so D_2 = D_3 = 0 (no autograd graph)."""

    def forward(self, x, t, cond=None):
        tb = t.reshape(-1, *([1] * (x.dim() - 1)))
        return torch.cat([2 * x + tb, -x], dim=1)


@pytest.mark.parametrize("order", [2, 3])
def test_higher_order_on_an_affine_x1_hat(order):
    """D_k of an x-independent D_{k-1} is 0; only real autograd passes are counted as vjp."""
    x, t, sigma = _x((5, 2)), 0.3, 0.5
    gammas = (0.8, 0.4, 0.7)[:order]
    net = CountingNet(Affine())
    out = make_field(f"idff{order}", net, sigma=sigma,
                     params={f"gamma{k + 1}": g for k, g in enumerate(gammas)})(x, t)
    s2 = t * (1 - t)
    hand = (math.sqrt(1 - sum(gammas) * sigma**2 * s2) * (x + t) / (1 - t)
            + 0.5 * (2 * gammas[0] - 1) * s2 * 2.0)
    torch.testing.assert_close(out, hand, rtol=1e-12, atol=1e-12)
    assert net.nfe == 1 and net.vjp == 1


def _extract_d(net, x, t, sigma, k):
    """D_k read off the field: choose gammas so that only D_k survives beside the CFM term."""
    if k == 1:
        order, gammas = 2, (1.0, 0.0)       # 0.5 (2 gamma_1 - 1) = 0.5
        coef = 0.5
    else:
        order, gammas = k, tuple([0.5] + [0.0] * (k - 2) + [1.0])
        coef = 1.0
    params = {f"gamma{i + 1}": g for i, g in enumerate(gammas)}
    w = make_field(f"idff{order}", net, sigma=sigma, params=params)(x, t)
    x1_hat, _ = _heads(net, x, t)
    s2 = t * (1 - t)
    v = math.sqrt(1 - sum(gammas) * sigma**2 * s2) * (x1_hat - x) / (1 - t)
    return (w - v) / (coef * s2)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("model", ["poly", "smooth"])
def test_d_k_equal_finite_differences_of_sum_d_k_minus_1(shape, k, model):
    """D_k[b, i] = d/dx_i sum_j D_{k-1}[b, j], checked by central differences (float64)."""
    net = CountingNet(Poly() if model == "poly" else Smooth(shape))
    sigma, t, h = 0.5, 0.4, 1e-5
    x = _x(shape, seed=2) * 0.7

    def prev(z):
        if k == 1:
            return _heads(net, z, t)[0]
        return _extract_d(net, z, t, sigma, k - 1)

    dk = _extract_d(net, x, t, sigma, k)
    if model == "poly":
        torch.testing.assert_close(dk, _poly_d(x)[k - 1], rtol=1e-9, atol=1e-9)
    fd = torch.zeros_like(x).reshape(x.shape[0], -1)
    for i in range(fd.shape[1]):  # perturb coordinate i of every batch row at once
        e = torch.zeros_like(fd)
        e[:, i] = h
        e = e.reshape(x.shape)
        plus = prev(x + e).reshape(x.shape[0], -1).sum(1)
        minus = prev(x - e).reshape(x.shape[0], -1).sum(1)
        fd[:, i] = (plus - minus) / (2 * h)
    torch.testing.assert_close(dk, fd.reshape(x.shape), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("t", TIMES)
@pytest.mark.parametrize("sigma_s", [0.0, 0.3, 0.6])
def test_idff1_by_hand(shape, sigma, t, sigma_s):
    x = _x(shape)
    net = CountingNet(Poly())
    field = make_field("idff1", net, sigma=sigma, params={"sigma_s": sigma_s})
    x1_hat, s_hat = _heads(Poly(), x, t)
    hand = (math.sqrt(1 - sigma_s**2 * t * (1 - t)) * (x1_hat - x) / (1 - t)
            + sigma_s * math.sqrt(t * (1 - t)) * s_hat)
    torch.testing.assert_close(field(x, t), hand, rtol=1e-12, atol=1e-12)
    assert field.diffusion is None and net.nfe == 1 and net.vjp == 0


def test_idff1_defaults_and_noise():
    x, t = _x((4, 2)), 0.3
    # sigma_s defaults to the training sigma
    a = make_field("idff1", CountingNet(Poly()), sigma=0.4)(x, t)
    b = make_field("idff1", CountingNet(Poly()), sigma=0.4, params={"sigma_s": 0.4})(x, t)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    noisy = make_field("idff1", CountingNet(Poly()), sigma=0.2,
                       params={"sigma_s": 0.5, "noise": True})
    assert noisy.diffusion(t) == pytest.approx(0.25 * math.sqrt(0.21))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("t", TIMES)
def test_pf_cfm_bridge_by_hand(shape, sigma, t):
    x = _x(shape)
    x1_hat, s_hat = _heads(Poly(), x, t)
    v = (x1_hat - x) / (1 - t)
    pf = make_field("pf", CountingNet(Poly()), sigma=sigma)
    cfm = make_field("cfm", CountingNet(Poly()), sigma=sigma)
    torch.testing.assert_close(pf(x, t), v - s_hat, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(cfm(x, t), v, rtol=1e-12, atol=1e-12)
    assert pf.diffusion is None and cfm.diffusion is None
    for g_scale in (1.0, 2.0, 0.0):
        br = make_field("bridge_sde", CountingNet(Poly()), sigma=sigma,
                        params={"g_scale": g_scale})
        g = g_scale * sigma
        # u + (g^2 / sigma^2) s_hat with u the PF velocity; g = sigma gives the plain bridge
        torch.testing.assert_close(br(x, t), v - s_hat + g_scale**2 * s_hat,
                                   rtol=1e-12, atol=1e-12)
        assert br.diffusion(t) == pytest.approx(g)
    default = make_field("bridge_sde", CountingNet(Poly()), sigma=sigma)
    torch.testing.assert_close(default(x, t), v, rtol=1e-12, atol=1e-12)


def test_native_passes_through_with_cond():
    seen = {}

    class Net(nn.Module):
        def forward(self, x, t, cond=None):
            seen["t"], seen["cond"] = t, cond
            return 3 * x + t.reshape(-1, 1)

    cond = torch.tensor([1, 2, 3])
    x = _x((3, 2))
    net = CountingNet(Net())
    out = make_field("native", net, sigma=0.0, cond=cond)(x, 0.25)
    torch.testing.assert_close(out, 3 * x + 0.25)
    assert seen["cond"] is cond and torch.equal(seen["t"], torch.full((3,), 0.25, dtype=x.dtype))
    assert net.nfe == 1


def test_t_eps_clamp_at_t_equal_1():
    x = _x((5, 2))
    x1_hat, s_hat = _heads(Poly(), x, 1.0)
    for t_eps in (1e-3, 1e-2):
        cfm = make_field("cfm", CountingNet(Poly()), sigma=0.2, t_eps=t_eps)
        torch.testing.assert_close(cfm(x, 1.0), (x1_hat - x) / t_eps)
        pf = make_field("pf", CountingNet(Poly()), sigma=0.2, t_eps=t_eps)
        torch.testing.assert_close(pf(x, 1.0), (x1_hat - x) / t_eps - s_hat)
        # idff1 at t = 1: the momentum weight vanishes, the CFM term is clamped
        idff = make_field("idff1", CountingNet(Poly()), sigma=0.2, params={"sigma_s": 0.5},
                          t_eps=t_eps)
        torch.testing.assert_close(idff(x, 1.0), (x1_hat - x) / t_eps)
        assert torch.isfinite(make_field("idff3", CountingNet(Poly()), sigma=0.2,
                                         params={"gamma1": 1.0}, t_eps=t_eps)(x, 1.0)).all()
    # away from 1 the clamp is inactive
    cfm = make_field("cfm", CountingNet(Poly()), sigma=0.2, t_eps=1e-3)
    x1_hat, _ = _heads(Poly(), x, 0.99)
    torch.testing.assert_close(cfm(x, 0.99), (x1_hat - x) / (1 - 0.99))


def test_unknown_sampler_and_parameters_are_rejected():
    net = CountingNet(Poly())
    with pytest.raises(ValueError, match="unknown sampler 'idff4'; valid: " + ", ".join(SAMPLERS)):
        make_field("idff4", net, sigma=0.2)
    with pytest.raises(ValueError, match=r"takes parameters \['sigma_s', 'noise'\].*gamma1"):
        make_field("idff1", net, sigma=0.2, params={"gamma1": 0.5})
    with pytest.raises(ValueError, match=r"'pf' takes parameters \[\]"):
        make_field("pf", net, sigma=0.2, params={"sigma_s": 0.5})
    with pytest.raises(ValueError, match="gamma3"):
        make_field("idff2", net, sigma=0.2, params={"gamma3": 0.5})
    with pytest.raises(ValueError, match="sigma > 0"):
        make_field("cfm", net, sigma=0.0)
