"""Run Snakemake and DVC in a throwaway copy of the repository (never in the working tree)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COPY_IGNORE = shutil.ignore_patterns(".venv", "results", "resources", "logs", ".snakemake", ".git",
                                     "__pycache__", ".pytest_cache", ".ruff_cache", "benchmarks",
                                     ".hypothesis", "report.html", ".dvc", "*.egg-info")


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e.setdefault("GIT_AUTHOR_NAME", "test")
    e.setdefault("GIT_AUTHOR_EMAIL", "test@example.invalid")
    e.setdefault("GIT_COMMITTER_NAME", "test")
    e.setdefault("GIT_COMMITTER_EMAIL", "test@example.invalid")
    return e


def copy_repo(dest: Path, config: dict | None = None) -> Path:
    """Copy the source tree to ``dest``; ``config`` replaces config/config.yaml there."""
    shutil.copytree(REPO, dest, ignore=COPY_IGNORE)
    if config is not None:
        (dest / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def smoke_config() -> dict:
    return yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())


def run(cmd: list[str], cwd: Path, check: bool = True, timeout: float = 1500) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-6000:]}")
    return proc


def snakemake(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    return run([str(BIN / "snakemake"), *args], cwd, **kw)


def nothing_to_do(proc: subprocess.CompletedProcess) -> bool:
    out = proc.stdout + proc.stderr
    return "Nothing to be done" in out


def digests(root: Path, under: str = "results") -> dict[str, str]:
    """Every result file's sha256 under ``root/under`` (Snakemake's .snakemake_timestamp markers
    in directory outputs are its bookkeeping, not results, and DVC ignores them)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / under).rglob("*"))
            if p.is_file() and p.name != ".snakemake_timestamp"}
