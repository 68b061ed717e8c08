"""Read, override, validate and slice the one config file.

The same checks run in Snakemake (at start-up, before any job) and in the CLI: the JSON schema
in ``idff/schema/config.schema.yaml`` for types and names, then ``check_semantics`` for what a
schema cannot say (a variant's method is trained, each NFE budget is reachable by its solver).
"""

from __future__ import annotations

import copy
import functools
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import ConfigError
from .families import get_family
from .flows.fields import SAMPLER_PARAMS, STOCHASTIC
from .flows.methods import METHODS, method_class
from .flows.solvers import budget_is_valid

SCHEMA_PATH = Path(__file__).parent / "schema" / "config.schema.yaml"
# The schema's patterns again, matched in full: JSON Schema's `pattern` is a search and Python's
# `$` also matches before a trailing newline, so "toy\n" passes "^[A-Za-z0-9][A-Za-z0-9_-]*$".
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
TARGET_NAME = re.compile(r"(table|fig)_[a-z0-9_]+")
TARGET_PATH = re.compile(r"results/[A-Za-z0-9_./-]+")


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
    value = yaml.safe_load(raw)
    if isinstance(value, str) and _looks_numeric(value):
        value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
    node[parts[-1]] = value


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower().lstrip("+-") not in ("nan", "inf", "infinity")


@functools.lru_cache(maxsize=1)
def config_schema() -> dict:
    """The parsed schema (cached: parsing it is 90% of a validation; never mutate the result)."""
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _strict_integer(checker: Any, instance: Any) -> bool:
    """JSON Schema counts 2.0 as an integer; the code needs a real int (sizes, indices, seeds)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


ConfigValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer))


def validate_config(cfg: dict) -> None:
    """Schema check then semantic check; raises ConfigError naming the offending key."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"config key (top level): the config must be a mapping, got "
                          f"{type(cfg).__name__}")
    check_finite(cfg, "")
    errors = sorted(ConfigValidator(config_schema()).iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        hint = ""
        wants_int = err.validator == "type" and "integer" in (
            [err.validator_value] if isinstance(err.validator_value, str) else err.validator_value)
        if wants_int and isinstance(err.instance, (str, float)) and not isinstance(err.instance, bool):
            hint = " (an integer key: write a whole number without a dot or exponent, e.g. 1000)"
        elif err.validator == "type" and isinstance(err.instance, str) and _looks_numeric(err.instance):
            hint = (f" (YAML reads {err.instance} as text: write it with a dot and a signed "
                    f"exponent, e.g. 1.0e-4)")
        raise ConfigError(f"config key {where}: {err.message}{hint}")
    check_semantics(cfg)


def check_finite(node: Any, where: str, what: str = "config key") -> None:
    """NaN and inf pass every numeric bound of a JSON schema (all comparisons are False)."""
    if isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"{what} {where or '(top level)'}: {node} is not a finite number")
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        check_finite(v, f"{where}.{k}" if where else str(k), what)


def _check_names(cfg: dict) -> None:
    """Names that reach paths and shell commands: no '..', '/', whitespace or shell characters."""
    def bad(key: str, value: str, pattern: re.Pattern) -> ConfigError:
        return ConfigError(f"config key {key}: {value!r} must match {pattern.pattern} in full "
                           f"(it becomes part of file paths and job commands)")

    for name, exp in cfg["experiments"].items():
        if not SAFE_NAME.fullmatch(name):
            raise bad("experiments", name, SAFE_NAME)
        for i, ds in enumerate(exp["datasets"]):
            if not SAFE_NAME.fullmatch(ds):
                raise bad(f"experiments.{name}.datasets.{i}", ds, SAFE_NAME)
        for vname in exp["variants"]:
            if not SAFE_NAME.fullmatch(vname):
                raise bad(f"experiments.{name}.variants", vname, SAFE_NAME)
    for target, path in cfg["paper_targets"].items():
        if not TARGET_NAME.fullmatch(target):
            raise bad("paper_targets", target, TARGET_NAME)
        if not TARGET_PATH.fullmatch(path) or ".." in path:
            raise bad(f"paper_targets.{target}", path, TARGET_PATH)


