# SST forecasting: the ensemble forecast of one test window that fig_sst draws.
# Data, training, tuning, sweeps and the floor (persistence, climatology) of the sst family run
# through the generic rules (train.smk, sweep.smk); only the figure's forecast needs its own rule.
# `python` is the environment that runs Snakemake: common.smk puts its bin first on PATH.
from idff.report.sst import expected_forecast_files, figure_settings


rule sst_forecast:
    message:
        "SST ensemble forecast of one test window: {wildcards.variant} ({wildcards.solver}, "
        "NFE {wildcards.nfe}) on {wildcards.exp}/{wildcards.dataset}, seed {wildcards.seed}"
    input:
        data=data_of,
        ckpt=ckpt_of,
        tuned=tuned_of,
    output:
        "results/samples/{exp}/forecasts/{dataset}/{variant}/{solver}/nfe{nfe}_seed{seed}.npz",
    log:
        "logs/sst_forecast/{exp}/{dataset}/{variant}/{solver}/nfe{nfe}_seed{seed}.log",
    benchmark:
        "benchmarks/rules/sst_forecast/{exp}/{dataset}/{variant}/{solver}/nfe{nfe}_seed{seed}.tsv"
    params:
        spec=lambda wc: spec_json(
            eval_spec(config, wc.exp, wc.dataset, wc.variant, wc.solver, int(wc.seed))
        ),
        tuned=lambda wc, input: f"--tuned {input.tuned}" if input.tuned else "",
        window=lambda wc: figure_settings(config, wc.exp)["window"],
    resources:
        gpu=1,
        gpu_share=gpu_share,
    conda:
        "../envs/idff.yaml"
    shell:
        "python -m idff.families.sst forecast --spec {params.spec:q} --ckpt {input.ckpt} "
        "{params.tuned} --nfe {wildcards.nfe} --window {params.window} --out {output} "
        "> {log} 2>&1"


for _exp in EXPERIMENTS:
    if config["experiments"][_exp]["family"] == "sst":

        rule:
            name:
                f"forecasts_{_exp}"
            localrule: True
            input:
                expected_forecast_files(config, _exp),
