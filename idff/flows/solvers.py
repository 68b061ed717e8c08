"""Fixed-step ODE/SDE solvers with NFE budgets, and adaptive dopri5 through torchdiffeq.

Callers ask for a budget of network forward passes; the grid follows from it
(Heun with budget 9 = 5 steps, see ``steps_for_budget``). Pure functions of a field.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

FIXED_SOLVERS = ("euler", "midpoint", "heun", "rk4", "ssprk3", "euler_maruyama")
#: Forward passes per step of each fixed-step solver (heun and rk4 save one on their last step).
STAGES = {"euler": 1, "euler_maruyama": 1, "midpoint": 2, "heun": 2, "rk4": 4, "ssprk3": 3}
ADAPTIVE_SOLVERS = ("dopri5",)
SOLVERS = FIXED_SOLVERS + ADAPTIVE_SOLVERS

Drift = Callable[[Tensor, float], Tensor]


def steps_for_budget(solver: str, nfe: int) -> int:
    """Number of steps a fixed-step solver takes within ``nfe`` forward passes.

    euler / euler_maruyama: nfe steps. midpoint: nfe / 2 (nfe even).
    The x1-parametrised IDFF fields are singular at t = 1, so no solver evaluates there:
    heun: (nfe + 1) // 2 steps whose last one is a plain Euler step (as in EDM): N steps cost
    2N - 1 passes and an even budget spends nfe - 1. rk4: (nfe + 1) // 4 steps whose last one is
    Ralston's third-order method (stages at 0, 1/2, 3/4 of the step): N steps cost 4N - 1, so
    budgets 4N - 1 and 4N are valid (the latter spends one pass less). ssprk3: nfe / 3 steps of
    the 3-stage strong-stability-preserving Runge-Kutta method (nodes 0, 1, 1/2; the drift part of
    the SRK scheme the authors integrated with), whose last step is Ralston's third-order method
    (nodes 0, 1/2, 3/4) so that no stage lands on t = 1; N steps cost exactly 3N passes.
    """
    if solver not in FIXED_SOLVERS:
        raise ValueError(f"unknown fixed-step solver {solver!r}; valid: {', '.join(FIXED_SOLVERS)}")
    if not isinstance(nfe, int) or nfe < 1:
        raise ValueError(f"NFE budget must be a positive integer, got {nfe!r}")
    if solver == "midpoint":
        if nfe % 2:
            raise ValueError(f"midpoint takes 2 forward passes per step; budget {nfe} is odd")
        return nfe // 2
    if solver == "rk4":
        if nfe < 3 or nfe % 4 not in (0, 3):
            raise ValueError(f"rk4 spends 4N - 1 forward passes on N steps; budget {nfe} is not "
                             f"of the form 4N - 1 or 4N")
        return (nfe + 1) // 4
    if solver == "ssprk3":
        if nfe % 3:
            raise ValueError(f"ssprk3 takes 3 forward passes per step; budget {nfe} is not a "
                             f"multiple of 3")
        return nfe // 3
    if solver == "heun":
        return (nfe + 1) // 2
    return nfe


def budget_is_valid(solver: str, nfe: int) -> bool:
    try:
        steps_for_budget(solver, nfe)
        return True
    except ValueError:
        return False


def integrate(drift: Drift, x: Tensor, solver: str, nfe: int, *, t0: float = 0.0, t1: float = 1.0,
              diffusion: Callable[[float], float] | None = None,
              generator: torch.Generator | None = None,
              return_trajectory: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Integrate dx = drift(x, t) dt (+ diffusion(t) dW) from t0 to t1 on a uniform grid.

    Stochastic integration (euler_maruyama) adds no noise on the last step, so the sample is
    the drift's endpoint (the usual final denoising step).
    """
    if solver == "dopri5":
        raise ValueError("dopri5 is adaptive: call integrate_adaptive")
    n = steps_for_budget(solver, nfe)
    if diffusion is not None and solver != "euler_maruyama":
        raise ValueError(f"a stochastic sampler needs solver euler_maruyama, not {solver!r}")
    ts = torch.linspace(t0, t1, n + 1, dtype=torch.float64).tolist()
    traj = [x] if return_trajectory else None
    for i in range(n):
        t, h = ts[i], ts[i + 1] - ts[i]
        last = i == n - 1
        if solver == "euler":
            x = x + h * drift(x, t)
        elif solver == "euler_maruyama":
            x = x + h * drift(x, t)
            g = diffusion(t) if diffusion is not None else 0.0
            if g and not last:
                noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                x = x + g * math.sqrt(h) * noise
        elif solver == "midpoint":
            x = x + h * drift(x + 0.5 * h * drift(x, t), t + 0.5 * h)
        elif solver == "heun":
            k1 = drift(x, t)
            if last:
                x = x + h * k1
            else:
                x = x + 0.5 * h * (k1 + drift(x + h * k1, t + h))
        elif last and solver in ("rk4", "ssprk3"):
            x = _ralston3(drift, x, t, h)  # 3rd order, no stage at the step's end (t = 1)
        elif solver == "ssprk3":
            k1 = drift(x, t)
            k2 = drift(x + h * k1, t + h)
            k3 = drift(x + 0.25 * h * (k1 + k2), t + 0.5 * h)
            x = x + h * (k1 + k2 + 4 * k3) / 6
        elif solver == "rk4":
            k1 = drift(x, t)
            k2 = drift(x + 0.5 * h * k1, t + 0.5 * h)
            k3 = drift(x + 0.5 * h * k2, t + 0.5 * h)
            k4 = drift(x + h * k3, t + h)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if traj is not None:
            traj.append(x)
    if traj is not None:
        return x, torch.stack(traj)
    return x


def _ralston3(drift: Drift, x: Tensor, t: float, h: float) -> Tensor:
    """One step of Ralston's third-order method: stages at t, t + h/2, t + 3h/4."""
    k1 = drift(x, t)
    k2 = drift(x + 0.5 * h * k1, t + 0.5 * h)
    k3 = drift(x + 0.75 * h * k2, t + 0.75 * h)
    return x + h * (2 * k1 + 3 * k2 + 4 * k3) / 9


def integrate_adaptive(drift: Drift, x: Tensor, *, t0: float = 0.0, t1: float = 1.0,
                       rtol: float = 1e-5, atol: float = 1e-5, method: str = "dopri5",
                       return_trajectory: bool = False, n_saved: int = 21):
    """The 'infinite NFE' reference: torchdiffeq's adaptive solver; NFE is whatever it took."""
    # torchdiffeq: slow to import, only the neural-ODE baseline and dopri5 need it
    from torchdiffeq import odeint

    def f(t: Tensor, y: Tensor) -> Tensor:
        return drift(y, float(t))

    ts = torch.linspace(t0, t1, n_saved if return_trajectory else 2, dtype=x.dtype, device=x.device)
    ys = odeint(f, x, ts, rtol=rtol, atol=atol, method=method)
    return (ys[-1], ys) if return_trajectory else ys[-1]