def check_methods(exp: dict, key: str) -> None:
    """Each method entry names its class (``class:``) or is named after one (older configs)."""
    for mname, entry in exp["methods"].items():
        if not SAFE_NAME.fullmatch(mname):
            raise ConfigError(f"config key {key}.methods: {mname!r} must match {SAFE_NAME.pattern} "
                              f"in full (it becomes part of file paths and job commands)")
        cls = method_class(mname, entry)
        if cls not in METHODS:
            raise ConfigError(
                f"config key {key}.methods.{mname}: {mname!r} is not a method class, so the entry "
                f"needs `class: <{'|'.join(METHODS)}>` (e.g. {mname}: {{class: idff, coupling: "
                f"exact_ot}})")
        allowed = METHOD_KEYS[cls]
        bad = sorted(set(entry or {}) - set(allowed) - {"class"})
        if bad:
            raise ConfigError(f"config key {key}.methods.{mname}: method class {cls!r} has no "
                              f"setting {bad[0]!r}; valid: {', '.join(allowed)}")


#: The settings each method class takes (besides ``class``).
METHOD_KEYS: dict[str, tuple[str, ...]] = {
    "idff": ("sigma", "w_flow", "coupling", "score_target", "flow_weight"),
    "icfm": ("sigma",), "otcfm": ("sigma",), "sbcfm": ("sigma",),
    "node": ("solver", "steps", "rtol", "atol"),
}


def check_semantics(cfg: dict) -> None:
    _check_names(cfg)
    for name, exp in cfg["experiments"].items():
        key = f"experiments.{name}"
        check_methods(exp, key)
        family = get_family(exp["family"])
        valid = family.datasets
        if valid:
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
            cls = method_class(var["method"], exp["methods"][var["method"]])
            if native == (cls == "idff"):  # node, icfm, otcfm, sbcfm: native only
                raise ConfigError(f"config key {vkey}.sampler: {var['sampler']!r} does not fit method "
                                  f"{var['method']!r} of class {cls!r} (IDFF samplers need a method "
                                  f"of class idff; baselines use sampler native)")
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
                if not sweep_nfes(exp, solver):
                    raise ConfigError(f"config key {key}.sweep.nfe: no budget in "
                                      f"{exp['sweep']['nfe']} is reachable by solver {solver!r}")
        for solver, nfes in exp["sweep"].get("nfe_by_solver", {}).items():
            bad = [n for n in nfes if not budget_is_valid(solver, n)]
            if bad:
                raise ConfigError(f"config key {key}.sweep.nfe_by_solver.{solver}: budget "
                                  f"{bad[0]} is not reachable by solver {solver!r} "
                                  f"(see `idff.flows.solvers.steps_for_budget`)")
        family.check_experiment(name, exp)
    for target, path in cfg["paper_targets"].items():
        if not path.startswith("results/"):
            raise ConfigError(f"config key paper_targets.{target}: outputs live under results/")


def variant_solvers(exp: dict, variant: str) -> list[str]:
    var = exp["variants"][variant]
    return list(var.get("solvers", exp["sweep"]["solvers"]))


def sweep_nfes(exp: dict, solver: str) -> list[int]:
    """The NFE budgets of the sweep for ``solver``: ``sweep.nfe_by_solver.<solver>`` when given,
    else those of ``sweep.nfe`` that ``solver`` can meet exactly or within one pass."""
    nfes = exp["sweep"].get("nfe_by_solver", {}).get(solver, exp["sweep"]["nfe"])
    return [n for n in nfes if budget_is_valid(solver, n)]


def experiment(cfg: dict, name: str) -> dict:
    if name not in cfg["experiments"]:
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(cfg['experiments'])}")
    return cfg["experiments"][name]


