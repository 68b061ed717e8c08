"""FID, KID and Inception Score through torch-fidelity, offline-safe.

The Inception weights are never downloaded from here: they come from ``weights_path`` or, when
that is None, from torch hub's cache; without either the call fails at once with a message that
says where to put the file. ``idff-tiny-test`` (a fixed random conv net) stands in when there
are no weights (tests, smoke runs); its numbers are flagged ``comparable: False`` and must never
be mixed with Inception numbers in a table.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torch_fidelity
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

INCEPTION = "inception-v3-compat"
TINY = "idff-tiny-test"
EXTRACTORS = (INCEPTION, TINY)
INCEPTION_WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                         + INCEPTION_WEIGHTS_NAME)
DEFAULT_WEIGHTS_PATH = Path("resources/weights") / INCEPTION_WEIGHTS_NAME


class ImageMetricsError(RuntimeError):
    """Bad metric inputs or missing feature-extractor weights; the message says what to do."""


class TinyTestExtractor(FeatureExtractorBase):
    """A fixed-seed random conv net (3 -> 16 -> 32 -> 64, stride 2) with mean+std pooling.

    Features: ``feat`` (128 dims, FID/KID) and ``logits`` (10 classes, IS). Deterministic across
    processes (its weights come from its own seeded generator). NOT an Inception network.
    """

    SEED = 20240922
    SIDE = 32
    LOGIT_SCALE = 20.0  # spreads the class probabilities so that IS is not stuck at 1

    def __init__(self, name: str, features_list, **kwargs: Any):
        super().__init__(name, features_list)
        g = torch.Generator().manual_seed(self.SEED)
        self.convs = nn.ModuleList([nn.Conv2d(3, 16, 3, 2, 1), nn.Conv2d(16, 32, 3, 2, 1),
                                    nn.Conv2d(32, 64, 3, 2, 1)])
        self.head = nn.Linear(128, 10)
        with torch.no_grad():
            for p in self.parameters():
                scale = p[0].numel() ** -0.5 if p.ndim > 1 else 0.1  # weights: 1/sqrt(fan_in)
                p.copy_(torch.randn(p.shape, generator=g) * scale)
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def get_provided_features_list():
        return "feat", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": "logits", "fid": "feat", "kid": "feat", "prc": "feat"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, TinyTestExtractor.SIDE, TinyTestExtractor.SIDE, dtype=torch.uint8)

    def forward(self, x: torch.Tensor):
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected uint8 images (B, 3, H, W), got {x.dtype} {tuple(x.shape)}")
        h = x.float() / 127.5 - 1.0
        h = F.interpolate(h, size=(self.SIDE, self.SIDE), mode="bilinear", antialias=True,
                          align_corners=False)
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
        feat = torch.cat([h.mean(dim=(2, 3)), h.std(dim=(2, 3))], dim=1)
        out = {"feat": feat, "logits": self.LOGIT_SCALE * self.head(feat)}
        return tuple(out[k] for k in self.features_list)


if TINY not in FEATURE_EXTRACTORS_REGISTRY:
    torch_fidelity.register_feature_extractor(TINY, TinyTestExtractor)


class _UInt8Images(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def as_nchw_uint8(images: np.ndarray | torch.Tensor, what: str = "images") -> torch.Tensor:
    """uint8 [N, 3, H, W] from uint8 [N, H, W, 3] or [N, 3, H, W] (numpy or torch)."""
    t = images.detach().cpu() if isinstance(images, torch.Tensor) else torch.from_numpy(
        np.ascontiguousarray(images))
    if t.dtype != torch.uint8:
        raise ImageMetricsError(f"{what} are {t.dtype}; FID/KID/IS take uint8 in [0, 255] "
                                f"(convert samples in [-1, 1] with to_uint8)")
    if t.ndim != 4 or 3 not in (t.shape[1], t.shape[-1]):
        raise ImageMetricsError(f"{what} have shape {tuple(t.shape)}; expected [N, H, W, 3] or "
                                f"[N, 3, H, W]")
    if t.shape[1] != 3:
        t = t.permute(0, 3, 1, 2)
    return t.contiguous()


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (any float dtype) to uint8 [0, 255], rounding and clipping."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def resolve_inception_weights(weights_path: str | os.PathLike | None) -> Path:
    """The local Inception weights file, or an ImageMetricsError that says where to put it."""
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_NAME
    if weights_path is not None:
        path = Path(weights_path)
        if not (path.is_file() and path.stat().st_size > 0):
            raise ImageMetricsError(_missing_weights_message(
                f"the configured weights file {path} does not exist (or is empty)"))
    elif hub_file.is_file():
        path = hub_file
    else:
        raise ImageMetricsError(_missing_weights_message(
            f"no Inception weights path is configured and torch hub's cache has no {hub_file}"))
    st = path.stat()
    _check_weights_file(str(path.resolve()), st.st_size, st.st_mtime_ns)
    return path


@lru_cache(maxsize=4)
def _check_weights_file(path: str, size: int, mtime_ns: int) -> None:
    """Load with weights_only=True before torch-fidelity does (it unpickles with
    weights_only=False), and check that it is the Inception-v3 state dict."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ImageMetricsError(f"{path} is not a plain Inception weights file "
                                f"({type(exc).__name__}: {first}); fetch {INCEPTION_WEIGHTS_URL} "
                                f"again") from exc
    fc = sd.get("fc.weight") if isinstance(sd, dict) else None
    if fc is None or tuple(fc.shape) != (1008, 2048) or "Conv2d_1a_3x3.conv.weight" not in sd:
        raise ImageMetricsError(f"{path} is not torch-fidelity's Inception-v3 state dict (no "
                                f"fc.weight [1008, 2048] / Conv2d_1a_3x3); fetch "
                                f"{INCEPTION_WEIGHTS_URL}")


