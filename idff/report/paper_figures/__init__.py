"""The paper's remaining figures as named targets (issue 9).

- ``fig_nfe_vs_iterations`` (Fig. 3A): the NFE needed for a fixed quality as training goes on
  (rule ``iter_eval`` in workflow/rules/figures.smk evaluates the kept EMA snapshots).
- ``fig_gamma`` (Fig. 3B): validation quality over the sampler's parameters (the tuning grid).
- ``fig_trajectories`` (Fig. 5): sample paths of OT-CFM and IDFF over the target density.
- ``fig_samples_toy``, ``fig_samples_md``, ``fig_samples_sst`` (Fig. 1 beyond images): one
  sample grid per data set from files other targets already make.

Importing this package is cheap (the Snakefile does): figure code and torch are imported when
a figure is built or a job runs. ``python -m idff.report.paper_figures iter-eval`` is the
entry of the ``iter_eval`` rule (see ``__main__.py``).
"""

from __future__ import annotations

from pathlib import Path

from .. import Target
from .settings import (
    gamma_inputs,
    gamma_settings,
    iter_path,
    iteration_inputs,
    iteration_jobs,
    iteration_spec,
    iterations_settings,
    toy_sample_inputs,
    trajectory_inputs,
    trajectory_settings,
)


def _nfe_vs_iterations(target: str, cfg: dict, exp: str, results: Path, out: Path) -> list[Path]:
    from .iterations import fig_nfe_vs_iterations

    return fig_nfe_vs_iterations(target, cfg, exp, results, out)


def _gamma(target: str, cfg: dict, exp: str, results: Path, out: Path) -> list[Path]:
    from .gamma import fig_gamma

    return fig_gamma(target, cfg, exp, results, out)


def _trajectories(target: str, cfg: dict, exp: str, results: Path, out: Path) -> list[Path]:
    from .trajectories import fig_trajectories

    return fig_trajectories(target, cfg, exp, results, out)


def _samples_toy(target: str, cfg: dict, exp: str, results: Path, out: Path) -> list[Path]:
    from .samples import fig_samples_toy

    return fig_samples_toy(target, cfg, exp, results, out)


def _samples_md(target: str, cfg: dict, exp: str, results: Path, out: Path) -> list[Path]:
    from .samples import fig_samples_md

    return fig_samples_md(target, cfg, exp, results, out)


def _samples_sst(target: str, cfg: dict, exp: str, results: Path, out: Path) -> list[Path]:
    from .samples import fig_samples_sst

    return fig_samples_sst(target, cfg, exp, results, out)


def _rollout_inputs(cfg: dict, exp: str) -> list[str]:
    from ..md import expected_rollout_files

    return expected_rollout_files(cfg, exp)


def _forecast_inputs(cfg: dict, exp: str) -> list[str]:
    from ..sst import expected_forecast_files

    return expected_forecast_files(cfg, exp)


TARGETS: dict[str, Target] = {
    "fig_nfe_vs_iterations": Target(
        "toy", _nfe_vs_iterations, iteration_inputs,
        "2D toys (paper Fig. 3A): the number of network forward passes (NFE) a sampler needs to "
        "reach a fixed quality threshold against the training step, IDFF against OT-CFM and "
        "I-CFM; EMA weights kept every train.keep_every steps, median and range over seeds; "
        "below, the quality itself at the smallest and largest budget."),
    "fig_gamma": Target(
        "toy", _gamma, gamma_inputs,
        "2D toys (paper Fig. 3B): validation quality over the sampler's momentum parameters "
        "(γ₁ × γ₂ heat map for IDFF order 2, σ_s line for order 1) at one NFE, the chosen "
        "values starred and the test-split value at them beside."),
    "fig_trajectories": Target(
        "toy", _trajectories, trajectory_inputs,
        "2D toys (paper Fig. 5): a dozen sample paths from noise to data over the target "
        "density, OT-CFM with many steps against IDFF with few (the paper: NFE 100 against 5; "
        "here the panels of figures.trajectories; NFE = network forward passes), paired "
        "starting points."),
    "fig_samples_toy": Target(
        "toy", _samples_toy, toy_sample_inputs,
        "2D toys (paper Fig. 1): generated samples per data set and variant at one NFE beside "
        "a test-split draw, KDE contours of the truth, MMD² per panel."),
    "fig_samples_md": Target(
        "md", _samples_md, _rollout_inputs,
        "MD (paper Fig. 1 / 4A-B): Ramachandran (φ, ψ) scatter of the test trajectories and of "
        "freely generated trajectories per variant, with the JS divergence."),
    "fig_samples_sst": Target(
        "sst", _samples_sst, _forecast_inputs,
        "SST (paper Fig. 1): single ensemble members of one test window at every lead beside "
        "the truth, per variant (standardised anomalies)."),
}

__all__ = ["TARGETS", "gamma_inputs", "gamma_settings", "iter_path", "iteration_inputs",
           "iteration_jobs", "iteration_spec", "iterations_settings", "toy_sample_inputs",
           "trajectory_inputs", "trajectory_settings"]
