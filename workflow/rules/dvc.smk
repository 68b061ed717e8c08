# What `dvc metrics show` and `dvc plots show` read (idff/report/dvc_files.py): per experiment a
# folder of summary metrics (one file per variant and NFE) and a folder of plot tables (quality
# against NFE per variant, training loss against step per method). Part of `sweep_<exp>`, so the
# DVC stage sweep@<exp> declares them as its metrics and plots.


rule dvc_files:
    message:
        "DVC metrics and plots of experiment {wildcards.exp}"
    input:
        metrics=lambda wc: expected_metric_files(config, wc.exp),
        ckpts=lambda wc: [j["path"] for j in training_jobs(config, [wc.exp])],
    output:
        summary=directory(layout.TEMPLATES["summary"]),
        plots=directory(layout.TEMPLATES["plots"]),
    log:
        layout.log("dvc_files", "summary"),
    benchmark:
        layout.benchmark("dvc_files", "summary")
    params:
        cfg=lambda wc: spec_json(
            {"experiments": {wc.exp: config["experiments"][wc.exp]}, "paper_targets": {}}
        ),
    localrule: True
    conda:
        "../envs/idff.yaml"
    shell:
        "idff dvc-files --config-json {params.cfg:q} --exp {wildcards.exp} "
        "--summary {output.summary} --plots {output.plots} > {log} 2>&1"
