"""The trainer's speed switches on the CPU: optimiser kind, memory format, refused switches."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from workflow_helpers import REPO

from idff import cli
from idff.config import validate_config
from idff.data.images import ImagePairs
from idff.errors import ConfigError
from idff.flows.methods import build_method
from idff.models.mlp import MLP
from idff.models.unet import UNet
from idff.train import TrainConfig, load_trained, train
from idff.train_speed import check_switches, make_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")


def test_optimizer_is_fused_adamw():
    opt = make_optimizer(MLP(2, hidden=8), 1e-3, 0.01, CPU)
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.defaults["fused"] is True
    assert opt.defaults["weight_decay"] == 0.01


@pytest.mark.parametrize("switches,match", [
    ({"cuda_graphs": True}, "train.cuda_graphs needs a CUDA device"),
])
def test_switches_the_cpu_cannot_honour_are_refused(switches, match):
    with pytest.raises(ValueError, match=match):
        check_switches(TrainConfig(**switches), CPU)


def test_cuda_graphs_on_cpu_is_a_one_line_cli_error(toy_train_spec, tmp_path, capsys):
    import json

    spec = toy_train_spec(train={"steps": 5, "cuda_graphs": True})
    out = tmp_path / "m.pt"
    rc = cli.main(["--no-progress", "train", "--spec", json.dumps(spec), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "train.cuda_graphs" in err
    assert not list(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.parametrize("key,value", [("cuda_graphs", "yes"), ("tf32", 1), ("log_every", 0),
                                       ("channels_last", "true"), ("progress_every_s", -1)])
def test_schema_checks_the_switches(smoke_cfg, key, value):
    cfg = copy.deepcopy(smoke_cfg)
    cfg["experiments"]["cifar10"]["train"][key] = value
    with pytest.raises(ConfigError, match=f"experiments.cifar10.train.{key}"):
        validate_config(cfg)


def test_channels_last_training_writes_an_ordinary_checkpoint(tmp_path):
    torch.manual_seed(0)
    images = np.random.default_rng(0).integers(0, 256, (32, 8, 8, 3), dtype=np.uint8)

    def build(meta=None):
        return UNet(3, 6, 8, model_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                    attention_resolutions=(), num_head_channels=-1, norm_groups=4)

    cfg = TrainConfig(steps=6, batch_size=4, warmup=2, ckpt_every=100, channels_last=True)
    out = tmp_path / "m.pt"
    train(build(), build_method("idff"), ImagePairs(images, hflip=True), cfg, out, meta={"m": 1},
          device=CPU, progress=False)
    model, state = load_trained(out, build, CPU)
    assert state["step"] == 6 and model(torch.zeros(2, 3, 8, 8), torch.rand(2)).shape == (2, 6, 8, 8)


def test_image_pairs_move_to_the_device_as_uint8():
    images = np.random.default_rng(0).integers(0, 256, (16, 4, 4, 3), dtype=np.uint8)
    pairs = ImagePairs(images, hflip=True).to(CPU)
    assert pairs.device == CPU and pairs.data.dtype == torch.uint8
    _, x, _ = pairs.sample_batch(8, torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1


def test_gpu_share_packs_jobs_per_gpu(smoke_cfg):
    from idff.config import load_config
    from idff.packing import gpu_share

    paper = load_config(REPO / "config" / "config.yaml")["experiments"]
    assert gpu_share(paper["toy"]) == 12 and 100 // 12 == 8  # eight toy jobs fit one GPU
    assert gpu_share(paper["cifar10"]) == 100  # a UNet job has the GPU alone
    assert gpu_share({}) == 100
    with pytest.raises(ValueError, match="jobs_per_gpu"):
        gpu_share({"jobs_per_gpu": 0})
    cfg = copy.deepcopy(smoke_cfg)
    cfg["experiments"]["toy"]["jobs_per_gpu"] = 0
    with pytest.raises(ConfigError, match="experiments.toy.jobs_per_gpu"):
        validate_config(cfg)
