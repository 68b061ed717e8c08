"""idff.metrics.probabilistic: CRPS against closed forms, spread-skill, reference forecasts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from idff.data.sst import forecast_windows, load_sst_dataset, prepare_sst_dataset
from idff.metrics.probabilistic import (
    climatology_forecast,
    crps_ensemble,
    ensemble_mean_mse,
    per_lead_scores,
    spread_skill_ratio,
)


def crps_gaussian(obs, mu, sigma) -> np.ndarray:
    """Closed-form CRPS of N(mu, sigma^2): ``sigma (z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi))``,
    the reference the ensemble CRPS is checked against."""
    from scipy.special import ndtr

    obs, mu, sigma = (np.asarray(v, dtype=np.float64) for v in (obs, mu, sigma))
    z = (obs - mu) / sigma
    pdf = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    return sigma * (z * (2.0 * ndtr(z) - 1.0) + 2.0 * pdf - 1.0 / np.sqrt(np.pi))


def persistence_forecast(context: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed field for every lead: ``[N, horizon, 1, *field]`` (one member)."""
    return np.broadcast_to(context[:, None, None],
                           (context.shape[0], horizon, 1, *context.shape[1:]))


def test_single_member_crps_is_the_absolute_error():
    rng = np.random.default_rng(0)
    obs, ens = rng.normal(size=(7, 5)), rng.normal(size=(1, 7, 5))
    for backend in ("formula", "properscoring"):
        np.testing.assert_allclose(crps_ensemble(obs, ens, 0, backend=backend),
                                   np.abs(ens[0] - obs), atol=1e-12)


def test_formula_agrees_with_properscoring_on_any_member_axis():
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(4, 6, 3))
    ens = rng.gamma(2.0, size=(4, 6, 11, 3))  # skewed, members on axis 2
    ref = crps_ensemble(obs, ens, member_axis=2, backend="properscoring")
    np.testing.assert_allclose(crps_ensemble(obs, ens, member_axis=2), ref, rtol=1e-10)
    np.testing.assert_allclose(crps_ensemble(obs, np.moveaxis(ens, 2, 0), 0), ref, rtol=1e-10)
    # torch tensors are accepted too
    np.testing.assert_allclose(crps_ensemble(torch.as_tensor(obs), torch.as_tensor(ens), 2), ref,
                               rtol=1e-10)
    with pytest.raises(ValueError, match="shape"):
        crps_ensemble(obs, ens, member_axis=0)


def test_gaussian_crps_closed_form_values():
    # z = 0: sigma * (sqrt(2) - 1) / sqrt(pi); large |z|: CRPS -> |y - mu| - sigma / sqrt(pi)
    assert crps_gaussian(0.0, 0.0, 2.0) == pytest.approx(2 * (np.sqrt(2) - 1) / np.sqrt(np.pi))
    assert crps_gaussian(50.0, 0.0, 1.0) == pytest.approx(50 - 1 / np.sqrt(np.pi), abs=1e-9)


def test_large_gaussian_ensemble_approaches_the_closed_form():
    rng = np.random.default_rng(2)
    mu, sigma = 1.5, 0.7
    obs = np.array([-1.0, 0.3, 1.5, 2.2, 4.0])
    ens = rng.normal(mu, sigma, size=(40_000, 1)) * np.ones((1, obs.size))
    exact = crps_gaussian(obs, mu, sigma)
    np.testing.assert_allclose(crps_ensemble(obs, ens, 0), exact, rtol=0.01)
    np.testing.assert_allclose(crps_ensemble(obs, ens, 0, fair=True), exact, rtol=0.01)
    # a wrong spread is detected at this tolerance
    wrong = rng.normal(mu, 1.2 * sigma, size=(40_000, obs.size))
    assert not np.allclose(crps_ensemble(obs, wrong, 0), exact, rtol=0.01)


def test_fair_crps_is_unbiased_for_small_ensembles():
    # E[CRPS_empirical] = CRPS + E|X - X'| / (2 M) = CRPS + sigma / (sqrt(pi) M) for N(mu, sigma)
    rng = np.random.default_rng(3)
    m, n = 4, 200_000
    obs = rng.normal(size=n)
    ens = rng.normal(size=(m, n))
    exact = crps_gaussian(obs, 0.0, 1.0).mean()
    assert crps_ensemble(obs, ens, 0, fair=True).mean() == pytest.approx(exact, abs=0.005)
    assert crps_ensemble(obs, ens, 0).mean() == pytest.approx(exact + 1 / (np.sqrt(np.pi) * m),
                                                              abs=0.005)


def test_ensemble_mean_mse_known_value():
    obs = np.zeros((2, 3))
    ens = np.stack([np.full((2, 3), 1.0), np.full((2, 3), 3.0)])  # mean 2 everywhere
    assert ensemble_mean_mse(obs, ens, 0) == pytest.approx(4.0)
    np.testing.assert_allclose(ensemble_mean_mse(obs, ens, 0, axis=1), [4.0, 4.0])
    w = np.array([[1, 0, 0], [0, 0, 0]])
    obs2 = obs.copy()
    obs2[1] = 10.0  # excluded by the weights
    assert ensemble_mean_mse(obs2, ens, 0, weights=w) == pytest.approx(4.0)


