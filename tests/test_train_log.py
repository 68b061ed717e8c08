"""The trainer's progress lines and loss curve (``X.curve.csv`` beside a checkpoint ``X.pt``)."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from idff.data.toy import ToyPairs, toy_split
from idff.flows.methods import build_method
from idff.models.mlp import MLP
from idff.steps import jobs
from idff.train import TrainConfig, train
from idff.train_log import CURVE_COLUMNS, curve_path, format_duration, progress_line

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")


def _case(steps: int, **kw):
    torch.manual_seed(0)
    return (MLP(2, n_heads=2, hidden=32), build_method("idff"),
            ToyPairs(toy_split("8gaussians", "train", 2000, 0)),
            TrainConfig(steps=steps, batch_size=64, lr=1e-3, warmup=8, **kw))


def _read_curve(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CURVE_COLUMNS
    return [[float(v) for v in r] for r in rows[1:]]


def test_curve_rows_hold_the_mean_loss_and_the_lr_of_each_interval(tmp_path):
    losses: list[float] = []

    def hook(step, loss):
        losses.append(float(loss.detach()))
        return loss

    model, method, source, cfg = _case(25, log_every=10, ckpt_every=7)
    out = tmp_path / "seed0.pt"
    train(model, method, source, cfg, out, meta={}, device=CPU, progress=False, on_step=hook)
    assert curve_path(out) == tmp_path / "seed0.curve.csv"
    rows = _read_curve(curve_path(out))
    assert [r[0] for r in rows] == [10, 20, 25]  # every log_every steps, and the last step
    for (step, loss, lr, rate, wall), lo in zip(rows, (0, 10, 20), strict=True):
        assert loss == pytest.approx(sum(losses[lo:int(step)]) / (step - lo), rel=1e-5)
        assert lr == pytest.approx(1e-3 * min(1.0, step / 8))  # the lr of the row's step
        assert rate > 0 and wall > 0
    assert rows[0][4] < rows[1][4] < rows[2][4]


def test_resumed_run_writes_the_same_curve(toy_train_spec, tmp_path):
    """Rows every 15 steps, checkpoints every 10: the resumed run needs the partial sum of
    steps 16-20 from the checkpoint to produce the row of step 30."""
    spec = toy_train_spec(train={"steps": 30, "ckpt_every": 10, "batch_size": 64, "warmup": 5,
                                 "log_every": 15}, model={"hidden": 32}, data={"n_train": 2000})
    ref = tmp_path / "ref" / "m.pt"
    jobs.run_train(spec, ref, progress=False)

    def kill(step, loss):
        if step == 25:
            raise KeyboardInterrupt
        return loss

    out = tmp_path / "run" / "m.pt"
    with pytest.raises(KeyboardInterrupt):
        jobs.run_train(spec, out, progress=False, on_step=kill)
    assert not curve_path(out).exists()  # the curve is written with the final checkpoint
    jobs.run_train(spec, out, progress=False)
    a, b = _read_curve(curve_path(ref)), _read_curve(curve_path(out))
    assert [r[:3] for r in a] == [r[:3] for r in b] and [r[0] for r in a] == [15, 30]
    assert b[-1][4] >= b[0][4]  # wall time counts the killed run's time too


def test_progress_lines_without_a_terminal(tmp_path, capsys):
    """``progress=False`` (what the rules pass) still prints the periodic lines to stdout."""
    model, method, source, cfg = _case(30, log_every=5, ckpt_every=100, progress_every=10,
                                       progress_every_s=0)
    train(model, method, source, cfg, tmp_path / "m.pt", meta={}, device=CPU, progress=False)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("step ")]
    assert [ln.split()[1] for ln in lines] == ["10/30", "20/30", "30/30"]
    for ln in lines:
        assert "loss " in ln and "steps/s" in ln and "ETA " in ln and "| cpu" in ln
        assert math.isfinite(float(ln.split("loss ")[1].split()[0]))
    assert "ETA 0s" in lines[-1]


def test_progress_by_time_only_prints_at_the_end_of_a_short_run(tmp_path, capsys):
    model, method, source, cfg = _case(20, log_every=5, ckpt_every=100, progress_every_s=3600)
    train(model, method, source, cfg, tmp_path / "m.pt", meta={}, device=CPU, progress=False)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("step ")]
    assert [ln.split()[1] for ln in lines] == ["20/20"]


def test_progress_line_format():
    line = progress_line(1200, 400_000, 0.12345, 2e-4, 13.2, CPU)
    assert line.startswith("step 1200/400000 (0.3%) loss 0.1235 lr 0.0002")
    assert "13.2 steps/s" in line and "ETA 8h23m" in line and line.endswith("| cpu")
    assert format_duration(59.4) == "59s" and format_duration(61) == "1m01s"
    assert format_duration(math.inf) == "?"


@pytest.mark.parametrize("key,value", [("log_every", 0), ("progress_every", -1),
                                       ("progress_every_s", -1.0)])
def test_bad_logging_settings_are_refused(key, value):
    with pytest.raises(ValueError, match=f"train.{key}"):
        TrainConfig(**{key: value})
