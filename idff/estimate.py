"""What a config will run and cost: jobs by kind, device-hours and bytes written.

The unit costs live in ``idff/estimates.yaml`` (measured or marked as assumed, with source and
date); docs/performance.md shows the same numbers (``idff doctor --costs`` prints its table).
A rough estimate: training scales with parameters x pixels x batch from one reference network
per architecture, sampling with forward passes; expect a factor of two either way.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from .config import sweep_nfes, variant_solvers
from .fastpaths import architecture
from .models import build_model

ESTIMATES_PATH = Path(__file__).with_name("estimates.yaml")
IMAGE_SIZES = {"cifar10": 32, "celeba": 64, "offline_cifar": 32, "offline_faces": 64}


@functools.lru_cache(maxsize=1)
def unit_costs() -> dict[str, Any]:
    """The parsed ``idff/estimates.yaml`` (cached; never mutate the result)."""
    return yaml.safe_load(ESTIMATES_PATH.read_text())


@dataclass
class Estimate:
    """Jobs by kind, hours by kind on one device class, bytes by kind."""

    device: str
    jobs: dict[str, int] = field(default_factory=dict)
    hours: dict[str, float] = field(default_factory=dict)
    bytes: dict[str, float] = field(default_factory=dict)
    assumed: bool = False  # some unit cost used was not measured

    @property
    def total_hours(self) -> float:
        return sum(self.hours.values())

    @property
    def total_bytes(self) -> float:
        return sum(self.bytes.values())

    def add(self, kind: str, jobs: int, seconds: float) -> None:
        """``jobs`` jobs of ``kind`` doing ``seconds`` of work, plus each job's start-up cost."""
        seconds += jobs * unit_costs()["job_overhead_s"]["value"]
        self.jobs[kind] = self.jobs.get(kind, 0) + jobs
        self.hours[kind] = self.hours.get(kind, 0.0) + seconds / 3600.0


def data_shape(exp: dict, dataset: str) -> tuple[int, ...]:
    """The shape of one training sample, from the config alone (no data file needed)."""
    family = exp["family"]
    if family == "images":
        size = int(exp["data"].get("image_size") or IMAGE_SIZES.get(dataset, 32))
        return (3, size, size)
    if family == "sst":
        return (1, int(exp["data"].get("box", 60)), int(exp["data"].get("box", 60)))
    if family == "md":
        return (2,)
    return (2,)


def n_cond(exp: dict) -> int:
    data = exp["data"]
    if exp["family"] == "md":
        return int(data.get("n_cond", 200)) if data.get("condition", "frame") == "frame" else 0
    if exp["family"] == "sst":
        return int(data.get("horizon", 7))
    return 0


def count_params(exp: dict, dataset: str) -> int:
    """Parameters of the experiment's network (two heads, IDFF's), built on the meta device."""
    return _count(json.dumps([exp["model"]["arch"], data_shape(exp, dataset), n_cond(exp),
                              architecture(exp["model"])], sort_keys=True))


@functools.lru_cache(maxsize=64)
def _count(key: str) -> int:
    arch, shape, cond, params = json.loads(key)
    with torch.device("meta"):
        net = build_model(arch, tuple(shape), 2, n_cond=cond, **params)
    return sum(p.numel() for p in net.parameters())


def _units(exp: dict, dataset: str, params: int) -> float:
    shape = data_shape(exp, dataset)
    pixels = shape[1] * shape[2] if len(shape) == 3 else 1
    return float(params) * pixels


def _ref(arch: str, device: str) -> dict:
    return unit_costs()["reference"]["unet" if arch == "unet" else "mlp"][device]


def step_seconds(exp: dict, dataset: str, params: int, device: str) -> float:
    ref = _ref(exp["model"]["arch"], device)
    scale = _units(exp, dataset, params) * int(exp["train"]["batch_size"]) / (
        ref["params"] * ref["pixels"] * ref["batch"])
    return ref["step_ms"] / 1000.0 * scale


def forward_seconds_per_sample(exp: dict, dataset: str, params: int, device: str) -> float:
    ref = _ref(exp["model"]["arch"], device)
    scale = _units(exp, dataset, params) / (ref["params"] * ref["pixels"])
    return ref["forward_ms"] / 1000.0 / ref["batch"] * scale


def eval_samples(exp: dict, split: str) -> int:
    """Samples drawn per NFE budget in one tune grid point (val) or one sweep (test)."""
    data, sweep = exp["data"], exp["sweep"]
    n_test = int(data.get("n_fid_samples") or sweep["n_samples"])
    if exp["family"] == "sst":
        windows = int(data.get("n_windows") or 365)
        if split == "val":
            windows = int(data.get("n_windows_val") or windows)
        return int(data.get("n_members", sweep["n_samples"])) * windows * int(data.get("horizon", 7))
    if exp["family"] == "md":
        ev = data.get("eval", {})
        return n_test + int(ev.get("free_frames", 0)) * int(ev.get("n_free", 0))
    if split == "val":
        return int(exp.get("tune", {}).get("n_samples") or n_test)
    return n_test