def test_spread_skill_of_a_reliable_ensemble():
    # truth and members are exchangeable draws -> SSR = sqrt(M / (M + 1)) without correction
    rng = np.random.default_rng(4)
    m, n = 5, 400_000
    centre = rng.normal(size=n)
    obs = centre + rng.normal(size=n)
    ens = centre[None] + rng.normal(size=(m, n))
    ss = spread_skill_ratio(obs, ens, 0)
    assert ss.ratio == pytest.approx(np.sqrt(m / (m + 1)), abs=0.01)
    assert spread_skill_ratio(obs, ens, 0, finite_correction=True).ratio == pytest.approx(1.0,
                                                                                         abs=0.01)
    assert ss.spread == pytest.approx(1.0, abs=0.01)  # ddof 1 variance of N(0, 1) members
    narrow = centre[None] + 0.5 * rng.normal(size=(m, n))
    assert spread_skill_ratio(obs, narrow, 0).ratio < 0.6
    with pytest.raises(ValueError, match=">= 2"):
        spread_skill_ratio(obs, ens[:1], 0)


def test_per_lead_scores_known_values_and_mask():
    n, lead, h, w = 3, 4, 2, 2
    obs = np.zeros((n, lead, 1, h, w))
    offset = np.arange(1, lead + 1, dtype=float)  # error grows with the lead
    ens = np.broadcast_to(offset[None, :, None, None, None, None],
                          (n, lead, 6, 1, h, w)).copy()
    ens[:, :, 3:] *= 3.0  # members at offset and 3 * offset: mean 2 * offset
    ens[..., 1, 1] = 100.0  # a "land" point, masked out below
    mask = np.ones((1, 1, 1, h, w))
    mask[..., 1, 1] = 0
    s = per_lead_scores(obs, ens, member_axis=2, lead_axis=1, weights=mask)
    np.testing.assert_allclose(s["mse"], (2 * offset) ** 2)
    # CRPS of {a, 3a} (3 members each) at y = 0: mean |x| - sum|xi - xj| / (2 M^2) = 2a - a/2
    np.testing.assert_allclose(s["crps"], 1.5 * offset)
    np.testing.assert_allclose(s["spread"], np.sqrt(6 / 5) * offset)  # ddof 1
    np.testing.assert_allclose(s["ssr"], np.sqrt(6 / 5) / 2)
    assert s["crps_avg"] == pytest.approx(1.5 * offset.mean()) and s["n_members"] == 6
    one = per_lead_scores(obs, ens[:, :, :1], member_axis=2, lead_axis=1, weights=mask)
    np.testing.assert_allclose(one["crps"], offset)  # |error| of the single member
    assert np.isnan(one["ssr"]).all()


def test_climatology_draws_training_fields_of_the_target_period():
    b, t = 2, 36  # 3 training years of monthly fields, value = 1000 * box + time index
    hist = (1000.0 * np.arange(b)[:, None] + np.arange(t)[None, :])[:, :, None, None]
    period = np.arange(t) % 12
    target = np.array([[0, 1, 2], [11, 0, 1]])
    f = climatology_forecast(hist, period, np.array([1, 0]), target, seed=0)
    assert f.shape == (2, 3, 3, 1, 1)
    vals = f[..., 0, 0]
    assert (vals[0] >= 1000).all() and (vals[1] < 1000).all()  # right box
    np.testing.assert_array_equal(vals % 1000 % 12, np.broadcast_to(target[..., None], (2, 3, 3)))
    assert all(len(set(v)) == 3 for v in vals.reshape(-1, 3).tolist())  # no repeated year
    assert climatology_forecast(hist, period, np.array([1, 0]), target, n_members=2).shape[2] == 2
    with pytest.raises(ValueError, match="fewer training fields"):
        climatology_forecast(hist, period, np.array([0]), target[:1], n_members=4)
    with pytest.raises(ValueError, match="no training field"):
        climatology_forecast(hist[:, :6], period[:6], np.array([0]), target[1:])


def test_reference_forecasts_on_the_offline_ostia_windows(tmp_path):
    data = load_sst_dataset(prepare_sst_dataset("ostia", tmp_path / "o.nc"))
    win = forecast_windows(data, "test", horizon=7)
    ocean = ~win.land[:, None]  # [N, 1, 1, H, W], broadcast over the leads
    pers = per_lead_scores(win.truth, persistence_forecast(win.context, 7), member_axis=2,
                           lead_axis=1, weights=ocean)
    tr = data.split_index("train")
    clim = climatology_forecast(data.sst[:, tr][:, :, None], data.period[tr], win.box,
                                win.target_period)
    assert clim.shape[:3] == (len(win), 7, 2)  # Jan-Mar have 2 training years (2007, 2008)
    cs = per_lead_scores(win.truth, clim, member_axis=2, lead_axis=1, weights=ocean)
    for s in (pers, cs):
        assert np.isfinite(s["crps"]).all() and np.isfinite(s["mse"]).all()
    assert np.isfinite(cs["ssr"]).all()
    # persistence error grows with the lead on real SST (lead 1 beats lead 7)
    assert pers["mse"][0] < pers["mse"][-1]
