"""W2 and RBF-MMD on sets with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from idff.metrics.distribution import (
    distribution_metrics,
    median_bandwidth,
    mmd2_rbf,
    wasserstein2,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _mmd2_multiscale(x, y) -> float:
    """The toy tables' multi-bandwidth MMD^2 (bandwidths: multiples of the target's median)."""
    return distribution_metrics(x, y, only=["mmd_multi"])["mmd_multi"]


def _gauss(n: int, seed: int, d: int = 2) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("c", [(0.0, 0.0), (0.3, -0.4), (3.0, 4.0), (-0.01, 0.02)])
def test_w2_of_a_translated_set_is_the_shift(c):
    """W2(mu, mu + c) = |c| exactly: every coupling pays |c|^2 plus a term the identity makes 0."""
    x = _gauss(300, 0)
    shift = torch.tensor(c, dtype=torch.float64)
    assert wasserstein2(x, x + shift) == pytest.approx(math.hypot(*c), abs=1e-7)


def test_w2_of_identical_sets_and_permutations_is_zero():
    x = _gauss(200, 1)
    assert wasserstein2(x, x) == pytest.approx(0.0, abs=1e-7)
    perm = torch.randperm(200, generator=torch.Generator().manual_seed(0))
    assert wasserstein2(x, x[perm]) == pytest.approx(0.0, abs=1e-7)


def test_w2_by_hand_on_two_points():
    # {0, 1} vs {0.5, 3} on a line: the monotone pairing costs (0.25 + 4) / 2
    x, y = np.array([[0.0], [1.0]]), np.array([[3.0], [0.5]])
    assert wasserstein2(x, y) == pytest.approx(math.sqrt((0.25 + 4) / 2), abs=1e-12)


def test_w2_of_unequal_sizes():
    x = _gauss(100, 2)
    # a set against two copies of itself: still the same measure
    assert wasserstein2(x, torch.cat([x, x])) == pytest.approx(0.0, abs=1e-6)


def test_mmd_by_hand_on_two_points():
    x, y = np.array([[0.0], [1.0]]), np.array([[0.0], [2.0]])

    def k(d2, h=1.0):
        return math.exp(-d2 / (2 * h * h))

    for hs in ((1.0,), (1.0, 2.0)):
        def kern(d2, hs=hs):
            return sum(k(d2, h) for h in hs) / len(hs)
        kxx, kyy = kern(1.0), kern(4.0)  # unbiased: off-diagonal pairs only
        kxy = (kern(0.0) + kern(4.0) + kern(1.0) + kern(1.0)) / 4
        assert mmd2_rbf(x, y, bandwidths=hs) == pytest.approx(kxx + kyy - 2 * kxy, abs=1e-12)


def test_mmd_of_the_same_distribution_is_near_zero():
    x, y = _gauss(1000, 3), _gauss(1000, 4)
    value = mmd2_rbf(x, y)
    assert abs(value) < 2e-3
    assert abs(_mmd2_multiscale(x, y)) < 2e-3


def test_mmd_grows_with_the_shift():
    x, y = _gauss(600, 5), _gauss(600, 6)
    values = [mmd2_rbf(x, y + torch.tensor([s, 0.0], dtype=torch.float64))
              for s in (0.25, 0.5, 1.0, 2.0)]
    null = mmd2_rbf(x, y)
    assert values[0] > abs(null) * 3
    assert all(a < b for a, b in zip(values, values[1:], strict=False))
    multi = [_mmd2_multiscale(x + s, y) for s in (0.25, 0.5, 1.0)]
    assert all(a < b for a, b in zip(multi, multi[1:], strict=False)) and multi[0] > 0


def test_median_bandwidth():
    z = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    # pairwise distances 5, 5, 10 (each twice): median of (5, 5, 5, 5, 10, 10) is 5
    assert median_bandwidth(z) == pytest.approx(5.0)


@pytest.mark.parametrize("fn", [wasserstein2, mmd2_rbf, _mmd2_multiscale])
def test_bad_inputs_are_rejected(fn):
    good = _gauss(10, 7)
    bad = good.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        fn(bad, good)
    bad[3, 1] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        fn(good, bad)
    with pytest.raises(ValueError, match="at least 2 samples"):
        fn(good[:1], good)
    with pytest.raises(ValueError, match="at least 2 samples"):
        fn(torch.zeros(10), good)


def test_distribution_metrics_keys_and_image_shaped_input():
    x = _gauss(50, 8, d=12).reshape(50, 3, 2, 2)
    out = distribution_metrics(x, x + 1.0)
    assert set(out) == {"w2", "mmd", "mmd_biased", "mmd_multi"}
    assert out["w2"] == pytest.approx(math.sqrt(12), abs=1e-6)  # flattened: |c| = sqrt(12)