def _missing_weights_message(where: str) -> str:
    return (
        f"FID/KID/IS need torch-fidelity's Inception-v3 weights, and {where}. This code never "
        f"downloads them. Fetch {INCEPTION_WEIGHTS_URL} on a machine with internet, "
        f"place it at {DEFAULT_WEIGHTS_PATH} (or any path) and set the metrics' Inception weights "
        f"path in the config to it (weights_path / feature_extractor_weights_path). Without the "
        f"file, only feature_extractor='{TINY}' runs, and its numbers are not comparable to "
        f"published FIDs.")


def compute_image_metrics(fake: np.ndarray | torch.Tensor, real: np.ndarray | torch.Tensor, *,
                          fid: bool = True, kid: bool = True, isc: bool = True,
                          weights_path: str | os.PathLike | None = None,
                          feature_extractor: str = INCEPTION, batch_size: int = 200,
                          device: str | torch.device = "cpu", kid_subsets: int = 100,
                          kid_subset_size: int = 1000, isc_splits: int = 10, seed: int = 2020,
                          verbose: bool = False) -> dict[str, Any]:
    """FID / KID / IS of ``fake`` against ``real`` (uint8 images) with torch-fidelity.

    KID's subset size and IS's split count shrink to the sample counts when these are small;
    the values used are returned. Keys: fid, kid_mean, kid_std, isc_mean, isc_std (those asked
    for), comparable, feature_extractor, n_fake, n_real, kid_subset_size, isc_splits, weights_path.
    """
    if feature_extractor not in EXTRACTORS:
        raise ImageMetricsError(f"feature_extractor must be one of {EXTRACTORS}, got "
                                f"{feature_extractor!r}")
    if not (fid or kid or isc):
        raise ImageMetricsError("ask for at least one of fid, kid, isc")
    weights = resolve_inception_weights(weights_path) if feature_extractor == INCEPTION else None
    fake_t, real_t = as_nchw_uint8(fake, "fake images"), as_nchw_uint8(real, "real images")
    n_fake, n_real = fake_t.shape[0], real_t.shape[0]
    if min(n_fake, n_real) < 2:
        raise ImageMetricsError(f"need at least 2 fake and 2 real images, got {n_fake} and {n_real}")
    dev = torch.device(device)
    subset = min(kid_subset_size, n_fake, n_real)
    splits = max(1, min(isc_splits, n_fake))
    kwargs = dict(
        input1=_UInt8Images(fake_t), input2=_UInt8Images(real_t), fid=fid, kid=kid, isc=isc,
        feature_extractor=feature_extractor,
        feature_extractor_weights_path=str(weights) if weights is not None else None,
        batch_size=batch_size, cuda=dev.type == "cuda", save_cpu_ram=dev.type != "cuda",
        kid_subsets=kid_subsets, kid_subset_size=subset, isc_splits=splits, rng_seed=seed,
        cache=False, datasets_download=False, verbose=verbose,
    )
    raw = torch_fidelity.calculate_metrics(**kwargs)
    out: dict[str, Any] = {}
    keys = {"fid": torch_fidelity.KEY_METRIC_FID, "kid_mean": torch_fidelity.KEY_METRIC_KID_MEAN,
            "kid_std": torch_fidelity.KEY_METRIC_KID_STD,
            "isc_mean": torch_fidelity.KEY_METRIC_ISC_MEAN,
            "isc_std": torch_fidelity.KEY_METRIC_ISC_STD}
    for ours, theirs in keys.items():
        if theirs in raw:
            out[ours] = float(raw[theirs])
    out.update(comparable=feature_extractor == INCEPTION, feature_extractor=feature_extractor,
               implementation=f"torch-fidelity {torch_fidelity.__version__}",
               n_fake=n_fake, n_real=n_real, kid_subset_size=subset if kid else None,
               isc_splits=splits if isc else None,
               weights_path=str(weights) if weights is not None else None)
    return out


