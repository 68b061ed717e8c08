# Outside inputs of the DAG (issue 18): which Inception weights file each FID/KID/IS job reads,
# and which experiments a run touches (for the start-up check in preflight.smk). Functions only;
# needs common.smk (config). idff/inputs.py lists every outside input and how it is had.
from idff.inputs import weights_path, weights_paths

WEIGHTS = weights_paths(config)


def weights_of(wc):
    """The Inception weights file the FID/KID/IS jobs of wc.exp read ([]: none, or torch hub's
    cache, which `idff doctor` checks)."""
    return weights_path(config["experiments"][wc.exp]) or []


def planned_experiments(jobs):
    """The experiments whose jobs this run will execute (by wildcard or report target)."""
    names = set()
    for job in jobs:
        exp = job.wildcards_dict.get("exp")
        if exp:
            names.add(exp)
        elif job.rule.name in TARGETS:
            names.update(TARGETS[job.rule.name].experiments(config))
        elif "_" in job.rule.name and job.rule.name.split("_", 1)[1] in config["experiments"]:
            names.add(job.rule.name.split("_", 1)[1])  # data_toy, train_md, sweep_sst, ...
    return sorted(names)
