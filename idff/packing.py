"""Several jobs per GPU: the share of one GPU that a job claims from Snakemake.

A GPU job of experiment ``exp`` asks for ``gpu_share = GPU_UNITS // jobs_per_gpu`` (the
experiment's ``jobs_per_gpu``, default 1); a workflow profile offers ``gpu_share=100`` per GPU.
So ``jobs_per_gpu: 8`` packs eight such jobs onto one GPU, and ``1`` gives a job the GPU alone.
Which GPU a job lands on is the device setting's business, not this module's.
"""

from __future__ import annotations

GPU_UNITS = 100  # what a profile offers per GPU


def gpu_share(exp: dict) -> int:
    """The ``gpu_share`` resource of a GPU job of the experiment section ``exp``."""
    k = exp.get("jobs_per_gpu", 1)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= GPU_UNITS:
        raise ValueError(f"jobs_per_gpu must be an integer in [1, {GPU_UNITS}], got {k!r}")
    return GPU_UNITS // k
