# SST family: the ensemble forecast of one test window that fig_sst draws.
# (metrics, floors and tables come from the generic rules; this adds only the forecast file)
from idff.report.sst import figure_settings


rule sst_forecast:
    message:
        "SST ensemble forecast of one test window: {wildcards.variant} ({wildcards.solver}), "
        "NFE {wildcards.nfe}, {wildcards.dataset}"
    input:
        data=data_of,
        ckpt=ckpt_of,
        tuned=tuned_of,
    output:
        "results/sst_forecasts/{exp}/{dataset}/{variant}/{solver}/nfe{nfe}_seed{seed}.npz",
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
    conda:
        "../envs/idff.yaml"
    shell:
        "{PY} -m idff.families.sst forecast --spec {params.spec:q} --ckpt {input.ckpt} "
        "{params.tuned} --nfe {wildcards.nfe} --window {params.window} --out {output} "
        "> {log} 2>&1"
