"""The image family: CIFAR-10 and CelebA-64 (real), offline stand-ins, FID/KID/IS via torch-fidelity.

Training pairs are (N(0, I) noise, an image in [-1, 1]). Evaluation draws n samples in batches
from prior noise seeded per (training seed, split, batch), so every variant and solver of one
seed starts from the same noise, and scores them against the training split (the reference
images of the paper's FID protocol). The validation split is a small sample count (tuning
sigma_s on a small validation FID); the test split is the configured count (50k at paper
scale). The floor is a held-out real set (test split or other crops) against the same
reference: what a perfect sampler would score at that sample size.

``spec["data"]`` holds the data and metric settings (``DATA_KEYS``); ``idff samples ...`` writes
a sample grid for the report's ``fig_samples`` (the ``samples`` hook).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import layout
from ..data.images import (
    DATASETS,
    ImagePairs,
    load_heldout,
    load_image_dataset,
    prepare_image_splits,
)
from ..flows.generator import Generator
from ..metrics.images import ReferenceMetrics
from ..provenance import pick_device
from .base import FamilyBase

DATA_NAME = "images.npz"
REAL_DATASETS = ("cifar10", "celeba")
SPLIT_CODES = {"val": 1, "test": 2}
# every key spec["data"] may hold, with its default; None means "derived": image_size from the
# data set (32 / 64), n / n_heldout all (stand-ins: see prepare_image_splits), n_fid_samples
# sweep.n_samples, inception_weights torch hub's cache
DATA_KEYS: dict[str, Any] = {
    # data preparation
    "root": "resources/downloads", "image_size": None, "hflip": False, "n": None,
    "n_heldout": None, "seed": 0, "download": True, "celeba_torchvision": False,
    "celeba_strict": True, "workers": 1,
    # metrics
    "n_fid_samples": None, "n_fid_reference": 50_000, "fid_batch": 200,
    "feature_extractor": "inception-v3-compat", "inception_weights": None,
    "kid_subsets": 100, "kid_subset_size": 1000, "isc_splits": 10,
}
_REFERENCE_CACHE: dict[str, Any] = {}


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] to uint8 [0, 255] (rounded, clipped): ``idff.metrics.images.to_uint8``,
    repeated here so that sampling jobs need not import torch-fidelity (~1.5 s per job)."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def data_settings(spec: dict) -> dict[str, Any]:
    """``spec["data"]`` over ``DATA_KEYS``; an unknown key is an error (a typo would be silent)."""
    given = spec.get("data") or {}
    unknown = sorted(set(given) - set(DATA_KEYS))
    if unknown:
        raise ValueError(f"config key experiments.{spec.get('experiment')}.data: unknown image "
                         f"setting(s) {unknown}; valid: {', '.join(DATA_KEYS)}")
    return {**DATA_KEYS, **given}


def is_comparable(spec: dict) -> bool:
    """Comparable with published FIDs: Inception features on the real data set."""
    d = data_settings(spec)
    return d["feature_extractor"] == "inception-v3-compat" and spec["dataset"] in REAL_DATASETS


class ImagesFamily(FamilyBase):
    default_metric = "fid"
    datasets = ("cifar10", "celeba", "offline_cifar", "offline_faces")
    prep_data_keys = ("root", "image_size", "n", "n_heldout", "seed", "download",
                      "celeba_torchvision", "celeba_strict", "workers")
    eval_only_data_keys = ("n_fid_samples", "n_fid_reference", "fid_batch", "feature_extractor",
                           "inception_weights", "kid_subsets", "kid_subset_size", "isc_splits")

    def data_file(self, spec: dict) -> str:
        return layout.data_file(spec["experiment"], spec["dataset"], DATA_NAME)

    def prepare(self, spec: dict, out: str) -> None:
        if spec["dataset"] not in DATASETS:
            raise ValueError(f"unknown image data set {spec['dataset']!r}; valid: "
                             f"{', '.join(DATASETS)}")
        d = data_settings(spec)
        prepare_image_splits(spec["dataset"], out, root=d["root"], n=d["n"],
                             n_heldout=d["n_heldout"], seed=int(d["seed"]),
                             image_size=d["image_size"], download=bool(d["download"]),
                             celeba_torchvision=bool(d["celeba_torchvision"]),
                             celeba_strict=bool(d["celeba_strict"]), workers=int(d["workers"]))

    def train_source(self, spec: dict) -> ImagePairs:
        return ImagePairs.from_npz(self.data_file(spec), hflip=bool(data_settings(spec)["hflip"]))

    # ------------------------------------------------------------------ evaluation

    def n_eval(self, spec: dict, split: str) -> int:
        """Samples per evaluation: test = data.n_fid_samples (else sweep.n_samples);
        validation = tune.n_samples (else the test count)."""
        d = data_settings(spec)
        n_test = int(d["n_fid_samples"] or spec["sweep"]["n_samples"])
        if split == "test":
            return n_test
        if split == "val":
            return int(spec.get("tune", {}).get("n_samples") or n_test)
        raise ValueError(f"unknown split {split!r}; valid: val, test")

    def prior_noise(self, spec: dict, split: str, n: int, shape: tuple[int, ...],
                    batch_size: int) -> Iterator[tuple[torch.Tensor, int]]:
        """Batches of N(0, I) noise (CPU) with the seed each was drawn with, drawn lazily
        (50k CelebA-64 noise images would take 2.4 GB at once).

        A batch's seed depends only on (training seed, split, batch index): every variant and
        solver of a seed starts from the same noise (a paired comparison).
        """
        if split not in SPLIT_CODES:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLIT_CODES)}")
        for b, start in enumerate(range(0, n, batch_size)):
            seed = (int(spec["seed"]) * 10 + SPLIT_CODES[split]) * 1_000_003 + b
            g = torch.Generator().manual_seed(seed)
            yield torch.randn((min(batch_size, n - start), *shape), generator=g), seed

    def generate(self, spec: dict, gen: Generator, split: str, n: int,
                 shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
        """``n`` generated images as uint8 [n, H, W, 3] and the count of non-finite samples."""
        batch = int(spec["sweep"].get("batch_size") or 500)
        chunks, bad = [], 0
        for x0, seed in self.prior_noise(spec, split, n, shape, batch):
            x = gen(x0, None, seed=seed)
            bad += int((~torch.isfinite(x)).flatten(1).any(1).sum())
            chunks.append(to_uint8(x).permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(chunks), bad

    def evaluate(self, spec: dict, gen: Generator, split: str) -> dict[str, float]:
        ref = self.reference(spec, gen.device)
        n = self.n_eval(spec, split)
        images, bad = self.generate(spec, gen, split, n, ref["shape"])
        return self._score(spec, ref, images, bad)

    def samples(self, spec: dict, gen: Generator, nfe: int, n: int = 64) -> tuple[dict, dict]:
        """Hook of ``idff samples``: a grid of generated images (fig_samples)."""
        return sample_grid(self, spec, gen, n)

    def floor(self, spec: dict) -> dict[str, float]:
        """The held-out real set against the reference, at the test sample size (or all of it)."""
        ref = self.reference(spec, pick_device(spec.get("device", "auto")))
        held = load_heldout(self.data_file(spec))
        n = min(self.n_eval(spec, "test"), len(held))
        keep = np.sort(np.random.default_rng(int(spec["seed"])).permutation(len(held))[:n])
        return {**self._score(spec, ref, held[keep], 0), "n_heldout": float(len(held))}

    def _score(self, spec: dict, ref: dict, images: np.ndarray, bad: int) -> dict[str, float]:
        out = {"comparable": float(is_comparable(spec)), "n_samples": float(len(images)),
               "nonfinite": float(bad)}
        if bad:  # a diverging sampler: NaN metrics (tuning ranks them last, tables show "–")
            return {"fid": math.nan, "kid": math.nan, "kid_std": math.nan, "isc": math.nan,
                    "isc_std": math.nan, **out}
        m = ref["metrics"](images)
        return {"fid": m["fid"], "kid": m["kid_mean"], "kid_std": m["kid_std"],
                "isc": m["isc_mean"], "isc_std": m["isc_std"], **out}

    def reference(self, spec: dict, device: torch.device) -> dict[str, Any]:
        """The reference (training-split) features, extracted once per process and setting."""
        d = data_settings(spec)
        path = Path(self.data_file(spec))
        if not path.is_file():
            raise FileNotFoundError(f"image data set {path} does not exist; run `snakemake "
                                    f"data_{spec['experiment']}` (or `idff prepare`) first")
        keys = ("n_fid_reference", "fid_batch", "feature_extractor", "inception_weights",
                "kid_subsets", "kid_subset_size", "isc_splits")
        key = json.dumps([str(path.resolve()), path.stat().st_mtime_ns, str(device),
                          {k: d[k] for k in keys}], sort_keys=True)
        if key not in _REFERENCE_CACHE:
            images = load_image_dataset(path)
            n_ref = min(int(d["n_fid_reference"]), len(images))
            if n_ref < len(images):  # a fixed subset: the same reference for every job
                images = images[np.sort(np.random.default_rng(0).permutation(len(images))[:n_ref])]
            metrics = ReferenceMetrics(
                images, feature_extractor=d["feature_extractor"],
                weights_path=d["inception_weights"], batch_size=int(d["fid_batch"]),
                device=device, kid_subsets=int(d["kid_subsets"]),
                kid_subset_size=int(d["kid_subset_size"]), isc_splits=int(d["isc_splits"]))
            _REFERENCE_CACHE.clear()  # one data set per process at a time (50k features: ~0.6 GB)
            _REFERENCE_CACHE[key] = {"metrics": metrics, "shape": (3, *images.shape[1:3])}
        return _REFERENCE_CACHE[key]


# ---------------------------------------------------------------------- sample grids (fig_samples)


def sample_grid(family: ImagesFamily, spec: dict, gen: Generator,
                n: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``n`` images from the test-split prior noise of ``spec``'s seed: ``images`` (uint8
    [n, H, W, 3]) and what made them (variant, solver, NFE budget and measured forward passes,
    sampler parameters, seed, wall time)."""
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    model = gen.net.net
    if not hasattr(model, "image_size"):
        raise ValueError(f"the checkpoint holds a {type(model).__name__}, not an image UNet")
    shape = (int(model.in_channels), *map(int, model.image_size))
    images, bad = family.generate(spec, gen, "test", n, shape)
    info = {"experiment": spec["experiment"], "dataset": spec["dataset"],
            "variant": spec["variant"]["name"], "solver": spec["solver"], "seed": spec["seed"],
            "nfe_budget": gen.nfe, "nfe": gen.nfe_per_call, "vjp": gen.vjp_per_call,
            "params": gen.params, "nonfinite": bad, "wall_s": gen.wall_s}
    return {"images": images}, info
