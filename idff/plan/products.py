"""Planning of the evaluation jobs of a trained network: their rules (``EVAL_RULES``), the
options of each ``idff <step>`` and the files an experiment gathers."""

from __future__ import annotations

from dataclasses import dataclass

from .core import exp_config
from .images import sample_settings
from .md import expected_rollout_files
from .sst import expected_forecast_files, figure_settings


@dataclass(frozen=True)
class EvalRule:
    """A Snakemake rule that runs ``idff <step>`` on one trained network."""

    step: str          # the idff subcommand
    kind: str          # the kind of file it writes (idff.layout.TEMPLATES)
    message: str       # what the rule says it does (Snakemake wildcards in braces)
    tuned: bool = True     # reads the sampler parameters tuned on validation
    data: bool = True      # reads the family's prepared data file
    weights: bool = False  # reads the Inception weights (FID/KID/IS jobs)


_ONE_RUN = "{wildcards.variant} ({wildcards.solver}) on {wildcards.exp}/{wildcards.dataset}"
_AT_NFE = "{wildcards.variant} ({wildcards.solver}, NFE {wildcards.nfe}) on " \
          "{wildcards.exp}/{wildcards.dataset}, seed {wildcards.seed}"
#: rule name -> what it runs; the sampling rules (one NFE budget each) draw files for figures
EVAL_RULES: dict[str, EvalRule] = {
    "tune": EvalRule("tune", "tuned", f"tune {_ONE_RUN} on the validation split",
                     tuned=False, weights=True),
    "sweep": EvalRule("sweep", "metrics", f"NFE sweep of {_ONE_RUN} on the test split",
                      weights=True),
    "sample": EvalRule("sample", "sample", f"samples and trajectories of {_AT_NFE}"),
    "md_rollout": EvalRule("rollout", "rollout", f"free-generation roll-out of {_AT_NFE}"),
    "sst_forecast": EvalRule("forecast", "forecast", f"SST ensemble forecast of {_AT_NFE}"),
    "image_samples": EvalRule("samples", "samples", f"image samples of {_AT_NFE}", data=False),
    "iter_eval": EvalRule("iter-eval", "iter_eval",
                          f"quality vs training step of {_ONE_RUN}, seed {{wildcards.seed}}"),
}
#: steps whose files an experiment of this family gathers in a rule ``<name>_<exp>``
GATHER_RULES = {"md": ("rollouts", expected_rollout_files),
                "sst": ("forecasts", expected_forecast_files)}


def step_options(cfg: dict, step: str, exp: str, nfe: str | int | None = None) -> str:
    """The command-line options of ``idff <step>`` for a job of experiment ``exp`` (and an NFE
    budget, for the steps that sample at one)."""
    opts = [] if nfe is None else [f"--nfe {int(nfe)}"]
    if step == "sample":
        opts.append(f"--n {int(exp_config(cfg, exp)['sweep']['n_samples'])}")
    elif step == "samples":
        opts.append(f"--n {int(sample_settings(cfg, exp)['n'])}")
    elif step == "forecast":
        opts.append(f"--window {int(figure_settings(cfg, exp)['window'])}")
    return " ".join(opts)
