"""The neural-ODE baseline (NODE) of the paper's MD table (METHOD.md section 6).

The network is a velocity field f(x, t, cond). Training integrates dx/dt = f from x0 (the
previous frame) over t in [0, 1] with torchdiffeq and regresses the end point on x1 (MSE on
the data's representation, back-propagating through the solver). Sampling needs nothing
special: the generic ``native`` sampler integrates the same field from x0 with the job's
solver and NFE budget, so NODE is counted like every other method.

For MD the pair source already moves x1 to its periodic image nearest to x0, so the plain
squared difference is the squared wrapped angular difference (while |x(1) - x1| stays below
half a period). NODE maps a point x0 to one point, so it learns a conditional mean; it is a
regression baseline, not a generative model of p(x1 | x0), and has no use for static data
(x0 = noise).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .method_base import LossOutput, Method

FIXED_STEP = ("euler", "midpoint", "rk4")  # torchdiffeq fixed-grid methods (rk4 = 3/8 rule)
ADAPTIVE = ("dopri5", "bosh3", "adaptive_heun")
NODE_SOLVERS = FIXED_STEP + ADAPTIVE


class NODE(Method):
    """Neural ODE trained by integrating its field from x0 and matching x(1) to x1.

    ``solver``: a fixed-grid torchdiffeq method (``steps`` uniform steps on [0, 1]) or an
    adaptive one (``rtol``/``atol``). Training cost per step is the solver's evaluations
    (rk4: 4 per step) forward and backward, so NODE steps are dearer than CFM steps.
    """

    name = "node"
    n_heads = 1

    def __init__(self, solver: str = "rk4", steps: int = 4, rtol: float = 1e-5,
                 atol: float = 1e-5) -> None:
        if solver not in NODE_SOLVERS:
            raise ValueError(f"node: unknown solver {solver!r}; valid: {', '.join(NODE_SOLVERS)} "
                             f"(methods.node.solver in the config)")
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"node: steps must be a positive integer, got {steps!r}")
        if not (rtol > 0 and atol > 0):
            raise ValueError(f"node: rtol and atol must be > 0, got {rtol} and {atol}")
        self.solver, self.steps, self.rtol, self.atol = solver, steps, float(rtol), float(atol)
        self.last_nfe = 0

    def integrate(self, model: nn.Module, x0: Tensor, cond: Tensor | None = None) -> Tensor:
        """x(1) of dx/dt = model(x, t, cond), x(0) = x0 (differentiable)."""
        # torchdiffeq: slow to import, only the neural-ODE baseline and dopri5 need it
        from torchdiffeq import odeint

        calls = 0

        def f(t: Tensor, y: Tensor) -> Tensor:
            nonlocal calls
            calls += 1
            return model(y, t.to(y.dtype).expand(y.shape[0]), cond)

        if self.solver in FIXED_STEP:
            # the output grid is the step grid: exactly `steps` uniform steps
            ts = torch.linspace(0.0, 1.0, self.steps + 1, dtype=x0.dtype, device=x0.device)
            ys = odeint(f, x0, ts, method=self.solver)
        else:
            ts = torch.tensor([0.0, 1.0], dtype=x0.dtype, device=x0.device)
            ys = odeint(f, x0, ts, method=self.solver, rtol=self.rtol, atol=self.atol)
        self.last_nfe = calls
        return ys[-1]

    def loss(self, model: nn.Module, x0: Tensor, x1: Tensor, cond: Tensor | None = None,
             generator: torch.Generator | None = None) -> LossOutput:
        end = self.integrate(model, x0, cond)
        loss = ((end - x1) ** 2).mean()
        return LossOutput(loss, {"flow": loss.detach(), "nfe": float(self.last_nfe)})
