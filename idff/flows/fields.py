"""Vector fields built from a trained network: the samplers of METHOD.md sections 3, 3b and 4.

Each field is a callable ``field(x, t) -> dx/dt`` with a scalar time ``t``; stochastic samplers
also carry ``diffusion(t)``. Fields on the IDFF network read its two heads (x1_hat, s_hat).
Near t = 1 the x1-parametrised velocity (x1_hat - x) / (1 - t) divides by 1 - t, clamped below
by ``t_eps``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .nfe import CountingNet

IDFF_SAMPLERS = ("idff1", "idff2", "idff3", "pf", "cfm", "bridge_sde")
NATIVE_SAMPLERS = ("native",)
SAMPLERS = IDFF_SAMPLERS + NATIVE_SAMPLERS
SAMPLER_PARAMS: dict[str, tuple[str, ...]] = {
    "idff1": ("sigma_s", "noise"),
    "idff2": ("gamma1", "gamma2"),
    "idff3": ("gamma1", "gamma2", "gamma3"),
    "pf": (),
    "cfm": (),
    "bridge_sde": ("g_scale",),
    "native": (),
}
STOCHASTIC = {"bridge_sde"}
FIRST_ORDER = ("cfm", "pf", "bridge_sde", "idff1")  # drift affine in the two heads


@dataclass
class Field:
    drift: Callable[[Tensor, float], Tensor]
    diffusion: Callable[[float], float] | None = None
    info: dict = field(default_factory=dict)

    def __call__(self, x: Tensor, t: float) -> Tensor:
        return self.drift(x, t)


def _time(t: float, x: Tensor) -> Tensor:
    return torch.full((x.shape[0],), float(t), device=x.device, dtype=x.dtype)


def make_field(sampler: str, net: CountingNet, *, sigma: float, params: dict | None = None,
               cond: Tensor | None = None, t_eps: float = 1e-3) -> Field:
    """Build the sampler's field on ``net``; unknown samplers and parameters are rejected."""
    params = dict(params or {})
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}")
    unknown = set(params) - set(SAMPLER_PARAMS[sampler])
    if unknown:
        raise ValueError(f"sampler {sampler!r} takes parameters {list(SAMPLER_PARAMS[sampler])}, "
                         f"not {sorted(unknown)}")
    if sampler == "native":
        return Field(lambda x, t: net(x, _time(t, x), cond))
    if sigma <= 0:
        raise ValueError("samplers on the IDFF network need the training sigma > 0")

    def heads(x: Tensor, t: float) -> tuple[Tensor, Tensor]:
        return net(x, _time(t, x), cond).chunk(2, dim=1)

    def v_cfm(x: Tensor, x1_hat: Tensor, t: float) -> Tensor:
        return (x1_hat - x) / max(1.0 - t, t_eps)

    if sampler in FIRST_ORDER:
        coef = first_order_coefficients(sampler, sigma, params)

        def first_order(x: Tensor, t: float) -> Tensor:
            x1_hat, s_hat = heads(x, t)
            a, score_weights = coef(t)
            out = a * v_cfm(x, x1_hat, t)
            for c in score_weights:
                out = out + c * s_hat
            return out
        return Field(first_order, diffusion=_first_order_diffusion(sampler, sigma, params))
    order = int(sampler[-1])
    gammas = [float(params.get(f"gamma{k}", 0.0)) for k in range(1, order + 1)]
    return Field(_higher_order(net, heads, v_cfm, gammas, sigma, cond), info={"order": order})


def first_order_coefficients(sampler: str, sigma: float, params: dict
                             ) -> Callable[[float], tuple[float, tuple[float, ...]]]:
    """``t -> (a, (c_1, ...))`` of a first-order IDFF sampler: its drift is
    ``a v_cfm + sum_k c_k s_hat`` with ``v_cfm = (x1_hat - x) / max(1 - t, t_eps)``.

    The one definition of these samplers: ``make_field`` evaluates it term by term (in the
    order written in METHOD.md, so results do not depend on how the terms are grouped) and the
    fused loop (``fused.coefficients``) folds it into two numbers per step.
    """
    if sampler == "cfm":
        return lambda t: (1.0, ())
    if sampler == "pf":
        return lambda t: (1.0, (-1.0,))
    if sampler == "bridge_sde":
        g = float(params.get("g_scale", 1.0)) * sigma
        return lambda t: (1.0, (-1.0, g**2 / sigma**2))
    if sampler == "idff1":
        sigma_s = float(params.get("sigma_s", sigma))
        return lambda t: (math.sqrt(max(0.0, 1.0 - sigma_s**2 * t * (1 - t))),
                          (sigma_s * math.sqrt(t * (1 - t)),))
    raise ValueError(f"sampler {sampler!r} is not first order; first-order samplers: "
                     f"{', '.join(FIRST_ORDER)}")


def _first_order_diffusion(sampler: str, sigma: float, params: dict
                           ) -> Callable[[float], float] | None:
    """g(t) of the stochastic first-order samplers (None: an ODE)."""
    if sampler == "bridge_sde":
        g = float(params.get("g_scale", 1.0)) * sigma
        return lambda t: g
    if sampler == "idff1" and params.get("noise"):
        sigma_s = float(params.get("sigma_s", sigma))
        return lambda t: sigma_s**2 * math.sqrt(t * (1 - t))
    return None


def _higher_order(net: CountingNet, heads, v_cfm, gammas: list[float], sigma: float,
                  cond: Tensor | None) -> Callable[[Tensor, float], Tensor]:
    """w_K of METHOD.md section 4: D_k = grad_x sum(D_{k-1}), D_0 = x1_hat, via autograd."""
    order = len(gammas)

    def w(x: Tensor, t: float) -> Tensor:
        s2 = t * (1 - t)  # sigma_t^2 / sigma^2
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            x1_hat, _ = heads(xg, t)
            d, terms = x1_hat, []
            for k in range(1, order + 1):
                if d.requires_grad:
                    (g,) = torch.autograd.grad(d.sum(), xg, create_graph=k < order,
                                               allow_unused=True)
                    net.vjp += 1
                else:
                    g = None
                # D_{k-1} that does not depend on x (e.g. an affine x1_hat) has D_k = 0
                d = torch.zeros_like(xg) if g is None else g
                terms.append(d)
        a = math.sqrt(max(0.0, 1.0 - sum(gammas) * sigma**2 * s2))
        out = a * v_cfm(x, x1_hat.detach(), t) + 0.5 * (2 * gammas[0] - 1) * s2 * terms[0].detach()
        for gamma_k, d_k in zip(gammas[1:], terms[1:], strict=True):
            out = out + gamma_k * s2 * d_k.detach()
        return out

    return w
