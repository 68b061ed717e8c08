# Preflight: nothing a late job reads is first looked at after days of training.
# - The Inception weights of FID/KID/IS are a pipeline input, fetched like a data set (https,
#   SHA-256, resume) by the inception_weights rule; every tune, sweep and floor job that computes
#   FID depends on the file.
# - `idff doctor` (GPU, disk, every outside input, planned jobs and GPU-hours) runs at start-up,
#   after the DAG is built and before the first job, for the experiments the run will touch; a
#   FAIL stops the run there. Dry runs and "Nothing to be done" skip it; `--no-hooks` skips it
#   on purpose (e.g. a deliberate CPU run of a GPU config). `snakemake preflight` fetches the
#   weights, then prints the doctor's screen.
# Needs common.smk (config, PY, spec_json) and inputs.smk (WEIGHTS, planned_experiments).
import re
import subprocess

from snakemake.exceptions import WorkflowError

from idff.inputs import inception_settings

PREFLIGHT_RULES = {"preflight", "inception_weights"}


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
    log:
        "logs/preflight/doctor.log",
    params:
        cfg=json.dumps(config, separators=(",", ":")),
    conda:
        "../envs/idff.yaml"
    shell:
        "idff --no-progress doctor --config-json {params.cfg:q} --out logs/preflight/doctor.json "
        "2>&1 | tee {log}"


onstart:
    _jobs = list(workflow.dag.needrun_jobs())
    _names = planned_experiments(_jobs)
    if _names and not {j.rule.name for j in _jobs} <= PREFLIGHT_RULES:
        _cmd = [os.path.join(os.path.dirname(PY), "idff"), "--no-progress", "doctor", "--experiments",
                ",".join(_names), "--config-json", json.dumps(config, separators=(",", ":")),
                "--out", "logs/preflight/doctor.json"]
        if not workflow.local_exec:  # a cluster executor: jobs get their GPUs elsewhere
            _cmd.append("--remote")
        if subprocess.run(_cmd).returncode != 0:
            raise WorkflowError(
                "preflight failed (the FAIL lines above say what to fix); no job was started. "
                "Rerun after fixing, or skip the check on purpose with --no-hooks")
