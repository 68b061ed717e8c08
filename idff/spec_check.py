"""Validate a ``--spec`` job slice with the config schema, as ``--config`` is validated.

A spec is a slice of one experiment (what the Snakemake rules pass); each of its sections is
checked against the schema's definition of that section, so a hand-written or stale spec fails
with the key named, before any work, instead of a TypeError deep in a job.
"""

from __future__ import annotations

from typing import Any

from .config import ConfigValidator, check_finite, config_schema
from .errors import ConfigError

#: spec section -> JSON pointer into the schema (a method or variant is checked as a one-entry
#: ``methods`` / ``variants`` mapping, so the schema's own definition of those applies)
SECTIONS = {"model": "model", "train": "train", "sweep": "sweep", "tune": "tune",
            "data": "data"}
SCALARS: dict[str, type | tuple[type, ...]] = {"experiment": str, "family": str, "dataset": str,
                                               "seed": int, "solver": str, "device": str}


def validate_spec(spec: Any, keys: tuple[str, ...]) -> dict:
    """Check ``spec`` (parsed JSON) has ``keys`` and that every known section fits the schema."""
    if not isinstance(spec, dict):
        raise ConfigError(f"--spec must be a JSON object, got {type(spec).__name__}; make specs "
                          f"with idff.config or use --config")
    missing = [k for k in keys if k not in spec]
    if missing:
        raise ConfigError(f"--spec lacks the keys {missing}; make specs with idff.config or use "
                          f"--config")
    check_finite(spec, "", "--spec key")
    for key, kind in SCALARS.items():
        if key in spec and (not isinstance(spec[key], kind) or isinstance(spec[key], bool)):
            raise ConfigError(f"--spec key {key}: {spec[key]!r} is not a {kind.__name__}")
    defs = config_schema()["$defs"]
    checks: list[tuple[str, Any, str]] = [
        (k, spec[k], f"#/$defs/experiment/properties/{ptr}")
        for k, ptr in SECTIONS.items() if k in spec]
    if "family" in spec:
        checks.append(("family", spec["family"], "#/$defs/experiment/properties/family"))
    for key, section in (("method", "methods"), ("variant", "variants")):
        if key in spec:
            checks.append((section, _named(spec, key), f"#/$defs/experiment/properties/{section}"))
    for key, value, ref in checks:
        errors = sorted(ConfigValidator({"$defs": defs, "$ref": ref}).iter_errors(value),
                        key=lambda e: list(e.absolute_path))
        if errors:
            err = errors[0]
            where = ".".join([key, *map(str, err.absolute_path)])
            raise ConfigError(f"--spec key {where}: {err.message}")
    return spec


def _named(spec: dict, key: str) -> dict:
    """``spec[key]`` ({"name": n, ...settings}) as the config's {n: settings}, for the schema."""
    if not isinstance(spec[key], dict):
        raise ConfigError(f"--spec key {key}: {spec[key]!r} is not a mapping")
    entry = dict(spec[key])
    name = entry.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"--spec key {key}.name: missing or not a string")
    return {name: entry}
