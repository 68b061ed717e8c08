"""The config switches of the fast paths (issue 8), all off by default.

- ``model.compile`` (bool): ``torch.compile`` the network for training and for first-order
  sampling (``nn.Module.compile``, so state-dict keys and checkpoints are unchanged). Never for
  idff2 / idff3: their nested autograd (``create_graph``) does not differentiate through a
  compiled graph (the second derivative would silently come out as zero). Measured on the CPU
  it is slower for the toy MLP (docs/performance.md); it is meant for the UNet on a GPU.
- ``sweep.fused`` (bool): fixed-step first-order samplers run the fused loop of
  ``idff.flows.fused`` (fewer tensor operations per step; equal to the plain loop to float
  rounding).

``compile`` is kept in the checkpoint's model description, so a checkpoint trained with one
setting is refused (with a clear message) by a job with the other, as Snakemake reruns it anyway.
"""

from __future__ import annotations

from torch import nn

from .flows.generator import FusedGenerator, Generator

RUNTIME_MODEL_KEYS = ("compile",)  # model settings that change speed, not the network
NO_COMPILE_SAMPLERS = ("idff2", "idff3")  # nested autograd through the network


def _flag(section: dict, key: str, where: str) -> bool:
    value = section.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"config key {where}.{key} must be true or false, got {value!r}")
    return value


def architecture(model_cfg: dict) -> dict:
    """The network's constructor arguments: the model section without ``arch`` and runtime keys."""
    return {k: v for k, v in model_cfg.items() if k != "arch" and k not in RUNTIME_MODEL_KEYS}


def wants_compile(model_cfg: dict) -> bool:
    return _flag(model_cfg, "compile", "model")


def wants_fused(sweep_cfg: dict) -> bool:
    return _flag(sweep_cfg, "fused", "sweep")


def compile_model(model: nn.Module, model_cfg: dict, sampler: str | None = None,
                  backend: str = "inductor") -> bool:
    """Compile ``model`` in place when ``model.compile`` is on (and the sampler allows it).

    Returns whether it was compiled. ``sampler`` None means training.
    """
    if not wants_compile(model_cfg) or sampler in NO_COMPILE_SAMPLERS:
        return False
    model.compile(backend=backend)
    return True


def generator_class(sweep_cfg: dict) -> type[Generator]:
    """``FusedGenerator`` when ``sweep.fused`` is on, else the plain ``Generator``."""
    return FusedGenerator if wants_fused(sweep_cfg) else Generator
