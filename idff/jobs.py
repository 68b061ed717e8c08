"""The pipeline's steps as functions: spec (a config slice) in, files out.

The CLI and the Snakemake rules call these; each writes its output atomically with a
provenance block (git commit, config hash, seed, device, NFE, wall time).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .families import Generator, get_family
from .fastpaths import architecture, compile_model, generator_class
from .flows.methods import build_method
from .flows.nfe import CountingNet
from .io import atomic_path, write_json_atomic
from .models import build_model
from .progress import Progress
from .provenance import pick_device, record
from .train import TrainConfig, load_trained, train
from .tune import grid_points, grid_search


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
    params = architecture(meta["model"])  # without runtime switches such as model.compile
    return build_model(meta["model"]["arch"], tuple(meta["data_shape"]), meta["n_heads"],
                       n_cond=meta["n_cond"], **params)


def run_prepare(spec: dict, out: str | Path) -> None:
    """Make or download the data set of a family that needs one (md, sst, images)."""
    get_family(spec["family"]).prepare(spec, str(out))


def run_train(spec: dict, out: str | Path, progress: bool = True, on_step: Any = None) -> dict:
    device = pick_device(spec.get("device", "auto"))
    family = get_family(spec["family"])
    source = family.train_source(spec)
    name, params = _method_params(spec)
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


def load_net(spec: dict, ckpt: str | Path, device: torch.device) -> tuple[CountingNet, float]:
    """The EMA network of a checkpoint, checked against the job's method, data set and model."""
    expect = {"method": spec["method"], "dataset": spec["dataset"], "model": spec["model"]}
    model, _ = load_trained(ckpt, build_from_meta, device, expect=expect)
    compile_model(model, spec["model"], sampler=spec.get("variant", {}).get("sampler", ""))
    return CountingNet(model), float(spec["method"].get("sigma", 0.0))


def make_generator(spec: dict, net: CountingNet, sigma: float, nfe: int | None, params: dict,
                   device: torch.device) -> Generator:
    var = spec["variant"]
    cls = generator_class(spec.get("sweep", {}))  # sweep.fused (off by default)
    return cls(net=net, sampler=var["sampler"], solver=spec["solver"], nfe=nfe, sigma=sigma,
               params={**var.get("params", {}), **params},
               t_eps=spec["sweep"].get("t_eps", 1e-3), device=device)


def _job_name(spec: dict) -> str:
    return (f"{spec['experiment']}/{spec['dataset']} {spec['variant']['name']} ({spec['solver']}) "
            f"seed {spec['seed']}")


def run_tune(spec: dict, ckpt: str | Path, out: str | Path, progress: bool = True) -> dict:
    """Pick the sampler's hyper-parameters per NFE on the validation split (one progress line
    per grid point and NFE budget)."""
    device = pick_device(spec.get("device", "auto"))
    family = get_family(spec["family"])
    net, sigma = load_net(spec, ckpt, device)
    metric = spec.get("tune", {}).get("metric", family.default_metric)
    grid = spec["variant"].get("tune", {})
    start = time.perf_counter()
    per_nfe = {}
    n_points = len(grid_points(grid))
    bar = Progress(f"tune {_job_name(spec)} on {device}:", n_points * len(spec["nfe"]), progress)
    for nfe in spec["nfe"]:
        def run(params: dict, nfe: int = nfe) -> dict:
            return family.evaluate(spec, make_generator(spec, net, sigma, nfe, params, device), "val")

        def point(params: dict, value: float, nfe: int = nfe) -> None:
            bar.step(nfe=nfe, params=params, **{metric: value})
        per_nfe[str(nfe)] = grid_search(grid, run, lambda m: m[metric], on_point=point)
    result = {"job": "tune", "split": "val", "metric": metric, "grid_keys": sorted(grid),
              "experiment": spec["experiment"], "dataset": spec["dataset"],
              "variant": spec["variant"]["name"], "solver": spec["solver"], "seed": spec["seed"],
              "per_nfe": per_nfe,
              "provenance": record(cfg=spec, seed=spec["seed"], device=device,
                                   wall_s=time.perf_counter() - start, nfe=spec["nfe"])}
    write_json_atomic(out, result)
    return result


def read_tuned(path: str | Path, spec: dict | None = None) -> dict[str, Any]:
    """The ``per_nfe`` choices of an ``idff tune`` output, checked to belong to ``spec``'s job.

    A truncated, foreign or mismatched file is a ValueError naming the file and the fix (identity
    keys are compared only when the file records them).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tuned file {path} does not exist; run the tune job first")
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"tuned file {path} is not valid JSON ({exc}); it is truncated or corrupt: "
                         f"delete it and rerun the tune job") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("per_nfe"), dict):
        raise ValueError(f"tuned file {path} has no 'per_nfe' mapping; it is not an output of "
                         f"`idff tune`: delete it and rerun the tune job")
    if spec is not None:
        want = {"experiment": spec.get("experiment"), "dataset": spec.get("dataset"),
                "variant": spec.get("variant", {}).get("name"), "solver": spec.get("solver"),
                "seed": spec.get("seed")}
        for key, value in want.items():
            if key in obj and value is not None and obj[key] != value:
                raise ValueError(f"tuned file {path} was made for {key}={obj[key]!r} but this job "
                                 f"has {key}={value!r}; pass the tune output of this job")
    return obj["per_nfe"]


def run_sweep(spec: dict, ckpt: str | Path, out: str | Path, tuned: str | Path | None = None,
              progress: bool = True) -> dict:
    """Evaluate on the test split at every NFE budget (parameters chosen on validation); one
    progress line per budget."""
    device = pick_device(spec.get("device", "auto"))
    family = get_family(spec["family"])
    chosen = read_tuned(tuned, spec) if tuned else {}  # before the network: fail in seconds
    net, sigma = load_net(spec, ckpt, device)
    rows = []
    start = time.perf_counter()
    bar = Progress(f"sweep {_job_name(spec)} on {device}:", len(spec["nfe"]), progress)
    for nfe in spec["nfe"]:
        params = chosen.get(str(nfe), {}).get("best", {})
        gen = make_generator(spec, net, sigma, nfe, params, device)
        metrics = family.evaluate(spec, gen, "test")
        rows.append({"nfe_budget": nfe, "nfe": gen.nfe_per_call, "vjp": gen.vjp_per_call,
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
