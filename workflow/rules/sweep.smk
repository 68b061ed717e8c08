rule tune:
    message:
        "tune {wildcards.variant} ({wildcards.solver}) on the validation split of {wildcards.dataset}"
    input:
        data=data_of,
        ckpt=ckpt_of,
        weights=weights_of,
    output:
        "results/tuned/{exp}/{dataset}/{variant}/{solver}/seed{seed}.json",
    log:
        "logs/tune/{exp}/{dataset}/{variant}/{solver}/seed{seed}.log",
    benchmark:
        "benchmarks/rules/tune/{exp}/{dataset}/{variant}/{solver}/seed{seed}.tsv"
    params:
        spec=lambda wc: spec_json(
            eval_spec(config, wc.exp, wc.dataset, wc.variant, wc.solver, int(wc.seed))
        ),
    resources:
        gpu=1,
        gpu_share=gpu_share,
    conda:
        "../envs/idff.yaml"
    shell:
        "idff tune --spec {params.spec:q} --ckpt {input.ckpt} --out {output} > {log} 2>&1"


rule sweep:
    message:
        "NFE sweep of {wildcards.variant} ({wildcards.solver}) on the test split of {wildcards.dataset}"
    input:
        data=data_of,
        ckpt=ckpt_of,
        tuned=tuned_of,
        weights=weights_of,
    output:
        "results/metrics/{exp}/{dataset}/{variant}/{solver}/seed{seed}.json",
    log:
        "logs/sweep/{exp}/{dataset}/{variant}/{solver}/seed{seed}.log",
    benchmark:
        "benchmarks/rules/sweep/{exp}/{dataset}/{variant}/{solver}/seed{seed}.tsv"
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
        "idff sweep --spec {params.spec:q} --ckpt {input.ckpt} {params.tuned} "
        "--out {output} > {log} 2>&1"


rule sample:
    message:
        "samples and trajectories of {wildcards.variant} at NFE {wildcards.nfe} on {wildcards.dataset}"
    input:
        data=data_of,
        ckpt=ckpt_of,
        tuned=tuned_of,
    output:
        "results/samples/{exp}/{dataset}/{variant}/{solver}/nfe{nfe}_seed{seed}.npz",
    log:
        "logs/sample/{exp}/{dataset}/{variant}/{solver}/nfe{nfe}_seed{seed}.log",
    benchmark:
        "benchmarks/rules/sample/{exp}/{dataset}/{variant}/{solver}/nfe{nfe}_seed{seed}.tsv"
    params:
        spec=lambda wc: spec_json(
            eval_spec(config, wc.exp, wc.dataset, wc.variant, wc.solver, int(wc.seed))
        ),
        tuned=lambda wc, input: f"--tuned {input.tuned}" if input.tuned else "",
        n=lambda wc: config["experiments"][wc.exp]["sweep"]["n_samples"],
    resources:
        gpu=1,
        gpu_share=gpu_share,
    conda:
        "../envs/idff.yaml"
    shell:
        "idff sample --spec {params.spec:q} --ckpt {input.ckpt} {params.tuned} "
        "--nfe {wildcards.nfe} --n {params.n} --out {output} > {log} 2>&1"


rule floor:
    message:
        "metric floor (target vs target) of {wildcards.dataset}, seed {wildcards.seed}"
    input:
        data=data_of,
        weights=weights_of,
    output:
        "results/floor/{exp}/{dataset}/seed{seed}.json",
    log:
        "logs/floor/{exp}/{dataset}/seed{seed}.log",
    benchmark:
        "benchmarks/rules/floor/{exp}/{dataset}/seed{seed}.tsv"
    params:
        spec=lambda wc: spec_json(
            eval_spec(
                config,
                wc.exp,
                wc.dataset,
                next(iter(config["experiments"][wc.exp]["variants"])),
                variant_solvers(
                    config["experiments"][wc.exp],
                    next(iter(config["experiments"][wc.exp]["variants"])),
                )[0],
                int(wc.seed),
            )
        ),
    conda:
        "../envs/idff.yaml"
    shell:
        "idff floor --spec {params.spec:q} --out {output} > {log} 2>&1"


for _exp in EXPERIMENTS:

    rule:
        name:
            f"sweep_{_exp}"
        localrule: True
        input:
            expected_metric_files(config, _exp),
            expected_floor_files(config, _exp),
            experiment_inputs(config, _exp),
            f"results/summary/{_exp}",
            f"results/plots/{_exp}",
