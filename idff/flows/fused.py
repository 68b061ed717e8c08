"""Fused fixed-step sampling for first-order fields: the small-batch fast path (issue 8).

The plain path (``idff.flows.sampling.generate``) calls a ``Field`` closure and then the solver's update,
about ten small tensor operations per step besides the network. At batches of a few samples
(the MD family's free generation runs 2 chains for 1000 frames) their dispatch cost is of the
order of the network forward itself. Every first-order sampler's drift is affine in the
network's output,

    IDFF samplers:  drift = A(t) (x1_hat - x) + C(t) s_hat
    native:         drift = v,

so one Euler step is one ``lerp`` and at most one ``add``:
``x + h drift = lerp(x, x1_hat, h A) + h C s_hat``. The coefficients are the plain fields'
(``idff.flows.fields``), the time grid, the NFE count and the Euler-Maruyama noise draws are the
plain solver's (same generator, same order), so samples agree with the plain path to float
rounding (a few ulp per step), not bit for bit: the switch (``sweep.fused``) is off by default.

Other samplers (idff2, idff3) and solvers fall back to the plain path.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import Tensor

from .fields import first_order_coefficients, make_field
from .nfe import CountingNet
from .sampling import SampleStats, generate
from .solvers import steps_for_budget

FUSED_SAMPLERS = ("idff1", "cfm", "pf", "bridge_sde", "native")
FUSED_SOLVERS = ("euler", "euler_maruyama")

Coefficients = Callable[[float], tuple[float, float]]


def can_fuse(sampler: str, solver: str) -> bool:
    """Whether ``fused_generate`` has a fused loop for this sampler and solver."""
    return sampler in FUSED_SAMPLERS and solver in FUSED_SOLVERS


def coefficients(sampler: str, sigma: float, params: dict, t_eps: float) -> Coefficients | None:
    """``t -> (A, C)`` with drift = A (x1_hat - x) + C s_hat (None for ``native``: drift = v):
    ``fields.first_order_coefficients`` folded into two numbers per step."""
    if sampler == "native":
        return None
    if sampler not in FUSED_SAMPLERS:
        raise ValueError(f"sampler {sampler!r} has no fused loop; fused samplers: "
                         f"{', '.join(FUSED_SAMPLERS)}")
    coef = first_order_coefficients(sampler, sigma, params)

    def fold(t: float) -> tuple[float, float]:
        a, score_weights = coef(t)
        return a * (1.0 / max(1.0 - t, t_eps)), sum(score_weights, 0.0)
    return fold


def _set_counts(net: CountingNet, nfe: int, vjp: int) -> None:
    """Set the counters without nn.Module.__setattr__ (~6 us per call, half of the per-call
    overhead at batch 1); plain ints live in the instance dict, so this is the same write."""
    d = vars(net)
    if "nfe" in d and "vjp" in d:
        d["nfe"], d["vjp"] = nfe, vjp
    else:
        net.nfe, net.vjp = nfe, vjp


@torch.no_grad()
def fused_generate(net: CountingNet, sampler: str, x0: Tensor, *, sigma: float, solver: str,
                   nfe: int | None, params: dict | None = None, cond: Tensor | None = None,
                   generator: torch.Generator | None = None, t_eps: float = 1e-3,
                   rtol: float = 1e-5, atol: float = 1e-5, return_trajectory: bool = False):
    """Drop-in for ``idff.flows.sampling.generate``: the fused loop where ``can_fuse``, else the plain one.

    Returns ``(samples, stats)`` or ``(samples, trajectory, stats)`` like ``generate``.
    """
    if not can_fuse(sampler, solver):
        return generate(net, sampler, x0, sigma=sigma, solver=solver, nfe=nfe, params=params,
                        cond=cond, generator=generator, t_eps=t_eps, rtol=rtol, atol=atol,
                        return_trajectory=return_trajectory)
    params = dict(params or {})
    field = make_field(sampler, net, sigma=sigma, params=params, cond=cond, t_eps=t_eps)  # checks
    if nfe is None:
        raise ValueError(f"solver {solver!r} needs an NFE budget")
    n = steps_for_budget(solver, nfe)
    diffusion = field.diffusion
    if diffusion is not None and solver != "euler_maruyama":
        raise ValueError(f"a stochastic sampler needs solver euler_maruyama, not {solver!r}")
    coef = coefficients(sampler, sigma, params, t_eps)
    _set_counts(net, 0, 0)
    if x0.device.type == "cuda":
        torch.cuda.synchronize(x0.device)
    start = time.perf_counter()
    ts = torch.linspace(0.0, 1.0, n + 1, dtype=torch.float64).tolist()  # the plain solver's grid
    # per step: t, h, the weights of x1_hat (h A, in a lerp) and s_hat (h C), the noise scale
    # g(t) sqrt(h) (none on the last step, as the plain solver)
    plan = []
    for i, (t, t_next) in enumerate(zip(ts[:-1], ts[1:], strict=True)):
        h = t_next - t
        a, c = coef(t) if coef is not None else (1.0, 0.0)
        g = diffusion(t) if diffusion is not None and i < n - 1 else 0.0
        plan.append((t, h, h * a, h * c, g * math.sqrt(h) if g else 0.0))
    inner, batch, x = net.net, x0.shape[0], x0
    traj = [x0] if return_trajectory else None
    for t, h, wx, ws, noise_scale in plan:
        out = inner(x, torch.full((batch,), t, device=x.device, dtype=x.dtype), cond)
        if coef is None:
            x = torch.add(x, out, alpha=h)
        else:
            half = out.shape[1] // 2  # the two heads, as out.chunk(2, dim=1)
            x = torch.lerp(x, out.narrow(1, 0, half), wx)  # a new tensor: x0, trajectory intact
            if ws:
                x.add_(out.narrow(1, half, half), alpha=ws)
        if noise_scale:
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x.add_(noise, alpha=noise_scale)
        if traj is not None:
            traj.append(x)
    _set_counts(net, net.nfe + n, net.vjp)
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    stats = SampleStats(nfe=net.nfe, vjp=net.vjp, steps=n, wall_s=time.perf_counter() - start)
    return (x, torch.stack(traj), stats) if traj is not None else (x, stats)
