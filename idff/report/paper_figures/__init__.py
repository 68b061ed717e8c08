"""The paper's remaining figures as named targets (issue 9).

- ``fig_nfe_vs_iterations`` (Fig. 3A): the NFE needed for a fixed quality as training goes on
  (rule ``iter_eval``, ``idff iter-eval``, evaluates the kept EMA snapshots).
- ``fig_gamma`` (Fig. 3B): validation quality over the sampler's parameters (the tuning grid).
- ``fig_trajectories`` (Fig. 5): sample paths of OT-CFM and IDFF over the target density.
- ``fig_samples_toy``, ``fig_samples_md``, ``fig_samples_sst`` (Fig. 1 beyond images): one
  sample grid per data set from files other targets already make.
"""

from __future__ import annotations

from ...plan.figures import gamma_inputs, iteration_inputs, toy_sample_inputs, trajectory_inputs
from ...plan.md import expected_rollout_files
from ...plan.sst import expected_forecast_files
from ..target import Target
from .gamma import fig_gamma
from .iterations import fig_nfe_vs_iterations
from .samples import fig_samples_md, fig_samples_sst, fig_samples_toy
from .trajectories import fig_trajectories

TARGETS: dict[str, Target] = {
    "fig_nfe_vs_iterations": Target(
        "toy", fig_nfe_vs_iterations, iteration_inputs,
        "2D toys (paper Fig. 3A): the number of network forward passes (NFE) a sampler needs to "
        "reach a fixed quality threshold against the training step, IDFF against OT-CFM and "
        "I-CFM; EMA weights kept every train.keep_every steps, median and range over seeds; "
        "below, the quality itself at the smallest and largest budget."),
    "fig_gamma": Target(
        "toy", fig_gamma, gamma_inputs,
        "2D toys (paper Fig. 3B): validation quality over the sampler's momentum parameters "
        "(γ₁ × γ₂ heat map for IDFF order 2, σ_s line for order 1) at one NFE, the chosen "
        "values starred and the test-split value at them beside."),
    "fig_trajectories": Target(
        "toy", fig_trajectories, trajectory_inputs,
        "2D toys (paper Fig. 5): a dozen sample paths from noise to data over the target "
        "density, OT-CFM with many steps against IDFF with few (the paper: NFE 100 against 5; "
        "here the panels of figures.trajectories; NFE = network forward passes), paired "
        "starting points."),
    "fig_samples_toy": Target(
        "toy", fig_samples_toy, toy_sample_inputs,
        "2D toys (paper Fig. 1): generated samples per data set and variant at one NFE beside "
        "a test-split draw, KDE contours of the truth, MMD² per panel."),
    "fig_samples_md": Target(
        "md", fig_samples_md, expected_rollout_files,
        "MD (paper Fig. 1 / 4A-B): Ramachandran (φ, ψ) scatter of the test trajectories and of "
        "freely generated trajectories per variant, with the JS divergence."),
    "fig_samples_sst": Target(
        "sst", fig_samples_sst, expected_forecast_files,
        "SST (paper Fig. 1): single ensemble members of one test window at every lead beside "
        "the truth, per variant (standardised anomalies)."),
}
