"""Angle metrics and MD metrics on hand-computable inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from idff.metrics.angles import (
    angular_diff_deg,
    circular_cc_deg,
    cut_at_largest_gap_deg,
    mae_deg,
    pearson_cc_deg,
    rmse_deg,
    unwrap_to_nearest_deg,
    wrap_deg,
)
from idff.metrics.md import (
    DEFAULT_BASINS,
    basin_kinetics,
    basin_labels,
    basin_populations,
    core_set_labels,
    js_divergence,
    prediction_metrics,
    ramachandran_histogram,
)


def test_wrap_deg_half_open_interval():
    got = wrap_deg([180.0, -180.0, 540.0, -190.0, 359.0, 0.0, -1e-14 - 180.0])
    np.testing.assert_allclose(got[:6], [-180.0, -180.0, -180.0, 170.0, -1.0, 0.0])
    assert -180.0 <= got[6] < 180.0


def test_seam_errors_are_two_degrees():
    assert angular_diff_deg(179.0, -179.0) == pytest.approx(-2.0)
    assert angular_diff_deg(-179.0, 179.0) == pytest.approx(2.0)
    pred = np.array([[179.0, -170.0]])
    true = np.array([[-179.0, 170.0]])
    np.testing.assert_allclose(mae_deg(pred, true), [2.0, 20.0])
    np.testing.assert_allclose(rmse_deg(pred, true), [2.0, 20.0])
    np.testing.assert_allclose(unwrap_to_nearest_deg(179.0, -179.0), -181.0)


def test_mae_rmse_hand_computed():
    true = np.zeros((4, 2))
    pred = np.array([[1.0, 3.0], [-1.0, -3.0], [1.0, 3.0], [-1.0, 5.0]])
    np.testing.assert_allclose(mae_deg(pred, true), [1.0, 3.5])
    np.testing.assert_allclose(rmse_deg(pred, true), [1.0, math.sqrt((9 + 9 + 9 + 25) / 4)])


def test_pearson_cc_plain_and_across_seam():
    t = np.array([0.0, 10.0, 20.0, 30.0])
    np.testing.assert_allclose(pearson_cc_deg(t[:, None], t[:, None]), [1.0])
    np.testing.assert_allclose(pearson_cc_deg(-t[:, None], t[:, None]), [-1.0])
    # x = (1, 2, 3, 4), y = (2, 1, 4, 3): r = 0.6 by hand
    np.testing.assert_allclose(pearson_cc_deg([[2.0], [1.0], [4.0], [3.0]], [[1.0], [2.0], [3.0], [4.0]]),
                               [0.6])
    # truth and prediction cross +-180 at different frames: the seam must not destroy r
    true = wrap_deg(np.array([170.0, 175.0, 179.0, 181.0, 185.0]))[:, None]
    pred = wrap_deg(true + np.array([[1.0], [-1.0], [2.0], [-2.0], [1.0]]))
    cc = pearson_cc_deg(pred, true)[0]
    naive = np.corrcoef(pred[:, 0], true[:, 0])[0, 1]
    ref = np.corrcoef([171, 174, 181, 179, 186], [170, 175, 179, 181, 185])[0, 1]
    assert cc == pytest.approx(ref)
    assert cc > 0.8 and naive < 0.5


def test_pearson_constant_is_nan():
    assert np.isnan(pearson_cc_deg(np.ones((5, 1)), np.arange(5.0)[:, None])[0])


def test_cut_at_largest_gap_makes_seam_series_continuous():
    a = np.array([[170.0], [-175.0], [178.0], [-170.0]])
    c = cut_at_largest_gap_deg(a)[:, 0]
    np.testing.assert_allclose(np.sort(c), [170.0, 178.0, 185.0, 190.0])


def test_circular_cc():
    rng = np.random.default_rng(0)
    a = rng.uniform(-180, 180, size=(200, 1))
    np.testing.assert_allclose(circular_cc_deg(a, a), [1.0])
    np.testing.assert_allclose(circular_cc_deg(wrap_deg(a + 90.0), a), [1.0])  # rotation-invariant
    assert abs(circular_cc_deg(rng.uniform(-180, 180, size=(5000, 1)), rng.uniform(-180, 180, size=(5000, 1)))[0]) < 0.05


def test_metric_input_errors():
    with pytest.raises(ValueError, match="shape"):
        mae_deg(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        rmse_deg(np.array([[np.nan, 0.0]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="empty"):
        prediction_metrics(np.zeros((0, 2)), np.zeros((0, 2)))


def test_prediction_metrics_layout_and_values():
    true = np.array([[0.0, 179.0], [10.0, -179.0], [20.0, 179.0]])
    pred = np.array([[1.0, -179.0], [11.0, 179.0], [21.0, -179.0]])
    m = prediction_metrics(pred, true)
    assert set(m) == {"phi", "psi", "mean"}
    assert m["phi"]["mae"] == pytest.approx(1.0) and m["psi"]["mae"] == pytest.approx(2.0)
    assert m["phi"]["cc"] == pytest.approx(1.0)
    assert m["mean"]["mae"] == pytest.approx(1.5)


def test_js_divergence_identical_and_disjoint():
    rng = np.random.default_rng(1)
    a = np.stack([rng.uniform(-170, -10, 500), rng.uniform(-170, -10, 500)], 1)
    b = np.stack([rng.uniform(10, 170, 500), rng.uniform(10, 170, 500)], 1)
    assert js_divergence(a, a) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence(a, b) == pytest.approx(math.log(2))  # nats
    assert js_divergence(a, b, base=2) == pytest.approx(1.0)  # bits
    half = js_divergence(a, np.concatenate([a, b]))  # q = (p + r)/2 with disjoint p, r
    assert 0 < half < math.log(2)
    h = ramachandran_histogram([a, b], bins=36)
    assert h.shape == (36, 36) and h.sum() == pytest.approx(1.0)


def test_basin_labels_boxes():
    pts = np.array([[-60.0, -45.0],   # alpha_R
                    [-150.0, 150.0],  # beta
                    [-75.0, -170.0],  # beta/PII across the psi seam
                    [60.0, 45.0],     # alpha_L
                    [75.0, -65.0],    # C7ax, counted in alpha_L
                    [60.0, 180.0]])   # other
    np.testing.assert_array_equal(basin_labels(pts), [0, 1, 1, 2, 2, -1])
    pops = basin_populations(pts)
    assert pops == pytest.approx({"alpha_R": 1 / 6, "beta_PII": 2 / 6, "alpha_L": 2 / 6, "other": 1 / 6})
    assert [b.name for b in DEFAULT_BASINS] == ["alpha_R", "beta_PII", "alpha_L"]


def test_core_set_ignores_boundary_noise_and_counts_waiting_time():
    A, B = [-60.0, -45.0], [-60.0, 150.0]  # alpha_R and beta/PII cores
    edge_a, edge_b = [-60.0, 45.0], [-60.0, 55.0]  # either side of the psi = 50 boundary
    seq = [A] * 10 + [edge_a, edge_b] * 5 + [B] * 20 + [edge_b, edge_a] * 3 + [A] * 10
    a = np.array(seq)
    # naive box assignment flips at every boundary crossing; the core-set rule does not
    naive = basin_labels(a)
    assert np.count_nonzero(naive[1:] != naive[:-1]) > 10
    lab = core_set_labels(a, margin=20.0)
    changes = np.flatnonzero(lab[1:] != lab[:-1]) + 1
    np.testing.assert_array_equal(changes, [20, 46])  # entering B's core, entering A's core
    k = basin_kinetics(a, frame_ps=2.0, margin=20.0)
    assert k["n_transitions"] == 2
    assert k["assigned_ps"] == pytest.approx((len(seq) - 1) * 2.0)
    assert k["mean_waiting_ps"] == pytest.approx((len(seq) - 1) * 2.0 / 2)
    assert k["mean_complete_dwell_ps"] == pytest.approx(26 * 2.0)


def test_kinetics_without_transitions_and_before_first_core():
    a = np.array([[-60.0, 45.0]] * 3 + [[-60.0, -45.0]] * 5)  # starts outside every core
    lab = core_set_labels(a, margin=20.0)
    np.testing.assert_array_equal(lab, [-1, -1, -1, 0, 0, 0, 0, 0])
    k = basin_kinetics([a, a], frame_ps=1.0)
    assert k["n_transitions"] == 0 and k["assigned_ps"] == pytest.approx(8.0)
    assert math.isnan(k["mean_waiting_ps"]) and math.isnan(k["mean_complete_dwell_ps"])
    with pytest.raises(ValueError, match="frame_ps"):
        basin_kinetics(a, frame_ps=0.0)
