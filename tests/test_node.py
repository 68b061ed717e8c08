"""The neural-ODE baseline: registration, its integrator, and learning a linear map."""

from __future__ import annotations

import math

import pytest
import torch

from idff.flows.methods import METHOD_CLASSES, build_method
from idff.flows.nfe import CountingNet
from idff.flows.node import NODE
from idff.flows.sampling import generate
from idff.models import build_model


class Linear(torch.nn.Module):
    """Known field f(x, t) = a x (exact flow: x(1) = exp(a) x0)."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = a

    def forward(self, x, t, cond=None):
        assert t.shape == (x.shape[0],)
        return self.a * x


def test_node_is_registered_and_validates_parameters():
    m = build_method("node", solver="rk4", steps=3)
    assert isinstance(m, NODE) and m.n_heads == 1 and "node" in METHOD_CLASSES
    with pytest.raises(ValueError, match="unknown solver 'heun'"):
        build_method("node", solver="heun")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        build_method("node", steps=0)
    with pytest.raises(ValueError, match="bad parameters for method 'node'"):
        build_method("node", sigma_s=0.1)


@pytest.mark.parametrize("solver, steps, tol, nfe", [
    ("rk4", 3, 1e-6, 12), ("euler", 4, None, 4), ("dopri5", 1, 1e-6, None)])
def test_integrate_matches_closed_form(solver, steps, tol, nfe):
    m = NODE(solver=solver, steps=steps, rtol=1e-8, atol=1e-8)
    x0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    end = m.integrate(Linear(-math.log(2.0)), x0)
    z = -math.log(2.0) / steps  # a h
    if solver == "euler":  # the discrete maps, not exp(a): (1 + z)^n
        torch.testing.assert_close(end, x0 * (1 + z) ** steps)
    elif solver == "rk4":  # any 4-stage order-4 RK on a linear ODE: Taylor to z^4 per step
        torch.testing.assert_close(end, x0 * (1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24) ** steps)
    else:
        torch.testing.assert_close(end, 0.5 * x0, atol=tol, rtol=0)
    if nfe is not None:
        assert m.last_nfe == nfe


def test_node_learns_a_linear_map_and_samples_with_native_field():
    """x1 = 0.5 x0: the loss falls by a large factor; the native sampler reproduces the map."""
    torch.manual_seed(0)
    model = build_model("mlp", (2,), n_heads=1, hidden=32, depth=2, activation="selu")
    method = build_method("node", solver="rk4", steps=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    x_eval = torch.randn(512, 2, generator=g)
    with torch.no_grad():
        before = method.loss(model, x_eval, 0.5 * x_eval).loss.item()
    for _ in range(300):
        x0 = torch.randn(128, 2, generator=g)
        out = method.loss(model, x0, 0.5 * x0)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert out.parts["nfe"] == 8  # 2 rk4 steps x 4 evaluations
    with torch.no_grad():
        after = method.loss(model, x_eval, 0.5 * x_eval).loss.item()
    assert before > 0.05 and after < before / 20, (before, after)
    net = CountingNet(model.eval())
    x1, stats = generate(net, "native", x_eval, sigma=0.0, solver="heun", nfe=9)
    assert stats.nfe == 9  # 5 Heun steps, the last one plain Euler
    assert ((x1 - 0.5 * x_eval) ** 2).mean().item() < 3 * after + 1e-4
