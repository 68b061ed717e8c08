# One named rule per table and figure: `snakemake table_toy`, `snakemake fig_nfe`, ...
# Each writes three files (see idff/report/outputs.py); the main one goes into the HTML report
# (`snakemake --report report.html`) with its caption.


report: "../report/workflow.rst"


for _target, _path in config["paper_targets"].items():
    _main, _data, _extra = paper_outputs(_target, _path)

    rule:
        name:
            _target
        localrule: True
        input:
            target_inputs(_target, config),
        output:
            main=report(
                _main,
                caption="../report/target.rst",
                category="Tables" if _target.startswith("table_") else "Figures",
                labels={"target": _target},
            ),
            data=_data,
            extra=_extra,
        log:
            f"logs/report/{_target}.log",
        benchmark:
            f"benchmarks/rules/report/{_target}.tsv"
        params:
            cfg=json.dumps(report_config(_target), separators=(",", ":")),
            target=_target,
            caption=TARGETS[_target].caption if _target in TARGETS else "",
        conda:
            "../envs/idff.yaml"
        shell:
            "idff report {params.target} --config-json {params.cfg:q} --out {output.main} "
            "> {log} 2>&1"
