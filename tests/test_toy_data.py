"""2D toy data: shapes, seeding, independent splits and the documented moments of each set."""

from __future__ import annotations

import math

import pytest
import torch

from idff.data.toy import SPLITS, TOY_DATASETS, ToyPairs, sample_toy, toy_split

N = 20_000


@pytest.fixture(scope="module")
def draws() -> dict[str, torch.Tensor]:
    return {name: toy_split(name, "train", N, seed=0) for name in TOY_DATASETS}


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_shape_dtype_finite(name, draws):
    x = draws[name]
    assert x.shape == (N, 2) and x.dtype == torch.float32
    assert torch.isfinite(x).all()


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_seeded_and_splits_differ(name):
    a = toy_split(name, "test", 500, seed=3)
    assert torch.equal(a, toy_split(name, "test", 500, seed=3))
    assert not torch.equal(a, toy_split(name, "test", 500, seed=4))
    by_split = [toy_split(name, s, 500, seed=3) for s in SPLITS]
    for i in range(len(by_split)):
        for j in range(i + 1, len(by_split)):
            assert not torch.equal(by_split[i], by_split[j]), (SPLITS[i], SPLITS[j])
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(sample_toy(name, 100, g1), sample_toy(name, 100, g2))


def test_eight_gaussians_moments(draws):
    x = draws["8gaussians"].double()
    r = x.norm(dim=1)
    assert r.mean().item() == pytest.approx(5.0, abs=0.05)
    assert x.mean(0).abs().max().item() < 0.1
    # every point is near one of the 8 centres, within-cluster variance 0.1 per coordinate
    angles = torch.arange(8, dtype=torch.float64) * math.pi / 4
    centres = 5 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    nearest = torch.cdist(x, centres).argmin(1)
    resid = x - centres[nearest]
    assert resid.var(0).tolist() == pytest.approx([0.1, 0.1], rel=0.05)
    counts = torch.bincount(nearest, minlength=8).double() / len(x)
    assert counts.sub(1 / 8).abs().max().item() < 0.01


def test_moons_moments(draws):
    # make_moons: mean (0.5, 0.25); scaled by 3 and shifted by -1 -> (0.5, -0.25)
    x = draws["moons"].double()
    assert x.mean(0).tolist() == pytest.approx([0.5, -0.25], abs=0.05)
    # before scaling, theta ~ U[0, pi]: x = cos(theta) or 1 - cos(theta), variance 1/2 + 1/4;
    # y = sin(theta) or 1/2 - sin(theta), variance 1/2 - 4/pi^2 + (4/pi - 1/2)^2 / 4; jitter
    # adds 0.2^2 to each; the scale 3 multiplies by 9
    var_x = 9 * (0.75 + 0.04)
    var_y = 9 * (0.5 - 4 / math.pi**2 + (4 / math.pi - 0.5) ** 2 / 4 + 0.04)
    assert x.var(0).tolist() == pytest.approx([var_x, var_y], rel=0.05)


def test_checkerboard_cells(draws):
    x = draws["checkerboard"].double()
    assert x.abs().max().item() <= 4.0
    cells = torch.floor(x / 2)  # the 4 x 4 board of 2 x 2 cells on [-4, 4]^2
    assert torch.all((cells[:, 0] + cells[:, 1]) % 2 == 0)  # only the 8 "black" cells
    counts = torch.unique(cells, dim=0, return_counts=True)[1].double() / len(x)
    assert len(counts) == 8 and counts.sub(1 / 8).abs().max().item() < 0.01
    assert x.var(0).tolist() == pytest.approx([64 / 12, 64 / 12], rel=0.05)  # uniform on [-4, 4]


def test_pinwheel_moments(draws):
    x = draws["pinwheel"].double()
    assert x.mean(0).abs().max().item() < 0.1  # 5-fold symmetric
    r = x.norm(dim=1) / 2  # sqrt(rad^2 + tang^2), rad ~ N(1, 0.3^2), tang ~ N(0, 0.1^2)
    assert r.mean().item() == pytest.approx(1.0 + 0.005, abs=0.03)


def test_spirals_moments(draws):
    x = draws["spirals"].double()
    assert x.mean(0).abs().max().item() < 0.1  # the two arms are point-symmetric
    # radius ~ (2/3) * m with m = 3 pi sqrt(U): mean (2/3) * 2 pi, plus the jitter's small shift
    assert x.norm(dim=1).mean().item() == pytest.approx(2 / 3 * 2 * math.pi, rel=0.05)
    assert x.abs().max().item() < 7.0


def test_unknown_names_and_bad_sizes():
    with pytest.raises(ValueError, match="unknown toy dataset 'swissroll'; valid: " +
                       ", ".join(TOY_DATASETS)):
        sample_toy("swissroll", 10, torch.Generator())
    with pytest.raises(ValueError, match="unknown split 'dev'; valid: train, val, test, reference"):
        toy_split("moons", "dev", 10, 0)
    with pytest.raises(ValueError, match=">= 1"):
        sample_toy("moons", 0, torch.Generator())


def test_toy_pairs():
    data = toy_split("moons", "train", 100, 0)
    src = ToyPairs(data)
    assert src.data_shape == (2,) and src.n_cond == 0
    x0, x1, cond = src.sample_batch(16, torch.Generator().manual_seed(0))
    assert x0 is None and cond is None and x1.shape == (16, 2)
    assert all(any(torch.equal(row, d) for d in data) for row in x1)
    with pytest.raises(ValueError, match="NaN or inf"):
        ToyPairs(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        ToyPairs(torch.zeros(5))
