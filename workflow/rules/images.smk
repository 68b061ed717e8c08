# Image family: sample grids for fig_samples (EMA weights, tuned sampler parameters at that NFE).
# Needs common.smk (spec_json, eval_spec, ckpt_of, tuned_of, PY) and sweep.smk's tune rule.
from idff.report.images import sample_settings


rule image_samples:
    message:
        "image samples of {wildcards.variant} ({wildcards.solver}) at NFE {wildcards.nfe} on "
        "{wildcards.dataset}"
    input:
        ckpt=ckpt_of,
        tuned=tuned_of,
    output:
        "results/samples/{exp}/images/{dataset}/{variant}/{solver}/nfe{nfe}_seed{seed}.npz",
    log:
        "logs/image_samples/{exp}/{dataset}/{variant}/{solver}/nfe{nfe}_seed{seed}.log",
    benchmark:
        "benchmarks/rules/image_samples/{exp}/{dataset}/{variant}/{solver}/nfe{nfe}_seed{seed}.tsv"
    params:
        spec=lambda wc: spec_json(
            eval_spec(config, wc.exp, wc.dataset, wc.variant, wc.solver, int(wc.seed))
        ),
        tuned=lambda wc, input: f"--tuned {input.tuned}" if input.tuned else "",
        n=lambda wc: sample_settings(config, wc.exp)["n"],
    threads: 1
    resources:
        gpu=1,
        gpu_share=gpu_share,
    conda:
        "../envs/idff.yaml"
    shell:
        "python -m idff.families.images samples --spec {params.spec:q} --ckpt {input.ckpt} "
        "{params.tuned} --nfe {wildcards.nfe} --n {params.n} --out {output} > {log} 2>&1"
