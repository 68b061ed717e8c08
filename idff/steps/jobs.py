"""The pipeline's steps as functions: spec (a config slice) in, files out.

``idff <step>`` (and so every Snakemake rule) calls these; each writes its output atomically
with a provenance block (git commit, config hash, seed, device, NFE, wall time). The steps that
draw a family's own products (roll-outs, forecasts, image grids) are in ``products``, the
snapshot evaluation of Fig. 3A in ``iterations``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..families import get_family
from ..fastpaths import compile_model
from ..flows.methods import build_method
from ..integrity import write_record
from ..io import atomic_path, write_json_atomic
from ..progress import Progress
from ..provenance import pick_device, record
from ..train import TrainConfig, train
from ..tune import grid_points, grid_search
from .network import (
    build_from_meta,
    job_name,
    load_net,
    make_generator,
    method_params,
    model_meta,
    verify_data,
)
from .tuned import read_tuned


def run_prepare(spec: dict, out: str | Path) -> None:
    """Make or download the data set of a family that needs one (md, sst, images)."""
    get_family(spec["family"]).prepare(spec, str(out))
    if Path(out).is_file():
        write_record(out)  # verified by every job that reads it (verify_data)


def run_train(spec: dict, out: str | Path, progress: bool = True, on_step: Any = None) -> dict:
    verify_data(spec)
    device = pick_device(spec.get("device", "auto"))
    family = get_family(spec["family"])
    source = family.train_source(spec)
    name, params = method_params(spec)
    method = build_method(name, **params)
    torch.manual_seed(spec["seed"])
    meta = model_meta(spec, source.data_shape, source.n_cond)
    model = build_from_meta(meta)
    compile_model(model, spec["model"])  # model.compile (off by default)
    cfg = TrainConfig(seed=spec["seed"], **spec["train"])
    summary = train(model, method, source, cfg, out, meta=meta, device=device, progress=progress,
                    on_step=on_step)
    write_json_atomic(Path(out).with_suffix(".json"), {
        "job": "train", **summary, "provenance": record(cfg=spec, seed=spec["seed"], device=device,
                                                        wall_s=summary["wall_s"])})
    return summary


def run_tune(spec: dict, ckpt: str | Path, out: str | Path, progress: bool = True) -> dict:
    """Pick the sampler's hyper-parameters per NFE on the validation split (one progress line
    per grid point and NFE budget)."""
    verify_data(spec)
    device = pick_device(spec.get("device", "auto"))
    family = get_family(spec["family"])
    net, sigma = load_net(spec, ckpt, device)
    metric = spec.get("tune", {}).get("metric", family.default_metric)
    grid = spec["variant"].get("tune", {})
    start = time.perf_counter()
    per_nfe = {}
    n_points = len(grid_points(grid))
    bar = Progress(f"tune {job_name(spec)} on {device}:", n_points * len(spec["nfe"]), progress)
    for nfe in spec["nfe"]:
        def run(params: dict, nfe: int = nfe) -> dict:
            return family.evaluate(spec, make_generator(spec, net, sigma, nfe, params, device), "val")

        def point(params: dict, value: float, nfe: int = nfe) -> None:
            bar.step(nfe=nfe, params=params, **{metric: value})
        per_nfe[str(nfe)] = grid_search(grid, run, lambda m: m[metric], on_point=point)
    result = {"job": "tune", "split": "val", "metric": metric, "grid_keys": sorted(grid),
              "experiment": spec["experiment"], "dataset": spec["dataset"],
              "variant": spec["variant"]["name"], "solver": spec["solver"], "seed": spec["seed"],
              "checkpoint_sha256": net.ckpt_sha256, "per_nfe": per_nfe,
              "provenance": record(cfg=spec, seed=spec["seed"], device=device,
                                   wall_s=time.perf_counter() - start, nfe=spec["nfe"])}
    write_json_atomic(out, result)
    return result


def run_sweep(spec: dict, ckpt: str | Path, out: str | Path, tuned: str | Path | None = None,
              progress: bool = True) -> dict:
    """Evaluate on the test split at every NFE budget (parameters chosen on validation); one
    progress line per budget."""
    verify_data(spec)
    device = pick_device(spec.get("device", "auto"))
    family = get_family(spec["family"])
    if tuned:
        read_tuned(tuned, spec)  # before the network: fail in seconds
    net, sigma = load_net(spec, ckpt, device)
    chosen = read_tuned(tuned, spec, net.ckpt_sha256) if tuned else {}
    rows = []
    start = time.perf_counter()
    bar = Progress(f"sweep {job_name(spec)} on {device}:", len(spec["nfe"]), progress)
    for nfe in spec["nfe"]:
        params = chosen.get(str(nfe), {}).get("best", {})
        gen = make_generator(spec, net, sigma, nfe, params, device)
        metrics = family.evaluate(spec, gen, "test")
        rows.append({"nfe_budget": nfe, "nfe": gen.nfe_per_call, "steps": gen.steps_per_call,
                     "vjp": gen.vjp_per_call,
                     "calls": gen.calls, "wall_s": gen.wall_s, "params": params, **metrics})
        bar.step(nfe=nfe, **{k: v for k, v in metrics.items()
                             if isinstance(v, float | int) and not isinstance(v, bool)})
    result = {"job": "sweep", "split": "test", "experiment": spec["experiment"],
              "dataset": spec["dataset"], "variant": spec["variant"]["name"],
              "method": spec["method"]["name"], "sampler": spec["variant"]["sampler"],
              "solver": spec["solver"], "seed": spec["seed"], "rows": rows,
              "provenance": record(cfg=spec, seed=spec["seed"], device=device,
                                   wall_s=time.perf_counter() - start,
                                   nfe=[r["nfe"] for r in rows])}
    write_json_atomic(out, result)
    return result


def run_floor(spec: dict, out: str | Path) -> dict:
    """The metric floor of a family (e.g. a target draw against another target draw)."""
    verify_data(spec)
    start = time.perf_counter()
    floor = get_family(spec["family"]).floor(spec) or {}
    result = {"job": "floor", "experiment": spec["experiment"], "dataset": spec["dataset"],
              "seed": spec["seed"], **floor,
              "provenance": record(cfg=spec, seed=spec["seed"], device="cpu",
                                   wall_s=time.perf_counter() - start, nfe=0)}
    write_json_atomic(out, result)
    return result


def run_sample(spec: dict, ckpt: str | Path, out: str | Path, *, nfe: int, n: int,
               params: dict | None = None) -> dict:
    """Draw ``n`` toy samples from the test-split prior noise; save samples and trajectories."""
    device = pick_device(spec.get("device", "auto"))
    family = get_family(spec["family"])
    if not hasattr(family, "eval_batch"):
        raise ValueError(f"`idff sample` draws from a prior; family {spec['family']!r} has none")
    net, sigma = load_net(spec, ckpt, device)
    x0, _, cond = family.eval_batch(spec, "test", n, spec["seed"])
    gen = make_generator(spec, net, sigma, nfe, params or {}, device)
    samples, traj = gen(x0, cond, seed=spec["seed"], return_trajectory=True)
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, samples=samples.cpu().numpy(), trajectory=traj.cpu().numpy())
    info = {"nfe": gen.nfe_per_call, "vjp": gen.vjp_per_call, "wall_s": gen.wall_s,
            "params": gen.params}
    print(json.dumps(info))
    return info
