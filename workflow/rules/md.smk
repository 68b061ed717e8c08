# Molecular dynamics: long free-generation roll-outs for fig_md (the paper's Fig. 4).
# Data, training, tuning, sweeps and the floor of the md family run through the generic rules
# (train.smk, sweep.smk); only the roll-outs need a rule of their own.
from idff.report.md import expected_rollout_files


rule md_rollout:
    message:
        "free-generation roll-out of {wildcards.variant} ({wildcards.solver}, NFE {wildcards.nfe}) "
        "on {wildcards.exp}/{wildcards.dataset}, seed {wildcards.seed}"
    input:
        data=data_of,
        ckpt=ckpt_of,
        tuned=tuned_of,
    output:
        "results/samples/{exp}/rollouts/{dataset}/{variant}/{solver}/nfe{nfe}_seed{seed}.npz",
    log:
        "logs/md_rollout/{exp}/{dataset}/{variant}/{solver}/nfe{nfe}_seed{seed}.log",
    benchmark:
        "benchmarks/rules/md_rollout/{exp}/{dataset}/{variant}/{solver}/nfe{nfe}_seed{seed}.tsv"
    params:
        spec=lambda wc: spec_json(
            eval_spec(config, wc.exp, wc.dataset, wc.variant, wc.solver, int(wc.seed))
        ),
        tuned=lambda wc, input: f"--tuned {input.tuned}" if input.tuned else "",
    resources:
        gpu=1,
        gpu_share=gpu_share,
    conda:
        "../envs/idff.yaml"
    shell:
        "python -m idff.families.md rollout --spec {params.spec:q} --ckpt {input.ckpt} "
        "{params.tuned} --nfe {wildcards.nfe} --out {output} > {log} 2>&1"


for _exp in EXPERIMENTS:
    if config["experiments"][_exp]["family"] == "md":

        rule:
            name:
                f"rollouts_{_exp}"
            localrule: True
            input:
                expected_rollout_files(config, _exp),
