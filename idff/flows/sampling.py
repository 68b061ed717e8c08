"""Draw samples from a trained network with a sampler, a solver and an NFE budget."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor

from .fields import IDFF_SAMPLERS, make_field
from .nfe import CountingNet
from .solvers import integrate, integrate_adaptive, steps_for_budget


@dataclass
class SampleStats:
    nfe: int          # network forward passes on the batch (what every table reports)
    vjp: int          # autograd vector-Jacobian passes (higher-order IDFF)
    steps: int | None  # solver steps (None for adaptive)
    wall_s: float


@torch.no_grad()
def generate(net: CountingNet, sampler: str, x0: Tensor, *, sigma: float, solver: str,
             nfe: int | None, params: dict | None = None, cond: Tensor | None = None,
             generator: torch.Generator | None = None, t_eps: float = 1e-3,
             rtol: float = 1e-5, atol: float = 1e-5, return_trajectory: bool = False):
    """Integrate the sampler's field from ``x0`` (t = 0) to t = 1.

    Returns ``(samples, stats)`` or ``(samples, trajectory, stats)``. For the adaptive
    reference on IDFF's x1-parametrised fields the integration stops at 1 - t_eps, where the
    field is still finite.
    """
    field = make_field(sampler, net, sigma=sigma, params=params, cond=cond, t_eps=t_eps)
    net.reset()
    if x0.device.type == "cuda":
        torch.cuda.synchronize(x0.device)
    start = time.perf_counter()
    traj = None
    if solver == "dopri5":
        if field.diffusion is not None:
            raise ValueError(f"sampler {sampler!r} is stochastic; dopri5 integrates ODEs only")
        t1 = 1.0 - t_eps if sampler in IDFF_SAMPLERS else 1.0
        res = integrate_adaptive(field, x0, t1=t1, rtol=rtol, atol=atol,
                                 return_trajectory=return_trajectory)
        steps = None
    else:
        if nfe is None:
            raise ValueError(f"solver {solver!r} needs an NFE budget")
        res = integrate(field, x0, solver, nfe, diffusion=field.diffusion, generator=generator,
                        return_trajectory=return_trajectory)
        steps = steps_for_budget(solver, nfe)
    if return_trajectory:
        out, traj = res
    else:
        out = res
    if out.device.type == "cuda":
        torch.cuda.synchronize(out.device)
    stats = SampleStats(nfe=net.nfe, vjp=net.vjp, steps=steps, wall_s=time.perf_counter() - start)
    return (out, traj, stats) if return_trajectory else (out, stats)
