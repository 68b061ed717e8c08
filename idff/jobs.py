"""The pipeline's steps as functions: spec (a config slice) in, files out.

The CLI and the Snakemake rules call these; each writes its output atomically with a
provenance block (git commit, config hash, seed, device, NFE, wall time).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from .families import get_family
from .flows.methods import build_method
from .flows.nfe import CountingNet
from .io import write_json_atomic
from .models import build_model
from .provenance import pick_device, record
from .sample import generate
from .train import TrainConfig, load_trained, train
from .tune import grid_search


def _method_params(spec: dict) -> tuple[str, dict]:
    m = dict(spec["method"])
    return m.pop("name"), m


def model_meta(spec: dict, data_shape: tuple[int, ...], n_cond: int) -> dict:
    name, params = _method_params(spec)
    method = build_method(name, **params)
    return {"family": spec["family"], "dataset": spec["dataset"], "data_shape": list(data_shape),
            "n_cond": n_cond, "n_heads": method.n_heads, "model": spec["model"],
            "method": spec["method"]}


def build_from_meta(meta: dict) -> torch.nn.Module:
    params = {k: v for k, v in meta["model"].items() if k != "arch"}
    return build_model(meta["model"]["arch"], tuple(meta["data_shape"]), meta["n_heads"],
                       n_cond=meta["n_cond"], **params)


def run_train(spec: dict, out: str | Path, progress: bool = True, on_step: Any = None) -> dict:
    device = pick_device(spec.get("device", "auto"))
    family = get_family(spec["family"])
    source = family.train_source(spec)
    name, params = _method_params(spec)
    method = build_method(name, **params)
    torch.manual_seed(spec["seed"])
    meta = model_meta(spec, source.data_shape, source.n_cond)
    model = build_from_meta(meta)
    cfg = TrainConfig(seed=spec["seed"], **{k: v for k, v in spec["train"].items() if k != "keep_every"})
    summary = train(model, method, source, cfg, out, meta=meta, device=device, progress=progress,
                    on_step=on_step)
    write_json_atomic(Path(out).with_suffix(".json"), {
        "job": "train", **summary, "provenance": record(cfg=spec, seed=spec["seed"], device=device,
                                                        wall_s=summary["wall_s"])})
    return summary


def _load_net(spec: dict, ckpt: str | Path, device: torch.device) -> tuple[CountingNet, float]:
    expect = {"method": spec["method"], "dataset": spec["dataset"], "model": spec["model"]}
    model, state = load_trained(ckpt, build_from_meta, device, expect=expect)
    return CountingNet(model), float(spec["method"].get("sigma", 0.0))


def _sample_fn(spec: dict, net: CountingNet, sigma: float, nfe: int | None, x0, cond, seed: int):
    var = spec["variant"]
    t_eps = spec["sweep"].get("t_eps", 1e-3)

    def run(params: dict) -> tuple[torch.Tensor, Any]:
        g = torch.Generator(device=x0.device).manual_seed(seed + 99)
        merged = {**var.get("params", {}), **params}
        return generate(net, var["sampler"], x0, sigma=sigma, solver=spec["solver"], nfe=nfe,
                        params=merged, cond=cond, generator=g, t_eps=t_eps)
    return run


def run_tune(spec: dict, ckpt: str | Path, out: str | Path) -> dict:
    """Pick the sampler's hyper-parameters per NFE on the validation split."""
    device = pick_device(spec.get("device", "auto"))
    family = get_family(spec["family"])
    net, sigma = _load_net(spec, ckpt, device)
    n = int(spec["tune"].get("n_samples", spec["sweep"]["n_samples"]))
    metric = spec["tune"].get("metric", "mmd")
    x0, target, cond = family.eval_batch(spec, "val", n, spec["seed"])
    x0 = x0.to(device)
    grid = spec["variant"].get("tune", {})
    start = time.perf_counter()
    per_nfe = {}
    for nfe in spec["nfe"]:
        run = _sample_fn(spec, net, sigma, nfe, x0, cond, spec["seed"])
        per_nfe[str(nfe)] = grid_search(
            grid, lambda p, run=run: run(p)[0].cpu(),
            lambda s: family.metrics(s, target)[metric])
    result = {"job": "tune", "split": "val", "metric": metric, "grid_keys": sorted(grid),
              "per_nfe": per_nfe,
              "provenance": record(cfg=spec, seed=spec["seed"], device=device,
                                   wall_s=time.perf_counter() - start, n_samples=n)}
    write_json_atomic(out, result)
    return result


