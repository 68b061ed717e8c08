"""``idff iter-eval``: quality against training step (the paper's Fig. 3A).

Evaluates the EMA weights the trainer kept every ``train.keep_every`` steps (and the final
checkpoint) at every NFE budget of ``figures.nfe_vs_iterations``; the figure applies its
threshold to the rows, so changing the threshold evaluates nothing again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..families import get_family
from ..flows.nfe import CountingNet
from ..io import write_json_atomic
from ..layout import kept_steps, snapshot_path
from ..provenance import pick_device, record
from ..train import load_trained
from .network import build_from_meta, make_generator
from .tuned import read_tuned

#: what an iter-eval spec holds besides an evaluation spec's keys
SPEC_KEYS = ("family", "dataset", "seed", "model", "method", "variant", "solver", "nfe", "sweep",
             "iterations")


def run_iter_eval(spec: dict, ckpt: str | Path, out: str | Path,
                  tuned: str | Path | None = None) -> dict[str, Any]:
    """Evaluate the kept EMA snapshots of ``ckpt`` (and ``ckpt`` itself) at ``spec["nfe"]``.

    ``spec`` is ``iteration_spec(...)``: an evaluation spec plus ``iterations: {steps, split}``.
    Tuned variants use the parameters chosen on validation for the final checkpoint at each
    budget (``tuned``). A missing, foreign or stale snapshot is an error naming the fix.
    """
    it = spec.get("iterations")
    if not isinstance(it, dict) or not it.get("steps") or it.get("split") not in ("test", "val"):
        raise ValueError("the iter-eval spec needs iterations: {steps: [...], split: test|val}; "
                         "make it with idff.plan.figures.iteration_spec")
    steps = [int(s) for s in it["steps"]]
    ckpt = Path(ckpt)
    device = pick_device(spec.get("device", "auto"))
    family = get_family(spec["family"])
    chosen = read_tuned(tuned, spec) if tuned else {}
    if spec["variant"].get("tune"):
        lacking = [n for n in spec["nfe"] if str(n) not in chosen]
        if lacking:
            raise ValueError(f"variant {spec['variant']['name']!r} is tuned per NFE budget, but "
                             f"{'the tuned file ' + str(tuned) if tuned else 'no --tuned file'} "
                             f"has no choice for budget(s) {lacking}; pass the tune output of "
                             f"this job")
    expect = {"method": spec["method"], "dataset": spec["dataset"], "model": spec["model"]}
    final, final_state = load_trained(ckpt, build_from_meta, device, expect=expect)
    trained = final_state.get("train") or {}
    have = kept_steps(int(final_state.get("step", -1)), int(trained.get("keep_every", 0)))
    if have != steps:
        raise ValueError(f"checkpoint {ckpt} was trained for {final_state.get('step')} steps "
                         f"keeping the EMA weights every {trained.get('keep_every', 0)} steps "
                         f"(steps {have}), but the config asks for steps {steps}; retrain it "
                         f"with the config's train.steps and train.keep_every")
    sigma = float(spec["method"].get("sigma", 0.0))
    rows = []
    start = time.perf_counter()
    for step in steps:
        if step == steps[-1]:
            model = final
        else:
            path = snapshot_path(ckpt, step)
            if not path.is_file():
                raise FileNotFoundError(f"snapshot {path} of step {step} is missing (written by "
                                        f"the training run when train.keep_every is set); "
                                        f"delete {ckpt} and retrain it")
            model, state = load_trained(path, build_from_meta, device, expect=expect)
            if state.get("step") != step or state.get("train") != trained:
                raise ValueError(f"snapshot {path} holds step {state.get('step')} of a training "
                                 f"run with other settings than {ckpt} (stale file); delete it "
                                 f"and {ckpt}, then retrain")
        net = CountingNet(model)
        for nfe in spec["nfe"]:
            params = chosen.get(str(nfe), {}).get("best", {})
            gen = make_generator(spec, net, sigma, nfe, params, device)
            metrics = family.evaluate(spec, gen, it["split"])
            rows.append({"step": step, "nfe_budget": nfe, "nfe": gen.nfe_per_call,
                         "vjp": gen.vjp_per_call, "wall_s": gen.wall_s, "params": params,
                         **metrics})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "params"}), flush=True)
    result = {"job": "iter_eval", "split": it["split"], "experiment": spec["experiment"],
              "dataset": spec["dataset"], "variant": spec["variant"]["name"],
              "method": spec["method"]["name"], "sampler": spec["variant"]["sampler"],
              "solver": spec["solver"], "seed": spec["seed"], "steps": steps,
              "nfe_budgets": list(spec["nfe"]), "rows": rows,
              "provenance": record(cfg=spec, seed=spec["seed"], device=device,
                                   wall_s=time.perf_counter() - start,
                                   nfe=sorted({r["nfe"] for r in rows}))}
    write_json_atomic(out, result)
    return result
