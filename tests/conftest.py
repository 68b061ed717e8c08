"""Shared fixtures for the core-library tests: the repository's config files and toy job specs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from idff.config import load_config, train_spec

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "config" / "smoke.yaml"


@pytest.fixture(scope="session")
def smoke_cfg() -> dict:
    """config/smoke.yaml, loaded and validated once; tests take deep copies."""
    return load_config(SMOKE)


@pytest.fixture
def toy_train_spec(smoke_cfg):
    """Factory: the training spec of one toy run, with ``train`` and ``model`` keys overridden."""

    def make(method: str = "idff", dataset: str = "8gaussians", seed: int = 0, *,
             train: dict | None = None, model: dict | None = None, data: dict | None = None) -> dict:
        spec = train_spec(copy.deepcopy(smoke_cfg), "toy", dataset, method, seed)
        spec["device"] = "cpu"
        spec["train"].update(train or {})
        spec["model"].update(model or {})
        spec["data"].update(data or {})
        return spec

    return make


@pytest.fixture
def one_thread():
    """Run a test on one intra-op thread, then restore the setting.

    Small tensors gain nothing from more threads, and on a shared, oversubscribed machine every
    parallel region waits for a free core: the OT-CFM end-to-end test took 100 s with 2 threads
    under load and 8 s with one.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