def run_sweep(spec: dict, ckpt: str | Path, out: str | Path, tuned: str | Path | None = None) -> dict:
    """Sample the test split at every NFE of the sweep (tuned parameters from the val split)."""
    import json

    device = pick_device(spec.get("device", "auto"))
    family = get_family(spec["family"])
    net, sigma = _load_net(spec, ckpt, device)
    chosen = json.loads(Path(tuned).read_text())["per_nfe"] if tuned else {}
    n = int(spec["sweep"]["n_samples"])
    x0, target, cond = family.eval_batch(spec, "test", n, spec["seed"])
    x0 = x0.to(device)
    rows = []
    start = time.perf_counter()
    for nfe in spec["nfe"]:
        params = chosen.get(str(nfe), {}).get("best", {})
        samples, stats = _sample_fn(spec, net, sigma, nfe, x0, cond, spec["seed"])(params)
        rows.append({"nfe_budget": nfe, "nfe": stats.nfe, "vjp": stats.vjp, "steps": stats.steps,
                     "wall_s": stats.wall_s, "params": params,
                     **family.metrics(samples.cpu(), target)})
    result = {"job": "sweep", "split": "test", "experiment": spec["experiment"],
              "dataset": spec["dataset"], "variant": spec["variant"]["name"],
              "method": spec["method"]["name"], "sampler": spec["variant"]["sampler"],
              "solver": spec["solver"], "seed": spec["seed"], "rows": rows,
              "provenance": record(cfg=spec, seed=spec["seed"], device=device,
                                   wall_s=time.perf_counter() - start, n_samples=n,
                                   nfe=[r["nfe"] for r in rows])}
    write_json_atomic(out, result)
    return result


def run_floor(spec: dict, out: str | Path) -> dict:
    """The metric floor: a target draw against another independent target draw."""
    family = get_family(spec["family"])
    n = int(spec["sweep"]["n_samples"])
    start = time.perf_counter()
    _, target, _ = family.eval_batch(spec, "test", n, spec["seed"])
    _, other, _ = family.eval_batch(spec, "reference", n, spec["seed"])
    result = {"job": "floor", "experiment": spec["experiment"], "dataset": spec["dataset"],
              "seed": spec["seed"], **family.metrics(other, target),
              "provenance": record(cfg=spec, seed=spec["seed"], device="cpu",
                                   wall_s=time.perf_counter() - start, n_samples=n, nfe=0)}
    write_json_atomic(out, result)
    return result


def run_sample(spec: dict, ckpt: str | Path, out: str | Path, *, nfe: int, n: int,
               params: dict | None = None) -> dict:
    """Draw ``n`` samples (test-split prior noise) and save them with their trajectory."""
    import numpy as np

    from .io import atomic_path

    device = pick_device(spec.get("device", "auto"))
    family = get_family(spec["family"])
    net, sigma = _load_net(spec, ckpt, device)
    x0, _, cond = family.eval_batch(spec, "test", n, spec["seed"])
    var = spec["variant"]
    g = torch.Generator(device=device).manual_seed(spec["seed"] + 99)
    samples, traj, stats = generate(net, var["sampler"], x0.to(device), sigma=sigma,
                                    solver=spec["solver"], nfe=nfe,
                                    params={**var.get("params", {}), **(params or {})}, cond=cond,
                                    generator=g, t_eps=spec["sweep"].get("t_eps", 1e-3),
                                    return_trajectory=True)
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, samples=samples.cpu().numpy(), trajectory=traj.cpu().numpy())
    info = {"nfe": stats.nfe, "vjp": stats.vjp, "wall_s": stats.wall_s}
    print(json.dumps(info))
    return info
