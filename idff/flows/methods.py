"""What is trained: IDFF and the CFM baselines, each a path + coupling + loss.

A model is any ``nn.Module`` called as ``model(x_t, t, cond)`` that returns ``n_heads`` stacked
copies of the data's shape along dim 1 (feature dim for an MLP, channels for a UNet).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .couplings import COUPLINGS
from .method_base import LossOutput, Method
from .node import NODE
from .paths import BrownianBridgePath, ConstantSigmaPath, expand_like

METHODS = ("idff", "icfm", "otcfm", "sbcfm", "node")  # method classes
SCORE_TARGETS = ("eps", "x0")
#: Time weightings of IDFF's x1 loss. ``uniform``: the v1 code. ``inv_sq``: the authors' later
#: (2025) code, w(t) = 1 / (1 + FLOW_WEIGHT_EPS - t)^2, here divided by its mean over t ~ U[0, 1]
#: so the loss keeps its scale (the trainer clips gradients at a fixed norm).
FLOW_WEIGHTS = ("uniform", "inv_sq")
FLOW_WEIGHT_EPS = 0.01


def method_class(name: str, entry: dict | None) -> str:
    """The class of the config method entry ``name``: its ``class`` key, else the name itself.

    ``idff_ot: {class: idff, coupling: exact_ot}`` names an IDFF method; an entry without
    ``class`` (the older style, ``idff: {...}``) must be named after its class.
    """
    return str((entry or {}).get("class", name))


def flow_weight(t: Tensor, kind: str) -> Tensor:
    """Per-sample weight of the x1 loss at time ``t`` (mean 1 over t ~ U[0, 1])."""
    if kind == "uniform":
        return torch.ones_like(t)
    if kind == "inv_sq":
        e = FLOW_WEIGHT_EPS
        mean = 1.0 / e - 1.0 / (1.0 + e)  # integral of (1 + e - t)^-2 over [0, 1]
        return (1.0 + e - t) ** -2 / mean
    raise ValueError(f"unknown flow_weight {kind!r}; valid: {', '.join(FLOW_WEIGHTS)}")


def split_heads(out: Tensor, n_heads: int) -> tuple[Tensor, ...]:
    return out.chunk(n_heads, dim=1)


class IDFF(Method):
    """IDFF's two-head objective (METHOD.md section 2).

    L = w_flow * w(t) |x1_hat - x1|^2 + |lambda_t s_hat + target|^2, lambda_t = 2 sigma_t / sigma^2,
    target = eps (default) or x0 (the v1 CIFAR/CelebA-64 scripts); w(t) = 1 (``flow_weight:
    uniform``, v1) or the authors' later 1/(1.01 - t)^2 normalised to mean 1 (``inv_sq``).
    """

    name = "idff"
    n_heads = 2

    def __init__(self, sigma: float = 0.2, w_flow: float = 2.0, coupling: str = "independent",
                 score_target: str = "eps", flow_weight: str = "uniform") -> None:
        if sigma <= 0:
            raise ValueError(f"idff needs sigma > 0 (lambda_t divides by sigma^2), got {sigma}")
        if coupling not in COUPLINGS:
            raise ValueError(f"unknown coupling {coupling!r}; valid: {', '.join(COUPLINGS)}")
        if score_target not in SCORE_TARGETS:
            raise ValueError(f"unknown score_target {score_target!r}; valid: {', '.join(SCORE_TARGETS)}")
        if flow_weight not in FLOW_WEIGHTS:
            raise ValueError(f"unknown flow_weight {flow_weight!r}; valid: {', '.join(FLOW_WEIGHTS)}")
        self.path = BrownianBridgePath(sigma)
        self.sigma, self.w_flow, self.coupling, self.score_target = sigma, w_flow, coupling, score_target
        self.flow_weight = flow_weight

    def lambda_t(self, t: Tensor) -> Tensor:
        return 2 * self.path.sigma_t(t) / self.sigma**2

    def regress(self, out, x0, x1, t, xt, eps) -> LossOutput:
        x1_hat, s_hat = split_heads(out, 2)
        target = eps if self.score_target == "eps" else x0
        sq = (x1_hat - x1) ** 2
        if self.flow_weight != "uniform":
            sq = expand_like(flow_weight(t, self.flow_weight), sq) * sq
        flow = sq.mean()
        score = ((expand_like(self.lambda_t(t), s_hat) * s_hat + target) ** 2).mean()
        return LossOutput(self.w_flow * flow + score, {"flow": flow.detach(), "score": score.detach()})


class CFM(Method):
    """Velocity regression on the path's conditional flow (I-CFM, OT-CFM, SB-CFM)."""

    n_heads = 1

    def regress(self, out, x0, x1, t, xt, eps) -> LossOutput:
        u = self.path.conditional_velocity(x0, x1, t, xt)
        loss = ((out - u) ** 2).mean()
        return LossOutput(loss, {"flow": loss.detach()})


class ICFM(CFM):
    """I-CFM: constant sigma, independent coupling, u = x1 - x0."""

    name = "icfm"

    def __init__(self, sigma: float = 0.0) -> None:
        self.path, self.sigma = ConstantSigmaPath(sigma), sigma


class OTCFM(ICFM):
    """OT-CFM: I-CFM with an exact minibatch OT coupling (POT emd)."""

    name = "otcfm"
    coupling = "exact_ot"


class SBCFM(CFM):
    """SB-CFM: Brownian bridge path, entropic OT with reg 2 sigma^2."""

    name = "sbcfm"
    coupling = "sinkhorn"
    t_min = 1e-4  # the conditional flow has a 1/sqrt(t (1 - t)) factor

    def __init__(self, sigma: float = 0.2) -> None:
        if sigma <= 0:
            raise ValueError(f"sbcfm needs sigma > 0, got {sigma}")
        self.path, self.sigma, self.ot_reg = BrownianBridgePath(sigma), sigma, 2 * sigma**2


METHOD_CLASSES: dict[str, type[Method]] = {"idff": IDFF, "icfm": ICFM, "otcfm": OTCFM, "sbcfm": SBCFM,
                                           "node": NODE}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method (e.g. the neural-ODE baseline) known by its ``name``."""
    METHOD_CLASSES[cls.name] = cls
    return cls


def build_method(name: str, **params) -> Method:
    """Make a method from its class name and parameters; unknown names list the valid ones.

    A config entry's own name may differ from its class (``method_class``)."""
    if name not in METHOD_CLASSES:
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(METHOD_CLASSES)}")
    try:
        return METHOD_CLASSES[name](**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for method {name!r}: {exc}") from exc