def grid_points(variant: dict) -> int:
    """Sampler parameter settings a tune job tries (0: the variant is not tuned)."""
    grid = variant.get("tune") or {}
    return math.prod(len(v) for v in grid.values()) if grid else 0


def estimate(cfg: dict, device: str = "cuda", experiments: list[str] | None = None) -> Estimate:
    """Jobs, hours on one ``device`` ("cuda" or "cpu") and bytes of the run of ``cfg``."""
    costs = unit_costs()
    est = Estimate(device=device)
    names = experiments or list(cfg["experiments"])
    fid_cost = costs["inception_ms_per_image"][device]
    factors = costs["sampler_factor"]["value"]
    for name in names:
        exp = cfg["experiments"][name]
        est.assumed |= not _ref(exp["model"]["arch"], device)["measured"]
        seeds, datasets = len(exp["seeds"]), exp["datasets"]
        # FID/KID/IS cost Inception features; the tiny test extractor costs nothing to speak of
        images = exp["family"] == "images" and (
            exp["data"].get("feature_extractor", "inception-v3-compat") == "inception-v3-compat")
        fid_ref = int(exp["data"].get("n_fid_reference", 50_000)) if images else 0
        if images:
            est.assumed |= not fid_cost["measured"]
        for ds in datasets:
            params = count_params(exp, ds)
            step = step_seconds(exp, ds, params, device)
            n_methods = len(exp["methods"])
            steps = int(exp["train"]["steps"])
            est.add("train", n_methods * seeds, n_methods * seeds * steps * step)
            keep = exp["train"].get("keep_every")
            snaps = steps // int(keep) if keep else 0
            # checkpoint (net + EMA), resume file (net + EMA + 2 AdamW moments), EMA snapshots
            est.bytes["checkpoints"] = est.bytes.get("checkpoints", 0.0) + (
                n_methods * seeds * params * 4.0 * (2 + 4 + snaps))
            est.bytes["data"] = est.bytes.get("data", 0.0) + costs["data_bytes"].get(ds, 0)
            fwd = forward_seconds_per_sample(exp, ds, params, device)
            for vname, var in exp["variants"].items():
                factor = factors.get(var["sampler"], 1.0)
                for solver in variant_solvers(exp, vname):
                    passes = sum(sweep_nfes(exp, solver)) * factor
                    n_budgets = len(sweep_nfes(exp, solver))
                    sweep_s = passes * eval_samples(exp, "test") * fwd
                    fid_s = (n_budgets * eval_samples(exp, "test") + fid_ref) * fid_cost["value"] / 1e3
                    est.add("sweep", seeds, seeds * (sweep_s + (fid_s if images else 0.0)))
                    points = grid_points(var)
                    if points:
                        tune_s = points * passes * eval_samples(exp, "val") * fwd
                        fid_t = (points * n_budgets * eval_samples(exp, "val") + fid_ref) \
                            * fid_cost["value"] / 1e3
                        est.add("tune", seeds, seeds * (tune_s + (fid_t if images else 0.0)))
            floor_s = (eval_samples(exp, "test") + fid_ref) * fid_cost["value"] / 1e3 if images else 0
            est.add("floor", seeds, seeds * floor_s)
    est.bytes["dvc cache"] = est.bytes.get("checkpoints", 0.0)  # `dvc commit` copies results
    return est


def doc_table() -> str:
    """The unit-cost table of docs/performance.md ("Run-time estimate"), from estimates.yaml."""
    costs = unit_costs()
    rows = ["| network | device | training step (ms) | forward pass (ms, whole batch) | measured | "
            "source | date |", "|---|---|---:|---:|---|---|---|"]
    for arch, refs in costs["reference"].items():
        for dev in ("cpu", "cuda"):
            c = refs[dev]
            rows.append(f"| {arch}: {c['network']} | {dev} | {c['step_ms']} | {c['forward_ms']} | "
                        f"{'yes' if c['measured'] else 'no'} | {c['source']} | {c['date']} |")
    for dev in ("cpu", "cuda"):
        c = costs["inception_ms_per_image"][dev]
        rows.append(f"| Inception-v3 features, per image | {dev} | - | {c['value']} | "
                    f"{'yes' if c['measured'] else 'no'} | {c['source']} | {c['date']} |")
    o = costs["job_overhead_s"]
    rows.append(f"| start-up of every job (process, imports) | any | {o['value'] * 1e3:g} | - | "
                f"{'yes' if o['measured'] else 'no'} | {o['source']} | {o['date']} |")
    f = costs["sampler_factor"]
    factors = ", ".join(f"{k} {v}x" for k, v in f["value"].items())
    rows.append(f"| sampler cost per forward pass: {factors} | any | - | - | "
                f"{'yes' if f['measured'] else 'no'} | {f['source']} | {f['date']} |")
    return "\n".join(rows)