class ReferenceMetrics:
    """FID / KID / IS of many generated sets against one real reference set.

    The reference features (and FID statistics) are extracted once, at construction, with
    torch-fidelity's own feature extractor and metric functions, so every later call costs only
    the generated images' features. A call gives the same numbers as ``compute_image_metrics``
    with the same settings. Tuning (one call per grid point and NFE) and a 50k-sample sweep
    (one per NFE) would otherwise re-extract the 50k reference images every time.
    """

    def __init__(self, real: np.ndarray | torch.Tensor, *, feature_extractor: str = INCEPTION,
                 weights_path: str | os.PathLike | None = None, batch_size: int = 200,
                 device: str | torch.device = "cpu", kid_subsets: int = 100,
                 kid_subset_size: int = 1000, isc_splits: int = 10, seed: int = 2020,
                 verbose: bool = False) -> None:
        # torch-fidelity: heavy, only FID/KID/IS need it
        from torch_fidelity.metric_fid import fid_featuresdict_to_statistics
        from torch_fidelity.utils import (  # torch-fidelity: heavy, only FID/KID/IS need it
            create_feature_extractor,
            resolve_feature_layer_for_metric,
        )

        if feature_extractor not in EXTRACTORS:
            raise ImageMetricsError(f"feature_extractor must be one of {EXTRACTORS}, got "
                                    f"{feature_extractor!r}")
        if batch_size < 1 or kid_subsets < 1 or kid_subset_size < 2 or isc_splits < 1:
            raise ImageMetricsError(
                f"need batch_size >= 1, kid_subsets >= 1, kid_subset_size >= 2, isc_splits >= 1; "
                f"got {batch_size}, {kid_subsets}, {kid_subset_size}, {isc_splits}")
        weights = resolve_inception_weights(weights_path) if feature_extractor == INCEPTION else None
        real_t = as_nchw_uint8(real, "real images")
        if real_t.shape[0] < 2:
            raise ImageMetricsError(f"need at least 2 real images, got {real_t.shape[0]}")
        self.device = torch.device(device)
        self.feature_extractor, self.weights = feature_extractor, weights
        self.batch_size, self.verbose = int(batch_size), verbose
        self.kid_subsets, self.kid_subset_size = int(kid_subsets), int(kid_subset_size)
        self.isc_splits, self.seed = int(isc_splits), int(seed)
        self.layers = {m: resolve_feature_layer_for_metric(m, feature_extractor=feature_extractor)
                       for m in ("fid", "kid", "isc")}
        cuda = self.device.type == "cuda"
        self.extractor = create_feature_extractor(
            feature_extractor, sorted(set(self.layers.values())), cuda=cuda,
            feature_extractor_weights_path=str(weights) if weights is not None else None,
            verbose=verbose)
        self.n_real = int(real_t.shape[0])
        self.real = self.features(real_t)
        self.real_stats = fid_featuresdict_to_statistics(self.real, self.layers["fid"])

    def features(self, images: np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
        """The extractor's features of uint8 images (torch-fidelity's batching and dtypes)."""
        # torch-fidelity: heavy, only FID/KID/IS need it
        from torch_fidelity.utils import get_featuresdict_from_dataset

        cuda = self.device.type == "cuda"
        return get_featuresdict_from_dataset(
            _UInt8Images(as_nchw_uint8(images)), self.extractor, self.batch_size, cuda,
            not cuda, self.verbose)

    def __call__(self, fake: np.ndarray | torch.Tensor, *, fid: bool = True, kid: bool = True,
                 isc: bool = True) -> dict[str, Any]:
        """Metrics of ``fake`` (uint8) against the reference; keys as ``compute_image_metrics``."""
        from torch_fidelity.metric_fid import (  # torch-fidelity: heavy, only FID/KID/IS need it
            fid_featuresdict_to_statistics,
            fid_statistics_to_metric,
        )

        # torch-fidelity: heavy, only FID/KID/IS need it
        from torch_fidelity.metric_isc import isc_features_to_metric

        # torch-fidelity: heavy, only FID/KID/IS need it
        from torch_fidelity.metric_kid import kid_features_to_metric

        fake_t = as_nchw_uint8(fake, "fake images")
        n_fake = int(fake_t.shape[0])
        if n_fake < 2:
            raise ImageMetricsError(f"need at least 2 fake images, got {n_fake}")
        feats = self.features(fake_t)
        subset = min(self.kid_subset_size, n_fake, self.n_real)
        splits = max(1, min(self.isc_splits, n_fake))
        out: dict[str, Any] = {}
        if fid:
            stats = fid_featuresdict_to_statistics(feats, self.layers["fid"])
            res = fid_statistics_to_metric(stats, self.real_stats, self.verbose)
            out["fid"] = float(res[torch_fidelity.KEY_METRIC_FID])
        if kid:
            res = kid_features_to_metric(feats[self.layers["kid"]], self.real[self.layers["kid"]],
                                         kid_subsets=self.kid_subsets, kid_subset_size=subset,
                                         rng_seed=self.seed, verbose=self.verbose)
            out["kid_mean"] = float(res[torch_fidelity.KEY_METRIC_KID_MEAN])
            out["kid_std"] = float(res[torch_fidelity.KEY_METRIC_KID_STD])
        if isc:
            res = isc_features_to_metric(feats[self.layers["isc"]], splits, True, self.seed)
            out["isc_mean"] = float(res[torch_fidelity.KEY_METRIC_ISC_MEAN])
            out["isc_std"] = float(res[torch_fidelity.KEY_METRIC_ISC_STD])
        out.update(comparable=self.feature_extractor == INCEPTION,
                   feature_extractor=self.feature_extractor,
                   implementation=f"torch-fidelity {torch_fidelity.__version__}",
                   n_fake=n_fake, n_real=self.n_real, kid_subset_size=subset if kid else None,
                   isc_splits=splits if isc else None,
                   weights_path=str(self.weights) if self.weights is not None else None)
        return out
