"""The 2D toy family: N(0, I) prior, seeded splits, W2 and MMD against held-out draws."""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.toy import TOY_DATASETS, FreshToyPairs, ToyPairs, toy_split
from ..errors import ConfigError
from ..flows.generator import Generator
from ..metrics.distribution import distribution_metrics
from .base import FamilyBase

TOY_DATA_KEYS = ("n_train", "fresh")


def check_toy_data(data: dict, key: str) -> int | None:
    """The toy family's ``data`` settings: ``n_train`` (points drawn once for training) or
    ``fresh: true`` (new points every batch, as the authors trained), nothing else.

    Returns ``n_train`` (None for fresh draws); raises ConfigError naming the key (a typo would
    otherwise be silent).
    """
    unknown = sorted(set(data) - set(TOY_DATA_KEYS))
    if unknown:
        raise ConfigError(f"config key {key}: unknown toy data setting(s) {unknown}; valid: "
                          f"{', '.join(TOY_DATA_KEYS)}")
    fresh = data.get("fresh", False)
    if not isinstance(fresh, bool):
        raise ConfigError(f"config key {key}.fresh: must be true or false, got {fresh!r}")
    if fresh:
        if "n_train" in data:
            raise ConfigError(f"config key {key}: n_train and fresh: true exclude each other "
                              f"(fresh draws new points every batch); remove one")
        return None
    n = data.get("n_train")
    if not (isinstance(n, int) and not isinstance(n, bool)) or n < 1:
        raise ConfigError(f"config key {key}.n_train: the number of training points must be an "
                          f"integer >= 1 (or set fresh: true), got {n!r}")
    return n


class ToyFamily(FamilyBase):
    default_metric = "mmd"
    datasets = TOY_DATASETS

    def check_experiment(self, name: str, exp: dict) -> None:
        key = f"experiments.{name}"
        if exp["model"]["arch"] != "mlp":
            raise ConfigError(f"config key {key}.model.arch: toy data needs arch mlp")
        check_toy_data(exp["data"], f"{key}.data")

    def data_file(self, spec: dict) -> None:
        return None  # generated on the fly from the seed

    def prepare(self, spec: dict, out: str) -> None:
        raise ValueError("toy data is generated on the fly; there is nothing to prepare")

    def train_source(self, spec: dict) -> ToyPairs | FreshToyPairs:
        n_train = check_toy_data(spec["data"], f"experiments.{spec.get('experiment', '?')}.data")
        if n_train is None:
            return FreshToyPairs(spec["dataset"])
        return ToyPairs(toy_split(spec["dataset"], "train", n_train, spec["seed"]))

    def eval_batch(self, spec: dict, split: str, n: int, seed: int) -> tuple[Tensor, Tensor, None]:
        """Prior noise and the held-out target for ``split``.

        The noise depends only on (seed, split): every method and sampler of one seed starts
        from the same prior draw and is scored against the same target draw (paired comparison).
        """
        target = toy_split(spec["dataset"], split, n, seed)
        g = torch.Generator().manual_seed(10_007 * seed + (1 if split == "val" else 2))
        x0 = torch.randn(target.shape, generator=g)
        return x0, target, None

    def n_eval(self, spec: dict, split: str) -> int:
        if split == "val":
            return int(spec.get("tune", {}).get("n_samples", spec["sweep"]["n_samples"]))
        return int(spec["sweep"]["n_samples"])

    def evaluate(self, spec: dict, gen: Generator, split: str) -> dict[str, float]:
        x0, target, cond = self.eval_batch(spec, split, self.n_eval(spec, split), spec["seed"])
        # tuning (validation) needs only its metric; the test split gets every one
        only = [spec.get("tune", {}).get("metric", self.default_metric)] if split == "val" else None
        return distribution_metrics(gen(x0, cond, seed=spec["seed"]).cpu(), target, only=only)

    def floor(self, spec: dict) -> dict[str, float]:
        n = self.n_eval(spec, "test")
        _, target, _ = self.eval_batch(spec, "test", n, spec["seed"])
        _, other, _ = self.eval_batch(spec, "reference", n, spec["seed"])
        return distribution_metrics(other, target)
