"""The network of a job: built from a checkpoint's description, bound to a sampler.

Every step that samples (tune, sweep, sample, rollout, forecast, samples, iter-eval) loads its
network and makes its generator here, so a checkpoint is checked against the job in one place.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..families import get_family
from ..fastpaths import architecture, compile_model, generator_class
from ..flows.generator import Generator
from ..flows.methods import build_method, method_class
from ..flows.nfe import CountingNet
from ..integrity import verify_record
from ..io import DIGEST_KEY
from ..models import build_model
from ..train import load_trained


def method_params(spec: dict) -> tuple[str, dict]:
    """The method's class and constructor parameters (the entry's name and ``class`` removed)."""
    m = dict(spec["method"])
    name = m.pop("name")
    return method_class(name, m), {k: v for k, v in m.items() if k != "class"}


def model_meta(spec: dict, data_shape: tuple[int, ...], n_cond: int) -> dict:
    name, params = method_params(spec)
    method = build_method(name, **params)
    return {"family": spec["family"], "dataset": spec["dataset"], "data_shape": list(data_shape),
            "n_cond": n_cond, "n_heads": method.n_heads, "model": spec["model"],
            "method": spec["method"]}


def build_from_meta(meta: dict) -> torch.nn.Module:
    params = architecture(meta["model"])  # without runtime switches such as model.compile
    return build_model(meta["model"]["arch"], tuple(meta["data_shape"]), meta["n_heads"],
                       n_cond=meta["n_cond"], **params)


def verify_data(spec: dict) -> None:
    """Check the family's data file against its content record before a job reads it."""
    path = get_family(spec["family"]).data_file(spec)
    if path is not None:
        verify_record(path)


def load_net(spec: dict, ckpt: str | Path, device: torch.device) -> tuple[CountingNet, float]:
    """The EMA network of a checkpoint, checked against the job's method, data set and model."""
    expect = {"method": spec["method"], "dataset": spec["dataset"], "model": spec["model"]}
    model, state = load_trained(ckpt, build_from_meta, device, expect=expect)
    compile_model(model, spec["model"], sampler=spec.get("variant", {}).get("sampler", ""))
    net = CountingNet(model)
    net.ckpt_sha256 = state.get(DIGEST_KEY)  # ties tune outputs to the checkpoint they tuned
    return net, float(spec["method"].get("sigma", 0.0))


def make_generator(spec: dict, net: CountingNet, sigma: float, nfe: int | None, params: dict,
                   device: torch.device) -> Generator:
    var = spec["variant"]
    cls = generator_class(spec.get("sweep", {}))  # sweep.fused (off by default)
    return cls(net=net, sampler=var["sampler"], solver=spec["solver"], nfe=nfe, sigma=sigma,
               params={**var.get("params", {}), **params},
               t_eps=var.get("t_eps", spec["sweep"].get("t_eps", 1e-3)), device=device)


def job_name(spec: dict) -> str:
    return (f"{spec['experiment']}/{spec['dataset']} {spec['variant']['name']} ({spec['solver']}) "
            f"seed {spec['seed']}")


