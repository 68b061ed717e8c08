rule data:
    message:
        "prepare the {wildcards.exp} data set {wildcards.dataset}"
    output:
        layout.TEMPLATES["data"],
    log:
        layout.log("data", "data"),
    benchmark:
        layout.benchmark("data", "data")
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
        ckpt=layout.TEMPLATES["checkpoint"],
        info=layout.side_template("info"),
        curve=layout.side_template("curve"),
    log:
        layout.log("train", "checkpoint"),
    benchmark:
        layout.benchmark("train", "checkpoint")
    params:
        spec=lambda wc: spec_json(
            train_spec(config, wc.exp, wc.dataset, wc.method, int(wc.seed))
        ),
    threads: 1
    resources:
        **GPU_JOB,
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
            [j["path"] for j in training_jobs(config, [_exp])],