def train_spec(cfg: dict, exp_name: str, dataset: str, method: str, seed: int) -> dict:
    """Everything a training job depends on (and nothing else, so unrelated edits don't rerun it)."""
    exp = experiment(cfg, exp_name)
    _check_member(exp["datasets"], dataset, f"experiments.{exp_name}.datasets")
    _check_member(list(exp["methods"]), method, f"experiments.{exp_name}.methods")
    data = data_slice(exp, dataset, drop=get_family(exp["family"]).eval_only_data_keys)
    return {"experiment": exp_name, "family": exp["family"], "dataset": dataset, "seed": int(seed),
            "device": cfg.get("device", "auto"), "data": data,
            "model": copy.deepcopy(exp["model"]), "train": copy.deepcopy(exp["train"]),
            "method": {"name": method, **exp["methods"][method]}}


def data_spec(cfg: dict, exp_name: str, dataset: str) -> dict:
    """What a data-preparation job depends on (seed-independent)."""
    exp = experiment(cfg, exp_name)
    _check_member(exp["datasets"], dataset, f"experiments.{exp_name}.datasets")
    keep = get_family(exp["family"]).prep_data_keys
    return {"experiment": exp_name, "family": exp["family"], "dataset": dataset,
            "data": data_slice(exp, dataset, keep=keep)}


def data_slice(exp: dict, dataset: str, keep: tuple[str, ...] | None = None,
               drop: tuple[str, ...] = ()) -> dict:
    """The part of ``exp["data"]`` a job on ``dataset`` depends on: the keys in ``keep`` (all
    when None) minus those in ``drop``. A per-data-set block (``data.<dataset>``, used by the md
    family) is sliced the same way; the blocks of other data sets are left out."""
    datasets = set(get_family(exp["family"]).datasets) | set(exp["datasets"])

    def wanted(key: str) -> bool:
        return key not in drop and (keep is None or key in keep)

    out: dict = {}
    for key, value in exp["data"].items():
        if key in datasets and isinstance(value, dict):
            block = {k: copy.deepcopy(v) for k, v in value.items() if wanted(k)}
            if key == dataset and block:
                out[key] = block
        elif wanted(key):
            out[key] = copy.deepcopy(value)
    return out


def eval_spec(cfg: dict, exp_name: str, dataset: str, variant: str, solver: str, seed: int) -> dict:
    """Everything a tuning or sweep job depends on besides the checkpoint."""
    exp = experiment(cfg, exp_name)
    _check_member(list(exp["variants"]), variant, f"experiments.{exp_name}.variants")
    var = exp["variants"][variant]
    _check_member(variant_solvers(exp, variant), solver,
                  f"experiments.{exp_name}.variants.{variant}.solvers")
    spec = train_spec(cfg, exp_name, dataset, var["method"], seed)
    spec.pop("train")
    spec["data"] = data_slice(exp, dataset)  # evaluation sees every data key
    spec.update({"variant": {"name": variant, **copy.deepcopy(var)}, "solver": solver,
                 "nfe": sweep_nfes(exp, solver), "sweep": copy.deepcopy(exp["sweep"]),
                 "tune": copy.deepcopy(exp.get("tune", {}))})
    return spec


def floor_spec(cfg: dict, exp_name: str, dataset: str, seed: int) -> dict:
    """What a metric-floor job depends on: the evaluation spec of the experiment's first variant
    with its first solver (the floor compares target draws; no network is involved)."""
    exp = experiment(cfg, exp_name)
    variant = next(iter(exp["variants"]))
    return eval_spec(cfg, exp_name, dataset, variant, variant_solvers(exp, variant)[0], seed)


def _check_member(options: list[str], value: str, key: str) -> None:
    if value not in options:
        raise ConfigError(f"{value!r} is not in config key {key}; valid: {', '.join(map(str, options))}")
