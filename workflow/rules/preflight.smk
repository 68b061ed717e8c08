# Preflight: nothing a late job reads is first looked at after days of training.
# - The Inception weights of FID/KID/IS are a pipeline input, fetched like a data set (https,
#   SHA-256, resume) by the inception_weights rule; every tune, sweep and floor job that computes
#   FID depends on the file.
# - `idff doctor` (GPU, disk, every outside input, planned jobs and GPU-hours) runs at start-up,
#   after the DAG is built and before the first job, for the experiments the run will touch; a
#   FAIL stops the run there. Dry runs and "Nothing to be done" skip it; `--no-hooks` skips it
#   on purpose (e.g. a deliberate CPU run of a GPU config). `snakemake preflight` fetches the
#   weights, then prints the doctor's screen.
# Needs common.smk (config, PY, spec_json, report_config).
import re
import subprocess

from snakemake.exceptions import WorkflowError

from idff.inputs import inception_settings, weights_path, weights_paths

WEIGHTS = weights_paths(config)
PREFLIGHT_RULES = {"preflight", "inception_weights"}


def weights_of(wc):
    """The Inception weights file the FID/KID/IS jobs of wc.exp read ([]: none, or torch hub's
    cache, which the doctor checks)."""
    return weights_path(config["experiments"][wc.exp]) or []


if WEIGHTS:

    rule inception_weights:
        message:
            "fetch torch-fidelity's Inception-v3 weights (FID/KID/IS) -> {output}"
        output:
            "{weights}",
        wildcard_constraints:
            weights="|".join(re.escape(p) for p in WEIGHTS),
        log:
            "logs/inputs/{weights}.log",
        params:
            spec=spec_json(inception_settings(config)),
        priority: 100
        localrule: True
        conda:
            "../envs/idff.yaml"
        shell:
            "idff --no-progress fetch inception_weights --spec {params.spec:q} --out {output} "
            "> {log} 2>&1"


rule preflight:
    localrule: True
    input:
        WEIGHTS,
    params:
        cfg=json.dumps(config, separators=(",", ":")),
    conda:
        "../envs/idff.yaml"
    shell:
        "idff --no-progress doctor --config-json {params.cfg:q} --out logs/preflight/doctor.json"


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


onstart:
    _jobs = list(workflow.dag.needrun_jobs())
    _names = planned_experiments(_jobs)
    if _names and not {j.rule.name for j in _jobs} <= PREFLIGHT_RULES:
        _cmd = [PY, "-m", "idff.cli", "--no-progress", "doctor", "--experiments",
                ",".join(_names), "--config-json", json.dumps(config, separators=(",", ":")),
                "--out", "logs/preflight/doctor.json"]
        if subprocess.run(_cmd).returncode != 0:
            raise WorkflowError(
                "preflight failed (the FAIL lines above say what to fix); no job was started. "
                "Rerun after fixing, or skip the check on purpose with --no-hooks")
