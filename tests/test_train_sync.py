"""The trainer does not wait for the device inside a step.

Every Python-level way to bring a tensor's value to the host (``item``, ``tolist``, ``bool``,
``float``, ``int``, ``numpy``, formatting, ``torch.cuda.synchronize``) is patched to count its
calls; the count between the ``on_step`` hooks of consecutive steps must be zero except in the
step that reads the on-device loss buffer back (one ``tolist`` every ``train.log_every`` steps).
On a GPU each of these calls would stall the CPU until the queued kernels finish.
"""

from __future__ import annotations

import traceback

import numpy as np
import pytest
import torch

from idff.data.images import ImagePairs
from idff.data.toy import ToyPairs, toy_split
from idff.flows.methods import build_method
from idff.io import load_checkpoint
from idff.models.mlp import MLP
from idff.models.unet import UNet
from idff.train import TrainConfig, TrainingDiverged, resume_path, train

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")
SYNCING = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy",
           "__format__", "__repr__")


class SyncCounter:
    """Patches the host-reading tensor methods; ``calls`` lists (method, caller) in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str]] = []
        for name in SYNCING:
            self._wrap(monkeypatch, torch.Tensor, name)
        monkeypatch.setattr(torch.cuda, "synchronize", self._count("cuda.synchronize", None))

    def _count(self, name: str, original):
        def wrapper(*args, **kwargs):
            self.calls.append((name, traceback.extract_stack(limit=2)[0].filename))
            return original(*args, **kwargs) if original is not None else None
        return wrapper

    def _wrap(self, monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> None:
        monkeypatch.setattr(cls, name, self._count(name, getattr(cls, name)))


def _toy_case(steps: int, **train_kw):
    torch.manual_seed(0)
    return (MLP(2, n_heads=2, hidden=32), build_method("idff"),
            ToyPairs(toy_split("8gaussians", "train", 2000, 0)),
            TrainConfig(steps=steps, batch_size=64, warmup=5, **train_kw))


def _image_case(steps: int, **train_kw):
    torch.manual_seed(0)
    images = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 3), dtype=np.uint8)
    model = UNet(3, 3, 8, model_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                 attention_resolutions=(8,), num_heads=2, num_head_channels=-1, norm_groups=4)
    return (model, build_method("icfm"), ImagePairs(images, hflip=True),
            TrainConfig(steps=steps, batch_size=8, warmup=5, **train_kw))


@pytest.mark.parametrize("case", [_toy_case, _image_case])
def test_no_host_sync_in_k_minus_1_of_k_steps(case, tmp_path, monkeypatch):
    k, steps = 10, 40
    model, method, source, cfg = case(steps, log_every=k, ckpt_every=1000, progress_every_s=0)
    counter = SyncCounter(monkeypatch)
    marks: list[int] = []

    def hook(step, loss):
        marks.append(len(counter.calls))
        return loss

    train(model, method, source, cfg, tmp_path / "m.pt", meta={}, device=CPU, progress=False,
          on_step=hook)
    assert len(marks) == steps
    # calls between on_step(i) and on_step(i + 1): the rest of step i and the start of i + 1
    per_step = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    syncing = [i for i, n in enumerate(per_step) if n]
    assert syncing == [k - 1, 2 * k - 1, 3 * k - 1], counter.calls
    for i in syncing:  # one read of the whole buffer, nothing else
        assert [c[0] for c in counter.calls[marks[i]:marks[i + 1]]] == ["tolist"]


def test_the_counter_sees_a_sync(tmp_path, monkeypatch):
    """The counter itself works: a hook that reads the loss shows up in every step."""
    model, method, source, cfg = _toy_case(6, log_every=100, ckpt_every=1000)
    counter = SyncCounter(monkeypatch)
    marks: list[int] = []

    def hook(step, loss):
        marks.append(len(counter.calls))
        float(loss.detach())
        return loss

    train(model, method, source, cfg, tmp_path / "m.pt", meta={}, device=CPU, progress=False,
          on_step=hook)
    assert all(b - a >= 1 for a, b in zip(marks, marks[1:], strict=False))


def _nan_at(step_to_fail: int):
    def hook(step, loss):
        return loss * float("nan") if step == step_to_fail else loss
    return hook


def test_nan_is_caught_within_k_steps_and_never_checkpointed(tmp_path):
    """log_every 10, checkpoints every 20: a NaN at step 23 stops the run at the read of
    step 30, names step 23, and leaves the step-20 checkpoint; a NaN at step 19 is caught by
    the read before the step-20 checkpoint, which is then never written."""
    out = tmp_path / "a.pt"
    model, method, source, cfg = _toy_case(60, log_every=10, ckpt_every=20)
    with pytest.raises(TrainingDiverged, match="loss became nan at step 23") as info:
        train(model, method, source, cfg, out, meta={}, device=CPU, progress=False,
              on_step=_nan_at(23))
    assert str(resume_path(out)) in str(info.value)
    assert load_checkpoint(resume_path(out))["step"] == 20
    assert not out.exists()

    out = tmp_path / "b.pt"
    model, method, source, cfg = _toy_case(60, log_every=10, ckpt_every=20)
    with pytest.raises(TrainingDiverged, match=r"step 19 .*\(none yet\)"):
        train(model, method, source, cfg, out, meta={}, device=CPU, progress=False,
              on_step=_nan_at(19))
    assert not resume_path(out).exists() and not out.exists()


def test_nonfinite_gradient_norm_is_caught(tmp_path):
    """A finite loss whose gradient is NaN (d sqrt(x)/dx at 0, times 0) is reported as such."""
    out = tmp_path / "m.pt"
    model, method, source, cfg = _toy_case(30, log_every=10, ckpt_every=10)
    weight = model.net[0].weight

    def hook(step, loss):
        return loss + torch.sqrt(weight.abs().sum() * 0) if step == 14 else loss

    with pytest.raises(TrainingDiverged, match="gradient norm became nan .*at step 14"):
        train(model, method, source, cfg, out, meta={}, device=CPU, progress=False, on_step=hook)
    assert load_checkpoint(resume_path(out))["step"] == 10
