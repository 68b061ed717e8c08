"""torch-fidelity wrapper: configured weights path, fast offline failure, the tiny test extractor."""

import socket
import time
import urllib.request

import numpy as np
import pytest
import torch
import torch_fidelity

from idff.data.images import offline_cifar_like, offline_faces
from idff.metrics import images as mi


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network at all, and an empty torch hub cache."""
    def refuse(*a, **k):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    mi._check_weights_file.cache_clear()


@pytest.fixture
def capture(monkeypatch):
    calls = []

    def fake(**kwargs):
        calls.append(kwargs)
        return {torch_fidelity.KEY_METRIC_FID: 3.25, torch_fidelity.KEY_METRIC_KID_MEAN: 0.01,
                torch_fidelity.KEY_METRIC_KID_STD: 0.002, torch_fidelity.KEY_METRIC_ISC_MEAN: 9.5,
                torch_fidelity.KEY_METRIC_ISC_STD: 0.1}
    monkeypatch.setattr(torch_fidelity, "calculate_metrics", fake)
    return calls


def _fake_weights(path):
    """A file shaped like torch-fidelity's Inception state dict (the check looks at two keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"fc.weight": torch.zeros(1008, 2048), "Conv2d_1a_3x3.conv.weight": torch.zeros(1)},
               path)
    return path


def _imgs(n, seed=0, nchw=False):
    x = np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return x.transpose(0, 3, 1, 2).copy() if nchw else x


def test_torch_fidelity_gets_the_configured_weights_path(offline, capture, tmp_path):
    weights = _fake_weights(tmp_path / "w" / mi.INCEPTION_WEIGHTS_NAME)
    out = mi.compute_image_metrics(_imgs(6), _imgs(12, 1, nchw=True), weights_path=weights)
    (kw,) = capture
    assert kw["feature_extractor_weights_path"] == str(weights)
    assert kw["feature_extractor"] == "inception-v3-compat"
    assert kw["fid"] and kw["kid"] and kw["isc"]
    assert kw["kid_subset_size"] == 6 and kw["isc_splits"] == 6  # adapted to 6 fakes
    assert kw["cuda"] is False and kw["save_cpu_ram"] is True and kw["cache"] is False
    assert len(kw["input1"]) == 6 and len(kw["input2"]) == 12
    assert kw["input1"][0].shape == (3, 32, 32) and kw["input2"][0].dtype == torch.uint8
    assert out["fid"] == 3.25 and out["isc_mean"] == 9.5 and out["comparable"] is True
    assert out["weights_path"] == str(weights)


def test_hub_cache_file_is_used_when_no_path_is_configured(offline, capture, tmp_path):
    hub = _fake_weights(tmp_path / "torch_home" / "hub" / "checkpoints" / mi.INCEPTION_WEIGHTS_NAME)
    mi.compute_image_metrics(_imgs(4), _imgs(4, 1), kid=False, isc=False)
    assert capture[0]["feature_extractor_weights_path"] == str(hub)


def test_offline_without_weights_fails_fast_and_clearly(offline, capture, tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(mi.ImageMetricsError) as exc:
        mi.compute_image_metrics(_imgs(4), _imgs(4, 1))
    assert time.perf_counter() - t0 < 2.0
    msg = str(exc.value)
    assert "resources/weights/weights-inception-2015-12-05-6726825d.pth" in msg
    assert mi.INCEPTION_WEIGHTS_URL in msg and "idff-tiny-test" in msg
    with pytest.raises(mi.ImageMetricsError, match="does not exist"):
        mi.compute_image_metrics(_imgs(4), _imgs(4, 1), weights_path=tmp_path / "missing.pth")
    assert capture == []


def test_wrong_weights_file_is_refused_before_torch_fidelity(offline, capture, tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(mi.ImageMetricsError, match="not a plain Inception weights file"):
        mi.compute_image_metrics(_imgs(4), _imgs(4, 1), weights_path=junk)
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(mi.ImageMetricsError, match="not torch-fidelity's Inception-v3"):
        mi.compute_image_metrics(_imgs(4), _imgs(4, 1), weights_path=other)
    assert capture == []


def test_input_validation(offline):
    with pytest.raises(mi.ImageMetricsError, match="to_uint8"):
        mi.compute_image_metrics(_imgs(4).astype(np.float32), _imgs(4), feature_extractor=mi.TINY)
    with pytest.raises(mi.ImageMetricsError, match="at least 2"):
        mi.compute_image_metrics(_imgs(1), _imgs(4), feature_extractor=mi.TINY)
    with pytest.raises(mi.ImageMetricsError, match="feature_extractor"):
        mi.compute_image_metrics(_imgs(4), _imgs(4), feature_extractor="clip-vit-b-32")


def test_to_uint8_known_values():
    x = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0])
    assert mi.to_uint8(x).tolist() == [0, 0, 128, 191, 255, 255]


def test_tiny_extractor_gives_real_numbers_flagged_not_comparable(offline):
    a = offline_cifar_like(120, seed=0)
    faces = offline_faces(32, n=100)
    kw = dict(feature_extractor=mi.TINY, kid_subsets=5)
    same = mi.compute_image_metrics(a, a, **kw)
    other = mi.compute_image_metrics(faces, a, **kw)
    assert abs(same["fid"]) < 1e-6
    assert other["fid"] > 0.5 and other["kid_mean"] > 10 * abs(same["kid_mean"])
    assert other["isc_mean"] > 1.0
    for res in (same, other):
        assert res["comparable"] is False and res["feature_extractor"] == "idff-tiny-test"
        assert res["weights_path"] is None
    assert other["kid_subset_size"] == 100  # adapted to the 100 faces
    # same numbers from NCHW input and from a second extractor instance (fixed weights)
    again = mi.compute_image_metrics(faces.transpose(0, 3, 1, 2), a, **kw)
    assert again["fid"] == pytest.approx(other["fid"], rel=1e-9)
