"""The steps that draw a family's own products for figures: ``idff rollout`` (MD free
generation), ``idff forecast`` (one SST ensemble forecast) and ``idff samples`` (an image grid).

One job for all three: load the network, take the sampler parameters chosen on validation at
this NFE (``--tuned``; ``--param`` overrides), call the family's hook of the same name with the
generator, and write its arrays and a JSON ``info`` (with provenance) as one ``.npz``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..families import get_family
from ..io import atomic_path
from ..provenance import pick_device, record
from .network import load_net, make_generator
from .tuned import read_tuned, tuned_params

#: the step name (also the family hook's name) -> what it draws
PRODUCTS = {
    "rollout": "free generation from the test split's first frames (md)",
    "forecast": "the ensemble forecast of one test window (sst)",
    "samples": "a grid of generated images (images)",
}


def run_product(step: str, spec: dict, ckpt: str | Path, out: str | Path, *, nfe: int,
                params: dict | None = None, tuned: str | Path | None = None,
                **options: Any) -> dict[str, Any]:
    """Run the family hook ``step`` at ``nfe`` and write ``out`` (.npz); returns its ``info``."""
    if step not in PRODUCTS:
        raise ValueError(f"unknown product step {step!r}; valid: {', '.join(PRODUCTS)}")
    family = get_family(spec["family"])
    hook = getattr(family, step, None)
    if hook is None:
        raise ValueError(f"`idff {step}` draws {PRODUCTS[step]}; family {spec['family']!r} "
                         f"has no such step")
    if tuned:
        chosen = read_tuned(tuned, spec).get(str(nfe))  # before the network: fail in seconds
        if not isinstance(chosen, dict):
            raise ValueError(f"tuned file {tuned} has no tuned parameters for NFE {nfe}; pick an "
                             f"NFE budget of the sweep")
    device = pick_device(spec.get("device", "auto"))
    net, sigma = load_net(spec, ckpt, device)
    chosen = tuned_params(tuned, spec, nfe, net.ckpt_sha256) if tuned else {}
    gen = make_generator(spec, net, sigma, nfe, {**chosen, **(params or {})}, device)
    start = time.perf_counter()
    arrays, info = hook(spec, gen, nfe, **options)
    info["provenance"] = record(cfg=spec, seed=spec["seed"], device=device,
                                wall_s=time.perf_counter() - start, nfe=gen.nfe_per_call)
    with atomic_path(out, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays, info=np.array(json.dumps(info, default=str)))
    print(json.dumps({k: v for k, v in info.items() if k != "provenance"}, default=str))
    return info
