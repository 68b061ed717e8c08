import json
import os
import sys

import yaml

from idff.config import (
    data_spec,
    eval_spec,
    floor_spec,
    sweep_nfes,
    train_spec,
    validate_config,
    variant_solvers,
)
from idff import layout, packing
from idff.families import get_family
from idff.report import TARGETS, experiment_inputs, experiment_targets, target_inputs
from idff.plan.core import expected_floor_files, expected_metric_files, training_jobs
from idff.plan.figures import iteration_spec
from idff.plan.products import EVAL_RULES, GATHER_RULES, step_options
from idff.report.outputs import paper_outputs

DEFAULT_CONFIG = "config/config.yaml"


def _deep_update(base, new):
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
    return base


if "experiments" not in config:  # no --configfile: the paper config, with any --config overrides
    with open(DEFAULT_CONFIG) as _f:
        _overrides = dict(config)
        config.clear()
        config.update(_deep_update(yaml.safe_load(_f), _overrides))

# Validation happens before any job: the JSON schema idff/schema/config.schema.yaml (types,
# names), then what a schema cannot say; errors name the key as experiments.toy.train.steps.
validate_config(config)

# Jobs call the `idff` console script of the environment that runs Snakemake, also when that
# environment is not activated (e.g. `.venv/bin/snakemake`).
PY = sys.executable
envvars:
    "PATH",


os.environ.update(PATH=os.pathsep.join([os.path.dirname(PY), os.getenv("PATH", "")]))
EXPERIMENTS = list(config["experiments"])
# The config's `progress` key reaches every job as IDFF_PROGRESS (read by the idff CLI): with it
# on (the default) jobs write progress lines into their logs.
os.environ.update(IDFF_PROGRESS="1" if config.get("progress", True) else "0")


def _alt(names):
    return "|".join(sorted({str(n) for n in names}))


wildcard_constraints:
    exp=_alt(EXPERIMENTS),
    dataset=_alt(d for e in config["experiments"].values() for d in e["datasets"]),
    method=_alt(m for e in config["experiments"].values() for m in e["methods"]),
    variant=_alt(v for e in config["experiments"].values() for v in e["variants"]),
    solver="euler|midpoint|heun|rk4|ssprk3|euler_maruyama",
    seed=r"\d+",
    nfe=r"\d+",
    datafile=r"[A-Za-z0-9_.-]+",


def spec_json(spec):
    """The config slice a job depends on, as compact JSON (a `params:` rerun trigger)."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def variant_of(wc):
    return config["experiments"][wc.exp]["variants"][wc.variant]


def ckpt_of(wc):
    method = variant_of(wc)["method"]
    return layout.path("checkpoint", exp=wc.exp, dataset=wc.dataset, method=method, seed=wc.seed)


def tuned_of(wc):
    if not variant_of(wc).get("tune"):
        return []
    return layout.path("tuned", **wc)


def job_spec(step, wc):
    """The config slice of an evaluation job (idff.plan.products.EVAL_RULES) of one variant,
    solver and seed."""
    make = iteration_spec if step == "iter-eval" else eval_spec
    return make(config, wc.exp, wc.dataset, wc.variant, wc.solver, int(wc.seed))


def tuned_arg(wc, input):
    return f"--tuned {input.tuned}" if input.tuned else ""


def paper_outputs_all():
    return [p for t, path in config["paper_targets"].items() for p in paper_outputs(t, path)]


def data_file(exp, dataset):
    """The prepared data file a job of (exp, dataset) reads, or [] for generated toy data."""
    spec = data_spec(config, exp, dataset)
    return get_family(spec["family"]).data_file(spec) or []


def data_of(wc):
    return data_file(wc.exp, wc.dataset)


def report_config(target):
    """The config slice a report reads: the experiments it reads and their targets (a change
    elsewhere in the config does not rerun it)."""
    exps = TARGETS[target].experiments(config)
    return {
        "device": config.get("device", "auto"),
        "experiments": {x: config["experiments"][x] for x in exps},
        "paper_targets": {
            t: p
            for t, p in config["paper_targets"].items()
            if t in TARGETS and TARGETS[t].experiment in exps
        },
    }


def gpu_share(wc):
    """The share of one GPU (of 100) a job of ``wc.exp`` claims: idff.packing, docs/performance.md."""
    return packing.gpu_share(config["experiments"][wc.exp])


# what every job on a GPU claims: a GPU slot (the local executor's limit) and its share of one
GPU_JOB = {"gpu": 1, "gpu_share": gpu_share}
