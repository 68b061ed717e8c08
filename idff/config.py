"""Read, override, validate and slice the one config file.

The same checks run in Snakemake (at start-up, before any job) and in the CLI: the JSON schema
in ``idff/schema/config.schema.yaml`` for types and names, then ``check_semantics`` for what a
schema cannot say (a variant's method is trained, each NFE budget is reachable by its solver).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .data.toy import TOY_DATASETS
from .flows.fields import SAMPLER_PARAMS, STOCHASTIC
from .flows.solvers import budget_is_valid

SCHEMA_PATH = Path(__file__).parent / "schema" / "config.schema.yaml"
FAMILY_DATASETS: dict[str, tuple[str, ...]] = {
    "toy": TOY_DATASETS,
    "md": ("openmm_vacuum", "openmm_obc", "mdshare"),
    "sst": ("ostia", "oisst"),
    "images": ("cifar10", "celeba", "offline_cifar", "offline_faces"),
}


class ConfigError(ValueError):
    """A config value is wrong; the message names the key and what is allowed."""


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    for item in overrides or []:
        apply_override(cfg, item)
    validate_config(cfg)
    return cfg


def apply_override(cfg: dict, item: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) in place."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.sub=value")
    key, raw = item.split("=", 1)
    node = cfg
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {p} is not a section")
    node[parts[-1]] = yaml.safe_load(raw)


def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def validate_config(cfg: dict) -> None:
    """Schema check then semantic check; raises ConfigError naming the offending key."""
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ConfigError(f"config key {where}: {err.message}")
    check_semantics(cfg)


def check_semantics(cfg: dict) -> None:
    for name, exp in cfg["experiments"].items():
        key = f"experiments.{name}"
        valid = FAMILY_DATASETS.get(exp["family"])
        if valid is not None:
            for i, ds in enumerate(exp["datasets"]):
                if ds not in valid:
                    raise ConfigError(f"config key {key}.datasets.{i}: unknown {exp['family']} data "
                                      f"set {ds!r}; valid: {', '.join(valid)}")
        for vname, var in exp["variants"].items():
            vkey = f"{key}.variants.{vname}"
            if var["method"] not in exp["methods"]:
                raise ConfigError(f"config key {vkey}.method: method {var['method']!r} is not "
                                  f"trained (not under {key}.methods)")
            native = var["sampler"] == "native"
            if native == (var["method"] == "idff"):  # node, icfm, otcfm, sbcfm: native only
                raise ConfigError(f"config key {vkey}.sampler: {var['sampler']!r} does not fit method "
                                  f"{var['method']!r} (IDFF samplers need method idff; baselines "
                                  f"use sampler native)")
            allowed = SAMPLER_PARAMS[var["sampler"]]
            for pkey in list(var.get("params", {})) + list(var.get("tune", {})):
                if pkey not in allowed:
                    raise ConfigError(f"config key {vkey}: sampler {var['sampler']!r} has no "
                                      f"parameter {pkey!r}; valid: {list(allowed) or 'none'}")
            for solver in variant_solvers(exp, vname):
                stochastic = var["sampler"] in STOCHASTIC or var.get("params", {}).get("noise")
                if stochastic and solver != "euler_maruyama":
                    raise ConfigError(f"config key {vkey}.solvers: stochastic sampler "
                                      f"{var['sampler']!r} needs solver euler_maruyama, not {solver!r}")
                if not any(budget_is_valid(solver, n) for n in exp["sweep"]["nfe"]):
                    raise ConfigError(f"config key {key}.sweep.nfe: no budget in "
                                      f"{exp['sweep']['nfe']} is reachable by solver {solver!r}")
        if exp["family"] == "toy" and exp["model"]["arch"] != "mlp":
            raise ConfigError(f"config key {key}.model.arch: toy data needs arch mlp")
    for target, path in cfg["paper_targets"].items():
        if not path.startswith("results/"):
            raise ConfigError(f"config key paper_targets.{target}: outputs live under results/")


def variant_solvers(exp: dict, variant: str) -> list[str]:
    var = exp["variants"][variant]
    return list(var.get("solvers", exp["sweep"]["solvers"]))


def sweep_nfes(exp: dict, solver: str) -> list[int]:
    """The NFE budgets of the sweep that ``solver`` can meet exactly or within one pass."""
    return [n for n in exp["sweep"]["nfe"] if budget_is_valid(solver, n)]


def experiment(cfg: dict, name: str) -> dict:
    if name not in cfg["experiments"]:
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(cfg['experiments'])}")
    return cfg["experiments"][name]


def train_spec(cfg: dict, exp_name: str, dataset: str, method: str, seed: int) -> dict:
    """Everything a training job depends on (and nothing else, so unrelated edits don't rerun it)."""
    exp = experiment(cfg, exp_name)
    _check_member(exp["datasets"], dataset, f"experiments.{exp_name}.datasets")
    _check_member(list(exp["methods"]), method, f"experiments.{exp_name}.methods")
    return {"experiment": exp_name, "family": exp["family"], "dataset": dataset, "seed": int(seed),
            "device": cfg.get("device", "auto"), "data": copy.deepcopy(exp["data"]),
            "model": copy.deepcopy(exp["model"]), "train": copy.deepcopy(exp["train"]),
            "method": {"name": method, **exp["methods"][method]}}


def data_spec(cfg: dict, exp_name: str, dataset: str) -> dict:
    """What a data-preparation job depends on (seed-independent)."""
    exp = experiment(cfg, exp_name)
    _check_member(exp["datasets"], dataset, f"experiments.{exp_name}.datasets")
    return {"experiment": exp_name, "family": exp["family"], "dataset": dataset,
            "data": copy.deepcopy(exp["data"])}


def eval_spec(cfg: dict, exp_name: str, dataset: str, variant: str, solver: str, seed: int) -> dict:
    """Everything a tuning or sweep job depends on besides the checkpoint."""
    exp = experiment(cfg, exp_name)
    _check_member(list(exp["variants"]), variant, f"experiments.{exp_name}.variants")
    var = exp["variants"][variant]
    _check_member(variant_solvers(exp, variant), solver,
                  f"experiments.{exp_name}.variants.{variant}.solvers")
    spec = train_spec(cfg, exp_name, dataset, var["method"], seed)
    spec.pop("train")
    spec.update({"variant": {"name": variant, **copy.deepcopy(var)}, "solver": solver,
                 "nfe": sweep_nfes(exp, solver), "sweep": copy.deepcopy(exp["sweep"]),
                 "tune": copy.deepcopy(exp.get("tune", {}))})
    return spec


def _check_member(options: list[str], value: str, key: str) -> None:
    if value not in options:
        raise ConfigError(f"{value!r} is not in config key {key}; valid: {', '.join(map(str, options))}")
