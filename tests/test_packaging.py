"""Packaging facts a fresh machine relies on: pins, entry points, CI script, README commands."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PINS = {"torch": "2.14.1", "torchvision": "0.29.1", "torch-fidelity": "0.4.0"}


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_pyproject_pins_the_torch_trio_and_python():
    proj = _pyproject()["project"]
    deps = {re.split(r"[=<>!~ ]", d, maxsplit=1)[0]: d for d in proj["dependencies"]}
    for name, version in PINS.items():
        assert deps[name] == f"{name}=={version}"
    assert proj["requires-python"].startswith(">=3.11")
    assert proj["scripts"]["idff"] == "idff.cli:main"
    for required in ("snakemake", "dvc", "pandas", "mdtraj", "xarray", "pot", "torchdiffeq"):
        assert any(d.lower().startswith(required) for d in deps), required


def test_environment_yml_has_the_same_pins():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_block = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    for name, version in PINS.items():
        assert f"{name}=={version}" in pip_block
    assert any(p.startswith("-e .") for p in pip_block)


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands[1:3] == ["make smoke", "make test"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci.splitlines()[-1]


# Requirements that no module imports, each with the reason it is still a requirement.
NOT_IMPORTED = {
    "packaging": "pin for Snakemake's resolver",
    "snakemake-interface-common": "pin for Snakemake's resolver",
    "snakemake-executor-plugin-slurm": "loaded by Snakemake for the slurm profile",
    "dvc": "command-line tool",
    "netcdf4": "xarray's engine for the OISST files",
}
IMPORT_NAMES = {"torch-fidelity": "torch_fidelity", "pot": "ot", "pyyaml": "yaml",
                "scikit-image": "skimage", "iris-sample-data": "iris_sample_data"}


def test_every_requirement_is_imported_or_has_a_reason():
    """An unused requirement costs every install time and disk (torchsde and tabulate were)."""
    deps = [re.split(r"[=<>!~ \[]", d, maxsplit=1)[0].lower()
            for d in _pyproject()["project"]["dependencies"]]
    sources = "\n".join(p.read_text() for folder in ("idff", "workflow", "benchmarks")
                        for p in (REPO / folder).rglob("*") if p.suffix in (".py", ".smk")
                        or p.name == "Snakefile")
    unused = []
    for dep in deps:
        if dep in NOT_IMPORTED:
            continue
        module = IMPORT_NAMES.get(dep, dep.replace("-", "_"))
        if not re.search(rf"^\s*(import|from)\s+{re.escape(module)}\b", sources, re.M):
            unused.append(dep)
    assert not unused, f"requirements nothing imports: {unused}"
    assert set(NOT_IMPORTED) <= set(deps), "a NOT_IMPORTED entry is no longer a requirement"
