rule data:
    message:
        "prepare the {wildcards.exp} data set {wildcards.dataset}"
    output:
        "resources/data/{exp}/{dataset}/{datafile}",
    log:
        "logs/data/{exp}/{dataset}/{datafile}.log",
    benchmark:
        "benchmarks/rules/data/{exp}/{dataset}/{datafile}.tsv"
    params:
        spec=lambda wc: spec_json(data_spec(config, wc.exp, wc.dataset)),
    threads: 1
    conda:
        "../envs/idff.yaml"
    shell:
        "idff prepare --spec {params.spec:q} --out {output} > {log} 2>&1"


rule train:
    message:
        "train {wildcards.method} on {wildcards.exp}/{wildcards.dataset}, seed {wildcards.seed}"
    input:
        data=data_of,
    output:
        ckpt="results/checkpoints/{exp}/{dataset}/{method}/seed{seed}.pt",
        info="results/checkpoints/{exp}/{dataset}/{method}/seed{seed}.json",
        curve="results/checkpoints/{exp}/{dataset}/{method}/seed{seed}.curve.csv",
    log:
        "logs/train/{exp}/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "benchmarks/rules/train/{exp}/{dataset}/{method}/seed{seed}.tsv"
    params:
        spec=lambda wc: spec_json(
            train_spec(config, wc.exp, wc.dataset, wc.method, int(wc.seed))
        ),
    threads: 1
    resources:
        gpu=1,
        gpu_share=gpu_share,
    conda:
        "../envs/idff.yaml"
    shell:
        "idff train --spec {params.spec:q} --out {output.ckpt} > {log} 2>&1"


for _exp in EXPERIMENTS:

    rule:
        name:
            f"data_{_exp}"
        localrule: True
        input:
            [data_file(_exp, d) for d in config["experiments"][_exp]["datasets"]],

    rule:
        name:
            f"train_{_exp}"
        localrule: True
        input:
            [
                f"results/checkpoints/{_exp}/{d}/{m}/seed{s}.pt"
                for d in config["experiments"][_exp]["datasets"]
                for m in config["experiments"][_exp]["methods"]
                for s in config["experiments"][_exp]["seeds"]
            ],
