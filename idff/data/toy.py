"""2D toy distributions with real randomness and seeded train / validation / test draws.

Definitions (all in the plane, drawn with a torch.Generator so draws are reproducible):

- ``8gaussians``: mixture of 8 equal-weight Gaussians, centres on a circle of radius 5 at angles
  k * 45 degrees, isotropic variance 0.1 (std 0.316). torchcfm's ``sample_8gaussians`` says
  var=0.1 but passes sqrt(0.1) as the covariance (std 0.1^(1/4) = 0.562): our modes are tighter.
- ``8gaussians_torchcfm``: the law the authors trained on, torchcfm's ``sample_8gaussians``
  (same centres, per-coordinate std 0.1^(1/4) = 0.562).
- ``moons``: two interleaving half circles (radius 1, centres (0, 0) and (1, 0.5)), a uniform
  random position along each arc, Gaussian jitter of std 0.2, then scaled by 3 and shifted by -1
  (scikit-learn's ``make_moons(noise=0.2)`` * 3 - 1, as in torchcfm).
- ``checkerboard``: uniform density on the 8 black cells of a 4 x 4 board on [-4, 4]^2
  (FFJORD's definition).
- ``pinwheel``: 5 arms; radial position N(1, 0.3^2), tangential N(0, 0.1^2), each arm rotated by
  angle 0.25 * exp(radial position) (FFJORD), scaled by 2.
- ``spirals``: two interleaved Archimedean spirals, angle sqrt(U) * 3 pi, uniform jitter in
  [0, 0.5), scaled by 1/3 * 2 (FFJORD's ``2spirals``) - roughly within [-4, 4]^2.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

TOY_DATASETS = ("8gaussians", "moons", "checkerboard", "pinwheel", "spirals",
                "8gaussians_torchcfm")
SPLITS = ("train", "val", "test", "reference")
_SPLIT_OFFSET = {"train": 0, "val": 1, "test": 2, "reference": 3}


def _u(n: int, g: torch.Generator) -> Tensor:
    return torch.rand(n, generator=g, dtype=torch.float64)


def _n(n: int, g: torch.Generator) -> Tensor:
    return torch.randn(n, generator=g, dtype=torch.float64)


def _eight_gaussians(n: int, g: torch.Generator, std: float = math.sqrt(0.1)) -> Tensor:
    k = torch.randint(0, 8, (n,), generator=g).double()
    centres = 5.0 * torch.stack([torch.cos(k * math.pi / 4), torch.sin(k * math.pi / 4)], dim=1)
    return centres + std * torch.stack([_n(n, g), _n(n, g)], dim=1)


def _eight_gaussians_torchcfm(n: int, g: torch.Generator) -> Tensor:
    # torchcfm: MultivariateNormal(0, sqrt(var) * I) with var = 0.1, i.e. variance sqrt(0.1)
    return _eight_gaussians(n, g, std=0.1**0.25)


def _moons(n: int, g: torch.Generator) -> Tensor:
    upper = torch.randint(0, 2, (n,), generator=g).bool()
    theta = math.pi * _u(n, g)
    x = torch.where(upper, torch.cos(theta), 1 - torch.cos(theta))
    y = torch.where(upper, torch.sin(theta), 0.5 - torch.sin(theta))
    pts = torch.stack([x, y], dim=1) + 0.2 * torch.stack([_n(n, g), _n(n, g)], dim=1)
    return 3 * pts - 1


def _checkerboard(n: int, g: torch.Generator) -> Tensor:
    x1 = _u(n, g) * 4 - 2
    x2_ = _u(n, g) - torch.randint(0, 2, (n,), generator=g).double() * 2
    x2 = x2_ + torch.floor(x1) % 2
    return torch.stack([x1, x2], dim=1) * 2


def _pinwheel(n: int, g: torch.Generator, arms: int = 5) -> Tensor:
    labels = torch.randint(0, arms, (n,), generator=g).double()
    r = 1 + 0.3 * _n(n, g)
    tang = 0.1 * _n(n, g)
    angle = labels * 2 * math.pi / arms + 0.25 * torch.exp(r)
    x = r * torch.cos(angle) - tang * torch.sin(angle)
    y = r * torch.sin(angle) + tang * torch.cos(angle)
    return 2 * torch.stack([x, y], dim=1)


def _spirals(n: int, g: torch.Generator) -> Tensor:
    m = torch.sqrt(_u(n, g)) * 540 * (2 * math.pi) / 360
    sign = torch.where(torch.randint(0, 2, (n,), generator=g).bool(), 1.0, -1.0).double()
    x = sign * (-torch.cos(m) * m + _u(n, g) * 0.5)
    y = sign * (torch.sin(m) * m + _u(n, g) * 0.5)
    return torch.stack([x, y], dim=1) / 3 * 2


_SAMPLERS = {"8gaussians": _eight_gaussians, "8gaussians_torchcfm": _eight_gaussians_torchcfm,
             "moons": _moons, "checkerboard": _checkerboard,
             "pinwheel": _pinwheel, "spirals": _spirals}


def sample_toy(name: str, n: int, generator: torch.Generator) -> Tensor:
    """``n`` float32 points of the named distribution."""
    if name not in _SAMPLERS:
        raise ValueError(f"unknown toy dataset {name!r}; valid: {', '.join(TOY_DATASETS)}")
    if n < 1:
        raise ValueError(f"number of samples must be >= 1, got {n}")
    return _SAMPLERS[name](n, generator).float()


def toy_split(name: str, split: str, n: int, seed: int) -> Tensor:
    """A seeded draw for one split; splits of one seed are independent of each other.

    ``reference`` is a second independent test-sized draw, used for the metric floor
    (target against target).
    """
    if split not in _SPLIT_OFFSET:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    g = torch.Generator().manual_seed(1_000_003 * seed + 7919 * _SPLIT_OFFSET[split] + 17)
    return sample_toy(name, n, g)


class ToyPairs:
    """Training pairs for static data: x0 is drawn from N(0, I) by the trainer (returned None)."""

    n_cond = 0

    def __init__(self, data: Tensor) -> None:
        if data.ndim != 2 or data.shape[0] == 0:
            raise ValueError(f"toy data must be a non-empty (N, D) tensor, got shape {tuple(data.shape)}")
        if not torch.isfinite(data).all():
            raise ValueError("toy data contains NaN or inf")
        self.data = data
        self.data_shape = tuple(data.shape[1:])

    def sample_batch(self, batch_size: int, generator: torch.Generator):
        idx = torch.randint(0, self.data.shape[0], (batch_size,), generator=generator)
        return None, self.data[idx], None


class FreshToyPairs:
    """Fresh target points every batch (the authors' toy training), drawn from the trainer's
    checkpointed data generator, so a resumed run sees the same points as an uninterrupted one."""

    n_cond = 0

    def __init__(self, name: str) -> None:
        sample_toy(name, 2, torch.Generator().manual_seed(0))  # fail early on an unknown name
        self.name = name
        self.data_shape = (2,)

    def sample_batch(self, batch_size: int, generator: torch.Generator):
        return None, sample_toy(self.name, batch_size, generator), None
