"""Solvers on linear fields with known solutions, NFE budgets and honest forward-pass counts."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from idff.flows.nfe import CountingNet
from idff.flows.sampling import generate
from idff.flows.solvers import (
    budget_is_valid,
    integrate,
    integrate_adaptive,
    steps_for_budget,
)

A = -1.3


def _linear(x, t):
    return A * x


def _time_linear(x, t):
    return t * x


def _error(field, exact: float, solver: str, nfe: int) -> float:
    x = integrate(field, torch.ones(1, 1, dtype=torch.float64), solver, nfe)
    return abs(x.item() - exact)


# (solver, expected order, two budgets whose step counts differ by a factor 2)
# heun's last step is a plain Euler step (steps_for_budget's docstring): one O(h^2) local error,
# so the global order stays 2, which is what this test holds it to. Budgets 19 and 39 are
# 10 and 20 steps. rk4's last step is Ralston's 3rd-order method: one O(h^4) local error, order 4
# stays (asymptotically: 3.8 at 8 -> 16 steps); budgets 31 and 63 are 8 and 16 steps.
ORDERS = [("euler", 1, (20, 40)), ("euler_maruyama", 1, (20, 40)), ("midpoint", 2, (20, 40)),
          ("heun", 2, (19, 39)), ("rk4", 4, (31, 63))]


@pytest.mark.parametrize("field,exact", [(_linear, math.exp(A)), (_time_linear, math.exp(0.5))],
                         ids=["ax", "tx"])
@pytest.mark.parametrize("solver,order,budgets", ORDERS)
def test_observed_order(solver, order, budgets, field, exact):
    n1, n2 = budgets
    assert steps_for_budget(solver, n2) == 2 * steps_for_budget(solver, n1)
    e1, e2 = _error(field, exact, solver, n1), _error(field, exact, solver, n2)
    observed = math.log2(e1 / e2)
    assert abs(observed - order) < 0.3, (solver, e1, e2, observed)


def test_rk4_is_accurate_on_a_linear_field():
    assert _error(_linear, math.exp(A), "rk4", 4 * 50) < 1e-8


@pytest.mark.parametrize("field,exact", [(_linear, math.exp(A)), (_time_linear, math.exp(0.5))],
                         ids=["ax", "tx"])
def test_dopri5_reaches_1e_6(field, exact):
    x = integrate_adaptive(field, torch.ones(3, 1, dtype=torch.float64), rtol=1e-9, atol=1e-9)
    assert torch.all((x - exact).abs() < 1e-6)
    # t0 / t1 are honoured: integrating back from 1 to 0 returns to the start
    back = integrate_adaptive(field, x, t0=1.0, t1=0.0, rtol=1e-9, atol=1e-9)
    assert torch.all((back - 1).abs() < 1e-6)


def test_trajectory_has_every_grid_point():
    x, traj = integrate(_linear, torch.ones(2, 1), "midpoint", 10, return_trajectory=True)
    assert traj.shape == (6, 2, 1)
    assert torch.equal(traj[0], torch.ones(2, 1)) and torch.equal(traj[-1], x)


class Tiny(nn.Module):
    """Counts its own calls, independent of CountingNet's counter."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.calls = 0

    def forward(self, x, t, cond=None):
        self.calls += 1
        return self.lin(torch.cat([x, t.reshape(-1, 1)], dim=1))


@pytest.mark.parametrize("solver,budget,expected", [
    ("euler", 1, 1), ("euler", 7, 7), ("euler_maruyama", 5, 5), ("midpoint", 2, 2),
    ("midpoint", 10, 10), ("heun", 1, 1), ("heun", 2, 1), ("heun", 9, 9), ("heun", 10, 9),
    ("rk4", 3, 3), ("rk4", 4, 3), ("rk4", 7, 7), ("rk4", 8, 7), ("rk4", 20, 19)])
def test_nfe_counter_equals_real_forward_calls(solver, budget, expected):
    tiny = Tiny()
    net = CountingNet(tiny)
    _, stats = generate(net, "native", torch.randn(5, 2), sigma=0.0, solver=solver, nfe=budget)
    assert stats.nfe == tiny.calls == expected
    assert stats.vjp == 0
    assert stats.steps == steps_for_budget(solver, budget)


def test_nfe_counter_for_dopri5_counts_what_torchdiffeq_called():
    tiny = Tiny()
    _, stats = generate(CountingNet(tiny), "native", torch.randn(5, 2), sigma=0.0,
                        solver="dopri5", nfe=None)
    assert stats.nfe == tiny.calls > 0 and stats.steps is None


def test_generate_resets_the_counter_per_call():
    tiny = Tiny()
    net = CountingNet(tiny)
    for _ in range(2):
        _, stats = generate(net, "native", torch.randn(5, 2), sigma=0.0, solver="euler", nfe=3)
        assert stats.nfe == 3
    assert tiny.calls == 6


@pytest.mark.parametrize("solver,budget", [
    ("euler", 0), ("euler", -1), ("heun", 0), ("midpoint", 7), ("midpoint", 0), ("rk4", 6),
    ("rk4", 2), ("rk4", 5), ("euler", 2.0), ("euler_maruyama", 0)])
def test_invalid_budgets_raise(solver, budget):
    assert not budget_is_valid(solver, budget)
    with pytest.raises(ValueError, match="budget"):
        steps_for_budget(solver, budget)
    with pytest.raises(ValueError, match="budget"):
        integrate(_linear, torch.ones(1, 1), solver, budget)


def test_budget_to_steps():
    assert [steps_for_budget("heun", n) for n in (1, 2, 3, 9, 10)] == [1, 1, 2, 5, 5]
    assert steps_for_budget("midpoint", 10) == 5 and steps_for_budget("rk4", 8) == 2
    assert steps_for_budget("euler", 7) == 7 == steps_for_budget("euler_maruyama", 7)


def test_unknown_solver_and_misuse_are_rejected():
    with pytest.raises(ValueError, match="valid: euler, midpoint, heun, rk4, ssprk3, euler_maruyama"):
        steps_for_budget("rk45", 4)
    with pytest.raises(ValueError, match="integrate_adaptive"):
        integrate(_linear, torch.ones(1, 1), "dopri5", 4)
    with pytest.raises(ValueError, match="euler_maruyama"):
        integrate(_linear, torch.ones(1, 1), "euler", 4, diffusion=lambda t: 0.1)


def test_euler_maruyama_without_diffusion_is_euler():
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    ref = integrate(_time_linear, x, "euler", 12)
    for diffusion in (None, lambda t: 0.0):
        out = integrate(_time_linear, x, "euler_maruyama", 12, diffusion=diffusion,
                        generator=torch.Generator().manual_seed(1))
        assert torch.equal(out, ref)


def test_euler_maruyama_is_seeded_and_its_last_step_adds_no_noise():
    x = torch.zeros(64, 2, dtype=torch.float64)
    g, n = 0.7, 5

    def run(seed: int, steps: int = n):
        return integrate(lambda x, t: torch.zeros_like(x), x, "euler_maruyama", steps,
                         diffusion=lambda t: g, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))
    # zero drift: the result is the sum of n - 1 noise increments g sqrt(h) xi, not n
    gen = torch.Generator().manual_seed(3)
    draws = [torch.randn(x.shape, generator=gen, dtype=x.dtype) for _ in range(n - 1)]
    hand = sum(g * math.sqrt(1 / n) * d for d in draws)
    torch.testing.assert_close(run(3), hand, rtol=0, atol=1e-14)
    assert torch.equal(run(3, steps=1), x)  # one step = the last step: pure drift
