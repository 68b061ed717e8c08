# Evaluation: every job on one trained network (tune on the validation split, sweep on the test
# split, and the sampling steps that draw files for figures) is one rule of idff.plan.products'
# EVAL_RULES, all `idff <step>`; the metric floor needs no network. Every path comes from
# idff.layout; every option from the config through idff.config / idff.plan.
#
# iter_eval: fig_nfe_vs_iterations (Fig. 3A) evaluates the EMA weights the trainer kept every
# train.keep_every steps. Those snapshots are side files of the train job
# (idff.layout.snapshot_path, like its .resume file): a train rerun rewrites
# them before it writes the final checkpoint, which is this rule's input, and the job checks
# that every snapshot belongs to that checkpoint's run (steps, settings).
# fig_gamma, fig_trajectories and fig_samples_{toy,md,sst} read files of the tune, sweep and
# sampling rules.


for _name, _rule in EVAL_RULES.items():

    rule:
        name:
            _name
        message:
            _rule.message
        input:
            data=data_of if _rule.data else [],
            ckpt=ckpt_of,
            tuned=tuned_of if _rule.tuned else [],
            weights=weights_of if _rule.weights else [],
        output:
            layout.TEMPLATES[_rule.kind],
        log:
            layout.log(_name, _rule.kind),
        benchmark:
            layout.benchmark(_name, _rule.kind)
        params:
            spec=lambda wc, step=_rule.step: spec_json(job_spec(step, wc)),
            tuned=tuned_arg,
            options=lambda wc, step=_rule.step: step_options(
                config, step, wc.exp, wc.get("nfe")
            ),
            step=_rule.step,
        resources:
            **GPU_JOB,
        conda:
            "../envs/idff.yaml"
        shell:
            "idff {params.step} --spec {params.spec:q} --ckpt {input.ckpt} {params.tuned} "
            "{params.options} --out {output} > {log} 2>&1"


rule floor:
    message:
        "metric floor (target vs target) of {wildcards.dataset}, seed {wildcards.seed}"
    input:
        data=data_of,
        weights=weights_of,
    output:
        layout.TEMPLATES["floor"],
    log:
        layout.log("floor", "floor"),
    benchmark:
        layout.benchmark("floor", "floor")
    params:
        spec=lambda wc: spec_json(floor_spec(config, wc.exp, wc.dataset, int(wc.seed))),
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
            [layout.path(kind, exp=_exp) for kind in ("summary", "plots")],

    if config["experiments"][_exp]["family"] in GATHER_RULES:
        _gather, _files = GATHER_RULES[config["experiments"][_exp]["family"]]

        rule:
            name:
                f"{_gather}_{_exp}"
            localrule: True
            input:
                _files(config, _exp),
