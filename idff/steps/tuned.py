"""The one reader of ``idff tune`` outputs: the sampler parameters chosen per NFE budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


