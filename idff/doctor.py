"""`idff doctor`: can this machine run this config? One screen of OK / WARN / FAIL lines.

Checks, in order: the GPU (count, name, memory and one tiny CUDA step), free disk against what
the run writes, every outside input (present, downloadable with its checksum, or the manual
step), the planned jobs by kind and the estimated device-hours (``idff.estimate``, unit costs
from ``idff/estimates.yaml`` with their source and date). Any FAIL makes the exit code 1.
Snakemake runs it before the first job of a run (workflow/rules/preflight.smk).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import torch

from .data.download import DownloadError
from .data.weights import check_sha256
from .estimate import Estimate, estimate, unit_costs
from .inputs import ExternalInput, external_inputs, inception_settings, probe
from .io import write_json_atomic
from .provenance import record

OFFLINE_ENV = "IDFF_OFFLINE"


@dataclass
class Check:
    status: str  # OK | WARN | FAIL
    what: str
    message: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.status:<4}  {self.what:<9} {self.message}" + (
            f" -> fix: {self.fix}" if self.fix else "")


def _h(hours: float) -> str:
    """Hours with sensible digits: 573.9, 8.1, 0.05, < 0.01."""
    return f"{hours:,.1f}" if hours >= 1 else f"{hours:.2f}" if hours >= 0.01 else "< 0.01"


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def check_gpu(cfg: dict, est: Estimate, remote: bool = False) -> tuple[list[Check], int]:
    """The GPU lines and the number of CUDA devices visible (``remote``: jobs run elsewhere)."""
    device = str(cfg.get("device", "auto"))
    if device == "cpu":
        return [Check("OK", "gpu", "config sets device: cpu; no GPU needed")], 0
    if remote:
        return [Check("WARN", "gpu", f"jobs run on cluster nodes, not checked from here (~"
                      f"{_h(est.total_hours)} GPU-hours)", "run `idff doctor` once inside a GPU "
                      "job of the cluster")], 0
    if not torch.cuda.is_available() and device.startswith("cuda"):
        return [Check("FAIL", "gpu", f"config sets device: {device} but no CUDA device is visible "
                      f"(torch {torch.__version__})", "run on a GPU machine or set device: auto")], 0
    if not torch.cuda.is_available():
        need = unit_costs()["gpu_required_above_hours"]
        hours = est.total_hours
        if hours > need:
            return [Check("FAIL", "gpu", f"no CUDA device visible (torch {torch.__version__}); this "
                          f"config needs ~{hours:,.0f} GPU-hours",
                          "run on a machine with an NVIDIA GPU and torch's CUDA build (pip install "
                          "torch from the CUDA index), or choose a CPU config such as "
                          "config/toy_cpu.yaml")], 0
        return [Check("WARN", "gpu", f"no CUDA device visible; fine for this config (~{_h(hours)} "
                      f"GPU-hours): the jobs run on the CPU")], 0
    checks, n = [], torch.cuda.device_count()
    for i in range(n):
        p = torch.cuda.get_device_properties(i)
        checks.append(Check("OK", "gpu", f"cuda:{i} {p.name}, {_gib(p.total_memory)}"))
    try:
        start = time.perf_counter()
        x = torch.randn(256, 256, device="cuda", requires_grad=True)
        (x @ x).square().mean().backward()
        torch.cuda.synchronize()
        checks.append(Check("OK", "gpu", f"a tiny CUDA forward/backward ran in "
                            f"{(time.perf_counter() - start) * 1e3:.0f} ms"))
    except Exception as exc:  # a driver/toolkit mismatch shows here, not on day two
        checks.append(Check("FAIL", "gpu", f"a tiny CUDA step failed: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}",
                            "match the NVIDIA driver and torch's CUDA build (nvidia-smi, "
                            "torch.version.cuda)"))
    if n > 1:
        checks.append(Check("WARN", "gpu", f"{n} GPUs visible, but the default profile's gpu=1 "
                            f"runs one GPU job at a time",
                            f"snakemake all --resources gpu={n} (each job still picks its device "
                            f"by the config's device setting)"))
    return checks, n


def check_disk(est: Estimate, where: str | os.PathLike = ".") -> Check:
    free = shutil.disk_usage(where).free
    need = est.total_bytes
    parts = ", ".join(f"{k} {_gib(v)}" for k, v in est.bytes.items() if v)
    msg = f"{_gib(free)} free at {Path(where).resolve()}; the run writes ~{_gib(need)} ({parts})"
    margin = unit_costs()["disk_margin_gb"] * 1e9
    if free < need:
        return Check("FAIL", "disk", msg, "free space or run from a larger disk")
    if free - need < margin:
        return Check("WARN", "disk", msg + f"; less than {margin / 1e9:.0f} GB would be left",
                     "free space (logs, DVC and temporary files need room too)")
    return Check("OK", "disk", msg)


def check_inputs(cfg: dict, experiments: list[str] | None, network: bool) -> list[Check]:
    items = external_inputs(cfg, experiments)
    todo = [i for i in items if not i.present and i.how == "rule" and i.url]
    reasons: dict[str, str] = {}
    if network and todo:
        with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
            for item, reason in zip(todo, pool.map(lambda i: probe(i.url), todo), strict=True):
                reasons[item.path] = reason
    return [_input_check(cfg, i, network, reasons.get(i.path, "")) for i in items]


def _input_check(cfg: dict, item: ExternalInput, network: bool, reason: str) -> Check:
    label = f"{item.name} [{', '.join(item.experiments)}]"
    if item.present:
        if item.made_by == "rule inception_weights":
            try:
                check_sha256(Path(item.path), inception_settings(cfg)["sha256"], item.path)
            except DownloadError as exc:
                return Check("FAIL", "input", f"{label}: {exc}",
                             f"delete {item.path}; the inception_weights rule fetches it again")
        if item.how == "package":
            return Check("OK", "input", f"{label}: installed")
        return Check("OK", "input", f"{label}: present at {item.path}")
    where = f"{label}: {item.path} is missing" + (f" ({item.note})" if item.note else "")
    if item.how == "rule" and item.url:
        if not network:
            return Check("FAIL", "input", f"{where}; no network ({OFFLINE_ENV} set or --offline) "
                         f"to download {item.url}", item.fix)
        if reason:
            return Check("FAIL", "input", f"{where} and {item.url} does not answer ({reason})",
                         item.fix)
        return Check("OK", "input", f"{where}; {item.made_by} downloads it ({item.checksum}) "
                     f"before the jobs that read it")
    return Check("FAIL", "input", where, item.fix)


def check_plan(cfg: dict, experiments: list[str], gpu_est: Estimate, on_cpu: bool) -> list[Check]:
    """The planned jobs by kind and the GPU-hours (and, without a GPU, this CPU's hours)."""
    costs = unit_costs()
    kinds = ", ".join(f"{n} {k}" for k, n in gpu_est.jobs.items())
    checks = [Check("OK", "jobs", f"{sum(gpu_est.jobs.values())} jobs: {kinds} (+ data, sample "
                    f"and report jobs)")]
    per_exp = ", ".join(f"{x} {_h(estimate(cfg, 'cuda', [x]).total_hours)}" for x in experiments)
    hours = ", ".join(f"{k} {_h(v)}" for k, v in gpu_est.hours.items())
    refs = [r["cuda"] for r in costs["reference"].values()]
    how = "assumed" if gpu_est.assumed else "measured"
    msg = (f"~{_h(gpu_est.total_hours)} GPU-hours on one GPU ({hours}); per experiment: "
           f"{per_exp}. Unit costs: idff/estimates.yaml, GPU step times {how} "
           f"({', '.join(sorted({r['date'] for r in refs}))})")
    if gpu_est.assumed:
        checks.append(Check("WARN", "estimate", msg, "measure them (benchmarks/gpu_images.py on "
                            "the GPU) and update idff/estimates.yaml"))
    else:
        checks.append(Check("OK", "estimate", msg))
    if on_cpu:
        cpu = estimate(cfg, "cpu", experiments)
        dates = sorted({r["cpu"]["date"] for r in costs["reference"].values()})
        checks.append(Check("OK", "estimate", f"on this machine's CPU: ~{_h(cpu.total_hours)} "
                            f"CPU-hours (CPU step times measured {', '.join(dates)}, "
                            f"docs/performance.md)"))
    return checks


def run_doctor(cfg: dict, *, experiments: list[str] | None = None, network: bool | None = None,
               out: str | os.PathLike | None = None, stream: IO[str] | None = None,
               source: str = "", remote: bool = False) -> int:
    """Print every check; write them as JSON to ``out``; return 1 on any FAIL, else 0."""
    start = time.perf_counter()
    stream = stream or sys.stdout
    if network is None:
        network = os.environ.get(OFFLINE_ENV, "") in ("", "0")
    names = experiments or list(cfg["experiments"])
    gpu_est = estimate(cfg, "cuda", names)
    print(f"idff doctor: {source or 'config'} (experiments: {', '.join(names)})", file=stream,
          flush=True)
    checks, n_gpu = check_gpu(cfg, gpu_est, remote)
    device = "cuda" if n_gpu else "cpu"
    checks += [check_disk(gpu_est), *check_inputs(cfg, names, network),
               *check_plan(cfg, names, gpu_est, on_cpu=not n_gpu)]
    for c in checks:
        print(c.line(), file=stream)
    counts = {s: sum(c.status == s for c in checks) for s in ("OK", "WARN", "FAIL")}
    print(f"summary: {counts['FAIL']} FAIL, {counts['WARN']} WARN, {counts['OK']} OK", file=stream)
    if out is not None:
        write_json_atomic(out, {"job": "doctor", "experiments": names, "counts": counts,
                                "checks": [asdict(c) for c in checks],
                                "provenance": record(cfg=cfg, seed=None, device=device,
                                                     wall_s=time.perf_counter() - start, nfe=0)})
    return 1 if counts["FAIL"] else 0
