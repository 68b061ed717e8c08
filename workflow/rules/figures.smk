# Paper figures that need jobs of their own (issue 9). fig_nfe_vs_iterations (Fig. 3A) evaluates
# the EMA weights the trainer kept every train.keep_every steps. Those snapshots are side files
# of the train job (results/checkpoints/.../seed{seed}.step{N}.pt, like its .resume file): a
# train rerun rewrites them before it writes the final checkpoint, which is this rule's input,
# and the job checks that every snapshot belongs to that checkpoint's run (steps, settings).
# fig_gamma, fig_trajectories and fig_samples_{toy,md,sst} read files of the tune, sweep,
# sample, md_rollout and sst_forecast rules. Needs common.smk (spec_json, ckpt_of, tuned_of).
from idff.report.paper_figures import iteration_spec


rule iter_eval:
    message:
        "quality vs training step of {wildcards.variant} ({wildcards.solver}) on "
        "{wildcards.exp}/{wildcards.dataset}, seed {wildcards.seed}"
    input:
        data=data_of,
        ckpt=ckpt_of,
        tuned=tuned_of,
    output:
        "results/samples/{exp}/iterations/{dataset}/{variant}/{solver}/seed{seed}.json",
    log:
        "logs/iter_eval/{exp}/{dataset}/{variant}/{solver}/seed{seed}.log",
    benchmark:
        "benchmarks/rules/iter_eval/{exp}/{dataset}/{variant}/{solver}/seed{seed}.tsv"
    params:
        spec=lambda wc: spec_json(
            iteration_spec(config, wc.exp, wc.dataset, wc.variant, wc.solver, int(wc.seed))
        ),
        tuned=lambda wc, input: f"--tuned {input.tuned}" if input.tuned else "",
    resources:
        gpu=1,
        gpu_share=gpu_share,
    conda:
        "../envs/idff.yaml"
    shell:
        "python -m idff.report.paper_figures iter-eval --spec {params.spec:q} --ckpt {input.ckpt} "
        "{params.tuned} --out {output} > {log} 2>&1"
