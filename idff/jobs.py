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
from .flows.methods import build_method, method_class
from .flows.nfe import CountingNet
from .integrity import verify_record, write_record
from .io import DIGEST_KEY, atomic_path, write_json_atomic
from .models import build_model
from .progress import Progress
from .provenance import pick_device, record
from .train import TrainConfig, load_trained, train
from .tune import grid_points, grid_search


def _method_params(spec: dict) -> tuple[str, dict]:
    """The method's class and constructor parameters (the entry's name and ``class`` removed)."""
    m = dict(spec["method"])
    name = m.pop("name")
    return method_class(name, m), {k: v for k, v in m.items() if k != "class"}


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
    if Path(out).is_file():
        write_record(out)  # verified by every job that reads it (verify_data)


def verify_data(spec: dict) -> None:
    """Check the family's data file against its content record before a job reads it."""
    path = get_family(spec["family"]).data_file(spec)
    if path is not None:
        verify_record(path)


def run_train(spec: dict, out: str | Path, progress: bool = True, on_step: Any = None) -> dict:
    verify_data(spec)
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


def _job_name(spec: dict) -> str:
    return (f"{spec['experiment']}/{spec['dataset']} {spec['variant']['name']} ({spec['solver']}) "
            f"seed {spec['seed']}")


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
              "checkpoint_sha256": net.ckpt_sha256, "per_nfe": per_nfe,
              "provenance": record(cfg=spec, seed=spec["seed"], device=device,
                                   wall_s=time.perf_counter() - start, nfe=spec["nfe"])}
    write_json_atomic(out, result)
    return result


TUNED_IDS = ("experiment", "dataset", "variant", "solver", "seed")


def read_tuned(path: str | Path, spec: dict | None = None,
               ckpt_sha256: str | None = None) -> dict[str, Any]:
    """The ``per_nfe`` choices of an ``idff tune`` output, checked to belong to ``spec``'s job.

    A truncated or foreign file, one without the identity keys of ``TUNED_IDS``, one made for
    another experiment, data set, variant, solver or seed, or (``ckpt_sha256`` given) for another
    checkpoint is a ValueError naming the file, the key and the fix.
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
        lacking = [k for k in TUNED_IDS if k not in obj]
        if lacking:
            raise ValueError(f"tuned file {path} does not record {', '.join(lacking)}, so it cannot "
                             f"be matched to this job; rerun the tune job of this job")
        for key, value in want.items():
            if obj[key] != value:
                raise ValueError(f"tuned file {path} was made for {key}={obj[key]!r} but this job "
                                 f"has {key}={value!r}; pass the tune output of this job")
    if ckpt_sha256 is not None and obj.get("checkpoint_sha256") != ckpt_sha256:
        raise ValueError(f"tuned file {path} was made with another checkpoint (sha256 "
                         f"{str(obj.get('checkpoint_sha256'))[:12]}, this one {ckpt_sha256[:12]}); "
                         f"rerun the tune job on this checkpoint")
    return obj["per_nfe"]


def tuned_params(path: str | Path, spec: dict, nfe: int, ckpt_sha256: str | None = None) -> dict:
    """The parameters ``idff tune`` chose at ``nfe`` for ``spec``'s job ({} if none)."""
    entry = read_tuned(path, spec, ckpt_sha256).get(str(nfe), {})
    best = entry.get("best", {}) if isinstance(entry, dict) else None
    if not isinstance(best, dict):
        raise ValueError(f"tuned file {path}: per_nfe.{nfe}.best is not a mapping; delete it and "
                         f"rerun the tune job")
    return dict(best)


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
    bar = Progress(f"sweep {_job_name(spec)} on {device}:", len(spec["nfe"]), progress)
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
