"""The 2D toy family: N(0, I) prior, seeded splits, W2 and MMD against held-out draws."""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.toy import ToyPairs, toy_split
from ..metrics.distribution import distribution_metrics


class ToyFamily:
    def train_source(self, spec: dict) -> ToyPairs:
        return ToyPairs(toy_split(spec["dataset"], "train", int(spec["data"]["n_train"]), spec["seed"]))

    def eval_batch(self, spec: dict, split: str, n: int, seed: int) -> tuple[Tensor, Tensor, None]:
        """Prior noise and the held-out target for ``split``.

        The noise depends only on (seed, split): every method and sampler of one seed starts
        from the same prior draw and is scored against the same target draw (paired comparison).
        """
        target = toy_split(spec["dataset"], split, n, seed)
        g = torch.Generator().manual_seed(10_007 * seed + (1 if split == "val" else 2))
        x0 = torch.randn(target.shape, generator=g)
        return x0, target, None

    def metrics(self, samples: Tensor, target: Tensor) -> dict[str, float]:
        return distribution_metrics(samples, target)
